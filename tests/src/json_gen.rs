//! Generated message texts for property tests against the Python original: JSON as other
//! writers lay it out (compact or airy whitespace, raw or escaped unicode, upper or lower hex,
//! `\/`), with numbers at the edges (integers beyond 64 bits, `-0`, floats that need correct
//! rounding, overflowing exponents, `NaN` and the infinities), nested values, repeated object
//! members, and sometimes a lone surrogate escape (which Python loads and Rust cannot hold).
//!
//! Members come **in any order**: `role` anywhere, `content` anywhere or absent, names repeated
//! (`role` and `content` too, with values of any type, as a Python dict resolves them: first
//! place, last value), beside the shapes agent frameworks really write (OpenAI's tool result
//! with `content` last, assistant tool calls with `refusal`, Anthropic's content blocks, a
//! Responses API item without a role). Whether a text is a message at all is for Python to
//! judge (the worker's `judge`), never for this generator to assume.

use proptest::prelude::*;

/// One generated message: its JSON text, and whether a string in it holds a lone surrogate.
#[derive(Debug, Clone)]
pub struct GeneratedMessage {
    /// The JSON text of the object, members in any order.
    pub text: String,
    /// Whether the text holds a lone surrogate escape.
    pub has_lone_surrogate: bool,
}

/// A piece of a JSON string literal.
#[derive(Debug, Clone)]
enum Piece {
    /// A character, and whether to write it as a `\uXXXX` escape (`upper` hex digits).
    Char {
        ch: char,
        escaped: bool,
        upper: bool,
    },
    /// A lone surrogate escape.
    Lone(u16),
}

/// A value to lay out.
#[derive(Debug, Clone)]
enum Node {
    Token(String),
    Str(Vec<Piece>),
    Array(Vec<Node>),
    Object(Vec<(Vec<Piece>, Node)>),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        400 => (any::<char>(), any::<bool>(), any::<bool>())
            .prop_map(|(ch, escaped, upper)| Piece::Char { ch, escaped, upper }),
        200 => (prop::sample::select(vec!['a', ' ', 'é', '日', '😀', '"', '\\', '/', '\n', '\u{0}',
                                          '\u{1f}', '\u{7f}', '\u{2028}', '\u{feff}']),
               any::<bool>(), any::<bool>())
            .prop_map(|(ch, escaped, upper)| Piece::Char { ch, escaped, upper }),
        1 => (0xd800u16..=0xdfff).prop_map(Piece::Lone),
    ]
}

fn string() -> impl Strategy<Value = Vec<Piece>> {
    prop::collection::vec(piece(), 0..12)
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|int| int.to_string()),
        any::<u64>().prop_map(|int| int.to_string()),
        "-?[1-9][0-9]{19,80}",
        Just("-0".to_string()),
        Just("0".to_string()),
        // Decimal text that needs correct rounding, and exponents that overflow or underflow.
        "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,25})?([eE][-+]?[0-9]{1,3})?",
        any::<f64>()
            .prop_filter("finite", |float| float.is_finite())
            .prop_map(|float| format!("{float:?}")),
        prop::sample::select(vec![
            "NaN",
            "Infinity",
            "-Infinity",
            "-0.0",
            "1E5",
            "1e400",
            "-1e-400",
            "5e-324",
            "0.4245191891425139",
            "1.7976931348623157e308",
            "2.2250738585072011e-308",
        ])
        .prop_map(str::to_string),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        prop::sample::select(vec!["null", "true", "false"]).prop_map(|t| Node::Token(t.into())),
        number().prop_map(Node::Token),
        string().prop_map(Node::Str),
    ];
    leaf.prop_recursive(5, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Node::Array),
            prop::collection::vec((string(), inner), 0..5).prop_map(Node::Object),
        ]
    })
}

/// Whitespace between tokens, as other writers put it.
fn space() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", " ", "\n  ", "\t", "\r\n"])
}

