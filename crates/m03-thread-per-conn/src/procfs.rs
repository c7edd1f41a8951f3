//! What the kernel says about our threads, read from `/proc` (no tools needed):
//!
//! | question | file |
//! |---|---|
//! | how many threads does the process have? | `/proc/self/status` `Threads:` (and `/proc/self/task/`) |
//! | context switches of one thread | `/proc/self/task/TID/status` `voluntary_ctxt_switches`, `nonvoluntary_ctxt_switches` |
//! | CPU time of one thread | `/proc/self/task/TID/stat` fields 14/15 (`utime`, `stime`, clock ticks) |
//! | how long is the run queue? | `/proc/loadavg` 4th field `running/total` |
//! | where does memory go? | `/proc/self/status` `VmRSS`, `VmStk`, `VmData`; `/proc/self/smaps` for thread stacks |
//!
//! Voluntary switches are the thread blocking (in `recv`, on a lock); non-voluntary ones are
//! the scheduler preempting it (its time slice ran out while others waited): with one thread
//! per connection on two cores, the second kind is the cost of oversubscription.

use std::fs;
use std::io;

use serde::Serialize;

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// A `Key: value …` field of a `status` file, first number.
fn status_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        line.strip_prefix(field)
            .and_then(|r| r.strip_prefix(':'))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    })
}

/// OS threads of this process (`Threads:` in `/proc/self/status`).
pub fn os_threads() -> io::Result<u64> {
    let text = fs::read_to_string("/proc/self/status")?;
    status_field(&text, "Threads").ok_or_else(|| invalid("no Threads: line"))
}

/// Entries in `/proc/self/task` (one per live thread, including zombies not yet reaped).
pub fn task_count() -> io::Result<usize> {
    Ok(fs::read_dir("/proc/self/task")?.count())
}

/// One thread as the kernel accounts it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ThreadSample {
    /// Kernel thread id.
    pub tid: i32,
    /// `comm` (the name given at spawn, at most 15 bytes).
    pub name: String,
    /// Times it blocked.
    pub voluntary_ctxt_switches: u64,
    /// Times it was preempted.
    pub nonvoluntary_ctxt_switches: u64,
    /// User CPU, µs.
    pub utime_us: u64,
    /// System CPU, µs.
    pub stime_us: u64,
}

/// Parses `utime`, `stime` (ticks) from a `stat` line; `comm` may hold spaces and parentheses,
/// so fields are counted after the last `)`.
fn stat_times(stat: &str) -> Option<(u64, u64)> {
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after ')' the fields start at field 3 (state); utime is field 14, stime 15.
    let utime = fields.get(11)?.parse().ok()?;
    let stime = fields.get(12)?.parse().ok()?;
    Some((utime, stime))
}

/// Samples thread `tid` of this process.
pub fn thread_sample(tid: i32) -> io::Result<ThreadSample> {
    let base = format!("/proc/self/task/{tid}");
    let status = fs::read_to_string(format!("{base}/status"))?;
    let stat = fs::read_to_string(format!("{base}/stat"))?;
    let name = status
        .lines()
        .find_map(|l| l.strip_prefix("Name:"))
        .unwrap_or("")
        .trim()
        .to_owned();
    let (ut, st) = stat_times(&stat).ok_or_else(|| invalid(format!("bad stat for {tid}")))?;
    let tick_us = 1_000_000 / crate::sys::clock_ticks().max(1);
    Ok(ThreadSample {
        tid,
        name,
        voluntary_ctxt_switches: status_field(&status, "voluntary_ctxt_switches").unwrap_or(0),
        nonvoluntary_ctxt_switches: status_field(&status, "nonvoluntary_ctxt_switches")
            .unwrap_or(0),
        utime_us: ut * tick_us,
        stime_us: st * tick_us,
    })
}

/// Every thread of this process, sampled (threads that exit meanwhile are skipped).
pub fn all_threads() -> io::Result<Vec<ThreadSample>> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc/self/task")? {
        let entry = entry?;
        if let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            if let Ok(s) = thread_sample(tid) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// The scheduler's view of the whole machine from `/proc/loadavg`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RunQueue {
    /// Tasks runnable right now (running or waiting for a CPU), including the reader.
    pub running: u64,
    /// Tasks that exist.
    pub total: u64,
    /// 1-minute load average.
    pub load1: f64,
}

