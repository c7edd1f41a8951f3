//! Exit check `parse_rate_single_thread`: parser-only throughput on one thread, the
//! browser-like request (15 headers), at full size (5 rounds of ≥ 200 ms). Prints
//! `{"measured": requests/s, ...}`.

use std::time::Duration;

use m04_http10::lab::{self, cost, generate};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let input = generate::browser();
        let c = cost::measure(cost::ours, &input, 5, Duration::from_millis(200));
        let rate = 1e9 / c.ns_per_request;
        eprintln!("{:.0} ns/request, {:.0} requests/s", c.ns_per_request, rate);
        lab::print_measured(
            lab::round(rate, 0),
            "requests/s",
            &format!(
                "browser-like request ({} bytes, 15 headers), one thread, median of 5 rounds: {:.1} ns/request; {}",
                input.len(),
                c.ns_per_request,
                lab::machine()
            ),
        );
        Ok(())
    })
}
