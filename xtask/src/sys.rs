//! The few system calls std does not wrap: process-group kill and CPU affinity.
//!
//! This is the only module of xtask allowed `unsafe`; each block says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Sends SIGKILL to every process in the group `pgid` (a child spawned as a group leader).
pub(crate) fn kill_process_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes two integers and touches no memory of ours; a negative pid names a
    // process group, and pgid > 1 so this never targets "every process" (-1) or our own group (0).
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// The CPUs this process may run on, in increasing order.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is a plain bit array for which all-zeroes is a valid (empty) value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: we pass a valid pointer to a cpu_set_t and its exact size; pid 0 means this thread.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET only reads the bit `cpu` of `set`, and cpu < CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Makes `cmd`'s child run only on `cpu` (set between fork and exec, so every thread it ever
/// starts inherits the mask).
pub(crate) fn pin_child_to_cpu(cmd: &mut Command, cpu: usize) {
    let hook = move || -> io::Result<()> {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: all-zeroes is a valid empty cpu_set_t.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: cpu < CPU_SETSIZE (checked above), so CPU_SET writes inside `set`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: valid pointer and size; pid 0 is the calling (child) process.
        let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: the hook runs in the forked child before exec. It allocates nothing, takes no
    // locks and calls only sched_setaffinity(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Process groups of the children still running, killed if xtask itself is interrupted.
static LIVE_GROUPS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Records a child started as its own process-group leader.
pub(crate) fn register_group(pgid: u32) {
    if let Ok(mut groups) = LIVE_GROUPS.lock() {
        groups.push(pgid);
    }
}

/// Forgets a child that has been waited for.
pub(crate) fn unregister_group(pgid: u32) {
    if let Ok(mut groups) = LIVE_GROUPS.lock() {
        groups.retain(|&g| g != pgid);
    }
}

/// Children run in their own process groups (so a timeout kills `cargo run` *and* what it
/// started), which also means a Ctrl-C at the terminal no longer reaches them. This blocks
/// SIGINT, SIGTERM and SIGHUP in every thread and waits for them on a dedicated thread, which
/// kills the live groups and exits with 128 + the signal. Call it first thing in `main`, before
/// any other thread exists. A blocked mask survives fork and exec, so every child must be
/// started through [`unblock_signals_in_child`] (as `exec::Cmd` does), or a server under test
/// would never see its SIGTERM.
pub(crate) fn kill_children_on_interrupt() {
    // SAFETY: all-zeroes is a valid sigset_t to pass to sigemptyset, which initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, exclusively borrowed sigset_t; the signal numbers are valid.
    let blocked = unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) == 0
    };
    if !blocked {
        return;
    }
    std::thread::spawn(move || {
        let mut signal: libc::c_int = 0;
        // SAFETY: `set` was initialised above and is only read; `signal` is a valid out pointer.
        if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
            return;
        }
        let groups = LIVE_GROUPS.lock().map(|g| g.clone()).unwrap_or_default();
        for &pgid in &groups {
            kill_process_group(pgid);
        }
        eprintln!(
            "\ninterrupted: killed {} running child process group(s)",
            groups.len()
        );
        std::process::exit(128 + signal);
    });
}

/// Empties the signal mask of `cmd`'s child between fork and exec, so the signals xtask blocks
/// for itself ([`kill_children_on_interrupt`]) reach the programs it runs.
pub(crate) fn unblock_signals_in_child(cmd: &mut Command) {
    let hook = || -> io::Result<()> {
        // SAFETY: all-zeroes is a valid sigset_t for sigemptyset to initialise.
        let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `empty` is a valid sigset_t; sigemptyset and sigprocmask are async-signal-safe
        // and touch only the calling (child) process.
        let rc = unsafe {
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut())
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: the hook runs in the forked child before exec; it allocates nothing, takes no locks
    // and calls only async-signal-safe functions.
    unsafe {
        cmd.pre_exec(hook);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks or unblocks one signal in the calling thread.
    fn set_thread_mask(how: libc::c_int, signal: libc::c_int) {
        // SAFETY: as in `kill_children_on_interrupt`: a valid, initialised sigset_t.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::pthread_sigmask(how, &set, std::ptr::null_mut());
        }
    }

    #[test]
    fn children_start_with_an_empty_signal_mask() {
        // Block SIGTERM in this test thread only (the mask is per thread and fork copies it).
        set_thread_mask(libc::SIG_BLOCK, libc::SIGTERM);
        let mut plain = Command::new("grep");
        plain.args(["SigBlk", "/proc/self/status"]);
        let inherited = plain.output().expect("grep runs");
        let mut fixed = Command::new("grep");
        fixed.args(["SigBlk", "/proc/self/status"]);
        unblock_signals_in_child(&mut fixed);
        let cleared = fixed.output().expect("grep runs");
        set_thread_mask(libc::SIG_UNBLOCK, libc::SIGTERM);

        let mask = |out: &std::process::Output| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let hex = text.split_whitespace().nth(1).unwrap_or("").to_owned();
            u64::from_str_radix(&hex, 16).expect("SigBlk is hex")
        };
        let sigterm_bit = 1u64 << (libc::SIGTERM - 1);
        assert_ne!(
            mask(&inherited) & sigterm_bit,
            0,
            "without the hook the mask is inherited"
        );
        assert_eq!(mask(&cleared), 0, "with the hook the child blocks nothing");
    }
}