/// Reads `/proc/loadavg` (`0.52 0.40 0.31 3/412 12345`).
pub fn run_queue() -> io::Result<RunQueue> {
    let text = fs::read_to_string("/proc/loadavg")?;
    let mut f = text.split_whitespace();
    let load1 = f.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let rt = f.nth(2).ok_or_else(|| invalid("short /proc/loadavg"))?;
    let (r, t) = rt.split_once('/').ok_or_else(|| invalid(rt.to_owned()))?;
    Ok(RunQueue {
        running: r.parse().map_err(|_| invalid(rt.to_owned()))?,
        total: t.parse().map_err(|_| invalid(rt.to_owned()))?,
        load1,
    })
}

/// Reads `procs_running` from `/proc/stat`: runnable tasks on the whole machine right now
/// (running or waiting for a CPU, the reader included), the same count as the fourth field of
/// `/proc/loadavg` read another way.
pub fn procs_running() -> io::Result<u64> {
    let text = fs::read_to_string("/proc/stat")?;
    text.lines()
        .find_map(|l| l.strip_prefix("procs_running"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| invalid("no procs_running in /proc/stat"))
}

/// Where this process's memory is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MemoryBreakdown {
    /// Resident set, KiB.
    pub rss_kib: u64,
    /// Main thread's stack (`VmStk`), KiB: other threads' stacks are *not* in it.
    pub vm_stk_kib: u64,
    /// Data + heap + anonymous mappings (`VmData`), KiB: thread stacks are counted here.
    pub vm_data_kib: u64,
    /// Threads.
    pub threads: u64,
    /// Thread-stack-like mappings found in smaps: a private read-write anonymous mapping right
    /// after a `---p` guard mapping (how glibc lays out `pthread` stacks).
    pub stack_mappings: u64,
    /// Their total size, KiB (reserved address space).
    pub stack_mapped_kib: u64,
    /// Their resident part, KiB (pages actually touched).
    pub stack_rss_kib: u64,
}

/// Reads `/proc/self/status` and `/proc/self/smaps`.
pub fn memory() -> io::Result<MemoryBreakdown> {
    let status = fs::read_to_string("/proc/self/status")?;
    let mut m = MemoryBreakdown {
        rss_kib: status_field(&status, "VmRSS").unwrap_or(0),
        vm_stk_kib: status_field(&status, "VmStk").unwrap_or(0),
        vm_data_kib: status_field(&status, "VmData").unwrap_or(0),
        threads: status_field(&status, "Threads").unwrap_or(0),
        ..MemoryBreakdown::default()
    };
    let smaps = fs::read_to_string("/proc/self/smaps")?;
    let mut prev_guard = false;
    let mut in_stack = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            // A mapping header: "start-end perms offset dev inode [path]".
            let cols: Vec<&str> = line.split_whitespace().collect();
            let perms = cols.get(1).copied().unwrap_or("");
            let anonymous = cols.len() <= 5;
            in_stack = prev_guard && anonymous && perms == "rw-p";
            if in_stack {
                m.stack_mappings += 1;
            }
            prev_guard = anonymous && perms == "---p";
        } else if in_stack {
            if let Some(v) = line.strip_prefix("Size:") {
                m.stack_mapped_kib += v
                    .split_whitespace()
                    .next()
                    .and_then(|x| x.parse::<u64>().ok())
                    .unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("Rss:") {
                m.stack_rss_kib += v
                    .split_whitespace()
                    .next()
                    .and_then(|x| x.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Ok(m)
}

/// Sizes (KiB) of the thread-stack-like mappings in `/proc/self/smaps` (see
/// [`MemoryBreakdown::stack_mappings`]).
pub fn stack_mapping_sizes() -> io::Result<Vec<u64>> {
    let maps = fs::read_to_string("/proc/self/maps")?;
    let mut out = Vec::new();
    let mut prev_guard = false;
    for line in maps.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let perms = cols.get(1).copied().unwrap_or("");
        let anonymous = cols.len() <= 5;
        if prev_guard && anonymous && perms == "rw-p" {
            if let Some((a, b)) = cols.first().and_then(|r| r.split_once('-')) {
                if let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                    out.push((b - a) / 1024);
                }
            }
        }
        prev_guard = anonymous && perms == "---p";
    }
    Ok(out)
}

/// One line of `/proc/self/maps`: an address range and its permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapping {
    /// First address.
    pub start: usize,
    /// One past the last address.
    pub end: usize,
    /// `rwxp`-style permissions (`---p` for a guard page).
    pub perms: String,
    /// Anonymous (no file, no `[stack]`-like name).
    pub anonymous: bool,
}

