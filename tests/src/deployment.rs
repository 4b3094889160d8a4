//! [`Deployment`]: each kind of Redis deployment agent-memory serves, started for real on
//! loopback ports, with what a behaviour test needs to reach it: the store address and
//! options, a raw connection to tamper with the data, and the Python original on it.

use std::time::Duration;

use agent_memory::{Memory, Settings, StoreSpec, store::RedisOptions, store::TlsOptions};
use redis::{Cmd, ConnectionLike, RedisResult, Value};

use crate::{PythonOriginal, RedisCluster, RedisServer, Sentinels, TestPki, free_port};

/// The kinds of deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One server (`redis://`).
    Server,
    /// One server over TLS with a CA the test made (`rediss://`).
    Tls,
    /// A master, a replica and three sentinels (`redis+sentinel://`).
    Sentinel,
    /// The same over TLS: clients, sentinels and replication (`rediss+sentinel://`).
    TlsSentinel,
    /// Three masters with a replica each (`redis+cluster://`).
    Cluster,
    /// The same cluster over TLS: clients, bus and replication (`rediss+cluster://`).
    TlsCluster,
}

/// A running deployment of one [`Kind`]; every process is stopped on drop.
pub struct Deployment {
    kind: Kind,
    url: String,
    python_url: String,
    tls: Option<TestPki>,
    parts: Parts,
}

enum Parts {
    Server(RedisServer),
    Sentinel {
        master: RedisServer,
        _replica: RedisServer,
        _sentinels: Box<Sentinels>,
    },
    Cluster(RedisCluster),
}

impl Deployment {
    /// Start a deployment of `kind` and wait until it serves.
    pub fn start(kind: Kind) -> Self {
        match kind {
            Kind::Server => {
                let server = RedisServer::start();
                Self {
                    kind,
                    url: server.url(),
                    python_url: server.url(),
                    tls: None,
                    parts: Parts::Server(server),
                }
            }
            Kind::Tls => {
                let pki = TestPki::generate();
                let (server, port) = pki.start_server(false);
                Self {
                    kind,
                    url: format!("rediss://127.0.0.1:{port}"),
                    python_url: format!(
                        "rediss://127.0.0.1:{port}/0?ssl_ca_certs={}&ssl_cert_reqs=required",
                        pki.arg("ca.pem")
                    ),
                    tls: Some(pki),
                    parts: Parts::Server(server),
                }
            }
            Kind::Sentinel => {
                let master = RedisServer::start();
                let replica = RedisServer::start_replica_of(&master);
                let sentinels = Sentinels::start(&master, 3, 1);
                Self {
                    kind,
                    url: sentinels.url(),
                    python_url: sentinels.url(),
                    tls: None,
                    parts: Parts::Sentinel {
                        master,
                        _replica: replica,
                        _sentinels: Box::new(sentinels),
                    },
                }
            }
            Kind::TlsSentinel => {
                let pki = TestPki::generate();
                let tls_replication = ["--tls-replication", "yes"].map(String::from);
                let master_port = free_port();
                let mut args = pki.server_args(master_port, false);
                args.extend(tls_replication.clone());
                let master = RedisServer::start_with(&strs(&args));
                let mut args = pki.server_args(free_port(), false);
                args.extend(tls_replication);
                let replica = RedisServer::start_replica_on(master_port, &strs(&args));
                let sentinels = Sentinels::start_tls(master_port, &pki, 3, 1);
                Self {
                    kind,
                    url: sentinels.url(),
                    python_url: format!("{}?ssl_ca_certs={}", sentinels.url(), pki.arg("ca.pem")),
                    tls: Some(pki),
                    parts: Parts::Sentinel {
                        master,
                        _replica: replica,
                        _sentinels: Box::new(sentinels),
                    },
                }
            }
            Kind::Cluster => {
                let cluster = RedisCluster::start(3, 1);
                Self {
                    kind,
                    url: cluster.url(),
                    python_url: cluster.python_url(),
                    tls: None,
                    parts: Parts::Cluster(cluster),
                }
            }
            Kind::TlsCluster => {
                let pki = TestPki::generate();
                let cluster = RedisCluster::start_tls(&pki, 3, 1);
                Self {
                    kind,
                    url: cluster.url(),
                    python_url: cluster.python_url(),
                    tls: Some(pki),
                    parts: Parts::Cluster(cluster),
                }
            }
        }
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The store address.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The certificates a TLS deployment serves (and the CA it does not), for tests that
    /// trust the wrong one.
    pub fn pki(&self) -> Option<&TestPki> {
        self.tls.as_ref()
    }

    /// The Redis options it needs (the test CA, for TLS), with short timeouts.
    pub fn redis_options(&self) -> RedisOptions {
        RedisOptions {
            connect: Duration::from_secs(2),
            response: Duration::from_secs(2),
            tls: TlsOptions {
                ca_file: self.tls.as_ref().map(|pki| pki.path("ca.pem")),
                ..TlsOptions::default()
            },
            ..RedisOptions::default()
        }
    }

    /// A memory handle on it with `settings` and the default policy.
    pub fn memory(&self, settings: Settings) -> Memory {
        Memory::builder()
            .store(StoreSpec::parse(&self.url).expect("a valid store address"))
            .redis_options(self.redis_options())
            .settings(settings)
            .build()
            .expect("a memory handle")
    }

    /// The Python original, on the same data through redis-py's client for this kind
    /// (`Redis`, TLS, `Sentinel.master_for`, `RedisCluster`).
    pub fn python(&self) -> PythonOriginal {
        PythonOriginal::new(&self.python_url)
    }

    /// A raw synchronous connection to the data (the master; the whole cluster), over plain
    /// ports, for checks and tampering.
    pub fn raw(&self) -> Raw {
        match &self.parts {
            Parts::Server(server) => Raw::One(server.connection()),
            Parts::Sentinel { master, .. } => Raw::One(master.connection()),
            Parts::Cluster(cluster) => Raw::Cluster(Box::new(cluster.connection())),
        }
    }

    /// Every server that takes writes: the one, the master, or each cluster master.
    pub fn masters(&self) -> Vec<&RedisServer> {
        match &self.parts {
            Parts::Server(server) => vec![server],
            Parts::Sentinel { master, .. } => vec![master],
            Parts::Cluster(cluster) => cluster
                .masters()
                .into_iter()
                .map(|index| cluster.node(index))
                .collect(),
        }
    }

    /// The server that holds `key` (the master serving its slot, on a cluster), for its
    /// command statistics.
    pub fn server_for(&self, key: &[u8]) -> &RedisServer {
        match &self.parts {
            Parts::Server(server) => server,
            Parts::Sentinel { master, .. } => master,
            Parts::Cluster(cluster) => cluster.node(cluster.node_for_key(key)),
        }
    }
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// A raw connection to one server or to a cluster (routed by redis-rs's cluster client).
pub enum Raw {
    /// One server.
    One(redis::Connection),
    /// A cluster.
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl ConnectionLike for Raw {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Self::One(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Self::One(connection) => connection.req_packed_commands(cmd, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Self::One(connection) => connection.req_command(cmd),
            Self::Cluster(connection) => connection.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::One(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Self::One(connection) => connection.check_connection(),
            Self::Cluster(connection) => connection.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Self::One(connection) => connection.is_open(),
            Self::Cluster(connection) => connection.is_open(),
        }
    }
}
