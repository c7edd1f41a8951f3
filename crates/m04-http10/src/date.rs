//! `Date` header values in IMF-fixdate (RFC 7231 §7.1.1.1), the RFC 1123 profile of RFC 822's
//! date that RFC 1945 §3.3 prefers: `Sun, 06 Nov 1994 08:49:37 GMT`, always 29 bytes, GMT.
//!
//! Formatting is cheap but not free; a server formats at most once per second per thread
//! ([`DateCache`], and the thread-local cache behind [`http_date`]).

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate.
pub const IMF_FIXDATE_LEN: usize = 29;

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Formats `secs` since the Unix epoch (UTC) as IMF-fixdate. Years past 9999 are clamped to
/// 9999-12-31 23:59:59 (the format has four digits).
pub fn format_imf_fixdate(secs: u64) -> [u8; IMF_FIXDATE_LEN] {
    let secs = secs.min(253_402_300_799); // 9999-12-31T23:59:59Z
    let days = secs / 86_400;
    let sod = secs % 86_400;
    let (h, m, s) = (sod / 3600, (sod % 3600) / 60, sod % 60);
    // Civil from days (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    let two = |v: u64| [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8];
    out[5..7].copy_from_slice(&two(d as u64));
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    let y = year as u64;
    out[12..16].copy_from_slice(&[
        b'0' + (y / 1000 % 10) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
    ]);
    out[17..19].copy_from_slice(&two(h));
    out[20..22].copy_from_slice(&two(m));
    out[23..25].copy_from_slice(&two(s));
    out
}

/// Caches the formatted date of the last second seen.
#[derive(Debug, Clone)]
pub struct DateCache {
    second: u64,
    text: [u8; IMF_FIXDATE_LEN],
    formats: u64,
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache {
            second: 0,
            text: format_imf_fixdate(0),
            formats: 1,
        }
    }
}

impl DateCache {
    /// The IMF-fixdate of `wall`, formatted at most once per second.
    pub fn get(&mut self, wall: SystemTime) -> [u8; IMF_FIXDATE_LEN] {
        let secs = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if secs != self.second {
            self.second = secs;
            self.text = format_imf_fixdate(secs);
            self.formats += 1;
        }
        self.text
    }

    /// How many times it formatted (for the "cached per second" test).
    pub fn formats(&self) -> u64 {
        self.formats
    }
}

thread_local! {
    static CACHE: RefCell<DateCache> = RefCell::new(DateCache::default());
}

/// The IMF-fixdate of `wall`, from this thread's per-second cache.
pub fn http_date(wall: SystemTime) -> [u8; IMF_FIXDATE_LEN] {
    CACHE.with(|c| c.borrow_mut().get(wall))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn test_format_rfc1945_example_date() {
        // RFC 1945 §3.3: "Sun, 06 Nov 1994 08:49:37 GMT    ; RFC 822, updated by RFC 1123"
        assert_eq!(
            &format_imf_fixdate(784_111_777),
            b"Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(&format_imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        // Leap day and end of century.
        assert_eq!(
            &format_imf_fixdate(951_782_400),
            b"Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            &format_imf_fixdate(4_102_444_799),
            b"Thu, 31 Dec 2099 23:59:59 GMT"
        );
    }

    #[test]
    fn test_cache_formats_once_per_second() {
        let mut c = DateCache::default();
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let before = c.formats();
        for ms in 0..1000 {
            assert_eq!(
                &c.get(t + Duration::from_millis(ms)),
                b"Sun, 06 Nov 1994 08:49:37 GMT"
            );
        }
        assert_eq!(c.formats(), before + 1);
        assert_eq!(
            &c.get(t + Duration::from_secs(1)),
            b"Sun, 06 Nov 1994 08:49:38 GMT"
        );
        assert_eq!(c.formats(), before + 2);
    }
}
