//! Time to live: set on the first write, renewed by every write, configurable, and never touched on someone else's key.

use super::*;

pub(super) async fn the_ttl_is_set_on_the_first_write_and_renewed_by_every_write(d: &Deployment) {
    let memory = d.memory(Settings::default());
    let mut redis = d.raw();
    let key = "ai:memory:ttl";
    stored(memory.add_message("ttl", Message::user("1")).await.unwrap());
    let ttl: i64 = redis.ttl(key).unwrap();
    assert!((3590..=3600).contains(&ttl), "ttl after first write: {ttl}");

    let _: () = redis.expire(key, 10).unwrap();
    stored(memory.add_message("ttl", Message::user("2")).await.unwrap());
    let ttl: i64 = redis.ttl(key).unwrap();
    assert!(
        (3590..=3600).contains(&ttl),
        "ttl after second write: {ttl}"
    );

    let _: () = redis.expire(key, 10).unwrap();
    stored(
        memory
            .add_messages("ttl", [Message::user("3"), Message::assistant("4")])
            .await
            .unwrap(),
    );
    let ttl: i64 = redis.ttl(key).unwrap();
    assert!(
        (3590..=3600).contains(&ttl),
        "ttl after a batch write: {ttl}"
    );
}

pub(super) async fn the_configured_ttl_is_the_one_applied(d: &Deployment) {
    let memory = d.memory(Settings {
        ttl_seconds: 120,
        ..Settings::default()
    });
    stored(
        memory
            .add_message("ttl-120", Message::user("x"))
            .await
            .unwrap(),
    );
    let ttl: i64 = d.raw().ttl("ai:memory:ttl-120").unwrap();
    assert!((110..=120).contains(&ttl), "{ttl}");
}

pub(super) async fn a_foreign_key_keeps_its_own_ttl(d: &Deployment) {
    let mut redis = d.raw();
    let _: () = redis.hset("ai:memory:h", "field", "value").unwrap();
    let _: () = redis.expire("ai:memory:h", 77).unwrap();
    let outcome = d
        .memory(Settings::default())
        .add_message("h", Message::user("x"))
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Failed(StoreError::WrongType));
    let ttl: i64 = redis.ttl("ai:memory:h").unwrap();
    assert!((70..=77).contains(&ttl), "foreign TTL changed to {ttl}");
    assert_eq!(
        redis.hget::<_, _, String>("ai:memory:h", "field").unwrap(),
        "value"
    );
}
