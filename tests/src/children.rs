//! How the fixtures start their child processes (`redis-server`, `redis-cli`, Python).
//!
//! A test's servers are plain children: they live as long as the fixture that owns them, and
//! a test thread may end while a server it started is still shared. A program that must leave
//! nothing behind even when it is killed — the benchmark — calls [`tie_to_this_process`] first,
//! and from then on every child the fixtures start is tied to it in two ways:
//! - **a parent-death signal** (Linux `prctl(PR_SET_PDEATHSIG, SIGKILL)`, set in the child
//!   between fork and exec): when the program dies in any way — `kill -9`, a crash — the kernel
//!   kills the child. The signal follows the *thread* that forked the child, so such a program
//!   starts its children from its main thread, which lives as long as the process. A program
//!   that died between the fork and the `prctl` is caught by comparing the parent pid after it.
//! - **a process group of their own**: Ctrl-C in a terminal signals the whole foreground group;
//!   the children are kept out of it, so the program alone decides how they stop (after it has
//!   reported), instead of a server vanishing under a cell being measured.

use std::os::unix::process::CommandExt as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether [`tie_to_this_process`] was called.
static TIED: AtomicBool = AtomicBool::new(false);

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
    if TIED.load(Ordering::SeqCst) {
        command.process_group(0);
        let parent = std::process::id();
        // SAFETY: as in [`tie`].
        unsafe {
            command.pre_exec(move || die_with(parent));
        }
    }
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
