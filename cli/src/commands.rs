//! What each command does.

use std::io::Read;
use std::process::ExitCode;

use agent_memory::operator::{self, copy_sessions};
use agent_memory::{
    Memory, MemoryError, Message, Policy, Settings, Store, StoreSpec, WriteOutcome,
    policy::DEFAULT_POLICY_WASM, policy::TOOL_SAFE_POLICY_WASM, policy::read_policy_file,
    report::SkippedEntry, store::KeyKind, store::Ttl,
};
use agent_memory_format::json;
use anyhow::{Context as _, bail};

use super::args::{Cli, Command, PolicyCommand};
use super::interrupt::Stops;
use super::{authoring, doctor, keys, output, paths};

/// Run the command `cli` names.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Policy {
            command: PolicyCommand::Check { policy },
        } => return policy_check(&cli, policy).await,
        Command::Policy {
            command: PolicyCommand::New { lang, dir },
        } => {
            authoring::new_project(*lang, dir)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Policy {
            command: PolicyCommand::Build { dir, output },
        } => {
            authoring::build_project(dir, output)?;
            // The component stays for the author to inspect either way; the error says so.
            return policy_check(&cli, &output.display().to_string())
                .await
                .with_context(|| {
                    format!(
                        "built {}, but it fails `policy check` (no handle will take it)",
                        output.display()
                    )
                });
        }
        // Repair works on a file that does not open: it must not open the store first.
        Command::Repair => return repair(&cli),
        Command::Copy { from, to, dry_run } => {
            return copy(&cli, from, to, *dry_run).await;
        }
        _ => {}
    }
    let memory = open(&cli)?;
    match cli.command {
        Command::Demo { session } => demo(&memory, &session).await,
        Command::Add {
            session,
            content,
            role,
            json,
        } => add(&memory, &session, content, role, json).await,
        Command::Get { session, json } => get(&memory, &session, json).await,
        Command::Clear { session, raw_key } => match (session, raw_key) {
            (_, Some(key)) => clear_raw_key(&memory, &key).await,
            (Some(session), None) => clear(&memory, &session).await,
            (None, None) => unreachable!("clap requires one"),
        },
        Command::Sessions { long } => sessions(&memory, long).await,
        Command::Ttl { session } => ttl(&memory, &session).await,
        Command::Doctor => {
            let this_store = keys::command_for(cli.store.as_deref(), &cli.settings.key_prefix);
            doctor::run(&memory, &this_store).await
        }
        Command::Policy { .. } | Command::Repair | Command::Copy { .. } => {
            unreachable!("handled above")
        }
    }
}

/// The store address the global options name (the embedded default when none).
fn store_spec(cli: &Cli) -> anyhow::Result<StoreSpec> {
    Ok(match &cli.store {
        Some(address) => StoreSpec::parse(address)?,
        None => StoreSpec::Embedded(paths::default_store_file()?),
    })
}

/// The memory handle the global options describe.
fn open(cli: &Cli) -> anyhow::Result<Memory> {
    let store = Store::open(&store_spec(cli)?, cli.tls.redis_options())?;
    Ok(Memory::builder()
        .store_handle(store)
        .policy(load_policy(&cli.policy)?)
        .settings(settings(cli))
        .build()?)
}

/// The policy settings the global options give.
fn settings(cli: &Cli) -> Settings {
    Settings {
        max_messages: cli.settings.max_messages,
        ttl_seconds: cli.settings.ttl_seconds,
        key_prefix: cli.settings.key_prefix.clone(),
        extra: cli.policy_settings.clone(),
        ..Settings::default()
    }
}

/// The policy `choice` names, as `--policy` takes it: `default`, `tool-safe`, or the path of a
/// component; compiled with progress on stderr when that takes a while, and kept compiled in
/// the cache (`$XDG_CACHE_HOME/agent-memory/policies`) for later runs.
pub fn load_policy(choice: &str) -> anyhow::Result<Policy> {
    let (bytes, origin) = match choice {
        "default" => (DEFAULT_POLICY_WASM.to_vec(), "built-in default".to_string()),
        "tool-safe" => (
            TOOL_SAFE_POLICY_WASM.to_vec(),
            "built-in tool-safe".to_string(),
        ),
        path => (read_policy_file(path.as_ref())?, path.to_string()),
    };
    let what = format!("{origin} ({})", output::byte_size(bytes.len() as u64));
    Ok(output::with_progress(
        &what,
        || match paths::default_cache_dir() {
            Ok(cache) => Policy::from_bytes_cached(&bytes, &origin, &cache),
            Err(_) => Policy::from_bytes(&bytes, &origin),
        },
    )?)
}

