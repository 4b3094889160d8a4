//! How much fuel per byte a policy needs for the heaviest calls the default settings allow: a
//! full window (50 messages of 1 MiB) written and read, for several shapes of data. The figures
//! behind `agent_memory::settings::DEFAULT_FUEL_PER_BYTE`. `--policy python|js` measures the example
//! policies in those languages instead of the built-in default, `--bytes N` another message size
//! (an interpreter takes seconds per call at 1 MiB).
//!
//! ```sh
//! cargo run --release -p agent-memory-tests --example fuel_probe -- ascii unicode floats ints nested emoji
//! cargo run --release -p agent-memory-tests --example fuel_probe -- --policy js --bytes 16384 ascii emoji nested
//! ```

use std::time::Instant;

use agent_memory::{
    Limits, Memory, MemoryError, Message, Policy, PolicyError, Store, StoreSpec, json::Json,
};
use agent_memory_tests::language_policies;

/// A message of about `target` bytes encoded, made of one shape of data.
fn message(shape: &str, target: usize) -> Option<Message> {
    let repeated = |item: &str, each: usize| {
        let items = vec![item; (target - 64) / each];
        Json::parse(&format!("[{}]", items.join(", "))).expect("JSON")
    };
    Some(match shape {
        "ascii" => Message::user("x".repeat(target - 40)),
        "unicode" => Message::user("é".repeat((target - 40) / 6)),
        "floats" => Message::user("").with("f", repeated("0.4245191891425139", 20)),
        "ints" => Message::user("").with("i", repeated("7", 3)),
        "nested" => Message::user("").with("n", repeated("{\"a\": [{}]}", 13)),
        // Four UTF-8 bytes, two UTF-16 units and a 12-byte `\ud83d\ude00` escape each.
        "emoji" => Message::user("😀".repeat((target - 40) / 12)),
        "japanese" => Message::user("日本語".repeat((target - 40) / 18)),
        _ => return None,
    })
}

fn budget_exceeded(error: &MemoryError) -> bool {
    matches!(
        error,
        MemoryError::Policy(PolicyError::ComputeBudgetExceeded { .. })
    )
}

/// The smallest fuel per byte for which `works` holds (it is monotonic).
fn smallest(works: impl Fn(u64) -> bool) -> u64 {
    let (mut too_small, mut enough) = (0u64, 100_000u64);
    while enough - too_small > 1 {
        let middle = too_small + (enough - too_small) / 2;
        if works(middle) {
            enough = middle;
        } else {
            too_small = middle;
        }
    }
    enough
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let mut args = std::env::args().skip(1).peekable();
    let (mut policy, mut bytes) = (Policy::default_policy().expect("built in"), 1 << 20);
    let mut shapes = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--policy" => {
                policy = match args.next().as_deref() {
                    Some("python") => language_policies::window_python(),
                    Some("js") => language_policies::window_js(),
                    Some("default") => policy,
                    other => panic!("--policy takes default, python or js, not {other:?}"),
                }
            }
            "--bytes" => bytes = args.next().and_then(|n| n.parse().ok()).expect("--bytes N"),
            _ => shapes.push(arg),
        }
    }
    for shape in shapes {
        let Some(message) = message(&shape, bytes) else {
            eprintln!(
                "unknown shape {shape}: use ascii, unicode, floats, ints, nested, emoji or japanese"
            );
            continue;
        };
        let size = message.to_json_string().len();
        let store = Store::open(&StoreSpec::InMemory, Default::default()).expect("a store");
        let memory = |fuel_per_byte| {
            Memory::builder()
                .store_handle(store.clone())
                .policy(policy.clone())
                .limits(Limits {
                    fuel_per_byte,
                    ..Limits::default()
                })
                .build()
                .expect("a memory")
        };
        let write = smallest(|per_byte| {
            let batch = vec![message.clone(); 50];
            match runtime.block_on(memory(per_byte).add_messages("write", batch)) {
                Ok(outcome) => outcome.is_stored(),
                Err(error) if budget_exceeded(&error) => false,
                Err(error) => panic!("{error}"),
            }
        });
        let batch = vec![message.clone(); 50];
        let stored = runtime.block_on(memory(100_000).add_messages("read", batch));
        assert!(stored.is_ok_and(|outcome| outcome.is_stored()));
        let started = Instant::now();
        let context = runtime.block_on(memory(100_000).get_context("read"));
        let took = started.elapsed();
        assert_eq!(context.expect("a read").messages.len(), 50);
        let read =
            smallest(
                |per_byte| match runtime.block_on(memory(per_byte).get_context("read")) {
                    Ok(_) => true,
                    Err(error) if budget_exceeded(&error) => false,
                    Err(error) => panic!("{error}"),
                },
            );
        println!(
            "{shape}: entries of {size} bytes; a full window needs {write} fuel/byte to write, \
             {read} to read (plus the base); the read took {took:?}"
        );
    }
}
