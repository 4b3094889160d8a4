//! Exactness against the real Python original, as property tests over generated JSON (nested,
//! unicode, numbers at the edges, any layout; see `agent_memory_tests::message_text`):
//!
//! - Python writes, we read: what we return is, byte for byte, what Python's own `json.dumps`
//!   of what it reads back gives; an entry with a lone surrogate is skipped with its own reason.
//! - We write, Python reads: our entry is byte-identical to `json.dumps(json.loads(text))` and
//!   `json.loads` of it equals `json.loads(text)`; a lone surrogate is refused before writing.
//!
//! One Python worker process serves all cases (tests/python/worker.py).

use agent_memory::{EntryProblem, Memory, Message, MessageJsonError, StoreSpec, WriteOutcome};
use agent_memory_tests::{GeneratedMessage, PythonWorker, RedisServer, message_text};
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Cases per direction. Each case is a few Redis round trips and two Python calls.
const CASES: u32 = 1000;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

struct Fixture {
    _server: RedisServer,
    python: std::cell::RefCell<PythonWorker>,
    memory: Memory,
    runtime: tokio::runtime::Runtime,
    case: std::cell::Cell<u64>,
}

impl Fixture {
    fn new() -> Self {
        let server = RedisServer::start();
        let python = PythonWorker::start(&server.url());
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let memory = Memory::builder()
            .store(StoreSpec::parse(&server.url()).unwrap())
            .build()
            .unwrap();
        Self {
            _server: server,
            python: std::cell::RefCell::new(python),
            memory,
            runtime,
            case: std::cell::Cell::new(0),
        }
    }

    fn session(&self) -> String {
        self.case.set(self.case.get() + 1);
        format!("case-{}", self.case.get())
    }
}

#[test]
fn what_python_writes_we_read_exactly() {
    let fixture = Fixture::new();
    let lone_surrogates = std::cell::Cell::new(0);
    runner()
        .run(&message_text(), |generated: GeneratedMessage| {
            let session = fixture.session();
            let mut python = fixture.python.borrow_mut();
            python.add(&session, &[&generated.text]);
            let theirs = python.get(&session);
            let stored = python.entries(&session);
            let context = fixture
                .runtime
                .block_on(fixture.memory.get_context(session.as_str()))
                .unwrap();
            if generated.has_lone_surrogate {
                lone_surrogates.set(lone_surrogates.get() + 1);
                prop_assert_eq(context.messages.len(), 0, &generated)?;
                prop_assert_eq(context.skipped.len(), 1, &generated)?;
                prop_assert_eq(
                    context.skipped[0].problem,
                    EntryProblem::LoneSurrogate,
                    &generated,
                )?;
                return Ok(());
            }
            prop_assert_eq(context.skipped.clone(), Vec::new(), &generated)?;
            prop_assert_eq(context.messages.len(), 1, &generated)?;
            let ours = context.messages[0].to_json_string();
            // What Python's json.dumps makes of its own reading, and the bytes it stored.
            prop_assert_eq(format!("[{ours}]"), theirs, &generated)?;
            prop_assert_eq(vec![ours], lossy(stored), &generated)?;
            Ok(())
        })
        .unwrap();
    let lone_surrogates = lone_surrogates.get();
    println!("{CASES} cases, {lone_surrogates} with a lone surrogate");
    assert!(
        lone_surrogates > 0,
        "the generator never made a lone surrogate"
    );
}

#[test]
fn what_we_write_python_reads_exactly() {
    let fixture = Fixture::new();
    let lone_surrogates = std::cell::Cell::new(0);
    runner()
        .run(&message_text(), |generated: GeneratedMessage| {
            let session = fixture.session();
            let message = match Message::from_json_str(&generated.text) {
                Ok(message) => message,
                Err(MessageJsonError::NotJson(error)) if generated.has_lone_surrogate => {
                    lone_surrogates.set(lone_surrogates.get() + 1);
                    prop_assert_eq(
                        error.reason(),
                        agent_memory_format::json::ParseError::LoneSurrogate,
                        &generated,
                    )?;
                    return Ok(());
                }
                Err(error) => {
                    return Err(TestCaseError::fail(format!(
                        "{error} for {}",
                        generated.text
                    )));
                }
            };
            let outcome = fixture
                .runtime
                .block_on(fixture.memory.add_message(session.as_str(), message))
                .unwrap();
            prop_assert_eq(matches!(outcome, WriteOutcome::Stored(_)), true, &generated)?;
            let mut python = fixture.python.borrow_mut();
            let expected = python.canonical(&generated.text);
            let stored = python.entries(&session);
            prop_assert_eq(lossy(stored), vec![expected], &generated)?;
            prop_assert_eq(
                python.loads_equal(&session, &[&generated.text]),
                vec![true],
                &generated,
            )?;
            Ok(())
        })
        .unwrap();
    let lone_surrogates = lone_surrogates.get();
    println!("{CASES} cases, {lone_surrogates} with a lone surrogate");
    assert!(
        lone_surrogates > 0,
        "the generator never made a lone surrogate"
    );
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