async fn demo(memory: &Memory, session: &str) -> anyhow::Result<ExitCode> {
    println!("store:  {}", memory.store().describe());
    println!(
        "policy: {} (sha256 {:.12})",
        memory.policy().origin(),
        memory.policy().digest()
    );
    expect_stored(memory.clear(session).await?, "clear")?;
    let conversation = [
        Message::system("You are a helpful assistant. Keep answers short."),
        Message::user("What is the capital of France?"),
        Message::assistant("Paris."),
        Message::user("And its population, roughly? (日本語 works too)"),
    ];
    let outcome = expect_stored(
        memory.add_messages(session, conversation.clone()).await?,
        "add",
    )?;
    println!("add:    {}", output::stored(&outcome, conversation.len()));
    let context = memory.get_context(session).await?;
    if let Some(error) = &context.degraded {
        bail!("reading back failed: {error}");
    }
    println!("get:    {} messages", context.messages.len());
    for (index, message) in context.messages.iter().enumerate() {
        println!("  {}", output::message_line(index + 1, message));
    }
    let ttl = memory
        .store()
        .ttl(memory.settings().key_for(session))
        .await?;
    println!("ttl:    {}", output::ttl(ttl));
    // What is read back must be what the write said the session holds, ending with the
    // newest message (a window smaller than the conversation keeps only part of it).
    let consistent = context.messages.len() == outcome.length as usize
        && (context.messages.is_empty() || context.messages.last() == conversation.last());
    if !consistent {
        bail!("the conversation read back differs from the one stored");
    }
    if context.messages.len() == conversation.len() {
        println!(
            "ok: stored {} messages and read them back through the policy",
            conversation.len()
        );
    } else {
        println!(
            "ok: stored {} messages; the window keeps {}, read back through the policy",
            conversation.len(),
            context.messages.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn add(
    memory: &Memory,
    session: &str,
    content: Option<String>,
    role: String,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let messages = match content {
        Some(text) if !json => vec![Message::new(role, text)],
        Some(_) => bail!("give either a message text or --json (read from stdin), not both"),
        None => read_messages_from_stdin(stdin_limit(memory))?,
    };
    let given = messages.len();
    let outcome = match memory.add_messages(session, messages).await {
        Err(MemoryError::DoesNotFit { index, reason }) => bail!(
            "not stored: message {} of {given} does not fit the window: {reason}; nothing was \
             written{}",
            index + 1,
            output::does_not_fit_hint(&reason)
        ),
        other => other?,
    };
    let stored = expect_stored(outcome, "add")?;
    println!("{}", output::stored(&stored, given));
    for (number, message) in stored.evicted.iter().enumerate() {
        println!("evicted {}", output::message_line(number + 1, message));
    }
    Ok(ExitCode::SUCCESS)
}

/// The most stdin `add --json` reads: twice what one call may carry (JSON laid out with
/// spaces and indentation can be larger than the stored form), so endless input such as
/// `/dev/zero` is refused after a bounded read instead of filling memory.
fn stdin_limit(memory: &Memory) -> u64 {
    memory.limits().max_transaction_bytes.saturating_mul(2)
}

/// A JSON message, or a JSON array of messages, from stdin, read as Python's `json.loads`
/// reads bytes — UTF-8 with or without a byte-order mark, UTF-16 or UTF-32, as stored entries
/// are read — so every value is kept exactly and every member in its place.
fn read_messages_from_stdin(limit: u64) -> anyhow::Result<Vec<Message>> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .context("cannot read the message from stdin")?;
    if bytes.len() as u64 > limit {
        bail!("stdin holds more than {limit} bytes: more than one call may carry");
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        bail!("no message given: pass the text as an argument, or JSON on stdin");
    }
    let value =
        json::loads(&bytes).map_err(|error| anyhow::anyhow!("stdin is not JSON: {error}"))?;
    let values = match value {
        json::Value::Array(items) => items,
        other => vec![other],
    };
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            Message::from_json_str(&json::dumps(value))
                .with_context(|| format!("message {} on stdin", index + 1))
        })
        .collect()
}

