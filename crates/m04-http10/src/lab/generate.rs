//! Seeded request generator for the differential test, benchmarks and experiments.

/// xorshift64*: deterministic and dependency-free.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced by 1).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `p_percent`/100.
    pub fn chance(&mut self, p_percent: usize) -> bool {
        self.below(100) < p_percent
    }

    /// One element of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const NAMES: &[&str] = &[
    "Host",
    "User-Agent",
    "Accept",
    "Accept-Language",
    "Accept-Encoding",
    "Referer",
    "Cookie",
    "Connection",
    "Cache-Control",
    "If-Modified-Since",
    "X-Forwarded-For",
    "X-Request-Id",
    "Authorization",
    "Pragma",
    "DNT",
    "Upgrade-Insecure-Requests",
    "Sec-Fetch-Mode",
    "From",
];

const PATH_CHARS: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@";
const VALUE_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.,;:=/()*?\"'<>[]{}@!#$%&+^`|~\\";
const NAME_CHARS: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!#$%&'*+.^`|~";

fn token(rng: &mut Rng, alphabet: &[u8], len: usize) -> String {
    (0..len).map(|_| *rng.pick(alphabet) as char).collect()
}

/// A valid request with `headers` header fields and a body of `body` bytes (POST when
/// `body > 0`, else a random bodiless method).
pub fn request(rng: &mut Rng, headers: usize, body: usize) -> Vec<u8> {
    let method = if body > 0 {
        *rng.pick(&["POST", "PUT"])
    } else {
        *rng.pick(&["GET", "GET", "GET", "HEAD", "DELETE", "OPTIONS", "TRACE"])
    };
    let mut target = String::new();
    for _ in 0..1 + rng.below(4) {
        target.push('/');
        let len = rng.below(12);
        target.push_str(&token(rng, PATH_CHARS, len));
        if rng.chance(10) {
            target.push_str("%2F");
        }
    }
    if rng.chance(30) {
        target.push('?');
        let len = 1 + rng.below(20);
        target.push_str(&token(rng, PATH_CHARS, len));
    }
    let version = if rng.chance(50) {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    let mut out = format!("{method} {target} {version}\r\n").into_bytes();
    for i in 0..headers {
        let name = if rng.chance(70) {
            (*rng.pick(NAMES)).to_owned()
        } else {
            let len = 1 + rng.below(16);
            format!("X-{}{}", token(rng, NAME_CHARS, len), i)
        };
        let vlen = rng.below(40);
        let mut value = token(rng, VALUE_CHARS, vlen);
        if rng.chance(5) {
            value.push('\u{e9}'); // obs-text (one byte in latin-1 below)
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        if rng.chance(80) {
            out.push(b' ');
        }
        out.extend(value.chars().map(|c| c as u32 as u8));
        out.extend_from_slice(b"\r\n");
    }
    if body > 0 || (method == "POST" || method == "PUT") {
        out.extend_from_slice(format!("Content-Length: {body}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend((0..body).map(|i| b'a' + (i % 26) as u8));
    out
}

/// The benchmark's small GET (≈ 40 bytes).
pub fn small_get() -> Vec<u8> {
    b"GET /index.html HTTP/1.0\r\nHost: a.example\r\n\r\n".to_vec()
}

/// A browser-like request: 15 header fields, ≈ 700 bytes.
pub fn browser() -> Vec<u8> {
    b"GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n\
Host: www.kittyhell.com\r\n\
User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_6_3; ja-JP-mac; rv:1.9.2.3) Gecko/20100401 Firefox/3.6.3 Pathtraq/0.9\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n\
Accept-Encoding: gzip,deflate\r\n\
Accept-Charset: Shift_JIS,utf-8;q=0.7,*;q=0.7\r\n\
Keep-Alive: 115\r\n\
Connection: keep-alive\r\n\
Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; __utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; __utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com|utmcct=/reader/|utmcmd=referral\r\n\
Referer: http://www.kittyhell.com/\r\n\
Cache-Control: max-age=0\r\n\
DNT: 1\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\r\n"
        .to_vec()
}

/// A request with a few large header values (≈ 6 KiB head).
pub fn large_headers() -> Vec<u8> {
    let mut out = b"GET /api/v1/items?page=2&sort=name HTTP/1.1\r\nHost: api.example\r\n".to_vec();
    for i in 0..4 {
        out.extend_from_slice(format!("X-Trace-{i}: ").as_bytes());
        out.extend((0..1500).map(|j| b'a' + ((i + j) % 26) as u8));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Cookie: ");
    out.extend((0..600).map(|j| if j % 20 == 19 { b';' } else { b'k' }));
    out.extend_from_slice(b"\r\n\r\n");
    out
}

/// One random grammar mutation of `input`: insert, replace or delete a byte (biased towards
/// the bytes that matter to HTTP framing), or swap a delimiter.
pub fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    const INTERESTING: &[u8] = b"\r\n \t:\0\x7f\x01/%?#\"<>@\xff\xe9aZ09-.";
    let mut out = input.to_vec();
    if out.is_empty() {
        out.push(*rng.pick(INTERESTING));
        return out;
    }
    let pos = rng.below(out.len());
    let byte = if rng.chance(70) {
        *rng.pick(INTERESTING)
    } else {
        rng.next_u64() as u8
    };
    match rng.below(3) {
        0 => out.insert(pos, byte),
        1 => out[pos] = byte,
        _ => {
            out.remove(pos);
        }
    }
    out
}
