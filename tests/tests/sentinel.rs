//! `redis+sentinel://`: the master found through real sentinels (a master, a replica, three
//! sentinels on loopback), a failover followed without restarting the host, and sentinels that
//! require a password.

use std::time::{Duration, Instant};

use agent_memory::telemetry;
use agent_memory::{
    Memory, Message, StoreError, StoreSpec, WriteOutcome, store::RedisOptions,
    store::WaitForReplicas,
};
use agent_memory_tests::{PythonOriginal, RedisServer, Sentinels, expect_stored, recorder, texts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_gives_typed_errors_then_recovers_with_every_replicated_write() {
    recorder();
    let mut master = RedisServer::start();
    let replica = RedisServer::start_replica_of(&master);
    let sentinels = Sentinels::start(&master, 3, 1);
    let memory = Memory::builder()
        .store(StoreSpec::parse(&sentinels.url()).unwrap())
        .redis_options(RedisOptions {
            connect: Duration::from_millis(300),
            response: Duration::from_millis(300),
            // A write reported stored is on the replica too: a failover cannot lose it.
            wait_for_replicas: Some(WaitForReplicas {
                replicas: 1,
                timeout: Duration::from_millis(500),
            }),
            ..RedisOptions::default()
        })
        .build()
        .unwrap();
    assert!(
        memory
            .store()
            .describe()
            .contains("sentinel master mymaster")
    );
    let before: Vec<String> = (0..20).map(|i| format!("before {i}")).collect();
    for text in &before {
        expect_stored(
            memory
                .add_message("s", Message::user(text.as_str()))
                .await
                .unwrap(),
        );
    }
    assert_eq!(texts(&memory.get_context("s").await.unwrap()), before);

    master.kill();
    let killed = Instant::now();
    let mut failures = Vec::new();
    let mut applied = Vec::new();
    let recovered = loop {
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "no recovery: {failures:?}"
        );
        let text = format!("during {}", applied.len() + failures.len());
        match memory
            .add_message("s", Message::user(text.as_str()))
            .await
            .unwrap()
        {
            WriteOutcome::Stored(_) => {
                applied.push(text);
                break killed.elapsed();
            }
            // The promoted replica has no replica of its own until the old master comes back:
            // the write is applied there, and reported as not replicated, truthfully.
            WriteOutcome::Failed(StoreError::NotReplicated { .. }) => {
                applied.push(text);
                break killed.elapsed();
            }
            WriteOutcome::Failed(error) => {
                assert!(
                    !error.may_have_applied()
                        || matches!(error, StoreError::Timeout | StoreError::OutcomeUnknown(_))
                );
                failures.push(error.to_string());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "failover: first write applied {recovered:?} after the master was killed; {} writes failed meanwhile (first: {:?})",
        failures.len(),
        failures.first()
    );
    assert!(!failures.is_empty(), "the failover was not noticed");
    assert_eq!(sentinels.master_port(), Some(replica.port()));
    // Counted for the operator: a failover to another master, connect failures meanwhile,
    // and connections to both masters, each named by its address.
    let store = memory.store().describe();
    let store = store.as_str();
    let metrics = recorder();
    // At least the one failover (a sentinel slow to learn of it could name the old master, come
    // back as a master for a moment, once more: counted too, as it is a change of master).
    let failovers = metrics.counter(telemetry::STORE_FAILOVERS, &[("store", store)]);
    assert!(
        (1..=2).contains(&failovers),
        "{failovers} failovers counted"
    );
    assert!(metrics.counter(telemetry::STORE_CONNECT_FAILURES, &[("store", store)]) > 0);
    for port in [master.port(), replica.port()] {
        let server = format!("127.0.0.1:{port}");
        assert!(
            metrics.counter(
                telemetry::STORE_CONNECTS,
                &[("store", store), ("server", server.as_str())]
            ) > 0,
            "no connection counted to {server}"
        );
    }

    // The old master comes back: the sentinels make it a replica of the new one, and writes
    // are confirmed by a replica again.
    master.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = format!("after {}", applied.len());
        let outcome = memory
            .add_message("s", Message::user(text.as_str()))
            .await
            .unwrap();
        if matches!(
            outcome,
            WriteOutcome::Stored(_) | WriteOutcome::Failed(StoreError::NotReplicated { .. })
        ) {
            applied.push(text);
        }
        if outcome.is_stored() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old master never came back as a replica"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every write acknowledged before the failover (each confirmed by the replica) is there,
    // in order, and every write applied since; nothing twice.
    let after = texts(&memory.get_context("s").await.unwrap());
    assert_eq!(&after[..20], before.as_slice());
    let since: Vec<&String> = after[20..]
        .iter()
        .filter(|text| text.starts_with("during") || text.starts_with("after"))
        .collect();
    assert_eq!(since, applied.iter().collect::<Vec<_>>());
    let mut seen = std::collections::HashSet::new();
    assert!(
        after.iter().all(|text| seen.insert(text.clone())),
        "a message twice: {after:?}"
    );
    // The Python original reads the promoted replica.
    let python = PythonOriginal::new(&replica.url()).get("s");
    assert_eq!(python.as_array().map(Vec::len), Some(after.len()));
}

/// Sentinels with `requirepass` (here the master's password, as many deployments set them):
/// asked with the address's credentials once they answer `NOAUTH`; without credentials, or
/// with the wrong ones, every call is `unavailable` with the reason and never the password.
#[tokio::test]
async fn sentinels_that_require_a_password_are_asked_with_the_address_credentials() {
    const PASSWORD: &str = "sentinel-pw-42";
    let master = RedisServer::start_with(&["--requirepass", PASSWORD]);
    let _replica = RedisServer::start_replica_on(
        master.port(),
        &["--masterauth", PASSWORD, "--requirepass", PASSWORD],
    );
    let sentinels = Sentinels::start_with_password(&master, 3, 1);
    let url = sentinels.url();
    assert!(
        url.contains(PASSWORD),
        "the fixture's address carries the password"
    );
    let memory = |url: &str| {
        Memory::builder()
            .store(StoreSpec::parse(url).unwrap())
            .redis_options(RedisOptions {
                connect: Duration::from_secs(2),
                response: Duration::from_secs(2),
                ..RedisOptions::default()
            })
            .build()
            .unwrap()
    };

    expect_stored(
        memory(&url)
            .add_message("s", Message::user("through guarded sentinels"))
            .await
            .unwrap(),
    );
    let python = PythonOriginal::new(&url);
    assert_eq!(
        python.get("s"),
        serde_json::json!([{"role": "user", "content": "through guarded sentinels"}])
    );

    let without = url.replacen(&format!(":{PASSWORD}@"), "", 1);
    let wrong = url.replacen(PASSWORD, "not-the-password", 1);
    for (url, reason) in [(without, "requires a password"), (wrong, "")] {
        let outcome = memory(&url)
            .add_message("s", Message::user("refused"))
            .await
            .unwrap();
        let WriteOutcome::Failed(error) = outcome else {
            panic!("{url}: stored without the sentinels' password");
        };
        let message = error.to_string();
        assert!(matches!(error, StoreError::Unavailable(_)), "{message}");
        assert!(message.contains(reason), "{message}");
        assert!(!message.contains("not-the-password"), "{message}");
    }
    assert_eq!(
        python.get("s"),
        serde_json::json!([{"role": "user", "content": "through guarded sentinels"}]),
        "nothing was written by the refused calls"
    );
}
