//! The embedded store file when things are bad: damaged (anywhere, any way), holding one
//! damaged value, read-only, or on a full disk. Never a panic, always a typed error naming the
//! file, a repair that keeps every readable session, and nothing lost that was stored.

use std::path::Path;
use std::time::Duration;

use agent_memory::store::EmbeddedStore;
use agent_memory::{
    Memory, Message, Store, StoreError, StoreSpec, WriteOutcome, store::KeyKind, store::OpenError,
    store::Ttl,
};
use agent_memory_tests::{Mount, expect_stored, texts};

fn memory_on(path: &Path) -> Result<Memory, agent_memory::BuildError> {
    Memory::builder()
        .store(StoreSpec::Embedded(path.to_path_buf()))
        .build()
}

/// A store file with `sessions` sessions of three messages each, closed.
async fn populated_file(dir: &Path, sessions: usize) -> std::path::PathBuf {
    let path = dir.join("memory.redb");
    let memory = memory_on(&path).unwrap();
    for i in 0..sessions {
        let batch = (0..3).map(|n| Message::user(format!("s{i} m{n} {}", "x".repeat(300))));
        expect_stored(memory.add_messages(format!("s{i}"), batch).await.unwrap());
    }
    path
}

/// Everything a caller might do with a store, with the file as it is: the results, with any
/// panic escaping turned into a test failure.
async fn exercise(path: &Path) -> Vec<String> {
    let mut seen = Vec::new();
    let memory = match memory_on(path) {
        Ok(memory) => memory,
        Err(error) => {
            let text = error.to_string();
            assert!(
                text.contains(&path.display().to_string()),
                "an open error must name the file: {text}"
            );
            assert!(
                matches!(
                    error,
                    agent_memory::BuildError::Store(OpenError::Damaged { .. })
                ),
                "a file that does not open is reported as damaged: {text}"
            );
            seen.push(format!("open: {text}"));
            return seen;
        }
    };
    match memory.sessions().await {
        Ok(sessions) => seen.push(format!("{} sessions", sessions.len())),
        Err(error) => seen.push(format!("sessions: {error}")),
    }
    for session in ["s0", "s1", "s7"] {
        let context = memory.get_context(session).await.unwrap();
        // Damage may hide a session, or be reported; it must never change what is returned.
        if context.degraded.is_none() && !context.messages.is_empty() {
            let expected: Vec<String> = (0..3)
                .map(|n| format!("{session} m{n} {}", "x".repeat(300)))
                .collect();
            assert_eq!(texts(&context), expected, "{session} read back altered");
        }
        seen.push(format!("{session}: {:?}", context.degraded));
        let kind = memory.store().kind(format!("ai:memory:{session}")).await;
        seen.push(format!("{session}: {kind:?}"));
    }
    let outcome = memory
        .add_message("new", Message::user("after damage"))
        .await
        .unwrap();
    seen.push(format!("write: {outcome:?}"));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_file_never_panics_and_always_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read(populated_file(dir.path(), 10).await).unwrap();
    let mut damages: Vec<(String, Vec<u8>)> = Vec::new();
    // Truncated at many lengths.
    for cut in [
        0,
        1,
        16,
        64,
        512,
        4096,
        original.len() / 2,
        original.len() - 1,
    ] {
        damages.push((format!("truncated to {cut}"), original[..cut].to_vec()));
    }
    // Overwritten with garbage at offsets across the file: header, region headers, pages.
    let mut offset = 0;
    while offset < original.len() {
        for garbage in [0x00u8, 0xff, 0x5a] {
            let mut damaged = original.clone();
            let end = (offset + 64).min(damaged.len());
            damaged[offset..end].fill(garbage);
            damages.push((format!("{garbage:#04x} at {offset}"), damaged));
        }
        offset += (original.len() / 24).max(512);
    }
    // One byte flipped every 512 bytes: in the pages where the lists themselves live too.
    for at in (256..original.len()).step_by(512) {
        let mut damaged = original.clone();
        damaged[at] ^= 0x55;
        damages.push((format!("byte flipped at {at}"), damaged));
    }
    damages.push((
        "random bytes".to_string(),
        (0..original.len())
            .map(|i| (i * 7919 % 251) as u8)
            .collect(),
    ));

    let (mut typed, mut contained_panics) = (0, 0);
    for (what, bytes) in &damages {
        let path = dir.path().join("damaged.redb");
        std::fs::write(&path, bytes).unwrap();
        let outcome = tokio::spawn({
            let path = path.clone();
            async move { exercise(&path).await }
        })
        .await;
        let seen = outcome.unwrap_or_else(|panic| panic!("{what}: a panic escaped: {panic}"));
        if std::env::var_os("SHOW_DAMAGE").is_some() {
            println!("{what}: {seen:?}");
        }
        // redb may panic on a damaged file: contained, and its text never in a message.
        for line in &seen {
            assert!(
                !line.contains("unreachable") && !line.contains("internal error"),
                "{what}: a dependency's panic text reached a message: {line}"
            );
        }
        if seen
            .iter()
            .any(|line| line.contains("the storage library failed"))
        {
            contained_panics += 1;
        }
        if seen
            .iter()
            .any(|line| line.contains("damaged") || line.contains("Damaged"))
        {
            typed += 1;
        }
        let _ = std::fs::remove_file(&path);
    }
    println!(
        "{} damaged files: no panic escaped; {typed} reported as damaged, \
         {contained_panics} by a panic inside redb, contained",
        damages.len()
    );
    assert!(typed > 0);
}

