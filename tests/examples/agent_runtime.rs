//! An example agent runtime: it runs the example agent component (examples/chat-agent), whose
//! memory is agent-memory's `memory` import, served by a sandboxed policy over a store the
//! runtime chose.
//!
//! ```sh
//! # A scripted conversation, embedded store in memory, default policy:
//! cargo run -p agent-memory-tests --example agent_runtime
//! # Your own turns, in Redis, with the tool-safe policy keeping 4 messages:
//! cargo run -p agent-memory-tests --example agent_runtime -- \
//!     --store redis://127.0.0.1:6379 --policy tool-safe --max-messages 4 hello "/tool measure me" bye
//! # Follow a policy file: swap whenever it changes (copy another component over it meanwhile):
//! cargo run -p agent-memory-tests --example agent_runtime -- --follow /tmp/policy.wasm --pause-ms 1000
//! # Serve the library's metrics as Prometheus text at http://127.0.0.1:9464/metrics, during
//! # the conversation and after it until interrupted (port 0 picks a free one, printed):
//! cargo run -p agent-memory-tests --example agent_runtime -- --metrics-listen 127.0.0.1:9464 --name support
//! ```
//!
//! Each line shows the policy version (its digest) that served the turn.

use std::path::PathBuf;
use std::time::Duration;

use agent_memory::{Memory, Policy, Settings, StoreSpec, follow::FollowStatus};
use agent_memory_tests::agent::ChatAgentRuntime;
use anyhow::{Context as _, bail};

/// The runtime's options, from the command line.
struct Options {
    store: String,
    policy: String,
    follow: Option<PathBuf>,
    metrics_listen: Option<String>,
    name: String,
    max_messages: u32,
    session: String,
    pause: Duration,
    turns: Vec<String>,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        store: "memory:".to_string(),
        policy: "default".to_string(),
        follow: None,
        metrics_listen: None,
        name: agent_memory::memory::DEFAULT_HANDLE_NAME.to_string(),
        max_messages: 50,
        session: "demo".to_string(),
        pause: Duration::ZERO,
        turns: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--store" => options.store = value()?,
            "--policy" => options.policy = value()?,
            "--follow" => options.follow = Some(PathBuf::from(value()?)),
            "--metrics-listen" => options.metrics_listen = Some(value()?),
            "--name" => options.name = value()?,
            "--max-messages" => options.max_messages = value()?.parse()?,
            "--session" => options.session = value()?,
            "--pause-ms" => options.pause = Duration::from_millis(value()?.parse()?),
            flag if flag.starts_with("--") => bail!("unknown option {flag}"),
            _ => options.turns.push(arg),
        }
    }
    if options.turns.is_empty() {
        options.turns = ["hello", "/tool how long is this?", "what did the tool say?"]
            .map(String::from)
            .to_vec();
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    // Installed before the handle is built, so every metric it records is exported.
    let metrics = match &options.metrics_listen {
        Some(addr) => Some(serve_metrics(addr).await?),
        None => None,
    };
    let policy = match Policy::builtin(&options.policy) {
        Some(builtin) => builtin?,
        None => Policy::from_file(options.policy.as_ref())?,
    };
    // The tenant this agent is bound to: a store, settings and a policy.
    let memory = Memory::builder()
        .name(options.name.as_str())
        .store(StoreSpec::parse(&options.store)?)
        .policy(policy)
        .settings(Settings {
            max_messages: options.max_messages,
            ..Settings::default()
        })
        .build()?;
    // Say what following the file comes to: a version taken, refused, or the file unreadable.
    if let Some(path) = &options.follow {
        let mut follower = memory.follow_policy_file(path, Duration::from_millis(250));
        tokio::spawn(async move {
            while let Some(status) = follower.changed().await {
                match status {
                    FollowStatus::Serving { digest } => {
                        eprintln!("policy file: serving {digest:.12}");
                    }
                    FollowStatus::Refused {
                        refused,
                        error,
                        serving,
                    } => {
                        // The refusal and its causes, up to the host's own reason when it
                        // names one (wasmtime's account of it is kept as a source).
                        eprintln!(
                            "policy file: version {refused:.12} refused ({}); {serving:.12} \
                             keeps serving",
                            agent_memory::error::Chain(&*error)
                        )
                    }
                    FollowStatus::Unreadable { error, serving } => eprintln!(
                        "policy file: cannot be read ({error}); {serving:.12} keeps serving"
                    ),
                }
            }
        });
    }

    // The runtime's own engine for its agents; policies run in agent-memory's.
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    let engine = wasmtime::Engine::new(&config).map_err(|error| anyhow::anyhow!("{error}"))?;
    let runtime = ChatAgentRuntime::new(&engine).map_err(|error| anyhow::anyhow!("{error:#}"))?;
    let mut agent = runtime
        .instantiate(memory.clone(), "example/")
        .await
        .map_err(|error| anyhow::anyhow!("{error:#}"))?;

    println!("store: {}", memory.store().describe());
    // SIGINT and SIGTERM end the conversation between turns (a turn in progress is bounded by
    // the policy's and the store's timeouts, and finishes): what was said is reported, and the
    // exit status is the shell's for the signal.
    let mut stops = Stops::listen()?;
    let total = options.turns.len();
    for (done, text) in options.turns.iter().enumerate() {
        if let Some((name, code)) = stops.received() {
            println!("stopped by {name} after {done} of {total} turns");
            std::process::exit(code);
        }
        let serving = memory.policy();
        let reply = agent
            .turn(&options.session, text)
            .await
            .map_err(|error| anyhow::anyhow!("{error:#}"))?;
        let serving = format!("{} {:.12}", serving.origin(), serving.digest());
        match reply {
            Ok(reply) => println!("[{serving}] > {text}\n[{serving}] < {reply}"),
            Err(error) => println!("[{serving}] > {text}\n[{serving}] ! {error}"),
        }
        tokio::select! {
            () = tokio::time::sleep(options.pause) => {}
            (name, code) = stops.wait() => {
                println!("stopped by {name} after {} of {total} turns", done + 1);
                std::process::exit(code);
            }
        }
    }
    println!("remembered (session {:?}):", options.session);
    match agent
        .transcript(&options.session)
        .await
        .map_err(|error| anyhow::anyhow!("{error:#}"))?
    {
        Ok(lines) => lines.iter().for_each(|line| println!("  {line}")),
        Err(error) => println!("  ! {error}"),
    }
    // The metrics stay up for the scraper until the runtime is told to stop.
    if let Some(addr) = metrics {
        println!("conversation over; serving metrics at http://{addr}/metrics until interrupted");
        let (name, code) = stops.wait().await;
        println!("stopped by {name}");
        std::process::exit(code);
    }
    Ok(())
}

