//! Exactness against the real Python original, as property tests over generated JSON (nested,
//! unicode, numbers at the edges, any layout, **members in any order** — `role` anywhere,
//! `content` anywhere or absent, repeated names — and the shapes agent frameworks write; see
//! `agent_memory_tests::message_text`). Python itself judges what each text is
//! (`PythonWorker::judge`): the generator assumes nothing the implementation does.
//!
//! - Python writes, we read: what we return is, byte for byte, what Python's own `json.dumps`
//!   of what it reads back gives; an entry with a lone surrogate, or that is not a message, is
//!   skipped with its own reason.
//! - We write, Python reads: our entry is byte-identical to `json.dumps(json.loads(text))` and
//!   `json.loads` of it equals `json.loads(text)`; a lone surrogate or a text that is not a
//!   message is refused before writing.
//!
//! Each direction runs through three subjects: the Rust API with the default policy, the Rust
//! API with the tool-safe policy (which also never shows or stores a tool result whose call is
//! not in the session), and an agent component (examples/chat-agent) that hands messages to
//! memory in the contract's own types. One Python worker process serves all cases
//! (tests/python/worker.py).

use agent_memory::wit::types as wit;
use agent_memory::{
    Memory, MemoryError, Message, Policy, StoreSpec, WriteOutcome, message::EntryProblem,
    message::MessageJsonError, report::WindowRefusal,
};
use agent_memory_tests::agent::{ChatAgentInstance, ChatAgentRuntime};
use agent_memory_tests::{
    GeneratedMessage, Judgement, PythonWorker, RedisServer, language_policies, message_text,
};
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Cases per direction and subject. Each case is a few Redis round trips and two Python calls.
const CASES: u32 = 1000;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Who hands messages to memory and reads them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    /// `Memory` with the default policy.
    Default,
    /// `Memory` with the tool-safe policy.
    ToolSafe,
    /// The example agent component, over `Memory` with the default policy.
    Agent,
    /// `Memory` with the Python example window (examples/policies/window-python).
    PythonWindow,
    /// `Memory` with the JavaScript example window (examples/policies/window-js).
    JsWindow,
}

/// What reading a session gave: the messages as JSON text, and the skipped entries.
struct Read {
    messages: Vec<String>,
    skipped: Vec<EntryProblem>,
}

/// What writing a message gave.
enum Wrote {
    Stored,
    DoesNotFit(WindowRefusal),
}

struct Fixture {
    _server: RedisServer,
    python: std::cell::RefCell<PythonWorker>,
    memory: Memory,
    agent: std::cell::RefCell<ChatAgentInstance>,
    runtime: tokio::runtime::Runtime,
    subject: Subject,
    case: std::cell::Cell<u64>,
    counts: std::cell::RefCell<std::collections::BTreeMap<&'static str, u32>>,
}

impl Fixture {
    fn new(subject: Subject) -> Self {
        let server = RedisServer::start();
        let python = PythonWorker::start(&server.url());
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let policy = match subject {
            Subject::ToolSafe => Policy::tool_safe().unwrap(),
            Subject::Default | Subject::Agent => Policy::default_policy().unwrap(),
            Subject::PythonWindow => language_policies::window_python(),
            Subject::JsWindow => language_policies::window_js(),
        };
        let memory = Memory::builder()
            .store(StoreSpec::parse(&server.url()).unwrap())
            .policy(policy)
            .build()
            .unwrap();
        let agent = runtime.block_on(async {
            let mut config = wasmtime::Config::new();
            config.wasm_component_model(true);
            let engine = wasmtime::Engine::new(&config).unwrap();
            let agents = ChatAgentRuntime::new(&engine).unwrap();
            // No namespace: the agent's session ids are the keys Python uses.
            agents.instantiate(memory.clone(), "").await.unwrap()
        });
        Self {
            _server: server,
            python: std::cell::RefCell::new(python),
            memory,
            agent: std::cell::RefCell::new(agent),
            runtime,
            subject,
            case: std::cell::Cell::new(0),
            counts: Default::default(),
        }
    }

    fn session(&self) -> String {
        self.case.set(self.case.get() + 1);
        format!("case-{}", self.case.get())
    }

    fn count(&self, what: &'static str) {
        *self.counts.borrow_mut().entry(what).or_default() += 1;
    }

    fn read(&self, session: &str) -> Read {
        let mut agent = self.agent.borrow_mut();
        self.runtime.block_on(async {
            match self.subject {
                Subject::Default
                | Subject::ToolSafe
                | Subject::PythonWindow
                | Subject::JsWindow => {
                    let context = self.memory.get_context(session).await.unwrap();
                    Read {
                        messages: context
                            .messages
                            .iter()
                            .map(Message::to_json_string)
                            .collect(),
                        skipped: context.skipped.iter().map(|entry| entry.problem).collect(),
                    }
                }
                Subject::Agent => {
                    let context = agent
                        .recall(session)
                        .await
                        .unwrap()
                        .unwrap_or_else(|error| panic!("recall failed: {error:?}"));
                    Read {
                        messages: context
                            .messages
                            .into_iter()
                            .map(|message| Message::try_from(message).unwrap().to_json_string())
                            .collect(),
                        skipped: context
                            .skipped
                            .iter()
                            .map(|entry| match entry.problem {
                                wit::EntryProblem::NotJson => EntryProblem::NotJson,
                                wit::EntryProblem::TooDeep => EntryProblem::TooDeep,
                                wit::EntryProblem::LoneSurrogate => EntryProblem::LoneSurrogate,
                                wit::EntryProblem::NotAnObject => EntryProblem::NotAnObject,
                                wit::EntryProblem::NoRole => EntryProblem::NoRole,
                            })
                            .collect(),
                    }
                }
            }
        })
    }

