//! `redis+cluster://`: a Redis Cluster, with every request routed here to the master that
//! serves its key's slot, over one [`Node`] (one shared connection, rebuilt when it breaks) per
//! master.
//!
//! Why not redis-rs's cluster client: it counts redirects and resends with one retry counter,
//! and resends after a lost reply (a dropped connection is `Reconnect`, a response timeout is
//! `RetryImmediately`) — so with retries it can apply an append twice, and without them it
//! cannot follow MOVED or ASK. Its connections are also not ours to watch, so a failed connect
//! (nothing sent) cannot be told from a lost reply (a write may have applied). Routing here
//! keeps the single-server guarantees node by node:
//! - Each session's write is one MULTI/EXEC (or one script) on one key, so on one slot.
//! - **MOVED** and **ASK** mean the node did not run the request (a MULTI with a redirected
//!   command is discarded whole), so following them is safe: MOVED goes to the named node and
//!   updates the slot map at once, ASK goes to the named node after `ASKING`, once, leaving the
//!   map as it is. At most [`MAX_REDIRECTS`] per request, then `unavailable`.
//! - Nothing else is ever resent: a timeout or a connection lost after sending is reported
//!   (`timeout`, `outcome-unknown`) exactly as on one server, and the policy decides (it never
//!   repeats a write).
//! - The slot map comes from `CLUSTER SLOTS`, asked of the known masters, then their replicas,
//!   then the seed nodes, the first that answers. It is fetched on first use (callers share the
//!   attempt) and again, in the background and at most every [`MIN_REFRESH_INTERVAL`], after
//!   a MOVED or whenever a node fails (`unavailable`, `timeout`, `outcome-unknown`), which is how
//!   a promoted replica is found after its master died.
//! - Operator inspections that concern the whole store (SCAN, the eviction policy) fan out to
//!   every master of a freshly fetched map.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use redis::{ConnectionAddr, RedisConnectionInfo};

use super::classify::{Failure, RedirectKind};
use super::commands::{self, KeyOperation};
use super::node::{Node, NodeTarget};
use super::options::RedisOptions;
use super::slots::{self, NodeAddress, SLOT_COUNT, SlotRange};
use super::tls::Tls;
use super::traced;
use crate::store::StoreError;
use crate::telemetry::store_meter::StoreMeter;

/// `cluster host:port,host:port`: a cluster store named by its seeds, never credentials.
pub(super) fn describe_seeds(seeds: &[NodeAddress]) -> String {
    let seeds: Vec<String> = seeds.iter().map(ToString::to_string).collect();
    format!("cluster {}", seeds.join(","))
}

/// Redirects one request may follow. A slot migration costs one (ASK, or MOVED once it is
/// done), a stale map plus a migration two; more means the cluster is changing faster than it
/// can be followed (or nodes disagree), which is reported rather than chased.
pub const MAX_REDIRECTS: u32 = 5;

/// The shortest pause between two slot-map fetches. Every call that meets a dead master asks
/// for a fetch; this keeps them to ten a second, while a failover (seconds) is still noticed
/// within a tenth of a second of its end.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(100);

/// Nodes a cluster store keeps connections for. A slot map or redirect naming more is refused:
/// the addresses come from the servers, and this bounds what a misconfigured one can make us
/// open.
const MAX_NODES: usize = 1000;

/// In the slot table, a slot no master serves.
const UNSERVED: u16 = u16::MAX;

/// A Redis Cluster and the connections to its nodes.
pub(super) struct Cluster {
    seeds: Vec<NodeAddress>,
    settings: RedisConnectionInfo,
    tls: Option<Tls>,
    options: RedisOptions,
    /// The store's connection metrics, shared by its nodes.
    meter: StoreMeter,
    /// Every node we may talk to, by address: masters, and seeds and replicas once asked.
    nodes: Mutex<HashMap<NodeAddress, Arc<Node>>>,
    topology: ArcSwapOption<Topology>,
    /// Held while fetching the slot map; records the last failure for those who waited.
    refreshing: tokio::sync::Mutex<RefreshState>,
    /// Fetches finished so far (as [`Node`] counts connect attempts).
    refreshes: AtomicU64,
    /// A background fetch is scheduled and has not started yet.
    refresh_scheduled: AtomicBool,
    /// When the last fetch started, in milliseconds since `created`.
    last_refresh_ms: AtomicU64,
    created: Instant,
}

