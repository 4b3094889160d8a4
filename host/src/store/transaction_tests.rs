//! One transaction's semantics on every backend against real stores (a `redis-server` of the
//! test's own, an embedded file, process memory): `expect` (a Lua script on Redis) applies the
//! transaction only on the list it names, and never touches someone else's key. These are
//! the store's own promises, so they are tested here, where `Store::apply` is visible; the
//! policies that rely on them are tested through `Memory` in `tests/`.

use agent_memory_tests::RedisServer;

use super::{ListOp, Range, Store, StoreError, StoreSpec};

async fn stores(server: &RedisServer, dir: &std::path::Path) -> Vec<(&'static str, Store)> {
    vec![
        (
            "redis",
            Store::open(
                &StoreSpec::parse(&server.url()).unwrap(),
                Default::default(),
            )
            .unwrap(),
        ),
        (
            "embedded",
            Store::open(&StoreSpec::Embedded(dir.join("s.redb")), Default::default()).unwrap(),
        ),
        (
            "memory",
            Store::open(&StoreSpec::InMemory, Default::default()).unwrap(),
        ),
    ]
}

#[tokio::test]
async fn an_expectation_applies_the_transaction_only_on_the_list_it_names_on_every_store() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    for (name, store) in stores(&server, dir.path()).await {
        let key = "ai:memory:x";
        let a = b"{\"a\": 1}".to_vec();
        let b = b"{\"b\": 2}".to_vec();
        // A missing list holds nothing.
        let applied = store
            .apply(
                key,
                vec![
                    ListOp::Expect(vec![]),
                    ListOp::Push(vec![a.clone()]),
                    ListOp::Expire(60),
                ],
            )
            .await
            .unwrap();
        assert_eq!(applied.length_after_push, Some(1), "{name}");
        // A stale expectation changes nothing.
        let stale = store
            .apply(
                key,
                vec![ListOp::Expect(vec![]), ListOp::Push(vec![b.clone()])],
            )
            .await;
        assert_eq!(stale, Err(StoreError::Conflict), "{name}");
        assert_eq!(
            store.entries(key, 0, -1).await.unwrap(),
            std::slice::from_ref(&a),
            "{name}"
        );
        // The right one: push, trim, put in front, read back, in one transaction.
        let applied = store
            .apply(
                key,
                vec![
                    ListOp::Expect(vec![a.clone()]),
                    ListOp::Push(vec![b.clone(), b.clone()]),
                    ListOp::Trim(Range { start: 1, stop: -1 }),
                    ListOp::PushFront(vec![a.clone(), b.clone()]),
                    ListOp::Read(Range { start: 0, stop: -1 }),
                ],
            )
            .await
            .unwrap();
        assert_eq!(applied.length_after_push, Some(4), "{name}");
        let expected = vec![a.clone(), b.clone(), b.clone(), b.clone()];
        assert_eq!(applied.read, Some(Ok(expected.clone())), "{name}");
        assert_eq!(store.entries(key, 0, -1).await.unwrap(), expected, "{name}");
        // A delete under an expectation says what it removed.
        let applied = store
            .apply(key, vec![ListOp::Expect(expected), ListOp::Delete])
            .await
            .unwrap();
        assert_eq!(applied.deleted, Some(4), "{name}");
        assert!(
            store.entries(key, 0, -1).await.unwrap().is_empty(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn an_expectation_on_someone_elses_key_is_refused_and_leaves_it_untouched() {
    let server = RedisServer::start();
    let mut redis = server.connection();
    redis::cmd("SET")
        .arg("ai:memory:foreign")
        .arg("v")
        .exec(&mut redis)
        .unwrap();
    redis::cmd("EXPIRE")
        .arg("ai:memory:foreign")
        .arg(1000)
        .exec(&mut redis)
        .unwrap();
    let store = Store::open(
        &StoreSpec::parse(&server.url()).unwrap(),
        Default::default(),
    )
    .unwrap();
    let refused = store
        .apply(
            "ai:memory:foreign",
            vec![ListOp::Expect(vec![]), ListOp::Expire(5)],
        )
        .await;
    assert_eq!(refused, Err(StoreError::WrongType));
    let ttl: i64 = redis::cmd("TTL")
        .arg("ai:memory:foreign")
        .query(&mut redis)
        .unwrap();
    assert!(ttl > 900, "the foreign key's TTL was changed: {ttl}");
    // A delete is refused on it too (`operator::delete_list` relies on this), and the value
    // stays.
    let refused = store.apply("ai:memory:foreign", vec![ListOp::Delete]).await;
    assert_eq!(refused, Err(StoreError::WrongType));
    let value: String = redis::cmd("GET")
        .arg("ai:memory:foreign")
        .query(&mut redis)
        .unwrap();
    assert_eq!(value, "v");
}
