//! Experiment `cache_misses`: simulated cache misses per alloc+free pair, pool vs malloc, from
//! valgrind's cachegrind (the VM has no hardware cache counters; figures are simulated, as
//! docs/ARCHITECTURE.md says). The program re-runs itself under
//! `valgrind --tool=cachegrind --cache-sim=yes` once per allocator, plus once with the loop
//! alone (baseline subtracted), and reads the D1 / last-level data miss totals.

use std::hint::black_box;
use std::mem::MaybeUninit;
use std::process::Command;

use m07_buffers::lab::{self, Table};
use m07_buffers::{BufferPool, PoolConfig};

const LIVE: usize = 256;
const SIZE: usize = 16 * 1024;

fn victims(n: usize) -> Vec<usize> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % LIVE as u64) as usize
        })
        .collect()
}

fn inner(mode: &str, steps: usize) {
    let idx = victims(steps);
    match mode {
        "pool" => {
            let pool =
                BufferPool::new(PoolConfig::new(SIZE, LIVE).with_debug(false)).expect("pool");
            let mut live: Vec<Option<_>> = (0..LIVE).map(|_| pool.alloc().ok()).collect();
            for &i in &idx {
                drop(live[i].take());
                let b = pool.alloc().ok();
                black_box(b.as_ref().map(|b| b.as_ptr()));
                live[i] = b;
            }
        }
        "malloc" => {
            let mut live: Vec<Option<Box<[MaybeUninit<u8>]>>> = (0..LIVE)
                .map(|_| Some(Box::new_uninit_slice(SIZE)))
                .collect();
            for &i in &idx {
                drop(live[i].take());
                let b = Box::<[u8]>::new_uninit_slice(SIZE);
                black_box(b.as_ptr());
                live[i] = Some(b);
            }
        }
        _ => {
            let mut live: Vec<Option<usize>> = vec![Some(0); LIVE];
            for &i in &idx {
                let _ = live[i].take();
                black_box(i);
                live[i] = Some(i);
            }
        }
    }
}

/// (I refs, D refs, D1 misses, LLd misses) from cachegrind's summary.
fn cachegrind(mode: &str, steps: usize) -> std::io::Result<[f64; 4]> {
    let exe = std::env::current_exe()?;
    let out = Command::new("valgrind")
        .args([
            "--tool=cachegrind",
            "--cache-sim=yes",
            "--cachegrind-out-file=/dev/null",
        ])
        .arg(&exe)
        .args(["--inner", mode, &steps.to_string()])
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "valgrind failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let get = |key: &str| -> std::io::Result<f64> {
        text.lines()
            .find_map(|l| {
                let l = l.split_once("== ").map_or(l, |(_, r)| r).trim_start();
                let rest = l.strip_prefix(key)?;
                let n = rest.trim_start_matches(':').split_whitespace().next()?;
                n.replace(',', "").parse().ok()
            })
            .ok_or_else(|| std::io::Error::other(format!("no {key:?} in cachegrind output")))
    };
    Ok([
        get("I   refs")?,
        get("D   refs")?,
        get("D1  misses")?,
        get("LLd misses")?,
    ])
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--inner") {
        let steps = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1000);
        inner(args.get(2).map_or("none", String::as_str), steps);
        return std::process::ExitCode::SUCCESS;
    }
    lab::run_main(|| {
        if !lab::have_tool("valgrind") {
            return Err(std::io::Error::other(
                "valgrind not found (cargo xtask setup installs it)",
            ));
        }
        let steps = if lab::quick() { 20_000 } else { 200_000 };
        let base = cachegrind("none", steps)?;
        let mut t = Table::new(
            "Simulated cache behaviour per alloc+free pair (cachegrind), 16 KiB buffers",
            &[
                "allocator",
                "instructions per pair",
                "data refs per pair",
                "D1 misses per pair",
                "LL data misses per pair",
            ],
        );
        for mode in ["pool", "malloc"] {
            let m = cachegrind(mode, steps)?;
            let per = |k: usize| lab::round((m[k] - base[k]) / steps as f64, 2);
            eprintln!(
                "{mode}: {} instr, {} data refs, {} D1 misses, {} LLd misses per pair",
                per(0),
                per(1),
                per(2),
                per(3)
            );
            t.rows.push(vec![
                mode.into(),
                per(0).into(),
                per(1).into(),
                per(2).into(),
                per(3).into(),
            ]);
        }
        t.notes = format!(
            "{steps} pairs, {LIVE} live buffers, random victim; the same program with the loop \
             alone is subtracted (set-up costs included, amortised over the pairs). Simulated \
             caches (cachegrind defaults from the host's cpuid), not hardware counters. {}",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
