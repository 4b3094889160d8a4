//! [`RedisServer`]: a real `redis-server` child process on a free local port, which a test can
//! kill, freeze, stall and restart on the same address.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a new server gets to start answering.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

/// A `redis-server` child process on a free local port.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// The cluster bus port, for a cluster node (`--cluster-port`; Redis's default, port +
    /// 10000, is past 65535 for most free ports).
    cluster_bus_port: Option<u16>,
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
}

impl RedisServer {
    /// Start a server with the project's test configuration.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Start a server on `port` (one a test reserved earlier, say to test a Redis that was
    /// not running when the host started).
    pub fn start_on_port(port: u16) -> Self {
        let mut server = Self {
            child: None,
            port,
            cluster_bus_port: None,
            dir: tempfile::tempdir().expect("a temp dir for redis-server"),
            extra_args: Vec::new(),
        };
        server.restart();
        server
    }

    /// Start a server with extra `redis-server` arguments (such as `["--maxmemory", "1mb"]`).
    pub fn start_with(extra_args: &[&str]) -> Self {
        Self::try_start_with(extra_args).unwrap_or_else(|error| panic!("{error:#}"))
    }

    /// [`RedisServer::start_with`], for a program that reports a server that cannot start
    /// (not installed, say) instead of panicking: the benchmark.
    pub fn try_start_with(extra_args: &[&str]) -> anyhow::Result<Self> {
        Self::start_on_free_ports(extra_args, false)
    }

    /// Start a cluster node (`--cluster-enabled yes`, its `nodes.conf` in its own directory, so
    /// a restart keeps its identity) with extra arguments; it is not part of any cluster yet.
    pub fn start_cluster_node(extra_args: &[&str]) -> Self {
        Self::try_start_cluster_node(extra_args).unwrap_or_else(|error| panic!("{error:#}"))
    }

    /// [`RedisServer::start_cluster_node`], reporting a node that cannot start.
    pub fn try_start_cluster_node(extra_args: &[&str]) -> anyhow::Result<Self> {
        let mut args = vec![
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ];
        args.extend_from_slice(extra_args);
        Self::start_on_free_ports(&args, true)
    }

    fn start_on_free_ports(extra_args: &[&str], cluster_bus: bool) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("a temp dir for redis-server")?;
        let mut server = Self {
            child: None,
            port: 0,
            cluster_bus_port: None,
            dir,
            extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
        };
        // A free port can be taken between finding it and binding it; try a few.
        let mut last_error = None;
        for _ in 0..5 {
            crate::children::check_abandoned()?;
            server.port = free_port();
            server.cluster_bus_port = cluster_bus.then(free_port);
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("no attempt"))
            .context("cannot start redis-server"))
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = self.dir.path().join("redis.log");
        let mut command = Command::new("redis-server");
        crate::children::prepare(&mut command);
        let child = command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(
                self.cluster_bus_port
                    .map(|bus| ["--cluster-port".to_string(), bus.to_string()])
                    .into_iter()
                    .flatten(),
            )
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning redis-server (is it installed? scripts/setup installs it)")?;
        crate::children::announce("redis-server", child.id(), self.port);
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP_DEADLINE;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                self.child = None;
                bail!("redis-server exited with {status}: {}", self.log());
            }
            if self.ping().is_ok() {
                return Ok(());
            }
            if let Err(abandoned) = crate::children::check_abandoned() {
                self.kill();
                return Err(abandoned);
            }
            if Instant::now() > deadline {
                self.kill();
                bail!(
                    "redis-server did not answer within {STARTUP_DEADLINE:?}: {}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> redis::RedisResult<()> {
        let client = redis::Client::open(self.url())?;
        let mut connection = client.get_connection_with_timeout(Duration::from_millis(200))?;
        redis::cmd("PING")
            .query::<String>(&mut connection)
            .map(|_| ())
    }

    /// The server's URL (with the password, for a server started with `--requirepass`).
    pub fn url(&self) -> String {
        match self.password() {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// The `--requirepass` it was started with.
    pub fn password(&self) -> Option<&str> {
        self.extra_args
            .iter()
            .position(|arg| arg == "--requirepass")
            .and_then(|at| self.extra_args.get(at + 1))
            .map(String::as_str)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether its process is running (not killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// A plain synchronous connection, for inspecting and tampering with data.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .unwrap_or_else(|error| panic!("connecting to {}: {error}\n{}", self.url(), self.log()))
    }

    /// Kill the server (SIGKILL) and wait for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the server again on the same port (after [`RedisServer::kill`]); data is gone.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + STARTUP_DEADLINE;
        // The old socket may linger briefly; retry until the port is ours again.
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(error) if Instant::now() > deadline => {
                    panic!("restarting redis-server: {error:#}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Stall the server for `seconds` with `DEBUG SLEEP`, from another connection on a thread
    /// of its own; join the handle to wait until it answers again.
    pub fn stall(&self, seconds: f64) -> std::thread::JoinHandle<()> {
        let url = self.url();
        std::thread::spawn(move || {
            let mut redis = redis::Client::open(url)
                .and_then(|client| client.get_connection())
                .expect("a connection for DEBUG SLEEP");
            redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg(seconds)
                .query::<()>(&mut redis)
                .expect("DEBUG SLEEP (the server is started with --enable-debug-command local)");
        })
    }

    /// Start a replica of `primary` and wait until its link to the primary is up.
    pub fn start_replica_of(primary: &RedisServer) -> Self {
        Self::start_replica_on(primary.port(), &[])
    }

    /// Start a replica of the server listening on `primary_port` (its TLS port, with
    /// `--tls-replication yes` among `extra_args`), and wait until the link is up.
    pub fn start_replica_on(primary_port: u16, extra_args: &[&str]) -> Self {
        let port = primary_port.to_string();
        let mut args = vec!["--replicaof", "127.0.0.1", &port];
        args.extend_from_slice(extra_args);
        let replica = Self::start_with(&args);
        let deadline = Instant::now() + STARTUP_DEADLINE;
        while !replica
            .info("replication")
            .contains("master_link_status:up")
        {
            assert!(
                Instant::now() < deadline,
                "the replica did not link up: {}",
                replica.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        replica
    }

    /// A section of `INFO`.
    pub fn info(&self, section: &str) -> String {
        redis::cmd("INFO")
            .arg(section)
            .query::<String>(&mut self.connection())
            .unwrap_or_else(|error| panic!("INFO {section}: {error}\n{}", self.log()))
    }

    /// A numeric field of `INFO` (such as `total_connections_received`).
    pub fn info_number(&self, section: &str, field: &str) -> u64 {
        let info = self.info(section);
        info.lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no numeric {field} in INFO {section}: {info}"))
    }

    /// `CONFIG SET parameter value`.
    pub fn config_set(&self, parameter: &str, value: &str) {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(parameter)
            .arg(value)
            .query(&mut self.connection())
            .unwrap_or_else(|error| panic!("CONFIG SET {parameter} {value}: {error}"));
    }

    /// `CLIENT PAUSE milliseconds ALL`: the server stops serving every client, then resumes by
    /// itself.
    pub fn client_pause(&self, milliseconds: u64) {
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(milliseconds)
            .arg("ALL")
            .query(&mut self.connection())
            .unwrap_or_else(|error| panic!("CLIENT PAUSE: {error}"));
    }

    /// Freeze the server (SIGSTOP): connections stay open but nothing is answered.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Thaw a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server is running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A paused server ignores SIGKILL's siblings but not SIGKILL itself.
        self.kill();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding an ephemeral port")
}