/// Put a value that is not a stored list under `key`, with redb directly.
fn damage_value(path: &Path, key: &str) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let table: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("lists");
        let mut table = txn.open_table(table).unwrap();
        table.insert(key, b"\x09not a list".as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

#[tokio::test]
async fn a_damaged_value_spoils_only_its_own_session_and_can_be_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated_file(dir.path(), 3).await;
    damage_value(&path, "ai:memory:s1");

    let memory = memory_on(&path).unwrap();
    assert_eq!(memory.sessions().await.unwrap().len(), 3, "still listed");
    let damaged = memory.get_context("s1").await.unwrap();
    assert!(
        matches!(&damaged.degraded, Some(StoreError::Damaged(reason)) if reason.contains("ai:memory:s1")),
        "{damaged:?}"
    );
    assert!(matches!(
        memory.store().kind("ai:memory:s1").await.unwrap(),
        KeyKind::Damaged(_)
    ));
    let outcome = memory.add_message("s1", Message::user("x")).await.unwrap();
    assert!(
        matches!(outcome, WriteOutcome::Failed(StoreError::Damaged(_))),
        "nothing is built on a value that cannot be read: {outcome:?}"
    );
    assert_eq!(memory.get_context("s0").await.unwrap().messages.len(), 3);
    // Clearing is the repair of one session.
    assert!(memory.clear("s1").await.unwrap().is_stored());
    assert_eq!(memory.sessions().await.unwrap().len(), 2);
    expect_stored(
        memory
            .add_message("s1", Message::user("fresh"))
            .await
            .unwrap(),
    );
}