    fn write(&self, session: &str, message: Message) -> Wrote {
        let mut agent = self.agent.borrow_mut();
        self.runtime.block_on(async {
            match self.subject {
                Subject::Default
                | Subject::ToolSafe
                | Subject::PythonWindow
                | Subject::JsWindow => match self.memory.add_message(session, message).await {
                    Ok(WriteOutcome::Stored(_)) => Wrote::Stored,
                    Err(MemoryError::DoesNotFit { reason, .. }) => Wrote::DoesNotFit(reason),
                    other => panic!("write failed: {other:?}"),
                },
                Subject::Agent => {
                    let answer = agent.remember(session, message.into()).await.unwrap();
                    match answer {
                        Ok(wit::WriteOutcome::Stored(_)) => Wrote::Stored,
                        other => panic!("the agent's write failed: {other:?}"),
                    }
                }
            }
        })
    }

    fn report(&self, test: &str) {
        println!(
            "{test} ({:?}), {CASES} cases: {:?}",
            self.subject,
            self.counts.borrow()
        );
        let counts = self.counts.borrow();
        for needed in ["lone surrogate", "not a message", "message"] {
            assert!(
                counts.get(needed).copied().unwrap_or(0) > 0,
                "the generator never made a case of: {needed}"
            );
        }
    }
}

fn what_python_writes_we_read_exactly(subject: Subject) {
    let fixture = Fixture::new(subject);
    runner()
        .run(&message_text(), |generated: GeneratedMessage| {
            let session = fixture.session();
            let mut python = fixture.python.borrow_mut();
            let judged: Judgement = python.judge(&generated.text);
            python.add(&session, &[&generated.text]);
            let theirs = python.get(&session);
            let stored = python.entries(&session);
            drop(python);
            let read = fixture.read(&session);
            if judged.lone_surrogate {
                fixture.count("lone surrogate");
                prop_assert_eq(read.messages.len(), 0, &generated)?;
                prop_assert_eq(read.skipped, vec![EntryProblem::LoneSurrogate], &generated)?;
                return Ok(());
            }
            if !judged.message {
                fixture.count("not a message");
                prop_assert_eq(read.messages.len(), 0, &generated)?;
                prop_assert_eq(read.skipped.len(), 1, &generated)?;
                return Ok(());
            }
            fixture.count("message");
            if subject == Subject::ToolSafe && judged.tool_results {
                // A tool result alone answers a call that is not in the session: never shown.
                fixture.count("orphaned tool result");
                prop_assert_eq(read.messages, Vec::<String>::new(), &generated)?;
                return Ok(());
            }
            prop_assert_eq(read.skipped, Vec::new(), &generated)?;
            prop_assert_eq(read.messages.len(), 1, &generated)?;
            let ours = read.messages[0].clone();
            // What Python's json.dumps makes of its own reading, and the bytes it stored.
            prop_assert_eq(format!("[{ours}]"), theirs, &generated)?;
            prop_assert_eq(vec![ours], lossy(stored), &generated)?;
            Ok(())
        })
        .unwrap();
    fixture.report("Python writes, we read");
}

fn what_we_write_python_reads_exactly(subject: Subject) {
    let fixture = Fixture::new(subject);
    runner()
        .run(&message_text(), |generated: GeneratedMessage| {
            let session = fixture.session();
            let judged = fixture.python.borrow_mut().judge(&generated.text);
            let message = match Message::from_json_str(&generated.text) {
                Ok(message) => {
                    prop_assert_eq(
                        (judged.lone_surrogate, judged.message),
                        (false, true),
                        &generated,
                    )?;
                    message
                }
                Err(MessageJsonError::NotJson(error)) if judged.lone_surrogate => {
                    fixture.count("lone surrogate");
                    prop_assert_eq(
                        error.reason(),
                        agent_memory_format::json::ParseError::LoneSurrogate,
                        &generated,
                    )?;
                    return Ok(());
                }
                Err(MessageJsonError::NoRole | MessageJsonError::NotAnObject)
                    if !judged.message =>
                {
                    fixture.count("not a message");
                    return Ok(());
                }
                Err(error) => {
                    return Err(TestCaseError::fail(format!(
                        "{error} for {}",
                        generated.text
                    )));
                }
            };
            fixture.count("message");
            let wrote = fixture.write(&session, message);
            let mut python = fixture.python.borrow_mut();
            let stored = python.entries(&session);
            if subject == Subject::ToolSafe && judged.tool_results {
                fixture.count("orphaned tool result");
                let refused = matches!(wrote, Wrote::DoesNotFit(WindowRefusal::OrphanResult(_)));
                prop_assert_eq(refused, true, &generated)?;
                prop_assert_eq(stored, Vec::<Vec<u8>>::new(), &generated)?;
                return Ok(());
            }
            prop_assert_eq(matches!(wrote, Wrote::Stored), true, &generated)?;
            let expected = python.canonical(&generated.text);
            prop_assert_eq(lossy(stored), vec![expected], &generated)?;
            prop_assert_eq(
                python.loads_equal(&session, &[&generated.text]),
                vec![true],
                &generated,
            )?;
            Ok(())
        })
        .unwrap();
    fixture.report("we write, Python reads");
}

