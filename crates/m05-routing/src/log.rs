//! Request logging in the Common Log Format (NCSA httpd, also Apache's `common`):
//!
//! ```text
//! 127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /apache_pb.gif HTTP/1.0" 200 2326
//! host      ident user [time, UTC]           "request line"                 status bytes ("-" if 0)
//! ```
//!
//! Lines go to a [`LogSink`]: [`StderrSink`], [`MemorySink`] (a bounded ring that counts what it
//! drops, for tests and for a server that must never block on logging) or [`NullSink`].

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where log lines go.
pub trait LogSink: Send + Sync {
    /// One line, without the newline.
    fn write_line(&self, line: &str);
}

/// Writes lines to standard error.
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrSink;

impl LogSink for StderrSink {
    fn write_line(&self, line: &str) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "{line}");
    }
}

/// Discards lines.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl LogSink for NullSink {
    fn write_line(&self, _line: &str) {}
}

/// Keeps the last `capacity` lines; older ones are dropped and counted.
#[derive(Debug)]
pub struct MemorySink {
    capacity: usize,
    lines: Mutex<VecDeque<String>>,
    dropped: AtomicU64,
}

impl MemorySink {
    /// A ring of `capacity` lines.
    pub fn new(capacity: usize) -> MemorySink {
        MemorySink {
            capacity: capacity.max(1),
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            dropped: AtomicU64::new(0),
        }
    }

    /// The lines held, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Lines dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl LogSink for MemorySink {
    fn write_line(&self, line: &str) {
        if let Ok(mut l) = self.lines.lock() {
            if l.len() >= self.capacity {
                l.pop_front();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            l.push_back(line.to_owned());
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 → (year, month 1-12, day 1-31) (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `10/Oct/2000:13:55:36 +0000` for `t` (UTC).
pub fn clf_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{d:02}/{}/{y:04}:{:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// One CLF line. The request line is escaped as Apache does (`"` → `\"`, `\` → `\\`,
/// non-printable bytes → `\xHH`), so a hostile target cannot forge log fields or lines.
pub fn clf_line(
    host: IpAddr,
    time: SystemTime,
    method: &str,
    target: &str,
    version: &str,
    status: u16,
    bytes: u64,
) -> String {
    let mut line = String::with_capacity(64 + target.len());
    let _ = write!(line, "{host} - - [{}] \"{method} ", clf_time(time));
    for b in target.bytes() {
        match b {
            b'"' => line.push_str("\\\""),
            b'\\' => line.push_str("\\\\"),
            0x20..=0x7e => line.push(b as char),
            _ => {
                let _ = write!(line, "\\x{b:02x}");
            }
        }
    }
    let _ = write!(line, " {version}\" {status} ");
    if bytes == 0 {
        line.push('-');
    } else {
        let _ = write!(line, "{bytes}");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn test_clf_line_matches_apache_example() {
        // 2000-10-10 13:55:36 UTC = 971186136.
        let t = UNIX_EPOCH + Duration::from_secs(971_186_136);
        let line = clf_line(
            "127.0.0.1".parse().unwrap(),
            t,
            "GET",
            "/apache_pb.gif",
            "HTTP/1.0",
            200,
            2326,
        );
        assert_eq!(
            line,
            "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /apache_pb.gif HTTP/1.0\" 200 2326"
        );
    }

    #[test]
    fn test_clf_escapes_quotes_and_zero_bytes_dash() {
        let line = clf_line(
            "::1".parse().unwrap(),
            UNIX_EPOCH,
            "GET",
            "/a\"b\x01",
            "HTTP/1.0",
            404,
            0,
        );
        assert!(
            line.ends_with("\"GET /a\\\"b\\x01 HTTP/1.0\" 404 -"),
            "{line}"
        );
        assert!(line.contains("[01/Jan/1970:00:00:00 +0000]"));
    }

    #[test]
    fn test_leap_day_date() {
        // 2024-02-29 12:00:00 UTC = 1709208000.
        let t = UNIX_EPOCH + Duration::from_secs(1_709_208_000);
        assert_eq!(clf_time(t), "29/Feb/2024:12:00:00 +0000");
    }

    #[test]
    fn test_memory_sink_drops_oldest_when_full() {
        let s = MemorySink::new(2);
        for l in ["a", "b", "c"] {
            s.write_line(l);
        }
        assert_eq!(s.lines(), vec!["b", "c"]);
        assert_eq!(s.dropped(), 1);
    }
}
