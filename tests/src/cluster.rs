//! [`RedisCluster`]: a real Redis Cluster — `redis-server` processes on free local ports, made
//! into a cluster by `redis-cli --cluster create` — that a test can kill, restart and reshard.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{RedisServer, TestPki, free_port};

/// How long a cluster gets to agree on its slots after it is made or changed.
const STABLE_DEADLINE: Duration = Duration::from_secs(60);

/// A Redis Cluster of masters and their replicas, every node on 127.0.0.1.
pub struct RedisCluster {
    /// Every node, in the order they were started (roles change on failover: see
    /// [`RedisCluster::masters`]).
    nodes: Vec<RedisServer>,
    /// For a TLS cluster, each node's TLS port (its plain port stays for the tests' checks).
    tls_ports: Option<Vec<u16>>,
    /// For a TLS cluster, the CA file its certificates verify with.
    ca: Option<String>,
}

impl RedisCluster {
    /// `masters` masters, each with `replicas` replicas, node timeout 1 s.
    pub fn start(masters: usize, replicas: usize) -> Self {
        Self::start_with(masters, replicas, None)
    }

    /// The same, with TLS for clients, the cluster bus and replication (`tls-cluster yes`),
    /// serving `pki`'s server certificate.
    pub fn start_tls(pki: &TestPki, masters: usize, replicas: usize) -> Self {
        Self::start_with(masters, replicas, Some(pki))
    }

    /// `masters` masters without replicas, every node requiring `password` (`requirepass`).
    pub fn start_with_password(masters: usize, password: &str) -> Self {
        Self::start_with_options(masters, 0, None, Some(password))
    }

    /// `masters` masters without replicas, to measure rather than to fail over: Redis's
    /// default node timeout (15 s), so that a node slow to answer pings on a loaded machine is
    /// not marked failed mid-run; reports a cluster that cannot start or settle instead of
    /// panicking. The benchmark's cluster.
    pub fn try_start_for_load(masters: usize) -> anyhow::Result<Self> {
        Self::try_start_with_options(masters, 0, None, None, None)
    }

    fn start_with(masters: usize, replicas: usize, pki: Option<&TestPki>) -> Self {
        Self::start_with_options(masters, replicas, pki, None)
    }

    fn start_with_options(
        masters: usize,
        replicas: usize,
        pki: Option<&TestPki>,
        password: Option<&str>,
    ) -> Self {
        // A node timeout of 1 s: the tests fail nodes over, and wait for it.
        Self::try_start_with_options(masters, replicas, pki, password, Some(1000))
            .unwrap_or_else(|error| panic!("{error:#}"))
    }

