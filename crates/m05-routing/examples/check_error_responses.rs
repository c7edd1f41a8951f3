//! Exit check `error_handling_suite`: 404, 405 + Allow, bad escapes → 400, oversized query →
//! 414, traversal (`..`, `%2e%2e`, `%2f`, symlinks out of the root) blocked, redirect loops
//! (registration and run time), handler panic → 500 and counted — every case as bytes through a
//! real `Http10Session` driven by m03's `PipeDriver` (short reads/writes on half of them).
//! Prints `{"pass", "detail"}`.

use m05_routing::lab::{self, suite};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        // The suite's panicking handler would print a backtrace banner; keep stderr readable.
        std::panic::set_hook(Box::new(|info| eprintln!("(caught) {info}")));
        let cases = suite::error_handling()?;
        let failed: Vec<_> = cases.iter().filter(|c| !c.pass).collect();
        let detail = format!(
            "{} cases, {} failed. {}",
            cases.len(),
            failed.len(),
            cases
                .iter()
                .map(|c| format!(
                    "{}: {} → {}",
                    if c.pass { "ok" } else { "FAIL" },
                    c.name,
                    c.detail.trim()
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
        lab::print_check(failed.is_empty(), &detail);
        Ok(())
    })
}
