//! Child processes that cannot outlive the benchmark: its `redis-server`s and the Python
//! original's runs.
//!
//! Two things tie them to it:
//! - **a parent-death signal** (Linux `prctl(PR_SET_PDEATHSIG, SIGKILL)`, set in the child
//!   between fork and exec): when the benchmark dies in any way — `kill -9`, a crash — the
//!   kernel kills the child. The signal follows the *thread* that forked the child, so children
//!   are started from the main thread (the CLI runs its command with `block_on` there, and
//!   the benchmark never starts them from a spawned task), which lives as long as the process.
//!   A benchmark that died between the fork and the `prctl` is caught by comparing the parent
//!   pid after it.
//! - **a process group of their own**: Ctrl-C in a terminal signals the whole foreground group;
//!   the children are kept out of it, so the benchmark alone decides how they stop (after it
//!   has reported), instead of a server vanishing under a cell being measured.

use std::os::unix::process::CommandExt as _;

/// Make `command`'s child die with this process and keep it out of the terminal's signals.
pub fn tie(command: &mut std::process::Command) {
    command.process_group(0);
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: prctl, getppid and _exit are, and nothing is
    // allocated.
    unsafe {
        command.pre_exec(move || die_with(parent));
    }
}

/// The same, for a child started through tokio.
pub fn tie_async(command: &mut tokio::process::Command) {
    command.process_group(0);
    let parent = std::process::id();
    // SAFETY: as in [`tie`].
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