/// A member name: the names agent frameworks use (repeats likely, `role` and `content`
/// among them), or any string.
fn member_name() -> impl Strategy<Value = Vec<Piece>> {
    prop_oneof![
        1 => prop::sample::select(vec![
            "name", "tool_call_id", "tool_calls", "refusal", "id", "type", "audio",
            "annotations", "role", "content",
        ])
        .prop_map(pieces_of),
        1 => string(),
    ]
}

/// A role: the usual ones, any string, and now and then a value that is not a string.
fn role_value() -> impl Strategy<Value = Node> {
    prop_oneof![
        6 => prop::sample::select(vec!["user", "assistant", "system", "tool", "developer"])
            .prop_map(|role| Node::Str(pieces_of(role))),
        3 => string().prop_map(Node::Str),
        1 => node(),
    ]
}

/// A message text (see [`GeneratedMessage`]): members in any order, or a framework's shape.
pub fn message_text() -> impl Strategy<Value = GeneratedMessage> {
    (
        prop_oneof![3 => any_order_members(), 1 => framework_shape()],
        space(),
    )
        .prop_map(|(members, space)| {
            let mut out = Layout {
                text: String::new(),
                space,
                has_lone_surrogate: false,
            };
            out.text.push('{');
            out.text.push_str(space);
            for (index, (name, value)) in members.iter().enumerate() {
                if index > 0 {
                    out.text.push(',');
                    out.text.push_str(space);
                }
                out.string(name);
                out.text.push(':');
                out.text.push_str(space);
                out.node(value);
            }
            out.text.push_str(space);
            out.text.push('}');
            GeneratedMessage {
                text: out.text,
                has_lone_surrogate: out.has_lone_surrogate,
            }
        })
}

type Members = Vec<(Vec<Piece>, Node)>;

/// A role (most of the time), a content (or none), other members whose names may repeat any of
/// them, all shuffled.
fn any_order_members() -> impl Strategy<Value = Members> {
    let content = prop_oneof![
        2 => string().prop_map(|text| Some(Node::Str(text))),
        2 => node().prop_map(Some),
        1 => Just(None),
    ];
    let role = prop_oneof![12 => role_value().prop_map(Some), 1 => Just(None)];
    (
        role,
        content,
        prop::collection::vec((member_name(), node()), 0..5),
    )
        .prop_flat_map(|(role, content, others)| {
            let mut members: Members = Vec::new();
            members.extend(role.map(|role| (pieces_of("role"), role)));
            members.extend(content.map(|content| (pieces_of("content"), content)));
            members.extend(others);
            Just(members).prop_shuffle()
        })
}

