//! How the server fixtures start their child processes (`redis-server`, `redis-cli`), and the
//! benchmark its Python runs.
//!
//! A test's servers are plain children: they live as long as the fixture that owns them, and
//! a test thread may end while a server it started is still shared. A program that must leave
//! nothing behind even when it is killed — the benchmark — calls [`tie_to_this_process`] first,
//! and from then on every `redis-server` and `redis-cli` that [`RedisServer`] and
//! [`RedisCluster`] start (and every child it passes to [`prepare_async`]) is named on stderr
//! and tied to it in two ways:
//! - **a parent-death signal** (Linux `prctl(PR_SET_PDEATHSIG, SIGKILL)`, set in the child
//!   between fork and exec): when the program dies in any way — `kill -9`, a crash — the kernel
//!   kills the child. The signal follows the *thread* that forked the child, so such a program
//!   starts its children from its main thread, which lives as long as the process. A program
//!   that died between the fork and the `prctl` is caught by comparing the parent pid after it.
//! - **a process group of their own**: Ctrl-C in a terminal signals the whole foreground group;
//!   the children are kept out of it, so the program alone decides how they stop (after it has
//!   reported), instead of a server vanishing under a cell being measured.
//!
//! Such a program can also [`abandon_starts`] when it is told to stop: a fixture waiting for a
//! server to answer or a cluster to settle gives up at its next look, instead of holding the
//! program for up to a minute.
//!
//! (The sentinel fixture and the Python worker are the tests' alone, and start plain children.)

use std::os::unix::process::CommandExt as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[cfg(doc)]
use crate::{RedisCluster, RedisServer};

/// Whether [`tie_to_this_process`] was called.
static TIED: AtomicBool = AtomicBool::new(false);

/// Whether [`abandon_starts`] was called.
static ABANDONED: AtomicBool = AtomicBool::new(false);

/// How many tied servers were started: [`announced`].
static ANNOUNCED: AtomicUsize = AtomicUsize::new(0);

/// From now on, fixtures waiting for a start give up (see the module docs). For a signal
/// handler: it only sets a flag.
pub fn abandon_starts() {
    ABANDONED.store(true, Ordering::SeqCst);
}

/// An error if [`abandon_starts`] was called: the fixtures' wait loops ask between looks.
pub(crate) fn check_abandoned() -> anyhow::Result<()> {
    match ABANDONED.load(Ordering::SeqCst) {
        true => anyhow::bail!("start abandoned: the program is stopping"),
        false => Ok(()),
    }
}

/// Say on stderr that a tied `program` started (pid and port), so that whoever runs the
/// program that ties its children can check they are gone afterwards; nothing for the tests'
/// plain children.
pub(crate) fn announce(program: &str, pid: u32, port: u16) {
    if TIED.load(Ordering::SeqCst) {
        ANNOUNCED.fetch_add(1, Ordering::SeqCst);
        eprintln!("started {program} (pid {pid}, port {port})");
    }
}

/// How many servers were started (and named on stderr) since [`tie_to_this_process`], those of
/// an abandoned start included: what a program that stops them says it stopped.
pub fn announced() -> usize {
    ANNOUNCED.load(Ordering::SeqCst)
}

/// From now on, tie every child the fixtures start to this process (see the module docs);
/// start them from the main thread.
pub fn tie_to_this_process() {
    TIED.store(true, Ordering::SeqCst);
}

/// Tie `command`'s child to this process if [`tie_to_this_process`] was called.
pub fn prepare(command: &mut std::process::Command) {
    if TIED.load(Ordering::SeqCst) {
        tie(command);
    }
}

/// The same, for a child started through tokio.
pub fn prepare_async(command: &mut tokio::process::Command) {
    prepare(command.as_std_mut());
}

/// Make `command`'s child die with this process and keep it out of the terminal's signals.
fn tie(command: &mut std::process::Command) {
    command.process_group(0);
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: prctl, getppid and _exit are, and nothing is
    // allocated.
    unsafe {
        command.pre_exec(move || die_with(parent));
    }
}

/// In the child: ask for SIGKILL when the parent dies; if it already has, die now.
fn die_with(parent: u32) -> std::io::Result<()> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and no pointers.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } as u32 != parent {
        // SAFETY: _exit ends the child at once, running nothing of the parent's.
        unsafe { libc::_exit(1) };
    }
    Ok(())
}
