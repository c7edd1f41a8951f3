//! Pinning threads to CPUs (`sched_setaffinity`), within the CPUs the process may use.
//!
//! Loop *i* is pinned to the *i*-th CPU of the process's own affinity mask (modulo its size),
//! not to CPU *i*: under `taskset -c 1 zyphos …` loop 0 runs on CPU 1, as the user asked.

use std::io;

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// The CPUs the calling thread may run on, ascending.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0)).map_err(io::Error::from)?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// The CPU loop `index` is pinned to: the `index`-th allowed CPU, wrapping around.
pub fn cpu_for_loop(allowed: &[usize], index: usize) -> Option<usize> {
    if allowed.is_empty() {
        None
    } else {
        Some(allowed[index % allowed.len()])
    }
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).map_err(io::Error::from)?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(io::Error::from)
}

/// The CPU the calling thread last ran on (`sched_getcpu`), from `/proc/thread-self/stat`
/// field 39.
pub fn current_cpu() -> io::Result<usize> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat")?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::other("malformed /proc/thread-self/stat"))?;
    // Fields after the command: state is field 3, so field 39 is index 36 here.
    after
        .split_whitespace()
        .nth(36)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| io::Error::other("no processor field in /proc/thread-self/stat"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cpu_for_loop_wraps_within_allowed() {
        assert_eq!(cpu_for_loop(&[1, 3], 0), Some(1));
        assert_eq!(cpu_for_loop(&[1, 3], 1), Some(3));
        assert_eq!(cpu_for_loop(&[1, 3], 2), Some(1));
        assert_eq!(cpu_for_loop(&[], 0), None);
    }

    #[test]
    fn test_pinned_thread_runs_on_its_cpu() {
        let allowed = allowed_cpus().unwrap();
        let cpu = *allowed.last().unwrap();
        std::thread::spawn(move || {
            pin_current_thread(cpu).unwrap();
            assert_eq!(allowed_cpus().unwrap(), vec![cpu]);
            // Burn a little so the scheduler has moved us.
            let mut x = 0u64;
            for i in 0..1_000_000u64 {
                x = x.wrapping_add(std::hint::black_box(i));
            }
            std::hint::black_box(x);
            assert_eq!(current_cpu().unwrap(), cpu);
        })
        .join()
        .unwrap();
    }
}