/// What OpenAI, Anthropic and other frameworks write, in their own member order.
fn framework_shape() -> impl Strategy<Value = Members> {
    let id = "[a-zA-Z0-9_]{1,24}";
    let text = || string().prop_map(Node::Str);
    let plain = |value: &str| Node::Str(pieces_of(value));
    prop_oneof![
        // OpenAI's tool result: content last.
        (id, text()).prop_map(move |(id, content)| vec![
            (pieces_of("role"), plain("tool")),
            (pieces_of("tool_call_id"), plain(&id)),
            (pieces_of("content"), content),
        ]),
        // An OpenAI assistant message calling tools, as the SDK's model_dump writes it.
        (id, text(), any::<bool>()).prop_map(move |(id, said, null_content)| vec![
            (pieces_of("role"), plain("assistant")),
            (
                pieces_of("tool_calls"),
                Node::Array(vec![Node::Object(vec![
                    (pieces_of("id"), plain(&id)),
                    (pieces_of("type"), plain("function")),
                    (
                        pieces_of("function"),
                        Node::Object(vec![
                            (pieces_of("name"), plain("get_weather")),
                            (pieces_of("arguments"), plain("{\"city\": \"Paris\"}")),
                        ])
                    ),
                ])])
            ),
            (pieces_of("refusal"), Node::Token("null".into())),
            (
                pieces_of("content"),
                if null_content {
                    Node::Token("null".into())
                } else {
                    said
                }
            ),
        ]),
        // A named user, and content before role.
        (text(), text()).prop_map(move |(name, content)| vec![
            (pieces_of("role"), plain("user")),
            (pieces_of("name"), name),
            (pieces_of("content"), content),
        ]),
        text().prop_map(move |content| vec![
            (pieces_of("content"), content),
            (pieces_of("role"), plain("user")),
        ]),
        // Anthropic: tool_use blocks, then tool_result blocks in a user message.
        (id, text()).prop_map(move |(id, said)| vec![
            (pieces_of("role"), plain("assistant")),
            (
                pieces_of("content"),
                Node::Array(vec![
                    Node::Object(vec![
                        (pieces_of("type"), plain("text")),
                        (pieces_of("text"), said),
                    ]),
                    Node::Object(vec![
                        (pieces_of("type"), plain("tool_use")),
                        (pieces_of("id"), plain(&id)),
                        (pieces_of("name"), plain("get_weather")),
                        (
                            pieces_of("input"),
                            Node::Object(vec![(pieces_of("city"), plain("Paris"))])
                        ),
                    ]),
                ])
            ),
        ]),
        (id, text()).prop_map(move |(id, result)| vec![
            (pieces_of("role"), plain("user")),
            (
                pieces_of("content"),
                Node::Array(vec![Node::Object(vec![
                    (pieces_of("type"), plain("tool_result")),
                    (pieces_of("tool_use_id"), plain(&id)),
                    (pieces_of("content"), result),
                ])])
            ),
        ]),
        // A Responses API item: no role at all.
        (id, text()).prop_map(move |(id, output)| vec![
            (pieces_of("type"), plain("function_call_output")),
            (pieces_of("call_id"), plain(&id)),
            (pieces_of("output"), output),
        ]),
    ]
}

/// The pieces of a plain string, unescaped.
fn pieces_of(text: &str) -> Vec<Piece> {
    text.chars()
        .map(|ch| Piece::Char {
            ch,
            escaped: false,
            upper: false,
        })
        .collect()
}

struct Layout {
    text: String,
    space: &'static str,
    has_lone_surrogate: bool,
}

impl Layout {
    fn node(&mut self, node: &Node) {
        match node {
            Node::Token(token) => self.text.push_str(token),
            Node::Str(pieces) => self.string(pieces),
            Node::Array(items) => {
                self.text.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        self.text.push(',');
                    }
                    self.text.push_str(self.space);
                    self.node(item);
                }
                self.text.push(']');
            }
            Node::Object(members) => {
                self.text.push('{');
                for (index, (name, value)) in members.iter().enumerate() {
                    if index > 0 {
                        self.text.push(',');
                    }
                    self.string(name);
                    self.text.push_str(self.space);
                    self.text.push(':');
                    self.node(value);
                }
                self.text.push('}');
            }
        }
    }

    fn string(&mut self, pieces: &[Piece]) {
        self.text.push('"');
        let mut after_lone = false;
        for piece in pieces {
            match *piece {
                Piece::Lone(unit) => {
                    // Two lone escapes in a row could make a valid pair: keep them apart.
                    if after_lone {
                        self.text.push('x');
                    }
                    self.has_lone_surrogate = true;
                    self.text.push_str(&format!("\\u{unit:04x}"));
                    after_lone = true;
                }
                Piece::Char { ch, escaped, upper } => {
                    self.char(ch, escaped, upper);
                    after_lone = false;
                }
            }
        }
        self.text.push('"');
    }

    fn char(&mut self, ch: char, escaped: bool, upper: bool) {
        match ch {
            '"' => self.text.push_str("\\\""),
            '\\' => self.text.push_str("\\\\"),
            '/' if escaped => self.text.push_str("\\/"),
            '\n' if !escaped => self.text.push_str("\\n"),
            _ if escaped || ch.is_control() && u32::from(ch) < 0x20 => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    if upper {
                        self.text.push_str(&format!("\\u{unit:04X}"));
                    } else {
                        self.text.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
            _ => self.text.push(ch),
        }
    }
}
