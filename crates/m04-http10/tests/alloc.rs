//! Parsing allocates nothing: a counting global allocator around parse, lookups and iteration.

use m04_http10::lab::CountingAlloc;
use m04_http10::{Limits, Mode, Parser, Status, TransitionCounts};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const INPUTS: &[&[u8]] = &[
    b"GET / HTTP/1.0\r\n\r\n",
    b"POST /form?x=1 HTTP/1.0\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    b"GET /pub/WWW/TheProject.html HTTP/1.0\r\nHost: www.w3.org\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: text/html,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nCookie: a=b; c=d\r\n\r\n",
    b"GET / HTTP/1.0\r\nBad Header: x\r\n\r\n",
    b"GET / HTTP/1.0\r\nX: a\r\n b\r\n\r\n",
    b"GET /partial HTTP/1.0\r\nHost: a",
];

#[test]
fn test_parse_allocates_nothing() {
    let parsers = [
        Parser::default(),
        Parser::new(Limits::default(), Mode::Rfc1945),
    ];
    // Warm up anything lazily initialised (thread-locals of the test harness).
    let _ = parsers[0].parse(INPUTS[0]);
    let mut counts = TransitionCounts::default();
    let (before, bytes_before) = CountingAlloc::thread_counts();
    let mut seen = 0usize;
    for _ in 0..1000 {
        for p in &parsers {
            for input in INPUTS {
                match p.parse(input) {
                    Ok(Status::Complete(r)) => {
                        seen += r.header("host").map_or(0, <[u8]>::len);
                        seen += r.headers().count() + r.body().len() + r.path().len();
                    }
                    Ok(Status::Partial) => seen += 1,
                    Err(e) => seen += e.status() as usize,
                }
                let _ = p.parse_traced(input, &mut counts);
            }
        }
    }
    let (after, bytes_after) = CountingAlloc::thread_counts();
    assert!(seen > 0);
    assert_eq!(
        after - before,
        0,
        "parsing allocated {} times",
        after - before
    );
    assert_eq!(bytes_after - bytes_before, 0);
    // The counter does see allocations (the test is not vacuous).
    let v: Vec<u8> = Vec::with_capacity(64);
    let (after_vec, _) = CountingAlloc::thread_counts();
    assert_eq!(after_vec - after, 1);
    drop(v);
}