#[derive(Default)]
struct RefreshState {
    last_failure: Option<String>,
}

/// The slot map: which master serves each slot.
struct Topology {
    /// For each of the 16384 slots, its master's index in `masters`, or [`UNSERVED`].
    owner: Box<[u16]>,
    masters: Vec<(NodeAddress, Arc<Node>)>,
    /// Asked for the map after the masters.
    replicas: Vec<NodeAddress>,
}

impl Cluster {
    /// A cluster reached through `seeds`. Nothing is connected until the first request.
    pub(super) fn new(
        seeds: Vec<NodeAddress>,
        settings: RedisConnectionInfo,
        tls: Option<Tls>,
        options: RedisOptions,
        meter: StoreMeter,
    ) -> Self {
        Self {
            meter,
            seeds,
            settings,
            tls,
            options,
            nodes: Mutex::new(HashMap::new()),
            topology: ArcSwapOption::empty(),
            refreshing: tokio::sync::Mutex::new(RefreshState::default()),
            refreshes: AtomicU64::new(0),
            refresh_scheduled: AtomicBool::new(false),
            last_refresh_ms: AtomicU64::new(0),
            created: Instant::now(),
        }
    }

    /// `cluster host:port,host:port` (the seeds), never credentials.
    pub(super) fn describe(&self) -> String {
        describe_seeds(&self.seeds)
    }

