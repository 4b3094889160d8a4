//! [`Sentinels`]: real `redis-server --sentinel` processes watching a [`RedisServer`] master, on
//! free local ports, killed on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{RedisServer, TestPki, free_port};

/// The master name the sentinels monitor.
pub const MASTER_NAME: &str = "mymaster";

/// How many times a sentinel is started on fresh ports before the test gives up.
const STARTUP_ATTEMPTS: usize = 5;

/// How long a new sentinel gets to start answering.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

/// How long the sentinels get to find the replicas and each other.
const TOPOLOGY_DEADLINE: Duration = Duration::from_secs(60);

/// Sentinels watching one master (quorum 2, down after 1 s).
pub struct Sentinels {
    children: Vec<Child>,
    /// Each sentinel's plain port (the tests' own queries use it).
    ports: Vec<u16>,
    /// For sentinels serving TLS, each one's TLS port (what the store address names).
    tls_ports: Option<Vec<u16>>,
    /// The password the sentinels require (`requirepass`), if any.
    password: Option<String>,
    _dir: tempfile::TempDir,
}

impl Sentinels {
    /// Start `count` sentinels for `master`, and wait until each knows the master, its
    /// `replicas` replicas and the other sentinels (which a failover needs).
    pub fn start(master: &RedisServer, count: usize, replicas: usize) -> Self {
        Self::start_with(master.port(), None, None, count, replicas)
    }

    /// The same, for a `master` started with `--requirepass`: the sentinels authenticate to it
    /// with its password (`sentinel auth-pass`) and require the same one from their own clients
    /// (`requirepass`), as many deployments configure them.
    pub fn start_with_password(master: &RedisServer, count: usize, replicas: usize) -> Self {
        let password = master
            .password()
            .expect("a master started with --requirepass");
        Self::start_with(master.port(), None, Some(password), count, replicas)
    }

    /// The same for a master serving TLS on `master_tls_port`: each sentinel serves TLS too
    /// (with `pki`'s server certificate, on a port of its own) and reaches the master, its
    /// replicas and the other sentinels over TLS (`tls-replication yes`).
    pub fn start_tls(master_tls_port: u16, pki: &TestPki, count: usize, replicas: usize) -> Self {
        Self::start_with(master_tls_port, Some(pki), None, count, replicas)
    }

