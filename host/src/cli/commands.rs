//! What each command does.

use std::io::Read;
use std::process::ExitCode;

use agent_memory::{
    DEFAULT_POLICY_WASM, KeyKind, Memory, Message, Policy, RedisTimeouts, Settings, Store,
    StoreSpec, Ttl, WriteOutcome,
};
use anyhow::{Context as _, bail};
use serde_json::Value;

use super::args::{Cli, Command, PolicyCommand};
use super::{output, paths};

/// Run the command `cli` names.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Policy {
        command: PolicyCommand::Check { file },
    } = &cli.command
    {
        return policy_check(file).await;
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
        Command::Clear { session } => clear(&memory, &session).await,
        Command::Sessions { long } => sessions(&memory, long).await,
        Command::Ttl { session } => ttl(&memory, &session).await,
        Command::Doctor => doctor(&memory).await,
        Command::Policy { .. } => unreachable!("handled above"),
    }
}

/// The memory handle the global options describe.
fn open(cli: &Cli) -> anyhow::Result<Memory> {
    let spec = match &cli.store {
        Some(address) => StoreSpec::parse(address)?,
        None => StoreSpec::Embedded(paths::default_store_file()?),
    };
    let store = Store::open(&spec, RedisTimeouts::default())?;
    let settings = Settings {
        max_messages: cli.settings.max_messages,
        ttl_seconds: cli.settings.ttl_seconds,
        key_prefix: cli.settings.key_prefix.clone(),
        ..Settings::default()
    };
    Ok(Memory::builder()
        .store_handle(store)
        .policy(load_policy(cli.policy.as_deref())?)
        .settings(settings)
        .build()?)
}

/// The policy to run, compiled through the cache so a CLI run does not pay for compilation.
fn load_policy(file: Option<&std::path::Path>) -> anyhow::Result<Policy> {
    let (bytes, origin) = match file {
        Some(path) => (
            std::fs::read(path)
                .with_context(|| format!("cannot read policy {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (DEFAULT_POLICY_WASM.to_vec(), "built-in default".to_string()),
    };
    Ok(match paths::default_cache_dir() {
        Ok(cache) => Policy::from_bytes_cached(&bytes, &origin, &cache)?,
        Err(_) => Policy::from_bytes(&bytes, &origin)?,
    })
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
    let outcome = memory.add_messages(session, conversation.clone()).await?;
    println!("add:    {}", output::write_outcome(&outcome));
    expect_stored(outcome, "add")?;
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
        .ttl(&memory.settings().key_for(session))
        .await?;
    println!("ttl:    {}", output::ttl(ttl));
    if context.messages != conversation {
        bail!("the conversation read back differs from the one stored");
    }
    println!(
        "ok: stored {} messages and read them back through the policy",
        conversation.len()
    );
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
        None => read_messages_from_stdin()?,
    };
    let outcome = memory.add_messages(session, messages).await?;
    println!("{}", output::write_outcome(&outcome));
    expect_stored(outcome, "add")?;
    Ok(ExitCode::SUCCESS)
}

/// A JSON message, or a JSON array of messages, from stdin.
fn read_messages_from_stdin() -> anyhow::Result<Vec<Message>> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the message from stdin")?;
    if text.trim().is_empty() {
        bail!("no message given: pass the text as an argument, or JSON on stdin");
    }
    let value: Value = serde_json::from_str(&text).context("stdin is not JSON")?;
    let values = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    values
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            Message::from_json(value).with_context(|| format!("message {index} on stdin"))
        })
        .collect()
}

