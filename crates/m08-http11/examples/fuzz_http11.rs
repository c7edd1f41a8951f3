//! Experiment `fuzz_http11`: runs the cargo-fuzz targets of this milestone, `http11_session`
//! (the HTTP/1.1 connection core: same answer however the bytes are cut, refusals mapped to
//! their status, bounded output) and `chunked_body` (the chunked decoder: same verdict however
//! cut, limits at every step, encode/decode round trip), each for 120 s (30 s with `--quick`)
//! from the committed seeds (`fuzz/corpus/<target>/`), and tabulates runs and findings.
//! Exits with an error, keeping the reproducers, if libFuzzer found anything; fails loudly if
//! cargo-fuzz is missing (`cargo xtask setup` installs it).

use std::path::Path;

use m04_http10::lab::fuzz::run_libfuzzer;
use m08_http11::lab::{Table, machine, print_then_fail_on, quick, run_main};

fn main() -> std::process::ExitCode {
    run_main(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let seconds = if quick() { 30 } else { 120 };
        let mut t = Table::new(
            "Fuzzing the HTTP/1.1 core and the chunked decoder (libFuzzer, cargo-fuzz)",
            &[
                "target",
                "seconds",
                "runs",
                "runs/s",
                "crashes",
                "timeouts",
                "OOMs",
                "seeds",
                "corpus after",
            ],
        );
        let mut failures = Vec::new();
        for (target, dict) in [
            ("http11_session", Some("http.dict")),
            ("chunked_body", None),
        ] {
            let run = run_libfuzzer(&root, target, seconds, dict)?;
            t.rows.push(vec![
                target.into(),
                seconds.into(),
                run.runs.into(),
                (run.runs / seconds.max(1)).into(),
                run.crashes.into(),
                run.timeouts.into(),
                run.ooms.into(),
                run.seeds.into(),
                run.corpus.into(),
            ]);
            if run.failures() > 0 {
                failures.push(format!(
                    "{target}: {} finding(s){}, reproducers in {}",
                    run.failures(),
                    if run.abnormal { " (abnormal exit)" } else { "" },
                    run.kept
                        .as_deref()
                        .map_or("?".into(), |p| p.display().to_string())
                ));
            }
        }
        t.notes = format!(
            "Each target's invariants live in m08_http11::fuzz (check_session, check_chunked) and \
             also run in `cargo test` over the seeds (tests/fuzz_corpus.rs). The core is fed \
             whole, in pieces sized from the input with short writes, and byte by byte (inputs \
             up to 512 bytes), under the shipped and tiny limits; the outputs must agree byte \
             for byte (interim 100 Continue aside). The first run found the request-line \
             verdict depending on the cut (400 whole, 505 in pieces): fixed in session.rs \
             `classify`, pinned by test_request_line_ending_verdict_same_however_cut and a \
             regression seed. sanitizer: address (cargo-fuzz default). {}",
            machine()
        );
        print_then_fail_on(&t, &failures)
    })
}
