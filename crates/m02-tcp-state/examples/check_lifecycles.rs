//! Exit check `lifecycles_tracked_correctly`: 1,000 connection lifecycles (normal close,
//! client half-close, RST, keepalive-probed idle, server half-close into TIME-WAIT, FIN-WAIT-2
//! timeout) against milestone 1's echo server with a verifying connection table. Measured: the
//! lifecycles whose server-side path is the one the script must produce and whose table state
//! matched `TCP_INFO` `tcpi_state` at every sample point (threshold ≥ 1,000).

use m02_tcp_state::lab::{self, lifecycle};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let r = lifecycle::run_mix(&lifecycle::THOUSAND, 50)?;
        let kinds: Vec<String> = r
            .by_kind
            .iter()
            .map(|(k, ran, ok)| format!("{k} {ok}/{ran}"))
            .collect();
        let observed: Vec<String> = r
            .observed
            .iter()
            .map(|(f, t, n)| format!("{}→{} ×{n}", f.ident(), t.ident()))
            .collect();
        let detail = format!(
            "{} of {} lifecycles correct ({}); {} kernel samples (TCP_INFO at accept, peer FIN, our FIN, RST/timeout, close), \
             {} disagreed, {} agreed only on re-read (kernel mid-transition), {} events rejected by the model; \
             keepalive: {} of the idle clients received probes; transitions observed: {}; {:.1} s, 50 clients at a time{}",
            r.correct,
            r.planned,
            kinds.join(", "),
            r.samples,
            r.mismatches,
            r.transient,
            r.invalid_events,
            r.keepalive_probed,
            observed.join(", "),
            r.elapsed.as_secs_f64(),
            if r.failures.is_empty() {
                String::new()
            } else {
                format!("; FAILURES: {}", r.failures.join("; "))
            }
        );
        lab::print_check_measured(
            r.correct == r.planned,
            r.correct as f64,
            "lifecycles",
            &detail,
        );
        Ok(())
    })
}