    /// `node_timeout_ms`: `cluster-node-timeout`, or Redis's default.
    fn try_start_with_options(
        masters: usize,
        replicas: usize,
        pki: Option<&TestPki>,
        password: Option<&str>,
        node_timeout_ms: Option<u32>,
    ) -> anyhow::Result<Self> {
        let total = masters * (1 + replicas);
        let mut nodes = Vec::with_capacity(total);
        let mut tls_ports = Vec::new();
        for _ in 0..total {
            let mut args: Vec<String> = node_timeout_ms
                .map(|timeout| vec!["--cluster-node-timeout".to_string(), timeout.to_string()])
                .unwrap_or_default();
            if let Some(password) = password {
                args.extend(
                    ["--requirepass", password, "--masterauth", password].map(String::from),
                );
            }
            if let Some(pki) = pki {
                let port = free_port();
                args.extend(pki.server_args(port, false));
                args.extend(["--tls-cluster", "yes", "--tls-replication", "yes"].map(String::from));
                tls_ports.push(port);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            nodes.push(RedisServer::try_start_cluster_node(&args)?);
        }
        let cluster = Self {
            nodes,
            tls_ports: pki.map(|_| tls_ports),
            ca: pki.map(|pki| pki.arg("ca.pem")),
        };
        let mut create = Command::new("redis-cli");
        if let Some(password) = password {
            create.args(["-a", password, "--no-auth-warning"]);
        }
        create.args(["--cluster", "create"]);
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port()));
        }
        create.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]);
        if let Err(error) = run_within(&mut create, STABLE_DEADLINE) {
            bail!("redis-cli --cluster create: {error:#}\n{}", cluster.logs());
        }
        cluster.try_wait_until_stable()?;
        Ok(cluster)
    }

    /// The store address: every node a seed.
    pub fn url(&self) -> String {
        match &self.tls_ports {
            Some(ports) => format!("rediss+cluster://{}", hosts(ports.iter().copied())),
            None => format!(
                "redis+cluster://{}",
                hosts(self.nodes.iter().map(RedisServer::port))
            ),
        }
    }

    /// The address the Python original's `RedisCluster` client is given (TLS with the CA).
    pub fn python_url(&self) -> String {
        match &self.ca {
            Some(ca) => format!("{}?ssl_ca_certs={ca}", self.url()),
            None => self.url(),
        }
    }

    /// A synchronous cluster connection (plain ports), for inspecting and tampering with data.
    pub fn connection(&self) -> redis::cluster::ClusterConnection {
        let urls: Vec<String> = self
            .nodes
            .iter()
            .filter(|node| node.is_running())
            .map(RedisServer::url)
            .collect();
        let mut builder = redis::cluster::ClusterClient::builder(urls);
        if let Some(password) = self.nodes[0].password() {
            builder = builder.password(password);
        }
        builder
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(5))
            .build()
            .and_then(|client| client.get_connection())
            .unwrap_or_else(|error| panic!("connecting to the cluster: {error}"))
    }

    /// Node `index` (in start order).
    pub fn node(&self, index: usize) -> &RedisServer {
        &self.nodes[index]
    }

    /// Node `index`, to kill, pause or restart.
    pub fn node_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.nodes[index]
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are none (never: a cluster has masters).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The indexes of the running nodes that are masters now.
    pub fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&index| self.nodes[index].is_running() && self.role(index) == "master")
            .collect()
    }

    /// The indexes of the running nodes that replicate node `index` now.
    pub fn replicas_of(&self, index: usize) -> Vec<usize> {
        let port = self.nodes[index].port();
        (0..self.nodes.len())
            .filter(|&replica| {
                self.nodes[replica].is_running()
                    && self.nodes[replica]
                        .info("replication")
                        .contains(&format!("master_port:{port}\r"))
            })
            .collect()
    }

    /// `master` or `slave`, as node `index`'s `ROLE` says.
    pub fn role(&self, index: usize) -> String {
        let role: redis::Value = redis::cmd("ROLE")
            .query(&mut self.nodes[index].connection())
            .expect("ROLE");
        match role {
            redis::Value::Array(items) => items
                .first()
                .and_then(|role| redis::from_redis_value_ref::<String>(role).ok())
                .unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// A node's cluster id.
    pub fn node_id(&self, index: usize) -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut self.nodes[index].connection())
            .expect("CLUSTER MYID")
    }

    /// The slot of `key`, as the cluster computes it.
    pub fn key_slot(&self, key: &[u8]) -> u16 {
        let running = self.running_node();
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.nodes[running].connection())
            .expect("CLUSTER KEYSLOT")
    }

    /// The index of the node serving `key`'s slot now, as a running node sees it.
    pub fn node_for_key(&self, key: &[u8]) -> usize {
        let slot = self.key_slot(key);
        let port = self
            .slot_map(self.running_node())
            .expect("CLUSTER SLOTS")
            .into_iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map(|(_, _, port)| port)
            .unwrap_or_else(|| panic!("no master serves slot {slot}"));
        self.index_of_port(port)
    }

    /// The node whose client port (plain or TLS) is `port`.
    pub fn index_of_port(&self, port: u16) -> usize {
        (0..self.nodes.len())
            .find(|&index| {
                self.nodes[index].port() == port
                    || self
                        .tls_ports
                        .as_ref()
                        .is_some_and(|ports| ports[index] == port)
            })
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }

    /// The lowest slot node `index` serves.
    pub fn first_slot_of(&self, index: usize) -> u16 {
        let port = self.nodes[index].port();
        self.slot_map(self.running_node())
            .expect("CLUSTER SLOTS")
            .into_iter()
            .filter(|(_, _, master)| *master == port)
            .map(|(start, _, _)| start)
            .min()
            .unwrap_or_else(|| panic!("node {index} serves no slot"))
    }

    fn running_node(&self) -> usize {
        (0..self.nodes.len())
            .find(|&index| self.nodes[index].is_running())
            .expect("a running node")
    }

    /// `(first slot, last slot, master's plain port)` of every range, sorted, as node `index`
    /// sees them.
    fn slot_map(&self, index: usize) -> anyhow::Result<Vec<(u16, u16, u16)>> {
        let client = redis::Client::open(self.nodes[index].url())?;
        let mut connection = client.get_connection_with_timeout(Duration::from_secs(1))?;
        let ranges: Vec<redis::Value> =
            redis::cmd("CLUSTER").arg("SLOTS").query(&mut connection)?;
        let mut map = Vec::new();
        for range in ranges {
            let redis::Value::Array(fields) = range else {
                bail!("CLUSTER SLOTS range {range:?}");
            };
            let number = |value: Option<&redis::Value>| -> anyhow::Result<u16> {
                let value = value.context("a short CLUSTER SLOTS range")?;
                Ok(redis::from_redis_value_ref::<u16>(value)?)
            };
            let redis::Value::Array(master) = fields.get(2).context("no master")? else {
                bail!("CLUSTER SLOTS master");
            };
            map.push((
                number(fields.first())?,
                number(fields.get(1))?,
                number(master.get(1))?,
            ));
        }
        map.sort_unstable();
        Ok(map)
    }

    /// Wait until every running node says the cluster is ok, they all give the same slot map
    /// covering every slot, and every running replica's link to its master is up.
    pub fn wait_until_stable(&self) {
        self.try_wait_until_stable()
            .unwrap_or_else(|error| panic!("{error:#}"));
    }

    /// [`RedisCluster::wait_until_stable`], reporting a cluster that does not settle.
    fn try_wait_until_stable(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STABLE_DEADLINE;
        loop {
            match self.unstable_because() {
                None => return Ok(()),
                Some(reason) if Instant::now() > deadline => bail!(
                    "the cluster did not settle within {STABLE_DEADLINE:?}: {reason}\n{}",
                    self.logs()
                ),
                Some(_) => {
                    crate::children::check_abandoned()?;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn unstable_because(&self) -> Option<String> {
        let mut first_map = None;
        for index in 0..self.nodes.len() {
            let node = &self.nodes[index];
            if !node.is_running() {
                continue;
            }
            let info = match redis::Client::open(node.url()).and_then(|client| {
                let mut connection = client.get_connection_with_timeout(Duration::from_secs(1))?;
                redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query::<String>(&mut connection)
            }) {
                Ok(info) => info,
                Err(error) => return Some(format!("node {index}: {error}")),
            };
            if !info.contains("cluster_state:ok") {
                return Some(format!("node {index} is not ok"));
            }
            let map = match self.slot_map(index) {
                Ok(map) => map,
                Err(error) => return Some(format!("node {index}: {error:#}")),
            };
            let covered: u32 = map
                .iter()
                .map(|(start, end, _)| u32::from(end - start) + 1)
                .sum();
            if covered != 16384 {
                return Some(format!("node {index} sees {covered} slots served"));
            }
            match &first_map {
                None => first_map = Some(map),
                Some(first) if *first != map => {
                    return Some(format!("node {index} sees another slot map"));
                }
                Some(_) => {}
            }
            let replication = node.info("replication");
            if replication.contains("role:slave") && !replication.contains("master_link_status:up")
            {
                return Some(format!("replica {index} is not linked"));
            }
        }
        None
    }

    /// Move `slots` slots from node `from` to node `to` with `redis-cli --cluster reshard`
    /// (keys migrated with MIGRATE, in batches), and return what it printed.
    pub fn reshard(&self, from: usize, to: usize, slots: u32) -> anyhow::Result<Output> {
        let mut reshard = Command::new("redis-cli");
        if let Some(password) = self.nodes[from].password() {
            reshard.args(["-a", password, "--no-auth-warning"]);
        }
        reshard
            .args(["--cluster", "reshard"])
            .arg(format!("127.0.0.1:{}", self.nodes[from].port()))
            .args(["--cluster-from", &self.node_id(from)])
            .args(["--cluster-to", &self.node_id(to)])
            .args(["--cluster-slots", &slots.to_string()])
            .args(["--cluster-pipeline", "10", "--cluster-yes"]);
        run_within(&mut reshard, STABLE_DEADLINE).context("redis-cli --cluster reshard")
    }

    /// Every node's log, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(index, node)| format!("--- node {index} (port {})\n{}", node.port(), node.log()))
            .collect()
    }
}

/// Run `command` to completion within `deadline` (killed after it: `redis-cli --cluster create`
/// waits forever for nodes that cannot meet); what it printed, or why it failed with that.
fn run_within(command: &mut Command, deadline: Duration) -> anyhow::Result<Output> {
    // Files, not pipes: a pipe nobody reads while we wait could fill and stall the child.
    let (mut stdout, mut stderr) = (tempfile::tempfile()?, tempfile::tempfile()?);
    crate::children::prepare(command);
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(stdout.try_clone()?)
        .stderr(stderr.try_clone()?)
        .spawn()
        .context("running redis-cli (it comes with redis-server)")?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        if let Err(abandoned) = crate::children::check_abandoned() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(abandoned);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |file: &mut std::fs::File| -> anyhow::Result<Vec<u8>> {
        use std::io::{Read, Seek};
        let mut bytes = Vec::new();
        file.rewind()?;
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    let (out, err) = (read(&mut stdout)?, read(&mut stderr)?);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );
    match status {
        Some(status) if status.success() => Ok(Output {
            status,
            stdout: out,
            stderr: err,
        }),
        Some(status) => bail!("exited with {status}: {printed}"),
        None => bail!("did not finish within {deadline:?}: {printed}"),
    }
}

fn hosts(ports: impl Iterator<Item = u16>) -> String {
    ports
        .map(|port| format!("127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(",")
}