#[test]
fn what_python_writes_the_default_policy_reads_exactly() {
    what_python_writes_we_read_exactly(Subject::Default);
}

#[test]
fn what_the_default_policy_writes_python_reads_exactly() {
    what_we_write_python_reads_exactly(Subject::Default);
}

#[test]
fn what_python_writes_the_tool_safe_policy_reads_exactly() {
    what_python_writes_we_read_exactly(Subject::ToolSafe);
}

#[test]
fn what_the_tool_safe_policy_writes_python_reads_exactly() {
    what_we_write_python_reads_exactly(Subject::ToolSafe);
}

#[test]
fn what_python_writes_an_agent_component_reads_exactly() {
    what_python_writes_we_read_exactly(Subject::Agent);
}

#[test]
fn what_an_agent_component_writes_python_reads_exactly() {
    what_we_write_python_reads_exactly(Subject::Agent);
}

#[test]
fn what_python_writes_the_python_example_policy_reads_exactly() {
    what_python_writes_we_read_exactly(Subject::PythonWindow);
}

#[test]
fn what_the_python_example_policy_writes_python_reads_exactly() {
    what_we_write_python_reads_exactly(Subject::PythonWindow);
}

#[test]
fn what_python_writes_the_javascript_example_policy_reads_exactly() {
    what_python_writes_we_read_exactly(Subject::JsWindow);
}

#[test]
fn what_the_javascript_example_policy_writes_python_reads_exactly() {
    what_we_write_python_reads_exactly(Subject::JsWindow);
}

/// Floats in the forms most likely to differ between two shortest-digit algorithms: exact ties
/// between two candidates (multiples of quarter units just below 2^53), near powers of ten,
/// subnormals, random bit patterns and long decimal texts.
fn float_texts() -> Vec<String> {
    let mut texts = Vec::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for base in [1e15f64, 2e15, 4e15, 1e16, 1e17, 1e-5, 1e-4, 1e22] {
        let ulp = f64::from_bits(base.to_bits() + 1) - base;
        for k in 0..400u32 {
            texts.push(format!("{:?}", base + f64::from(k) * ulp / 4.0));
            texts.push(format!("{:?}", base + f64::from(k) * ulp));
        }
    }
    for _ in 0..20_000 {
        let float = f64::from_bits(next());
        if float.is_finite() {
            texts.push(format!("{float:e}"));
        }
    }
    for _ in 0..20_000 {
        let mantissa = next() % 1_000_000_000_000_000_000;
        let exponent = (next() % 660) as i64 - 340;
        texts.push(format!("{mantissa}e{exponent}"));
        texts.push(format!("0.{mantissa:0>19}"));
    }
    for bits in 0..2000u64 {
        texts.push(format!("{:e}", f64::from_bits(bits)));
    }
    texts
}

#[test]
fn every_float_is_written_as_python_repr_writes_it() {
    let fixture = Fixture::new(Subject::Default);
    let texts = float_texts();
    let expected = fixture.python.borrow_mut().canonical_many(&texts);
    let mut checked = 0;
    for (text, python) in texts.iter().zip(&expected) {
        let ours = agent_memory_format::json::loads(text.as_bytes())
            .map(|value| agent_memory_format::json::dumps(&value))
            .unwrap_or_else(|error| panic!("{text}: {error}"));
        assert_eq!(&ours, python, "for {text}");
        checked += 1;
    }
    println!("{checked} floats written exactly as Python writes them");
}

/// `assert_eq!` for a proptest case, naming the generated text.
fn prop_assert_eq<T: PartialEq + std::fmt::Debug>(
    actual: T,
    expected: T,
    generated: &GeneratedMessage,
) -> Result<(), TestCaseError> {
    if actual == expected {
        Ok(())
    } else {
        Err(TestCaseError::fail(format!(
            "for {:?}:\n  ours:   {actual:?}\n  python: {expected:?}",
            generated.text
        )))
    }
}

/// Entries as text for messages (they are ASCII when all is well).
fn lossy(entries: Vec<Vec<u8>>) -> Vec<String> {
    entries
        .iter()
        .map(|entry| String::from_utf8_lossy(entry).into_owned())
        .collect()
}