async fn get(memory: &Memory, session: &str, json: bool) -> anyhow::Result<ExitCode> {
    let context = memory.get_context(session).await?;
    if let Some(error) = &context.degraded {
        bail!("cannot read session {session}: {error}");
    }
    if json {
        let array: Vec<Value> = context.messages.iter().map(Message::to_json).collect();
        println!("{}", serde_json::to_string_pretty(&Value::Array(array))?);
    } else if context.messages.is_empty() {
        println!("(no messages)");
    } else {
        for (index, message) in context.messages.iter().enumerate() {
            println!("{}", output::message_line(index + 1, message));
        }
    }
    if context.skipped > 0 {
        eprintln!(
            "note: skipped {} stored entries that are not messages (see `agent-memory doctor`)",
            context.skipped
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn clear(memory: &Memory, session: &str) -> anyhow::Result<ExitCode> {
    expect_stored(memory.clear(session).await?, "clear")?;
    println!("cleared {session}");
    Ok(ExitCode::SUCCESS)
}

async fn sessions(memory: &Memory, long: bool) -> anyhow::Result<ExitCode> {
    let sessions = memory.sessions().await?;
    for session in &sessions {
        if long {
            let key = memory.settings().key_for(session);
            let kind = memory.store().kind(&key).await?;
            let ttl = memory.store().ttl(&key).await?;
            let size = match kind {
                KeyKind::List(length) => format!("{length} entries"),
                KeyKind::Other(kind) => format!("a {kind}, not a list"),
                KeyKind::Missing => "gone".to_string(),
            };
            println!("{session}\t{size}\t{}", output::ttl(ttl));
        } else {
            println!("{session}");
        }
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
        .ttl(&memory.settings().key_for(session))
        .await?;
    if ttl == Ttl::Missing {
        bail!("session {session} does not exist (never written, or expired)");
    }
    println!("{session}: {}", output::ttl(ttl));
    Ok(ExitCode::SUCCESS)
}

async fn doctor(memory: &Memory) -> anyhow::Result<ExitCode> {
    let mut problems = 0usize;
    if let Some(policy) = memory.store().eviction_risk().await? {
        problems += 1;
        println!(
            "warning: Redis maxmemory-policy is {policy}: under memory pressure it can evict \
             whole sessions (every session key has a TTL). Prefer noeviction."
        );
    }
    let sessions = memory.sessions().await?;
    let total = sessions.len();
    let max = u64::from(memory.settings().max_messages);
    for (done, session) in sessions.iter().enumerate() {
        if done > 0 && done % 1000 == 0 {
            eprintln!("checked {done}/{total} sessions…");
        }
        let key = memory.settings().key_for(session);
        let mut report = |problem: String| {
            problems += 1;
            println!("{session}: {problem}");
        };
        match memory.store().kind(&key).await? {
            KeyKind::Missing => continue,
            KeyKind::Other(kind) => {
                report(format!(
                    "holds a {kind}, not a list: someone else's data under our prefix"
                ));
                continue;
            }
            KeyKind::List(length) if length > max => {
                report(format!("holds {length} entries, over the window of {max}"));
            }
            KeyKind::List(_) => {}
        }
        if memory.store().ttl(&key).await? == Ttl::Persistent {
            report("has no TTL: it never expires".to_string());
        }
        let context = memory.get_context(session.as_str()).await?;
        if let Some(error) = context.degraded {
            report(format!("could not be read: {error}"));
        } else if context.skipped > 0 {
            report(format!(
                "{} entries are not messages (skipped on read)",
                context.skipped
            ));
        }
    }
    println!(
        "checked {total} sessions in {}: {problems} problems",
        memory.store().describe()
    );
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn policy_check(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let policy = Policy::from_file(file)?;
    println!("component: {}", policy.origin());
    println!("sha256:    {}", policy.digest());
    println!("imports:   {}", policy.imports().join(", "));
    println!("exports:   {}", policy.exports().join(", "));
    let memory = Memory::builder()
        .store(StoreSpec::InMemory)
        .policy(policy)
        .build()?;
    let message = Message::user("policy self-check").with("name", serde_json::json!("check"));
    expect_stored(
        memory.add_message("self-check", message.clone()).await?,
        "self-check write",
    )?;
    let context = memory.get_context("self-check").await?;
    if context.messages != [message] {
        bail!(
            "self-check: the message read back differs from the one written: {:?}",
            context.messages
        );
    }
    println!("ok: fits the contract and round-trips a message");
    Ok(ExitCode::SUCCESS)
}

fn expect_stored(outcome: WriteOutcome, what: &str) -> anyhow::Result<()> {
    match outcome {
        WriteOutcome::Stored(_) => Ok(()),
        WriteOutcome::Failed(error) => bail!("{what} failed: {}", output::failed_write(&error)),
    }
}