/// Install a Prometheus recorder for agent-memory's metrics and serve its text at `/metrics`
/// on `addr`; returns the address bound (the port chosen, for port 0).
async fn serve_metrics(addr: &str) -> anyhow::Result<std::net::SocketAddr> {
    let handle = agent_memory_tests::prometheus::install_recorder()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics-listen {addr}"))?;
    let bound = listener.local_addr()?;
    println!("metrics: http://{bound}/metrics");
    tokio::spawn(agent_memory_tests::prometheus::serve(listener, move || {
        handle.render()
    }));
    Ok(bound)
}

/// SIGINT and SIGTERM, caught (instead of ending the process where it stands).
struct Stops {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    received: Option<(&'static str, i32)>,
}

impl Stops {
    fn listen() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            received: None,
        })
    }

    /// A signal that arrived since the last look, without waiting: its name and exit status.
    fn received(&mut self) -> Option<(&'static str, i32)> {
        use std::task::{Context, Poll, Waker};
        let mut context = Context::from_waker(Waker::noop());
        if self.received.is_none() {
            if let Poll::Ready(Some(())) = self.interrupt.poll_recv(&mut context) {
                self.received = Some(("SIGINT", 130));
            } else if let Poll::Ready(Some(())) = self.terminate.poll_recv(&mut context) {
                self.received = Some(("SIGTERM", 143));
            }
        }
        self.received
    }

    /// Wait for a signal: its name and exit status.
    async fn wait(&mut self) -> (&'static str, i32) {
        if let Some(received) = self.received {
            return received;
        }
        let received = tokio::select! {
            _ = self.interrupt.recv() => ("SIGINT", 130),
            _ = self.terminate.recv() => ("SIGTERM", 143),
        };
        self.received = Some(received);
        received
    }
}
