//! The Redis backend: one server, the master Sentinel names, or a Redis Cluster, each server
//! reached through one shared multiplexed connection that is rebuilt when it breaks.
//!
//! # Layout
//! - `tls`, `options`, `slots` (hash slots, `CLUSTER SLOTS`), `sentinel` (master discovery).
//! - `address`: what `redis://`, `rediss://`, `redis+unix://`, `redis+sentinel://` and
//!   `redis+cluster://` addresses say.
//! - `classify`: what Redis replies and errors mean (the only place errors are read).
//! - `node`: one server and its connection (connect, time out, retire, rebuild).
//! - `conditional` (the `expect` script) and `commands`: the store's operations as Redis
//!   commands on one node.
//! - `cluster`: routing by hash slot, redirects, the slot map.
//! - `traced`: each operation's round trip as a span with OpenTelemetry's database names.
//!
//! Each module uses only those listed before it; [`RedisStore`] puts them together: a single
//! server (or sentinel master) is one node, a cluster routes each key to the master serving
//! it. Another deployment is another way to pick the node for a key, not new commands.

mod address;
mod classify;
mod cluster;
mod commands;
mod conditional;
mod node;
mod options;
mod sentinel;
mod slots;
mod tls;
mod traced;

pub(crate) use self::address::{SCHEMES, is_redis_url, parse as parse_address};
pub use self::cluster::{MAX_REDIRECTS, MIN_REFRESH_INTERVAL};
pub use self::node::MAX_WAITING_WRITES;
pub use self::options::{
    DEFAULT_RECONNECT_BACKOFF, DEFAULT_RECONNECT_BACKOFF_MAX, RedisOptions, WaitForReplicas,
};
pub use self::tls::TlsOptions;

use std::sync::Arc;

use self::address::Servers;
use self::classify::Failure;
use self::cluster::Cluster;
use self::commands::{Apply, KeyOperation, KindOf, ReadRange, TtlOf};
use self::node::{Node, NodeTarget};
use super::backend::{InspectBackend, ListBackend};
use super::{Applied, EvictionPolicy, KeyKind, ListOp, OpenError, StoreError, Ttl};
use crate::telemetry::store_meter::StoreMeter;

/// A Redis deployment: one server, a Sentinel-managed master, or a cluster.
#[derive(Clone)]
pub struct RedisStore {
    deployment: Deployment,
    tls: bool,
}

#[derive(Clone)]
enum Deployment {
    /// One node serves every key: a server, or the master the sentinels name.
    One(Arc<Node>),
    /// Each key goes to the master serving its slot.
    Cluster(Arc<Cluster>),
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.describe())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for the deployment at `url` (see [`StoreSpec`](crate::StoreSpec)). Nothing is
    /// connected until the first operation.
    pub fn new(url: &str, options: RedisOptions) -> Result<Self, OpenError> {
        let address = address::parse(url)?;
        let tls = match address.tls {
            true => Some(tls::Tls::new(&options.tls)?),
            false => None,
        };
        let suffix = if address.tls { " (TLS)" } else { "" };
        let one = |target: NodeTarget| {
            // The metrics' `store` label: what `describe` says.
            let meter = StoreMeter::new(&format!(
                "redis {}{suffix}",
                node::describe(&target, &address.settings)
            ));
            Deployment::One(Arc::new(Node::new(
                target,
                address.settings.clone(),
                tls.clone(),
                options.clone(),
                meter,
            )))
        };
        let deployment = match address.servers {
            Servers::One(addr) => one(NodeTarget::Server(addr)),
            Servers::Sentinel(sentinels) => one(NodeTarget::Sentinel(sentinels)),
            Servers::Cluster(seeds) => {
                let meter = StoreMeter::new(&format!(
                    "redis {}{suffix}",
                    cluster::describe_seeds(&seeds)
                ));
                Deployment::Cluster(Arc::new(Cluster::new(
                    seeds,
                    address.settings,
                    tls,
                    options,
                    meter,
                )))
            }
        };
        Ok(Self {
            deployment,
            tls: address.tls,
        })
    }

    /// `redis host:port`, `redis cluster host:port,...`, `redis sentinel master ...`, with
    /// `(TLS)` when it is; never credentials.
    pub fn describe(&self) -> String {
        let tls = if self.tls { " (TLS)" } else { "" };
        match &self.deployment {
            Deployment::One(node) => format!("redis {}{tls}", node.describe()),
            Deployment::Cluster(cluster) => format!("redis {}{tls}", cluster.describe()),
        }
    }

    /// Run `operation` on the node that serves its key.
    async fn on_key<O: KeyOperation>(&self, operation: O) -> Result<O::Output, StoreError> {
        match &self.deployment {
            Deployment::One(node) => traced::run(&operation, node, false)
                .await
                .map_err(Failure::outside_a_cluster),
            Deployment::Cluster(cluster) => cluster.on_key(&operation).await,
        }
    }

    /// A walk of the whole store through a `redis://` address that names one node of a
    /// cluster would cover that node's keys alone and look complete: refused, with the fix,
    /// as a write through it is (a write meets a redirect; a SCAN never does, so ask).
    async fn refuse_one_node_of_a_cluster(&self) -> Result<(), StoreError> {
        let Deployment::One(node) = &self.deployment else {
            return Ok(());
        };
        let enabled = commands::cluster_enabled(node)
            .await
            .map_err(|failure| naming(node, failure.outside_a_cluster()))?;
        if enabled {
            return Err(naming(
                node,
                StoreError::Rejected(
                    "this server is one node of a Redis Cluster: listing its keys would cover \
                     only this node's share of the sessions; use a redis+cluster:// address"
                        .to_string(),
                ),
            ));
        }
        Ok(())
    }

    /// What the store is, however its address is spelled: the servers' run ids (every
    /// master's, on a cluster) and the database. Two handles with the same identity read and
    /// write the same data.
    pub(crate) async fn identity(&self) -> Result<String, StoreError> {
        let mut ids = Vec::new();
        for node in self.servers().await? {
            let id = commands::run_id(&node)
                .await
                .map_err(|failure| naming(&node, failure.outside_a_cluster()))?;
            ids.push(id);
        }
        ids.sort();
        let db = match &self.deployment {
            Deployment::One(node) => node.db(),
            Deployment::Cluster(_) => 0,
        };
        Ok(format!("redis {} db {db}", ids.join(",")))
    }

    /// Every server that holds part of the store: the one, or every master of the cluster.
    async fn servers(&self) -> Result<Vec<Arc<Node>>, StoreError> {
        match &self.deployment {
            Deployment::One(node) => Ok(vec![Arc::clone(node)]),
            Deployment::Cluster(cluster) => cluster.masters().await,
        }
    }
}