    /// Run `operation` on the master serving its key's slot, following redirects.
    pub(super) async fn on_key<O: KeyOperation>(
        self: &Arc<Self>,
        operation: &O,
    ) -> Result<O::Output, StoreError> {
        let slot = slots::key_slot(operation.key());
        let mut node = self.master_for(slot).await?;
        let mut asking = false;
        let mut redirects = 0;
        loop {
            match traced::run(operation, &node, asking).await {
                Ok(value) => return Ok(value),
                Err(Failure::Redirect(redirect)) => {
                    if redirects == MAX_REDIRECTS {
                        return Err(StoreError::Unavailable(format!(
                            "slot {slot} was redirected {MAX_REDIRECTS} times and then again \
                             (by {} to {}); nothing was applied",
                            node.describe(),
                            redirect.to
                        )));
                    }
                    redirects += 1;
                    self.meter.redirected(match redirect.kind {
                        RedirectKind::Moved => "moved",
                        RedirectKind::Ask => "ask",
                    });
                    tracing::debug!(
                        target: "agent_memory::store",
                        slot = redirect.slot,
                        to = %redirect.to,
                        kind = ?redirect.kind,
                        "cluster redirect"
                    );
                    node = self.node(&redirect.to)?;
                    asking = redirect.kind == RedirectKind::Ask;
                    if redirect.kind == RedirectKind::Moved {
                        self.moved(redirect.slot, &redirect.to, &node);
                    }
                }
                Err(Failure::Store(error)) => {
                    if matches!(
                        error,
                        StoreError::Unavailable(_)
                            | StoreError::Timeout
                            | StoreError::OutcomeUnknown(_)
                    ) {
                        // The node may be gone: a promoted replica may serve its slots now.
                        self.schedule_refresh();
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Every master, from a slot map fetched now (the last one known if no node answers).
    pub(super) async fn masters(&self) -> Result<Vec<Arc<Node>>, StoreError> {
        let topology = {
            let mut state = self.refreshing.lock().await;
            match self.refresh_locked(&mut state).await {
                Ok(topology) => topology,
                Err(error) => self.topology.load_full().ok_or(error)?,
            }
        };
        Ok(topology
            .masters
            .iter()
            .map(|(_, node)| Arc::clone(node))
            .collect())
    }

    async fn master_for(self: &Arc<Self>, slot: u16) -> Result<Arc<Node>, StoreError> {
        let topology = match self.topology.load_full() {
            Some(topology) => topology,
            None => self.first_topology().await?,
        };
        match topology.owner[usize::from(slot)] {
            UNSERVED => {
                self.schedule_refresh();
                Err(StoreError::Unavailable(format!(
                    "no master serves slot {slot} (the cluster does not cover every slot)"
                )))
            }
            index => Ok(Arc::clone(&topology.masters[usize::from(index)].1)),
        }
    }

    /// The first slot map: fetched by one caller while the others wait for its result.
    async fn first_topology(&self) -> Result<Arc<Topology>, StoreError> {
        let seen = self.refreshes.load(Ordering::Acquire);
        let mut state = self.refreshing.lock().await;
        if let Some(topology) = self.topology.load_full() {
            return Ok(topology);
        }
        if self.refreshes.load(Ordering::Acquire) != seen
            && let Some(reason) = &state.last_failure
        {
            // A fetch ran while we waited for it, and failed: that is our answer too.
            return Err(StoreError::Unavailable(reason.clone()));
        }
        self.refresh_locked(&mut state).await
    }

    /// Fetch the slot map (with `refreshing` held) and publish it.
    async fn refresh_locked(&self, state: &mut RefreshState) -> Result<Arc<Topology>, StoreError> {
        let since_created = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_refresh_ms.store(since_created, Ordering::Release);
        let fetched = self.fetch().await;
        self.refreshes.fetch_add(1, Ordering::AcqRel);
        match fetched {
            Ok(topology) => {
                let topology = Arc::new(topology);
                let changed = self.topology.load().as_ref().is_none_or(|previous| {
                    previous.owner != topology.owner
                        || previous.masters.len() != topology.masters.len()
                });
                if changed {
                    let masters: Vec<String> = topology
                        .masters
                        .iter()
                        .map(|(address, _)| address.to_string())
                        .collect();
                    tracing::info!(target: "agent_memory::store", masters = %masters.join(","), "cluster slot map");
                }
                self.topology.store(Some(Arc::clone(&topology)));
                state.last_failure = None;
                Ok(topology)
            }
            Err(reason) => {
                tracing::warn!(target: "agent_memory::store", %reason, "cluster slot map not fetched");
                state.last_failure = Some(reason.clone());
                Err(StoreError::Unavailable(reason))
            }
        }
    }

    /// Ask the known masters, then their replicas, then the seeds, for `CLUSTER SLOTS`.
    async fn fetch(&self) -> Result<Topology, String> {
        let mut candidates: Vec<NodeAddress> = Vec::new();
        if let Some(topology) = self.topology.load_full() {
            candidates.extend(topology.masters.iter().map(|(address, _)| address.clone()));
            candidates.extend(topology.replicas.iter().cloned());
        }
        candidates.extend(self.seeds.iter().cloned());
        let mut asked = HashSet::new();
        let mut failures = Vec::new();
        for address in candidates {
            if !asked.insert(address.clone()) {
                continue;
            }
            let node = self.node(&address).map_err(|error| error.to_string())?;
            let ranges = match commands::cluster_slots(&node).await {
                Ok(reply) => slots::parse_cluster_slots(&reply, &address),
                Err(failure) => Err(failure.outside_a_cluster().to_string()),
            };
            match ranges {
                Ok(ranges) if !ranges.is_empty() => return self.build(ranges),
                Ok(_) => failures.push(format!("{address}: serves no slots")),
                Err(reason) => failures.push(format!("{address}: {reason}")),
            }
        }
        Err(format!(
            "no cluster node gave the slot map: {}",
            failures.join("; ")
        ))
    }

    /// The slot map of `ranges`; nodes no longer in it (nor seeds) are forgotten.
    fn build(&self, ranges: Vec<SlotRange>) -> Result<Topology, String> {
        let mut owner = vec![UNSERVED; usize::from(SLOT_COUNT)].into_boxed_slice();
        let mut masters: Vec<(NodeAddress, Arc<Node>)> = Vec::new();
        let mut replicas: Vec<NodeAddress> = Vec::new();
        for range in ranges {
            let index = match masters
                .iter()
                .position(|(address, _)| *address == range.master)
            {
                Some(index) => index,
                None => {
                    let node = self
                        .node(&range.master)
                        .map_err(|error| error.to_string())?;
                    masters.push((range.master.clone(), node));
                    masters.len() - 1
                }
            };
            let index = u16::try_from(index).map_err(|_| "too many masters".to_string())?;
            for slot in range.start..=range.end {
                owner[usize::from(slot)] = index;
            }
            for replica in range.replicas {
                if !replicas.contains(&replica) {
                    replicas.push(replica);
                }
            }
        }
        let keep: HashSet<&NodeAddress> = masters
            .iter()
            .map(|(address, _)| address)
            .chain(&self.seeds)
            .collect();
        self.nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|address, _| keep.contains(address));
        Ok(Topology {
            owner,
            masters,
            replicas,
        })
    }

    /// The node at `address`, made on first use.
    fn node(&self, address: &NodeAddress) -> Result<Arc<Node>, StoreError> {
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(node) = nodes.get(address) {
            return Ok(Arc::clone(node));
        }
        if nodes.len() >= MAX_NODES {
            return Err(StoreError::Unavailable(format!(
                "the cluster names more than {MAX_NODES} nodes; not connecting to {address}"
            )));
        }
        let node = Arc::new(Node::new(
            NodeTarget::Server(ConnectionAddr::Tcp(address.host.clone(), address.port)),
            self.settings.clone(),
            self.tls.clone(),
            self.options.clone(),
            self.meter.clone(),
        ));
        nodes.insert(address.clone(), Arc::clone(&node));
        Ok(node)
    }

    /// A MOVED: `slot` is served by `node` (at `address`) now. The map says so at once, and a
    /// fresh one is fetched in the background (a slot rarely moves alone).
    fn moved(self: &Arc<Self>, slot: u16, address: &NodeAddress, node: &Arc<Node>) {
        self.topology.rcu(|current| {
            let current = current.as_ref()?;
            let index = current
                .masters
                .iter()
                .position(|(known, _)| known == address);
            if index.is_some_and(|index| usize::from(current.owner[usize::from(slot)]) == index) {
                return Some(Arc::clone(current));
            }
            let mut masters = current.masters.clone();
            let index = index.unwrap_or_else(|| {
                masters.push((address.clone(), Arc::clone(node)));
                masters.len() - 1
            });
            let mut owner = current.owner.clone();
            owner[usize::from(slot)] = u16::try_from(index).unwrap_or(UNSERVED);
            Some(Arc::new(Topology {
                owner,
                masters,
                replicas: current.replicas.clone(),
            }))
        });
        self.schedule_refresh();
    }

    /// Fetch the slot map in the background, unless a fetch is already scheduled; no sooner
    /// than [`MIN_REFRESH_INTERVAL`] after the last one started.
    fn schedule_refresh(self: &Arc<Self>) {
        if self.refresh_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.refresh_scheduled.store(false, Ordering::Release);
            return;
        };
        let cluster = Arc::clone(self);
        runtime.spawn(async move {
            let last = Duration::from_millis(cluster.last_refresh_ms.load(Ordering::Acquire));
            let next = last + MIN_REFRESH_INTERVAL;
            if let Some(wait) = next.checked_sub(cluster.created.elapsed()) {
                tokio::time::sleep(wait).await;
            }
            // Cleared before the fetch: trouble met while it runs schedules the next one.
            cluster.refresh_scheduled.store(false, Ordering::Release);
            let mut state = cluster.refreshing.lock().await;
            let _ = cluster.refresh_locked(&mut state).await;
        });
    }
}
