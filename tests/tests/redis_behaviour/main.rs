//! The behaviour suite: the default policy reproduces the Python original exactly, on every
//! kind of Redis deployment — one server, TLS, Sentinel, Sentinel over TLS, a cluster, a TLS
//! cluster — each started for real on loopback ports. Each check on each deployment is a named
//! trial (`deployment::check`), runnable alone; the trials of one deployment share it (a
//! cluster takes seconds to form; the checks use their own sessions and prefixes).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use agent_memory::{
    MemoryError, Message, Policy, Settings, StoreError, WriteOutcome, message::EntryProblem,
    report::InvalidMessage,
};
use agent_memory_tests::{
    Deployment, Kind, RedisServer, expect_stored as stored, texts, tricky_messages,
};
use libtest_mimic::{Arguments, Failed, Trial};
use redis::Commands;
use serde_json::{Value, json};

mod cluster;
mod foreign;
mod format;
mod interop;
mod ttl;
mod window;

use self::cluster::*;
use self::foreign::*;
use self::format::*;
use self::interop::*;
use self::ttl::*;
use self::window::*;

type Check = for<'a> fn(&'a Deployment) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

macro_rules! checks {
    ($($check:ident),* $(,)?) => {
        const CHECKS: &[(&str, Check)] = &[$((stringify!($check), |d| Box::pin($check(d)))),*];
    };
}

checks![
    messages_are_stored_under_the_original_key_as_python_json,
    the_ttl_is_set_on_the_first_write_and_renewed_by_every_write,
    the_configured_ttl_is_the_one_applied,
    the_window_holds_exactly_50_and_the_51st_write_trims_the_oldest,
    a_batch_larger_than_the_window_keeps_its_newest_messages,
    a_window_of_zero_deletes_the_session,
    corrupt_entries_are_skipped_and_counted_and_the_rest_is_returned,
    a_key_holding_a_string_is_reported_and_left_exactly_as_it_was,
    a_foreign_key_keeps_its_own_ttl,
    clear_deletes_the_session_and_only_it,
    sessions_lists_keys_under_the_prefix_even_with_glob_characters,
    an_oversized_message_is_refused_and_nothing_is_written,
    odd_session_ids_are_refused_before_any_io_and_ordinary_odd_ones_work,
    messages_with_tool_calls_and_null_or_absent_content_round_trip,
    concurrent_writers_never_leave_a_list_over_the_window_or_without_a_ttl,
    add_and_get_context_appends_and_reads_the_window_in_one_transaction,
    a_failed_add_and_get_context_degrades_the_context_with_the_write_error,
    the_tool_safe_policy_writes_with_its_expectation_and_never_splits_a_tool_call,
    what_python_writes_we_read_with_every_member_intact,
    our_entries_are_what_python_json_dumps_writes_and_python_reads_them,
    python_and_rust_append_to_one_session_and_share_its_window,
    sessions_spread_over_every_master_and_no_request_is_redirected,
];

/// The deployments, as trial names spell them.
const KINDS: &[(&str, Kind)] = &[
    ("one_server", Kind::Server),
    ("tls", Kind::Tls),
    ("sentinel", Kind::Sentinel),
    ("tls_sentinel", Kind::TlsSentinel),
    ("cluster", Kind::Cluster),
    ("tls_cluster", Kind::TlsCluster),
];

/// One deployment of a kind, started by the first trial that needs it and shared by the
/// kind's trials, which take turns on it (some checks count the server's commands). A
/// deployment that failed to start fails every trial of its kind with the same reason.
#[derive(Default)]
struct Shared {
    deployment: Mutex<Option<Result<Arc<Deployment>, String>>>,
}

impl Shared {
    /// Run `check` on the kind's deployment, alone on it.
    fn run(&self, kind: Kind, check: Check) -> Result<(), Failed> {
        let mut slot = self
            .deployment
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let deployment = slot
            .get_or_insert_with(|| {
                std::panic::catch_unwind(|| Arc::new(Deployment::start(kind)))
                    .map_err(|panic| format!("{kind:?} did not start: {}", panic_text(&*panic)))
            })
            .clone()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|error| format!("a tokio runtime: {error}"))?;
        // The slot stays locked while the check runs: the kind's trials take turns.
        std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(check(&deployment))))
            .map_err(|panic| Failed::from(panic_text(&*panic)))
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_string()))
        .unwrap_or_else(|| "panicked".to_string())
}

/// Every check on every deployment, each a trial of its own named `deployment::check`
/// (`cargo test --test redis_behaviour -- cluster::a_window_of_zero` runs one). Deployments
/// start only for the trials selected, run side by side, and are stopped once all are done.
fn main() {
    let mut arguments = Arguments::from_args();
    // The trials of one deployment take turns, so at most one runs per deployment: a thread
    // each (they mostly wait on their servers), unless `--test-threads` says otherwise.
    if arguments.test_threads.is_none() {
        arguments.test_threads = Some(KINDS.len());
    }
    let shared: Vec<Arc<Shared>> = KINDS.iter().map(|_| Arc::default()).collect();
    let trials = KINDS
        .iter()
        .zip(&shared)
        .flat_map(|(&(kind_name, kind), shared)| {
            CHECKS.iter().map(move |&(check_name, check)| {
                let shared = Arc::clone(shared);
                Trial::test(format!("{kind_name}::{check_name}"), move || {
                    shared.run(kind, check)
                })
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&arguments, trials);
    // Stop every deployment before exiting (`exit` runs no destructors).
    drop(shared);
    conclusion.exit();
}

fn settings(max_messages: u32) -> Settings {
    Settings {
        max_messages,
        ..Settings::default()
    }
}