/// `error` with the server it came from, for the errors that carry a reason.
fn naming(node: &Node, error: StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(reason) => {
            StoreError::Unavailable(format!("{}: {reason}", node.describe()))
        }
        StoreError::OutcomeUnknown(reason) => {
            StoreError::OutcomeUnknown(format!("{}: {reason}", node.describe()))
        }
        StoreError::Rejected(reason) => {
            StoreError::Rejected(format!("{}: {reason}", node.describe()))
        }
        other => other,
    }
}

impl ListBackend for RedisStore {
    async fn read_range(
        &self,
        key: &[u8],
        start: i64,
        stop: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.on_key(ReadRange { key, start, stop }).await
    }

    async fn apply(&self, key: &[u8], ops: Vec<ListOp>) -> Result<Applied, StoreError> {
        self.on_key(Apply { key, ops: &ops }).await
    }
}

impl InspectBackend for RedisStore {
    async fn ttl(&self, key: &[u8]) -> Result<Ttl, StoreError> {
        self.on_key(TtlOf(key)).await
    }

    async fn kind(&self, key: &[u8]) -> Result<KeyKind, StoreError> {
        self.on_key(KindOf(key)).await
    }

    /// SCAN on every server (every master of a cluster). During a slot migration a key can be
    /// met twice (the caller dedups) or, moving behind the walk, missed.
    async fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.refuse_one_node_of_a_cluster().await?;
        let mut keys = Vec::new();
        for node in self.servers().await? {
            let found = commands::keys_with_prefix(&node, prefix)
                .await
                .map_err(|failure| naming(&node, failure.outside_a_cluster()))?;
            keys.extend(found);
        }
        Ok(keys)
    }

    /// Each server's `maxmemory-policy` (every master's, on a cluster).
    async fn eviction_policies(&self) -> Result<Vec<EvictionPolicy>, StoreError> {
        self.refuse_one_node_of_a_cluster().await?;
        let mut policies = Vec::new();
        for node in self.servers().await? {
            let policy = commands::eviction_policy(&node)
                .await
                .map_err(Failure::outside_a_cluster);
            policies.push(EvictionPolicy {
                server: node.describe(),
                policy,
            });
        }
        Ok(policies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_addresses_are_accepted_and_never_without_verification() {
        assert!(RedisStore::new("rediss://localhost:6380", RedisOptions::default()).is_ok());
        assert!(matches!(
            RedisStore::new("rediss://localhost:6380/#insecure", RedisOptions::default()),
            Err(OpenError::Tls(_))
        ));
        let missing = RedisOptions {
            tls: TlsOptions {
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..TlsOptions::default()
            },
            ..RedisOptions::default()
        };
        assert!(matches!(
            RedisStore::new("rediss://localhost:6380", missing.clone()),
            Err(OpenError::Tls(reason)) if reason.contains("/nonexistent/ca.pem")
        ));
        assert!(matches!(
            RedisStore::new("rediss+cluster://localhost:7000", missing),
            Err(OpenError::Tls(reason)) if reason.contains("/nonexistent/ca.pem")
        ));
    }

    #[test]
    fn descriptions_name_the_deployment_and_never_the_password() {
        let describe = |url: &str| {
            RedisStore::new(url, RedisOptions::default())
                .unwrap()
                .describe()
        };
        assert_eq!(describe("redis://u:secret@h:1/2"), "redis h:1 db 2");
        assert_eq!(describe("redis://h:1/0"), "redis h:1");
        assert_eq!(describe("rediss://h:1"), "redis h:1 (TLS)");
        assert_eq!(
            describe("redis+cluster://u:secret@a:1,b:2"),
            "redis cluster a:1,b:2"
        );
        assert_eq!(describe("rediss+cluster://a:1"), "redis cluster a:1 (TLS)");
        assert_eq!(
            describe("redis+sentinel://:secret@s:1/m"),
            "redis sentinel master m via s:1"
        );
    }
}
