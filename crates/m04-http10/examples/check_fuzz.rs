//! Exit check `fuzz_http10_crashes`: runs cargo-fuzz target `http10_request` for 300 s (always
//! full size) from a copy of the seed corpus with the HTTP dictionary, then counts crashes,
//! timeouts and OOMs (libFuzzer's artifacts, plus an abnormal exit without one). Prints
//! `{"measured": crashes, ...}`. Fails loudly if cargo-fuzz is missing.

use std::path::Path;

use m04_http10::lab;

const SECONDS: u64 = 300;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let run = lab::fuzz::run_libfuzzer(&root, "http10_request", SECONDS, Some("http.dict"))?;
        lab::print_measured(
            run.failures() as f64,
            "crashes",
            &format!(
                "{SECONDS} s of libFuzzer on http10_request: {} runs, {} crashes, {} timeouts, {} OOMs{}; corpus {} seeds -> {} inputs; {}",
                run.runs,
                run.crashes,
                run.timeouts,
                run.ooms,
                if run.abnormal { ", abnormal exit" } else { "" },
                run.seeds,
                run.corpus,
                lab::machine()
            ),
        );
        Ok(())
    })
}
