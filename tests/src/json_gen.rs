//! Generated message texts for property tests against the Python original: JSON as other
//! writers lay it out (compact or airy whitespace, raw or escaped unicode, upper or lower hex,
//! `\/`), with numbers at the edges (integers beyond 64 bits, `-0`, floats that need correct
//! rounding, overflowing exponents, `NaN` and the infinities), nested values, repeated object
//! members, and sometimes a lone surrogate escape (which Python loads and Rust cannot hold).

use proptest::prelude::*;

/// One generated message: its JSON text, and whether a string in it holds a lone surrogate.
#[derive(Debug, Clone)]
pub struct GeneratedMessage {
    /// The JSON text of the message object: `role` first, then `content` if present, then
    /// other members (the order the original's dict literals give).
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

/// A message text (see [`GeneratedMessage`]).
pub fn message_text() -> impl Strategy<Value = GeneratedMessage> {
    let content = prop_oneof![
        2 => string().prop_map(|text| Some(Node::Str(text))),
        2 => node().prop_map(Some),
        1 => Just(None),
    ];
    let member = (string(), node()).prop_filter("not role or content", |(name, _)| {
        let name = plain(name);
        name != "role" && name != "content"
    });
    (
        string(),
        content,
        prop::collection::vec(member, 0..4),
        space(),
    )
        .prop_map(|(role, content, members, space)| {
            let mut out = Layout {
                text: String::new(),
                space,
                has_lone_surrogate: false,
            };
            out.text.push('{');
            out.text.push_str(space);
            out.text.push_str("\"role\":");
            out.text.push_str(space);
            out.string(&role);
            if let Some(content) = content {
                out.text.push(',');
                out.text.push_str(space);
                out.text.push_str("\"content\":");
                out.node(&content);
            }
            for (name, value) in &members {
                out.text.push(',');
                out.text.push_str(space);
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

/// The text a string's pieces spell (lone surrogates left out).
fn plain(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .filter_map(|piece| match piece {
            Piece::Char { ch, .. } => Some(*ch),
            Piece::Lone(_) => None,
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
