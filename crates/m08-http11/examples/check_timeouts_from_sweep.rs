//! Exit check `timeouts_from_sweep`: the shipped idle/header/request timeouts equal what the
//! full-size sweep picks by the rule in `m08_http11::sweep` (and the write-up).

use m08_http11::Http11Config;
use m08_http11::lab::{print_check, run_main};
use m08_http11::sweep::{CLIENTS, sweep};

fn main() -> std::process::ExitCode {
    run_main(|| {
        let (_, _, picks) = sweep(CLIENTS);
        let shipped = Http11Config::default();
        let pass = picks.idle == shipped.idle_timeout
            && picks.header == shipped.header_timeout
            && picks.request == shipped.request_timeout;
        print_check(
            pass,
            &format!(
                "sweep picks idle {:?} header {:?} request {:?}; shipped idle {:?} header {:?} request {:?} ({CLIENTS} clients per candidate)",
                picks.idle,
                picks.header,
                picks.request,
                shipped.idle_timeout,
                shipped.header_timeout,
                shipped.request_timeout
            ),
        );
        Ok(())
    })
}
