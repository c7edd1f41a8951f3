//! Experiment `huge_pages`: a slab backed by base pages (lazy or pre-faulted), transparent huge
//! pages (`madvise(MADV_HUGEPAGE)`) or reserved huge pages (`MAP_HUGETLB`, which falls back to
//! base pages when none are reserved — the table says which backing was really obtained).
//! Per backing: page faults and time to first-touch every 4 KiB page, resident huge pages
//! (`AnonHugePages` delta), then random 8-byte reads across the region (TLB reach).

use std::time::Instant;

use m07_buffers::lab::{self, Table};
use m07_buffers::sys::{PAGE_SIZE, Region, rusage};
use m07_buffers::{Backing, HugePages};

fn anon_huge_kib() -> u64 {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("AnonHugePages:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let quick = lab::quick();
        let len: usize = if quick { 64 << 20 } else { 512 << 20 };
        let reads: usize = if quick { 2_000_000 } else { 20_000_000 };
        let mut t = Table::new(
            "Huge pages: first-touch faults and random-access cost of the slab",
            &[
                "requested",
                "obtained",
                "minor faults",
                "touch ms",
                "AnonHugePages MiB",
                "random read ns",
            ],
        );
        for (name, huge, populate) in [
            ("base pages, lazy", HugePages::Off, false),
            ("base pages, MAP_POPULATE", HugePages::Off, true),
            ("THP (madvise)", HugePages::Transparent, false),
            ("MAP_HUGETLB", HugePages::Explicit, false),
        ] {
            let huge_before = anon_huge_kib();
            let u0 = rusage(true)?;
            let tm = Instant::now();
            let region = Region::new(len, huge, populate)?;
            let mut i = 0;
            while i < region.len() {
                region.write_byte(i, 1);
                i += PAGE_SIZE;
            }
            let touch_ms = tm.elapsed().as_secs_f64() * 1e3;
            let faults = rusage(true)?.since(&u0).minor_faults;
            let huge_mib = anon_huge_kib().saturating_sub(huge_before) as f64 / 1024.0;
            let mut x: u64 = 0x2545_F491_4F6C_DD1D;
            let mut sum = 0u64;
            let tm = Instant::now();
            for _ in 0..reads {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let off = (x as usize % (region.len() / 8)) * 8;
                sum = sum.wrapping_add(region.read_u64(off).unwrap_or(0));
            }
            let ns = tm.elapsed().as_nanos() as f64 / reads as f64;
            std::hint::black_box(sum);
            let obtained = match region.backing() {
                Backing::MmapFallback { errno } => format!("base pages (errno {errno})"),
                b => b.label().to_string(),
            };
            eprintln!(
                "{name}: {obtained}, {faults} faults, {touch_ms:.1} ms, {huge_mib:.0} MiB huge, {ns:.1} ns/read"
            );
            t.rows.push(vec![
                name.into(),
                obtained.into(),
                faults.into(),
                lab::round(touch_ms, 1).into(),
                lab::round(huge_mib, 0).into(),
                lab::round(ns, 1).into(),
            ]);
        }
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        let reserved = std::fs::read_to_string("/proc/sys/vm/nr_hugepages").unwrap_or_default();
        t.notes = format!(
            "{} MiB region, every 4 KiB page touched once, then {reads} random 8-byte reads. \
             transparent_hugepage/enabled = {}; vm.nr_hugepages = {} (MAP_HUGETLB needs reserved \
             pages; with none it fails with ENOMEM and the pool falls back to base pages, as \
             reported). Faults are RUSAGE_THREAD minor faults; MAP_POPULATE moves them into mmap \
             (counted here, since it is inside the timed part). {}",
            len >> 20,
            thp.trim(),
            reserved.trim(),
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
