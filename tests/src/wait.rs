//! Waiting for a condition instead of sleeping a fixed time: a test that sleeps guesses how
//! long the system takes (too short on a loaded CI machine, too long everywhere else); a test
//! that polls waits exactly as long as it must, up to a deadline that says what did not happen.

use std::time::{Duration, Instant};

/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(10);

/// Wait until `condition` holds, checking every 10 ms; panic naming `what` if it still does
/// not after `deadline`.
pub async fn eventually(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < deadline,
            "{what}: not after {deadline:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for synchronous tests.
pub fn eventually_blocking(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < deadline,
            "{what}: not after {deadline:?}"
        );
        std::thread::sleep(POLL);
    }
}
