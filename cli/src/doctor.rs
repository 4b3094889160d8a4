//! `agent-memory doctor`: check every session key and report each problem, without stopping.
//!
//! It reads the store directly (not through the policy), so it can look at what the agent API
//! refuses to touch: keys whose session id is empty, too long, holds a control character or is
//! not UTF-8 — all of which the Python original writes. Entries are judged with the storage
//! format the default policy uses. A check that cannot be made (a key that vanished, `CONFIG`
//! not permitted on a managed Redis) is reported as such, and the walk goes on.

use std::process::ExitCode;

use agent_memory::store::{EvictionPolicy, WriteCheck};
use agent_memory::{
    Memory, Message, StoreError, operator::policy_evicts_sessions, session::SessionId,
    store::KeyKind, store::Ttl,
};

use super::interrupt::Stops;
use super::keys;
use super::output::{printable_bytes, problem_counts};

/// How often progress is reported on stderr while walking a large store.
const PROGRESS_EVERY: usize = 1000;

/// Entries read per request: bounds the memory one page of a foreign, oversized list takes.
const PAGE_ENTRIES: u64 = 100;

/// What the walk found.
#[derive(Default)]
struct Findings {
    problems: usize,
    notes: usize,
}

impl Findings {
    fn problem(&mut self, subject: &str, text: &str) {
        self.problems += 1;
        println!("{subject}: {text}");
    }

    fn note(&mut self, subject: &str, text: &str) {
        self.notes += 1;
        println!("{subject}: note: {text}");
    }
}

