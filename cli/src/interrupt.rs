//! SIGINT and SIGTERM for the commands that run for more than a moment (`copy`, `doctor`, and
//! the benchmark): instead of dying where they stand, they stop the work in progress, report what
//! was done, stop whatever they started, and exit with the shell's status for the signal
//! (130 for SIGINT, 143 for SIGTERM).
//!
//! Short commands (`add`, `get`, ...) keep the default: the signal ends the process at once,
//! which is what a user expects of a command that takes milliseconds.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

/// A signal that asks a command to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Ctrl-C.
    Interrupt,
    /// `kill`, a service manager, a container runtime.
    Terminate,
}

impl Stop {
    /// The exit status a shell gives a process this signal ended: 128 + the signal number.
    pub fn exit_code(self) -> u8 {
        match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 143,
        }
    }

    fn code(self) -> u8 {
        match self {
            Stop::Interrupt => 1,
            Stop::Terminate => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Stop::Interrupt),
            2 => Some(Stop::Terminate),
            _ => None,
        }
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stop::Interrupt => "SIGINT",
            Stop::Terminate => "SIGTERM",
        })
    }
}

/// SIGINT and SIGTERM, caught from the moment [`Stops::listen`] returns: the first one is kept
/// for async waiters ([`Stops::wait`]) and for synchronous loops that poll
/// ([`Stops::received`]), such as `doctor` between sessions.
#[derive(Clone)]
pub struct Stops {
    received: Arc<AtomicU8>,
    notify: Arc<Notify>,
}

impl Stops {
    /// Catch SIGINT and SIGTERM from now on (in place of their default, which ends the
    /// process). Must be called inside the runtime.
    pub fn listen() -> anyhow::Result<Self> {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let stops = Self {
            received: Arc::new(AtomicU8::new(0)),
            notify: Arc::new(Notify::new()),
        };
        let shared = stops.clone();
        tokio::spawn(async move {
            let stop = tokio::select! {
                _ = interrupt.recv() => Stop::Interrupt,
                _ = terminate.recv() => Stop::Terminate,
            };
            shared.received.store(stop.code(), Ordering::SeqCst);
            shared.notify.notify_waiters();
        });
        Ok(stops)
    }

    /// The signal received, if one was.
    pub fn received(&self) -> Option<Stop> {
        Stop::from_code(self.received.load(Ordering::SeqCst))
    }

    /// Wait for a signal (at once if one was received already).
    pub async fn wait(&self) -> Stop {
        loop {
            // Registered before the check, so a signal between the two is not missed.
            let notified = self.notify.notified();
            if let Some(stop) = self.received() {
                return stop;
            }
            notified.await;
        }
    }
}