async fn get(memory: &Memory, session: &str, json: bool) -> anyhow::Result<ExitCode> {
    let context = memory.get_context(session).await?;
    if let Some(error) = &context.degraded {
        bail!(
            "cannot read session {}: {error}",
            output::printable(session)
        );
    }
    if json {
        // `json.dumps` of the messages, exactly as the Python original writes each; the
        // original's get_context would also return the skipped entries (noted below).
        let entries: Vec<String> = context
            .messages
            .iter()
            .map(Message::to_json_string)
            .collect();
        println!("[{}]", entries.join(", "));
    } else if context.messages.is_empty() {
        println!("(no messages)");
    } else {
        for (index, message) in context.messages.iter().enumerate() {
            println!("{}", output::message_line(index + 1, message));
        }
    }
    if !context.skipped.is_empty() {
        eprintln!(
            "note: skipped {} stored entries that are not messages ({}); see `agent-memory doctor`",
            context.skipped.len(),
            skipped_summary(&context.skipped)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `2 not JSON, 1 no string role`.
pub fn skipped_summary(skipped: &[SkippedEntry]) -> String {
    let problems = skipped.iter().map(|entry| entry.problem);
    output::problem_counts(problems)
}

/// The Redis type under `session`'s key when it is someone else's data (not a list), which
/// the commands that touch a session refuse to treat as one. A failed look is no answer: the
/// command itself then reports the store's error.
async fn foreign_kind(memory: &Memory, session: &str) -> Option<String> {
    match memory
        .store()
        .kind(memory.settings().key_for(session))
        .await
    {
        Ok(KeyKind::Other(kind)) => Some(kind),
        _ => None,
    }
}

async fn clear(memory: &Memory, session: &str) -> anyhow::Result<ExitCode> {
    let shown = output::printable(session);
    // Someone else's value under our prefix is never deleted; say what it is rather than
    // report a failed write.
    if let Some(kind) = foreign_kind(memory, session).await {
        bail!(
            "session {shown} is not a session: its key holds a {kind}, someone else's data; \
             nothing was deleted"
        );
    }
    let stored = match memory.clear(session).await? {
        WriteOutcome::Stored(stored) => stored,
        WriteOutcome::Failed(error) if error.may_have_applied() => {
            bail!("clear failed: {error} (it may have been deleted anyway)")
        }
        WriteOutcome::Failed(error) => bail!("clear failed: {error} (nothing was deleted)"),
    };
    println!("cleared {shown} ({} messages deleted)", stored.trimmed);
    Ok(ExitCode::SUCCESS)
}

/// `clear --raw-key KEY`: delete the list at a key that agents cannot name (an empty, too
/// long, control-character or non-UTF-8 session id another client wrote), as `doctor` shows
/// it. Only under the key prefix, and only a list.
async fn clear_raw_key(memory: &Memory, escaped: &str) -> anyhow::Result<ExitCode> {
    let key = keys::parse(escaped).map_err(|reason| anyhow::anyhow!("--raw-key: {reason}"))?;
    let prefix = memory.settings().key_prefix.as_bytes();
    if !key.starts_with(prefix) {
        bail!(
            "--raw-key {}: not under the key prefix {}; agent-memory deletes only its own keys",
            keys::escape(&key),
            keys::escape(prefix)
        );
    }
    let shown = keys::escape(&key);
    match memory.store().kind(&key).await? {
        KeyKind::Missing => bail!(
            "no key {shown} in {} (never written, or expired)",
            memory.store().describe()
        ),
        KeyKind::Other(kind) => {
            bail!("{shown} holds a {kind}, someone else's data: nothing was deleted")
        }
        KeyKind::List(_) | KeyKind::Damaged(_) => {}
    }
    let deleted = operator::delete_list(memory.store(), &key)
        .await
        .map_err(|error| anyhow::anyhow!("deleting {shown}: {error}"))?;
    println!("deleted {shown} ({deleted} entries)");
    Ok(ExitCode::SUCCESS)
}

async fn sessions(memory: &Memory, long: bool) -> anyhow::Result<ExitCode> {
    let sessions = memory.sessions().await?;
    let prefix = memory.settings().key_prefix.as_bytes();
    for session in &sessions {
        let shown = output::printable_bytes(session);
        if !long {
            println!("{shown}");
            continue;
        }
        let key = [prefix, session.as_slice()].concat();
        // Inspections need no transaction, so they work on a Redis that is out of memory; a
        // key that cannot be inspected is shown as such and the listing goes on.
        let size = match memory.store().kind(&key).await {
            Ok(KeyKind::List(length)) => format!("{length} entries"),
            Ok(KeyKind::Other(kind)) => format!("a {kind}, not a list"),
            Ok(KeyKind::Damaged(_)) => "damaged (see doctor)".to_string(),
            Ok(KeyKind::Missing) => "gone".to_string(),
            Err(error) => format!("cannot inspect: {error}"),
        };
        let ttl = match memory.store().ttl(&key).await {
            Ok(ttl) => output::ttl(ttl),
            Err(error) => format!("TTL unknown: {error}"),
        };
        println!("{shown}\t{size}\t{ttl}");
    }
    if long {
        eprintln!(
            "{} sessions in {}",
            sessions.len(),
            memory.store().describe()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn ttl(memory: &Memory, session: &str) -> anyhow::Result<ExitCode> {
    let ttl = memory
        .store()
        .ttl(memory.settings().key_for(session))
        .await?;
    let shown = output::printable(session);
    if ttl == Ttl::Missing {
        bail!("session {shown} does not exist (never written, or expired)");
    }
    if let Some(kind) = foreign_kind(memory, session).await {
        bail!(
            "session {shown} is not a session: its key holds a {kind}, someone else's data, \
             which {}",
            output::ttl(ttl)
        );
    }
    println!("{shown}: {}", output::ttl(ttl));
    Ok(ExitCode::SUCCESS)
}

fn repair(cli: &Cli) -> anyhow::Result<ExitCode> {
    let StoreSpec::Embedded(path) = store_spec(cli)? else {
        bail!(
            "repair is for the embedded store file; Redis has its own tools (redis-check-aof, \
             redis-check-rdb)"
        );
    };
    let report = agent_memory::store::EmbeddedStore::repair(&path)?;
    if report.dropped.is_empty() && report.unreadable_rest.is_none() {
        // Every value read: the file is rebuilt anyway (damage that only writes meet, which
        // doctor's probe finds, is gone with the old file), and says that nothing was lost.
        println!(
            "rebuilt {}: kept all {} sessions, every one read without damage; the previous \
             file is kept at {}",
            path.display(),
            report.kept,
            report.damaged_file.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("repaired {}: kept {} sessions", path.display(), report.kept);
    for (key, reason) in &report.dropped {
        println!(
            "dropped {}: its value is damaged ({reason})",
            output::printable(key)
        );
    }
    if let Some(reason) = &report.unreadable_rest {
        println!("the rest of the damaged file could not be read: {reason}");
    }
    println!(
        "the damaged file is kept at {}",
        report.damaged_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn policy_check(cli: &Cli, choice: &str) -> anyhow::Result<ExitCode> {
    let policy = load_policy(choice)?;
    // Exactly what a handle does before it takes a policy: build one with it (the settings
    // checked against what it declares, a trial within the limits), then the checks of a swap
    // (the self-check of the memory contract). Only then is anything printed: a refusal is one
    // line, as every failure is.
    let memory = Memory::builder()
        .store(StoreSpec::InMemory)
        .policy(policy.clone())
        .settings(settings(cli))
        .build()?;
    memory.replace_policy(policy.clone()).await?;
    println!("component: {}", policy.origin());
    println!("sha256:    {}", policy.digest());
    println!("imports:   {}", policy.imports().join(", "));
    println!("exports:   {}", policy.exports().join(", "));
    if policy.settings().is_empty() {
        println!("settings:  none of its own");
    }
    for spec in policy.settings() {
        println!(
            "setting:   {} ({}): {}",
            output::printable(&spec.name),
            spec.accepts,
            output::printable(&spec.description)
        );
    }
    println!("ok: fits the contract, instantiates within the limits, passes the self-check");
    Ok(ExitCode::SUCCESS)
}

/// The report of a stored write, or an error saying why it was not stored (printed once, on
/// stderr, by `main`).
fn expect_stored(outcome: WriteOutcome, what: &str) -> anyhow::Result<agent_memory::Stored> {
    match outcome {
        WriteOutcome::Stored(stored) => Ok(stored),
        WriteOutcome::Failed(error) => bail!("{what} failed: {}", output::failed_write(&error)),
    }
}

/// How often `copy` reports progress on stderr.
const COPY_PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// `copy`: every session under `prefix` from one store to another.
async fn copy(cli: &Cli, from: &str, to: &str, dry_run: bool) -> anyhow::Result<ExitCode> {
    let prefix = &cli.settings.key_prefix;
    let (from_spec, to_spec) = (StoreSpec::parse(from)?, StoreSpec::parse(to)?);
    // One file named twice would meet its own lock; say what it is instead.
    if from_spec.names_the_same_file_as(&to_spec) {
        bail!("--from and --to are the same store ({from}): nothing to copy");
    }
    let source = Store::open(&from_spec, cli.tls.redis_options())?;
    let target = Store::open(&to_spec, cli.tls.redis_options())?;
    // However the two are spelled (`localhost` and `127.0.0.1`): copying a store onto itself
    // would report sessions "copied" that never moved.
    if source.is_same_store(&target).await? {
        bail!(
            "--from and --to are the same store ({}): nothing to copy",
            source.describe()
        );
    }
    // From here on, SIGINT and SIGTERM stop the copy between sessions (each is written in one
    // transaction, so none is left half-copied) and say how far it got.
    let stops = Stops::listen()?;
    let started = std::time::Instant::now();
    let mut last_report: Option<std::time::Instant> = None;
    let reached = std::cell::Cell::new((0, 0));
    let copying = copy_sessions(&source, &target, prefix.as_bytes(), dry_run, |progress| {
        reached.set((progress.done, progress.total));
        let now = std::time::Instant::now();
        // Listing the keys comes first and can take seconds on a large store: say when it is
        // done, then count from there.
        let Some(last) = last_report else {
            eprintln!(
                "copy: {} keys to copy (listed in {:.1} s)",
                progress.total,
                started.elapsed().as_secs_f64()
            );
            last_report = Some(now);
            return;
        };
        // Four lines a second at most, and the last one: the count shown is never more than
        // a quarter of a second behind the work.
        if progress.done == progress.total || now.duration_since(last) >= COPY_PROGRESS_EVERY {
            last_report = Some(now);
            eprintln!("copy: {}/{} keys", progress.done, progress.total);
        }
    });
    let report = tokio::select! {
        report = copying => report?,
        stop = stops.wait() => {
            let (done, total) = reached.get();
            eprintln!(
                "copy: stopped by {stop} after {done} of {total} keys ({:.1} s); each session \
                 is copied whole, in one transaction: run the same copy again to finish it \
                 (it ends the same)",
                started.elapsed().as_secs_f64()
            );
            return Ok(ExitCode::from(stop.exit_code()));
        }
    };
    for (key, reason) in &report.skipped {
        println!("skipped {}: {reason}", output::printable_bytes(key));
    }
    let verb = if dry_run { "would copy" } else { "copied" };
    println!(
        "{verb} {} sessions ({} entries, {} bytes) from {} to {} in {:.1} s; {} keys skipped",
        report.sessions,
        report.entries,
        report.bytes,
        source.describe(),
        target.describe(),
        started.elapsed().as_secs_f64(),
        report.skipped.len()
    );
    Ok(ExitCode::SUCCESS)
}
