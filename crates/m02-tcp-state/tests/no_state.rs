//! A thousand lifecycles leave nothing behind: no table entries, no descriptors. A binary of
//! its own, because the descriptor check counts the whole process's `/proc/self/fd`, and other
//! tests' sockets must not come and go meanwhile.

use std::time::Duration;

use m02_tcp_state::TrackerConfig;
use m02_tcp_state::lab::lifecycle::{self, Kind, Timing};
use m02_tcp_state::lab::{TrackedServer, echo_config};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn test_thousand_lifecycles_leave_no_state() {
    let before_fds = m02_tcp_state::lab::fd_count().unwrap();
    let server = TrackedServer::start(echo_config(), TrackerConfig::default()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|k| {
            let addr = server.addr;
            std::thread::spawn(move || {
                for i in 0..250 {
                    let kind = if i % 5 == 4 {
                        Kind::Reset
                    } else {
                        Kind::Normal
                    };
                    lifecycle::run(kind, addr, &Timing::default(), (k * 250 + i) as u8).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(server.wait_for(
        WAIT,
        |t| t.table().stats(std::time::Instant::now()).released == 1000
    ));
    server.with(|t| {
        let s = t.table().stats(std::time::Instant::now());
        assert_eq!((s.live, s.opened, s.released), (0, 1000, 1000));
        assert_eq!(s.distribution.iter().map(|(_, n)| n).sum::<u32>(), 0);
        assert!(t.table().memory().slots_touched <= 1000);
    });
    let report = server.stop().unwrap();
    assert_eq!(report.counters.accepted, 1000);
    assert_eq!(report.fds.open_at_exit, 0);
    assert!(m02_tcp_state::lab::wait_until(WAIT, || {
        m02_tcp_state::lab::fd_count().is_ok_and(|n| n <= before_fds)
    }));
}
