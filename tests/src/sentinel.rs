//! [`Sentinels`]: real `redis-server --sentinel` processes watching a [`RedisServer`] master, on
//! free local ports, killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{RedisServer, TestPki, free_port};

/// The master name the sentinels monitor.
pub const MASTER_NAME: &str = "mymaster";

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
            let port = free_port();
            let tls = match (pki, sentinels.tls_ports.as_mut()) {
                (Some(pki), Some(tls_ports)) => {
                    let tls_port = free_port();
                    tls_ports.push(tls_port);
                    format!(
                        "tls-port {tls_port}\ntls-cert-file {}\ntls-key-file {}\n\
                         tls-ca-cert-file {}\ntls-auth-clients no\ntls-replication yes\n",
                        pki.arg("server.pem"),
                        pki.arg("server.key"),
                        pki.arg("ca.pem"),
                    )
                }
                _ => String::new(),
            };
            let auth = match password {
                Some(password) => {
                    format!("requirepass {password}\nsentinel auth-pass {MASTER_NAME} {password}\n")
                }
                None => String::new(),
            };
            let config = dir.join(format!("sentinel-{index}.conf"));
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
            let child = Command::new("redis-server")
                .arg(&config)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawning redis-server --sentinel");
            sentinels.children.push(child);
            sentinels.ports.push(port);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in &sentinels.ports {
            loop {
                let known = |what: &str| -> usize {
                    query(*port, password, &["SENTINEL", what, MASTER_NAME])
                        .and_then(|value| match value {
                            redis::Value::Array(items) => Some(items.len()),
                            _ => None,
                        })
                        .unwrap_or(0)
                };
                if known("replicas") >= replicas && known("sentinels") + 1 >= count {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "sentinel {port} did not learn the topology"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        sentinels
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
