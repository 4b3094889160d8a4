//! Redis of the benchmark's own, on free local ports, keeping nothing on disk: one server, or
//! a cluster of masters (`--cluster`), so `agent-memory bench` needs nothing but
//! `redis-server` and `redis-cli` on the PATH.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// How long the servers get to start, and a cluster to form.
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// Running servers, stopped on drop.
pub struct BenchServer {
    children: Vec<Child>,
    ports: Vec<u16>,
    cluster: bool,
    _dir: tempfile::TempDir,
}

impl BenchServer {
    /// One server; wait until it answers, or until `stopped` says to give up (it is asked
    /// between polls, so a signal during start-up is not held up by it).
    pub fn start(stopped: &dyn Fn() -> anyhow::Result<()>) -> anyhow::Result<Self> {
        Self::start_nodes(1, false, stopped)
    }

    /// How many servers.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// A cluster of `masters` masters (no replicas), its slots spread evenly by
    /// `redis-cli --cluster create`; wait until every node serves (or `stopped` says to give
    /// up).
    pub fn start_cluster(
        masters: usize,
        stopped: &dyn Fn() -> anyhow::Result<()>,
    ) -> anyhow::Result<Self> {
        let servers = Self::start_nodes(masters, true, stopped)?;
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for port in &servers.ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        super::tied::tie(&mut create);
        let output = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .context("running redis-cli --cluster create (redis-cli comes with redis-server)")?;
        if !output.status.success() {
            bail!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        let deadline = Instant::now() + STARTUP_DEADLINE;
        for port in &servers.ports {
            while !cluster_ok(*port) {
                stopped()?;
                if Instant::now() > deadline {
                    bail!("the benchmark's cluster did not become ready (node {port})");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(servers)
    }

    fn start_nodes(
        count: usize,
        cluster: bool,
        stopped: &dyn Fn() -> anyhow::Result<()>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut servers = Self {
            children: Vec::new(),
            ports: Vec::new(),
            cluster,
            _dir: dir,
        };
        for index in 0..count {
            let port = free_port()?;
            let node_dir = servers._dir.path().join(format!("node-{index}"));
            std::fs::create_dir_all(&node_dir)?;
            let mut command = Command::new("redis-server");
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&node_dir);
            if cluster {
                // An explicit bus port: the default (port + 10000) is past 65535 for most free
                // ports.
                command
                    .args(["--cluster-enabled", "yes"])
                    .args(["--cluster-port", &free_port()?.to_string()]);
            }
            super::tied::tie(&mut command);
            let child = command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting redis-server (is it installed? scripts/setup installs it)")?;
            // Said so that whoever runs the benchmark can see what it started, and check that
            // it is gone afterwards.
            eprintln!("started redis-server (pid {}, port {port})", child.id());
            servers.children.push(child);
            servers.ports.push(port);
        }
        let deadline = Instant::now() + STARTUP_DEADLINE;
        for port in &servers.ports {
            while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                stopped()?;
                if Instant::now() > deadline {
                    bail!("redis-server did not start listening on port {port}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(servers)
    }

    /// The store address.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        match self.cluster {
            true => format!("redis+cluster://{}", hosts.join(",")),
            false => format!("redis://{}", hosts.join(",")),
        }
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Whether the node on `port` says `cluster_state:ok`.
fn cluster_ok(port: u16) -> bool {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .and_then(|client| client.get_connection_with_timeout(Duration::from_millis(500)))
        .and_then(|mut connection| {
            redis::cmd("CLUSTER")
                .arg("INFO")
                .query::<String>(&mut connection)
        })
        .is_ok_and(|info| info.contains("cluster_state:ok"))
}
