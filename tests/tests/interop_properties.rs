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
            // Python is the judge of whether a lone surrogate survives into the value.
            let lone = python.has_lone_surrogate(&generated.text);
            python.add(&session, &[&generated.text]);
            let theirs = python.get(&session);
            let stored = python.entries(&session);
            let context = fixture
                .runtime
                .block_on(fixture.memory.get_context(session.as_str()))
                .unwrap();
            if lone {
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
    report_lone_surrogates(lone_surrogates.get());
}

#[test]
fn what_we_write_python_reads_exactly() {
    let fixture = Fixture::new();
    let lone_surrogates = std::cell::Cell::new(0);
    runner()
        .run(&message_text(), |generated: GeneratedMessage| {
            let session = fixture.session();
            let lone = fixture
                .python
                .borrow_mut()
                .has_lone_surrogate(&generated.text);
            let message = match Message::from_json_str(&generated.text) {
                Ok(message) => {
                    prop_assert_eq(lone, false, &generated)?;
                    message
                }
                Err(MessageJsonError::NotJson(error)) if lone => {
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
    report_lone_surrogates(lone_surrogates.get());
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
    let fixture = Fixture::new();
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

/// Say how many cases held a lone surrogate; none means that path went untested.
fn report_lone_surrogates(count: u32) {
    println!("{CASES} cases, {count} with a lone surrogate");
    assert!(count > 0, "the generator never made a lone surrogate");
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
