//! Experiment `write_methods`: `send` vs `write` vs `writev`, and header + body as two `send`s,
//! one `writev` of two buffers, or a copy into one buffer and one `send`.

use m01_raw_sockets::lab;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        lab::cost::write_methods_table(lab::quick())?.print();
        Ok(())
    })
}
