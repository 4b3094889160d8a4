//! 64 writers on one session for 10 s, watched throughout: the list never holds more than the
//! window, is never without a TTL, and no acknowledged message inside the window is lost or
//! stored twice. (Its own test binary: cargo runs binaries one at a time, so nothing else
//! competes with it.)

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agent_memory::{Memory, Message, StoreSpec, WriteOutcome};
use agent_memory_tests::RedisServer;

const WRITERS: usize = 64;
const RUN_FOR: Duration = Duration::from_secs(10);
const WINDOW: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_writers_on_one_session_never_break_the_window_the_ttl_or_an_acknowledged_write()
{
    let server = RedisServer::start();
    let memory = Memory::builder()
        .store(StoreSpec::parse(&server.url()).unwrap())
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));

    // The sampler reads length and TTL together (one MULTI) as fast as it can.
    let sampler = {
        let stop = Arc::clone(&stop);
        let mut redis = server.connection();
        std::thread::spawn(move || {
            let mut samples = 0u64;
            let mut written = false;
            while !stop.load(Ordering::Acquire) {
                let (length, pttl): (usize, i64) = redis::pipe()
                    .atomic()
                    .llen("ai:memory:shared")
                    .pttl("ai:memory:shared")
                    .query(&mut redis)
                    .expect("sampling");
                samples += 1;
                assert!(length <= WINDOW, "the list held {length} entries");
                if length > 0 {
                    written = true;
                    assert!(pttl > 0, "a list of {length} without a TTL ({pttl})");
                } else {
                    assert!(
                        !written || pttl == -2,
                        "an empty list still exists ({pttl})"
                    );
                }
            }
            samples
        })
    };

    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let memory = memory.clone();
        let stop = Arc::clone(&stop);
        writers.spawn(async move {
            // (sequence number, acknowledged?) of every write this writer attempted, in order.
            let mut attempts = Vec::new();
            let mut n = 0u32;
            while !stop.load(Ordering::Acquire) {
                let outcome = memory
                    .add_message("shared", Message::user(format!("w{writer}-{n}")))
                    .await
                    .expect("a valid message");
                match outcome {
                    WriteOutcome::Stored(_) => attempts.push((n, true)),
                    WriteOutcome::Failed(error) => {
                        assert!(error.may_have_applied(), "refused outright: {error}");
                        attempts.push((n, false));
                    }
                }
                n += 1;
            }
            (writer, attempts)
        });
    }
    tokio::time::sleep(RUN_FOR).await;
    stop.store(true, Ordering::Release);
    let mut attempts: HashMap<usize, Vec<(u32, bool)>> = HashMap::new();
    while let Some(done) = writers.join_next().await {
        let (writer, tried) = done.unwrap();
        attempts.insert(writer, tried);
    }
    let elapsed = started.elapsed();
    let samples = sampler.join().expect("the sampler's checks held");

    let final_list: Vec<String> = memory
        .get_context("shared")
        .await
        .unwrap()
        .messages
        .iter()
        .map(|message| message.text().unwrap().to_string())
        .collect();
    assert_eq!(final_list.len(), WINDOW);
    let unique: HashSet<&String> = final_list.iter().collect();
    assert_eq!(
        unique.len(),
        WINDOW,
        "a message was stored twice: {final_list:?}"
    );

    // Each writer wrote in sequence, so what survives of it in the window must be the tail of
    // what it wrote: an acknowledged write newer than one that survived cannot be missing.
    let mut in_window: HashMap<usize, Vec<u32>> = HashMap::new();
    for text in &final_list {
        let (writer, n) = text[1..].split_once('-').expect("w<writer>-<n>");
        in_window
            .entry(writer.parse().unwrap())
            .or_default()
            .push(n.parse().unwrap());
    }
    for (writer, kept) in &in_window {
        assert!(kept.is_sorted(), "w{writer} out of order: {kept:?}");
        let oldest = kept[0];
        for &(n, acknowledged) in &attempts[writer] {
            if n > oldest && acknowledged {
                assert!(
                    kept.contains(&n),
                    "w{writer}-{n} was acknowledged after w{writer}-{oldest}, which is in the \
                     window, but is missing: {final_list:?}"
                );
            }
        }
    }
    let total: usize = attempts.values().map(Vec::len).sum();
    let unknown = attempts.values().flatten().filter(|(_, ack)| !ack).count();
    println!(
        "{total} writes by {WRITERS} writers in {elapsed:?} ({:.0}/s), {unknown} unknown \
         outcomes; {samples} samples of length and TTL",
        total as f64 / elapsed.as_secs_f64()
    );
    assert!(samples > 100, "the sampler hardly ran: {samples}");
}