    fn start_with(
        master_port: u16,
        pki: Option<&TestPki>,
        password: Option<&str>,
        count: usize,
        replicas: usize,
    ) -> Self {
        let temp_dir = tempfile::tempdir().expect("a temp dir for sentinels");
        let dir = temp_dir.path().to_path_buf();
        // Built before the processes start, so a panic while starting them kills those started.
        let mut sentinels = Self {
            children: Vec::new(),
            ports: Vec::new(),
            tls_ports: pki.map(|_| Vec::new()),
            password: password.map(String::from),
            _dir: temp_dir,
        };
        for index in 0..count {
            sentinels.spawn(index, &dir, master_port, pki);
        }
        // Sentinels find each other through the master's hello channel (every 2 s) and the
        // replicas through its INFO (every 10 s); a loaded machine can take a while.
        let deadline = Instant::now() + TOPOLOGY_DEADLINE;
        for (index, port) in sentinels.ports.iter().enumerate() {
            loop {
                let known = |what: &str| -> usize {
                    query(*port, password, &["SENTINEL", what, MASTER_NAME])
                        .and_then(|value| match value {
                            redis::Value::Array(items) => Some(items.len()),
                            _ => None,
                        })
                        .unwrap_or(0)
                };
                let (known_replicas, known_sentinels) = (known("replicas"), known("sentinels"));
                if known_replicas >= replicas && known_sentinels + 1 >= count {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "sentinel {port} did not learn the topology within {TOPOLOGY_DEADLINE:?}: \
                     it knows {known_replicas} of {replicas} replicas and {known_sentinels} of \
                     {} other sentinels; its log:\n{}",
                    count - 1,
                    log(&dir, index),
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        sentinels
    }

    /// Start sentinel number `index` on free ports and wait until it answers. A free port can
    /// be taken between finding it and binding it (other tests start servers all the time), so
    /// a sentinel that exits is started again on other ports, as [`RedisServer`] does.
    fn spawn(&mut self, index: usize, dir: &Path, master_port: u16, pki: Option<&TestPki>) {
        let mut last_log = String::new();
        for _ in 0..STARTUP_ATTEMPTS {
            let port = free_port();
            let tls_port = pki.map(|_| free_port());
            let tls = match (pki, tls_port) {
                (Some(pki), Some(tls_port)) => format!(
                    "tls-port {tls_port}\ntls-cert-file {}\ntls-key-file {}\n\
                     tls-ca-cert-file {}\ntls-auth-clients no\ntls-replication yes\n",
                    pki.arg("server.pem"),
                    pki.arg("server.key"),
                    pki.arg("ca.pem"),
                ),
                _ => String::new(),
            };
            let auth = match &self.password {
                Some(password) => {
                    format!("requirepass {password}\nsentinel auth-pass {MASTER_NAME} {password}\n")
                }
                None => String::new(),
            };
            let config = dir.join(format!("sentinel-{index}.conf"));
            // A fresh log per attempt, so a failure message shows this attempt's.
            let _ = std::fs::remove_file(dir.join(format!("sentinel-{index}.log")));
            std::fs::write(
                &config,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {dir}/sentinel-{index}.log\n\
                     {tls}\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                     sentinel failover-timeout {MASTER_NAME} 10000\n{auth}",
                    dir = dir.display(),
                ),
            )
            .expect("writing a sentinel configuration");
            let mut child = Command::new("redis-server")
                .arg(&config)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawning redis-server --sentinel");
            let deadline = Instant::now() + STARTUP_DEADLINE;
            let answered = loop {
                // Its own process answering, not another test's server that won the port.
                if answers_as(port, self.password.as_deref(), child.id()) {
                    break true;
                }
                if child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            if answered {
                self.children.push(child);
                self.ports.push(port);
                if let (Some(tls_ports), Some(tls_port)) = (self.tls_ports.as_mut(), tls_port) {
                    tls_ports.push(tls_port);
                }
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = log(dir, index);
        }
        panic!(
            "cannot start sentinel {index} after {STARTUP_ATTEMPTS} attempts; its log:\n{last_log}"
        );
    }

    /// The store address: the password if any, every sentinel, then the master name
    /// (`rediss+sentinel://` and the TLS ports for sentinels serving TLS).
    pub fn url(&self) -> String {
        let (scheme, ports) = match &self.tls_ports {
            Some(tls_ports) => ("rediss+sentinel", tls_ports),
            None => ("redis+sentinel", &self.ports),
        };
        let hosts: Vec<String> = ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let auth = self
            .password
            .as_ref()
            .map_or(String::new(), |password| format!(":{password}@"));
        format!("{scheme}://{auth}{}/{MASTER_NAME}", hosts.join(","))
    }

    /// The master's port as the first sentinel sees it now.
    pub fn master_port(&self) -> Option<u16> {
        match query(
            self.ports[0],
            self.password.as_deref(),
            &["SENTINEL", "get-master-addr-by-name", MASTER_NAME],
        )? {
            redis::Value::Array(items) => {
                let port: String = redis::from_redis_value_ref(items.get(1)?).ok()?;
                port.parse().ok()
            }
            _ => None,
        }
    }
}

/// Whether the server on `port` answers and is process `pid`.
fn answers_as(port: u16, password: Option<&str>, pid: u32) -> bool {
    let info = query(port, password, &["INFO", "server"])
        .and_then(|value| redis::from_redis_value_ref::<String>(&value).ok());
    info.unwrap_or_default()
        .lines()
        .any(|line| line.trim() == format!("process_id:{pid}"))
}

/// Sentinel `index`'s log, for failure messages.
fn log(dir: &Path, index: usize) -> String {
    std::fs::read_to_string(dir.join(format!("sentinel-{index}.log"))).unwrap_or_default()
}

fn query(port: u16, password: Option<&str>, args: &[&str]) -> Option<redis::Value> {
    let auth = password.map_or(String::new(), |password| format!(":{password}@"));
    let client = redis::Client::open(format!("redis://{auth}127.0.0.1:{port}")).ok()?;
    let mut connection = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query(&mut connection).ok()
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