#[tokio::test]
async fn repair_keeps_every_readable_session_byte_for_byte_with_its_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated_file(dir.path(), 5).await;
    damage_value(&path, "ai:memory:s3");
    let before: Vec<Vec<Vec<u8>>> = {
        let store = Store::open(&StoreSpec::Embedded(path.clone()), Default::default()).unwrap();
        let mut all = Vec::new();
        for i in [0, 1, 2, 4] {
            all.push(
                store
                    .entries(format!("ai:memory:s{i}"), 0, -1)
                    .await
                    .unwrap(),
            );
        }
        all
    };

    let report = EmbeddedStore::repair(&path).unwrap();
    assert_eq!(report.kept, 4);
    assert_eq!(report.dropped.len(), 1);
    assert_eq!(report.dropped[0].0, "ai:memory:s3");
    assert_eq!(report.unreadable_rest, None);
    assert!(report.damaged_file.exists());

    let store = Store::open(&StoreSpec::Embedded(path.clone()), Default::default()).unwrap();
    for (at, i) in [0, 1, 2, 4].into_iter().enumerate() {
        let key = format!("ai:memory:s{i}");
        assert_eq!(store.entries(&key, 0, -1).await.unwrap(), before[at]);
        match store.ttl(&key).await.unwrap() {
            Ttl::ExpiresIn(left) => assert!(left > Duration::from_secs(3500)),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert_eq!(store.kind("ai:memory:s3").await.unwrap(), KeyKind::Missing);
}

#[tokio::test]
async fn repair_of_a_file_nothing_can_be_read_from_says_so_and_leaves_it_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    // Three ways to lose everything: a file of noise, a zeroed header, a file cut in half.
    let noise = dir.path().join("noise.redb");
    std::fs::write(&noise, vec![0x5a; 8192]).unwrap();
    let populated = populated_file(dir.path(), 6).await;
    let bytes = std::fs::read(&populated).unwrap();
    let zeroed = dir.path().join("zeroed.redb");
    let mut header_gone = bytes.clone();
    header_gone[..512].fill(0);
    std::fs::write(&zeroed, &header_gone).unwrap();
    let halved = dir.path().join("halved.redb");
    std::fs::write(&halved, &bytes[..bytes.len() / 2]).unwrap();

    for path in [noise, zeroed, halved] {
        let before = std::fs::read(&path).unwrap();
        let error = memory_on(&path).unwrap_err();
        assert!(
            matches!(&error, agent_memory::BuildError::Store(OpenError::Damaged { path: p, .. }) if *p == path),
            "{error:?}"
        );
        let error = EmbeddedStore::repair(&path).unwrap_err();
        match &error {
            OpenError::NothingRecovered { path: p, reason } => {
                assert_eq!(*p, path);
                assert!(!reason.is_empty());
            }
            other => panic!("{}: {other:?}", path.display()),
        }
        let text = error.to_string();
        assert!(
            text.contains("nothing could be recovered") && text.contains("backup"),
            "{text}"
        );
        assert!(!text.contains("unreachable"), "{text}");
        // Left exactly as it was, and nothing put beside it.
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains("damaged") || name.contains("repairing"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[tokio::test]
async fn a_read_only_file_can_still_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated_file(dir.path(), 2).await;
    let Some(view) = Mount::read_only_view(dir.path()) else {
        return;
    };
    let read_only = view.join("memory.redb");
    let memory = memory_on(&read_only).unwrap();
    assert!(
        memory
            .store()
            .as_embedded()
            .unwrap()
            .read_only_reason()
            .is_some()
    );
    let read = texts(&memory.get_context("s1").await.unwrap());
    assert_eq!(read.len(), 3);
    assert!(read[2].starts_with("s1 m2 "));
    let outcome = memory.add_message("s1", Message::user("x")).await.unwrap();
    match outcome {
        WriteOutcome::Failed(StoreError::Rejected(reason)) => {
            assert!(reason.contains("read-only"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    drop(memory);
    drop(view);
    // The file itself is unchanged and still writable where it lives.
    let memory = memory_on(&path).unwrap();
    assert_eq!(texts(&memory.get_context("s1").await.unwrap()).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_as_such_loses_nothing_and_writes_resume_once_freed() {
    let Some(disk) = Mount::tmpfs(4 << 20) else {
        return;
    };
    let path = disk.join("memory.redb");
    let memory = memory_on(&path).unwrap();
    expect_stored(
        memory
            .add_message("s0", Message::user("first"))
            .await
            .unwrap(),
    );
    // Fill what redb has not taken yet, then give back a little: room for a few writes only.
    let filler = disk.join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        while file.write_all(&[0u8; 64 << 10]).is_ok() {}
        let length = file.metadata().unwrap().len();
        file.set_len(length.saturating_sub(256 << 10)).unwrap();
    }
    let mut stored = Vec::new();
    let mut full = None;
    for i in 0..2000 {
        let message = Message::user(format!("{i:>6} {}", "x".repeat(4000)));
        match memory
            .add_message(format!("s{}", i % 40), message)
            .await
            .unwrap()
        {
            WriteOutcome::Stored(_) => stored.push(i),
            WriteOutcome::Failed(error) => {
                full = Some(error);
                break;
            }
        }
    }
    let error = full.expect("the disk never filled");
    assert!(
        matches!(&error, StoreError::DiskFull(reason) if reason.contains(&path.display().to_string())),
        "{error:?}"
    );
    assert!(error.to_string().contains("No space left"), "{error}");
    println!("disk full after {} writes: {error}", stored.len());
    // Until space is freed, every call says why; nothing stored before is lost.
    let again = memory
        .add_message("s0", Message::user("still full"))
        .await
        .unwrap();
    assert!(
        matches!(again, WriteOutcome::Failed(StoreError::DiskFull(_))),
        "{again:?}"
    );
    std::fs::remove_file(&filler).unwrap();
    expect_stored(
        memory
            .add_message("s0", Message::user("room again"))
            .await
            .unwrap(),
    );
    let last = stored.last().copied().unwrap();
    let context = memory.get_context(format!("s{}", last % 40)).await.unwrap();
    assert!(
        texts(&context)
            .iter()
            .any(|text| text.starts_with(&format!("{last:>6} "))),
        "the last acknowledged write is there"
    );
}

/// A file that reads well and fails every write (its allocator's records damaged, say) is found
/// by the write check `doctor` runs: wherever a write fails as damaged, the check said so
/// first; where the check finds writes working, a write works; and the check changes no
/// session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_check_finds_every_file_whose_writes_fail() {
    let dir = tempfile::tempdir().unwrap();
    // A file as an operator's has it: many small write transactions (the CLI makes one per
    // command), the window trimming as it goes, so pages have been freed and reused.
    let path = populated_file(dir.path(), 10).await;
    {
        let memory = memory_on(&path).unwrap();
        for turn in 0..120 {
            let session = format!("s{}", turn % 10);
            expect_stored(
                memory
                    .add_message(session, Message::user(format!("turn {turn}")))
                    .await
                    .unwrap(),
            );
        }
    }
    let original = std::fs::read(&path).unwrap();
    let healthy = dir.path().join("healthy.redb");
    std::fs::write(&healthy, &original).unwrap();
    let memory = memory_on(&healthy).unwrap();
    assert_eq!(memory.store().as_embedded().unwrap().check_writes(), Ok(()));
    drop(memory);

    let path = dir.path().join("damaged.redb");
    let (mut reads_fine_writes_fail, mut found_by_check, mut write_failed) = (0, 0, 0);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64: the same damages on every run.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..240 {
        // 1 to 50 damaged bytes past the header: where the pages and their records are.
        let flips = [1, 4, 16, 50][round % 4];
        let mut bytes = original.clone();
        for _ in 0..flips {
            // Half the rounds anywhere, half in the 16 KiB after the database header, where
            // redb keeps its region's allocator state: what a read never consults and a write
            // always does.
            let span = if round % 2 == 0 {
                bytes.len() - 4096
            } else {
                16 << 10
            };
            let at = 4096 + (next() as usize) % span;
            bytes[at] ^= if round % 8 < 4 {
                0xff
            } else {
                1 << (next() % 8)
            };
        }
        std::fs::write(&path, &bytes).unwrap();
        let path = path.clone();
        let (check, reads_fine, write) = tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let Ok(memory) = memory_on(&path) else {
                    return (None, false, None);
                };
                let check = memory.store().as_embedded().unwrap().check_writes();
                let listed = memory.sessions().await;
                let mut reads_fine = matches!(&listed, Ok(list) if list.len() == 10);
                let mut seen = vec![format!("{:?}", listed.as_ref().map(Vec::len))];
                for i in 0..10 {
                    let context = memory.get_context(format!("s{i}")).await.unwrap();
                    seen.push(format!("{:?}/{}", context.degraded, context.messages.len()));
                    reads_fine &= context.degraded.is_none() && context.messages.len() == 15;
                }
                if std::env::var_os("SHOW_DAMAGE").is_some() {
                    println!("{seen:?}");
                }
                let write = memory
                    .add_message("new", Message::user("after damage"))
                    .await
                    .unwrap();
                (Some(check), reads_fine, Some(write))
            })
        })
        .await
        .expect("no panic escapes");
        let (Some(check), Some(write)) = (check, write) else {
            continue;
        };
        if std::env::var_os("SHOW_DAMAGE").is_some() {
            println!("round {round}: {write:?} / {check:?}");
        }
        if check.is_ok() {
            assert!(
                write.is_stored(),
                "round {round}: the check found writes working, a write failed: {write:?}"
            );
        }
        if let WriteOutcome::Failed(StoreError::Damaged(_)) = write {
            write_failed += 1;
            assert!(
                matches!(check, Err(agent_memory::store::WriteCheck::Fails(_))),
                "a write failed as damaged, the check found nothing: {check:?}"
            );
            found_by_check += 1;
            if reads_fine {
                reads_fine_writes_fail += 1;
            }
        }
    }
    println!(
        "240 damaged files: {write_failed} failed a write, all found by the check; \
         {reads_fine_writes_fail} of them read every session fine"
    );
    assert_eq!(found_by_check, write_failed);
    assert!(
        write_failed > 0,
        "no damage that fails a write was made: the test proves nothing"
    );
}