impl Mapping {
    /// Whether `addr` lies in it.
    pub fn contains(&self, addr: usize) -> bool {
        (self.start..self.end).contains(&addr)
    }
}

/// This process's mappings, lowest first (`/proc/self/maps`). Adjacent mappings with the same
/// permissions may have been merged by the kernel, so one line can hold several allocations.
pub fn mappings() -> io::Result<Vec<Mapping>> {
    let maps = fs::read_to_string("/proc/self/maps")?;
    let mut out = Vec::new();
    for line in maps.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let Some((a, b)) = cols.first().and_then(|r| r.split_once('-')) else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        else {
            return Err(invalid(format!("bad maps line {line:?}")));
        };
        out.push(Mapping {
            start,
            end,
            perms: cols.get(1).copied().unwrap_or("").to_owned(),
            anonymous: cols.len() <= 5,
        });
    }
    Ok(out)
}

/// Tasks (threads) owned by user `uid` on the whole machine (what `RLIMIT_NPROC` counts).
pub fn tasks_of_user(uid: u32) -> u64 {
    let Ok(dir) = fs::read_dir("/proc") else {
        return 0;
    };
    let mut n = 0;
    for e in dir.flatten() {
        if !e
            .file_name()
            .to_string_lossy()
            .chars()
            .all(|c| c.is_ascii_digit())
        {
            continue;
        }
        let Ok(status) = fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let real_uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok());
        if real_uid == Some(uid) {
            n += status_field(&status, "Threads").unwrap_or(1);
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[test]
    fn test_procfs_new_threads_visible_in_count_and_samples() {
        // Other tests' threads come and go in this process meanwhile: look for these three by
        // their ids, and bound the process-wide counts only by what is known to be alive.
        let barrier = Arc::new(Barrier::new(4));
        let (tx, rx) = std::sync::mpsc::channel();
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let (b, tx) = (Arc::clone(&barrier), tx.clone());
                std::thread::Builder::new()
                    .name(format!("probe-{i}"))
                    .spawn(move || {
                        tx.send((i, m01_raw_sockets::sys::signal::current_tid()))
                            .unwrap();
                        b.wait();
                        b.wait();
                    })
                    .unwrap()
            })
            .collect();
        barrier.wait();
        let probes: Vec<(i32, i32)> = rx.try_iter().collect();
        assert_eq!(probes.len(), 3);
        // These three and this thread are alive.
        assert!(os_threads().unwrap() >= 4);
        assert!(task_count().unwrap() >= 4);
        let samples = all_threads().unwrap();
        for (i, tid) in probes {
            let s = samples.iter().find(|s| s.tid == tid);
            assert_eq!(
                s.map(|s| s.name.as_str()),
                Some(format!("probe-{i}").as_str()),
                "tid {tid} in {samples:?}"
            );
        }
        let mem = memory().unwrap();
        assert!(
            mem.rss_kib > 0 && mem.threads >= 4 && mem.stack_mappings >= 3,
            "{mem:?}"
        );
        barrier.wait();
        for h in hs {
            h.join().unwrap();
        }
    }

    #[test]
    fn test_procfs_busy_thread_cpu_and_switches_counted() {
        let tid = m01_raw_sockets::sys::signal::current_tid();
        let a = thread_sample(tid).unwrap();
        // Spin until the kernel has charged at least one clock tick of CPU to this thread
        // (bounded: a loaded machine may take a while to give us a tick's worth).
        let t = std::time::Instant::now();
        let mut x = 0u64;
        let mut b = a.clone();
        while b.utime_us + b.stime_us == a.utime_us + a.stime_us
            && t.elapsed() < std::time::Duration::from_secs(5)
        {
            for _ in 0..1_000_000 {
                x = x.wrapping_mul(31).wrapping_add(1);
            }
            std::hint::black_box(x);
            b = thread_sample(tid).unwrap();
        }
        assert!(
            b.utime_us + b.stime_us > a.utime_us + a.stime_us,
            "{a:?} {b:?}"
        );
        for _ in 0..5 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let c = thread_sample(tid).unwrap();
        assert!(
            c.voluntary_ctxt_switches >= b.voluntary_ctxt_switches + 5,
            "{b:?} {c:?}"
        );
    }

    /// Medians of 9 readings, 10 ms apart, of `procs_running` (/proc/stat) and of the `running`
    /// field of /proc/loadavg (what `zyphos_run_queue_running` reports), taken side by side:
    /// one reading is one instant of a noisy machine (a compiler starting elsewhere adds ten
    /// runnable tasks for a moment).
    fn run_queue_medians() -> (u64, u64) {
        let (mut stat, mut load) = (Vec::new(), Vec::new());
        for _ in 0..9 {
            std::thread::sleep(std::time::Duration::from_millis(10));
            stat.push(procs_running().unwrap());
            load.push(run_queue().unwrap().running);
        }
        stat.sort_unstable();
        load.sort_unstable();
        (stat[4], load[4])
    }

    /// One round: baseline, k spinners running, spinners stopped and joined.
    fn spin_round(k: u64) -> Result<String, String> {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let (base_stat, base_load) = run_queue_medians();
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..k)
            .map(|_| {
                let (stop, started) = (Arc::clone(&stop), Arc::clone(&started));
                std::thread::spawn(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    let t = std::time::Instant::now();
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed)
                        && t.elapsed() < std::time::Duration::from_secs(20)
                    {
                        for _ in 0..10_000 {
                            x = x.wrapping_mul(31).wrapping_add(1);
                        }
                        std::hint::black_box(x);
                    }
                })
            })
            .collect();
        while started.load(Ordering::SeqCst) < k as usize {
            std::thread::yield_now();
        }
        let (busy_stat, busy_load) = run_queue_medians();
        stop.store(true, Ordering::SeqCst);
        for h in hs {
            h.join().unwrap();
        }
        let (after_stat, after_load) = run_queue_medians();
        let seen = format!(
            "k={k} procs_running {base_stat}->{busy_stat}->{after_stat}, \
             loadavg running {base_load}->{busy_load}->{after_load}"
        );
        let ok = busy_stat >= base_stat + k / 2
            && busy_load >= base_load + k / 2
            && after_stat + k / 2 <= busy_stat
            && after_load + k / 2 <= busy_load;
        if ok { Ok(seen) } else { Err(seen) }
    }

    /// Fails if the run-queue readings do not follow the machine's runnable tasks: k = 2 × cores
    /// spinning threads must raise the medians of `procs_running` (/proc/stat) and of the
    /// `running` field of /proc/loadavg by at least k/2 above a baseline taken just before, and
    /// both must fall by at least k/2 again once the spinners stop. Other processes count too:
    /// medians of 9 readings absorb bursts, and a round spoilt by a burst lasting a whole
    /// window is repeated, up to 5 rounds; one round must show all four movements at once
    /// (threads that sleep instead of spinning fail all 5). The spinners stop on a flag, and
    /// by themselves after 20 s at the latest.
    #[test]
    fn test_run_queue_rises_with_spinning_threads_and_falls_back() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let k = 2 * cores as u64;
        let mut rounds = Vec::new();
        for _ in 0..5 {
            match spin_round(k) {
                Ok(_) => return,
                Err(seen) => rounds.push(seen),
            }
        }
        panic!("no round showed the spinners: {rounds:#?}");
    }
}