/// Run the checks; exit status 1 when any problem was found.
/// `this_store` is the command that names the store and prefix of this run (see
/// [`keys::command_for`]), for the commands doctor prints to be pasted.
pub async fn run(memory: &Memory, this_store: &str) -> anyhow::Result<ExitCode> {
    // SIGINT and SIGTERM stop the walk and report what it found so far.
    let stops = Stops::listen()?;
    let store = memory.store();
    let mut findings = Findings::default();
    // Listing first: it is the one step without which nothing can be checked, and a store that
    // cannot be listed fails the command as one line on stderr, with nothing on stdout.
    let sessions = tokio::select! {
        sessions = memory.sessions() => sessions?,
        stop = stops.wait() => {
            eprintln!("doctor: stopped by {stop} while listing the sessions; none was checked");
            return Ok(ExitCode::from(stop.exit_code()));
        }
    };
    match store.eviction_policies().await {
        Ok(policies) => {
            for EvictionPolicy { server, policy } in policies {
                let subject = format!("redis {server}");
                match policy {
                    Ok(policy) if policy_evicts_sessions(&policy) => findings.problem(
                        &subject,
                        &format!(
                            "maxmemory-policy is {policy}: under memory pressure it can evict \
                             whole sessions (every session key has a TTL). Prefer noeviction."
                        ),
                    ),
                    Ok(_) => {}
                    // A refusal is the server's own answer: CONFIG renamed away or not allowed
                    // to this user (managed services do that). Anything else is the server not
                    // answering at all, and says so.
                    Err(error @ StoreError::Rejected(_)) => findings.note(
                        &subject,
                        &format!(
                            "could not check the eviction policy ({error}); CONFIG is not \
                             permitted on this server: check maxmemory-policy with its provider"
                        ),
                    ),
                    Err(error) => findings.note(
                        &subject,
                        &format!("could not check the eviction policy: {error}"),
                    ),
                }
            }
        }
        Err(error) => findings.note(
            "redis",
            &format!("could not reach the servers to check their eviction policy ({error})"),
        ),
    }
    if let Some(embedded) = store.as_embedded() {
        match embedded.read_only_reason() {
            Some(reason) => findings.note("store", &format!("opened read-only: {reason}")),
            // Reads can succeed on a file whose free-space records are damaged, and every
            // write then fail: make one that changes no session.
            None => match embedded.check_writes() {
                Ok(()) => {}
                Err(WriteCheck::Fails(reason)) => findings.problem(
                    "store",
                    &format!(
                        "writes to this file fail ({reason}): `agent-memory --store {} repair` \
                         copies every readable session to a new file and keeps this one aside",
                        embedded.path().display()
                    ),
                ),
                Err(WriteCheck::NotMade(reason)) => findings.note(
                    "store",
                    &format!("could not check that writes work ({reason})"),
                ),
            },
        }
    }
    let total = sessions.len();
    for (done, session) in sessions.iter().enumerate() {
        // Between sessions: each check is a few bounded requests, so a signal is answered
        // within one of them, and what was found so far is reported.
        if let Some(stop) = stops.received() {
            println!(
                "doctor: stopped by {stop} after checking {done} of {total} sessions in {}: {} \
                 so far",
                store.describe(),
                plural(findings.problems, "problem", "problems"),
            );
            return Ok(ExitCode::from(stop.exit_code()));
        }
        if done > 0 && done % PROGRESS_EVERY == 0 {
            eprintln!("checked {done}/{total} sessions…");
        }
        check_session(memory, session, this_store, &mut findings).await;
    }
    println!(
        "checked {} in {}: {}{}",
        plural(total, "session", "sessions"),
        store.describe(),
        plural(findings.problems, "problem", "problems"),
        match findings.notes {
            0 => String::new(),
            1 => ", 1 check that could not be made".to_string(),
            notes => format!(", {notes} checks that could not be made"),
        }
    );
    Ok(if findings.problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn check_session(memory: &Memory, session: &[u8], this_store: &str, findings: &mut Findings) {
    let settings = memory.settings();
    let store = memory.store();
    let key = [settings.key_prefix.as_bytes(), session].concat();
    let subject = format!("session \"{}\"", printable_bytes(session));
    let remove = format!(
        "remove it with `{this_store} clear --raw-key {}`",
        keys::shell_quote(&keys::escape(&key))
    );
    match std::str::from_utf8(session) {
        Err(_) => findings.problem(
            &subject,
            &format!(
                "the session id is not UTF-8: agents cannot name it (another client wrote \
                 it); {remove}"
            ),
        ),
        Ok(id) => {
            if let Err(reason) = SessionId::new(id) {
                findings.problem(
                    &subject,
                    &format!("{reason}: agents cannot name it (another client wrote it); {remove}"),
                );
            }
        }
    }
    let length = match store.kind(&key).await {
        Ok(KeyKind::Missing) => return,
        Ok(KeyKind::Other(kind)) => {
            findings.problem(
                &subject,
                &format!(
                    "holds a {kind}, not a list: someone else's data under our prefix, which \
                     agent-memory leaves alone (move it, or give agent-memory another \
                     --key-prefix)"
                ),
            );
            return;
        }
        Ok(KeyKind::Damaged(reason)) => {
            findings.problem(
                &subject,
                &format!(
                    "its stored value is damaged ({reason}); `clear` deletes it, `repair` \
                     rebuilds the file without it"
                ),
            );
            return;
        }
        Ok(KeyKind::List(length)) => length,
        Err(error) => {
            findings.note(&subject, &format!("could not be inspected: {error}"));
            return;
        }
    };
    let window = u64::from(settings.max_messages);
    if length > window {
        findings.problem(
            &subject,
            &format!(
                "holds {length} entries, over the window of {window}: the next write \
                 through agent-memory trims it, `agent-memory clear` deletes it"
            ),
        );
    }
    match store.ttl(&key).await {
        Ok(Ttl::Persistent) => findings.problem(
            &subject,
            "has no TTL: it never expires; the next write through agent-memory sets one, \
             `agent-memory clear` deletes it",
        ),
        Ok(_) => {}
        Err(error) => findings.note(&subject, &format!("TTL could not be read: {error}")),
    }
    check_entries(memory, &key, length, &subject, findings).await;
}

/// Decode the entries as the default policy does and report those that are not messages.
async fn check_entries(
    memory: &Memory,
    key: &[u8],
    length: u64,
    subject: &str,
    findings: &mut Findings,
) {
    // Read at most what a policy call may read, newest first, a page at a time: a list another
    // writer grew beyond that is reported above as over the window, and its tail is what
    // agents see.
    let read = length.min(u64::from(memory.limits().max_entries_read));
    let mut problems = Vec::new();
    let mut done = 0u64;
    while done < read {
        let page = PAGE_ENTRIES.min(read - done);
        let stop = -1 - i64::try_from(done).unwrap_or(i64::MAX);
        let start = stop - i64::try_from(page).unwrap_or(i64::MAX) + 1;
        match memory.store().entries(key, start, stop).await {
            Ok(entries) => problems.extend(
                entries
                    .iter()
                    .filter_map(|bytes| Message::from_entry(bytes).err()),
            ),
            Err(error) => {
                findings.note(subject, &format!("entries could not be read: {error}"));
                return;
            }
        }
        done += page;
    }
    if !problems.is_empty() {
        let checked = if read < length {
            format!(" (of the newest {read} checked)")
        } else {
            String::new()
        };
        findings.problem(
            subject,
            &format!(
                "{} entries are not messages{checked}: {} (skipped on read)",
                problems.len(),
                problem_counts(problems.into_iter())
            ),
        );
    }
}

/// `1 session`, `2 sessions`.
fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}
