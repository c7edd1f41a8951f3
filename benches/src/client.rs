//! The client engine: `--threads` OS threads, each running its own mio event loop over its
//! share of the connections.
//!
//! Hot path, per thread: one read buffer for all connections, one pre-built write buffer
//! holding the request repeated `pipeline` times (any run of queued requests is a suffix of it,
//! so a connection only keeps a byte count of what it still has to write), one fixed ring of
//! send times per connection, one HdrHistogram. Nothing is allocated per request.
//!
//! Closed loop: each connection keeps `pipeline` requests in flight and refills its window
//! as responses come back (all responses parsed from one read are answered by one write).
//!
//! Open loop: request `k` of a thread is *intended* at `origin + k / rate` and belongs to
//! connection `k mod n`. A connection sends its due requests as long as its window has room;
//! requests it cannot send yet stay queued by schedule (implicitly: the connection's next
//! sequence number lags the clock), and each latency is measured from the intended time, so a
//! stalled server shows up in the percentiles instead of silently slowing the load down
//! (coordinated omission, as wrk2 avoids it). A `timerfd` wakes the loop at the next intended
//! time with microsecond precision (epoll's own timeout has millisecond granularity).

use crate::config::{ConfigError, LoadConfig, PipelineMode, Scenario};
use crate::report::Report;
use crate::stats::{ErrorKind, Stats};
use crate::sys;
use crate::wire::{Decoder, Progress, ResponseParser, build_http_request};
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Why a run could not be carried out (peer failures are counted in the report instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Creating a thread's event loop or timer failed.
    #[error("client thread {thread}: cannot set up its event loop: {source}")]
    Setup {
        /// Thread index.
        thread: usize,
        /// The OS error.
        source: io::Error,
    },
    /// `sched_setaffinity` refused the requested CPU.
    #[error("client thread {thread}: cannot pin to CPU {cpu}: {source}")]
    Pin {
        /// Thread index.
        thread: usize,
        /// CPU asked for.
        cpu: usize,
        /// The OS error.
        source: io::Error,
    },
    /// Polling failed in a client thread.
    #[error("client thread {thread}: event loop failed: {source}")]
    Poll {
        /// Thread index.
        thread: usize,
        /// The OS error.
        source: io::Error,
    },
    /// A client thread panicked (a bug; the message is in stderr).
    #[error("a client thread panicked")]
    ThreadPanicked,
}

/// Read buffer per thread.
const READ_BUF: usize = 256 * 1024;
/// How often idle connections are retried and timeouts checked.
const SCAN_EVERY: Duration = Duration::from_millis(10);
/// Smallest spacing of open-loop timer wake-ups (batches slots closer than this).
const TIMER_SLACK: Duration = Duration::from_micros(20);
/// First back-off after a failed connect; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(1);
const MAX_BACKOFF: Duration = Duration::from_millis(250);
const TIMER_TOKEN: Token = Token(usize::MAX - 1);

/// Run a load as configured and return what it measured. Validates the configuration first;
/// returns when the duration bound (after the warm-up) has passed or the request cap is served.
pub fn run(config: &LoadConfig) -> Result<Report, RunError> {
    config.validate()?;
    let plan = Plan::new(config);
    let threads = config.threads;
    let results: Vec<Result<(Stats, Instant), RunError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let plan = &plan;
                std::thread::Builder::new()
                    .name(format!("zyphos-load-{t}"))
                    .spawn_scoped(s, move || Worker::run_thread(plan, t))
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(thread, h)| match h {
                Ok(h) => h.join().unwrap_or(Err(RunError::ThreadPanicked)),
                Err(source) => Err(RunError::Setup { thread, source }),
            })
            .collect()
    });
    let mut total = Stats::new();
    let mut finished = plan.measure_start;
    for r in results {
        let (stats, at) = r?;
        total.merge(&stats);
        finished = finished.max(at);
    }
    let mut report = Report {
        scenario: config.scenario.name().to_owned(),
        target: config.target.to_string(),
        connections: config.connections as u64,
        threads: config.threads as u64,
        pipeline: config.pipeline as u64,
        pipeline_mode: config.pipeline_mode.name().to_owned(),
        mode: config.mode_name().to_owned(),
        target_rate: config.rate,
        warmup_s: config.warmup.as_secs_f64(),
        ..Report::default()
    };
    let duration = finished.saturating_duration_since(plan.measure_start);
    total.fill(&mut report, duration.as_secs_f64());
    Ok(report)
}

/// Read-only facts shared by all threads of a run.
struct Plan<'a> {
    config: &'a LoadConfig,
    /// One request (or echo message) repeated `pipeline` times.
    batch: Vec<u8>,
    req_len: usize,
    keep_alive: bool,
    start: Instant,
    measure_start: Instant,
    end: Instant,
}

impl<'a> Plan<'a> {
    fn new(config: &'a LoadConfig) -> Plan<'a> {
        let one = match config.scenario {
            Scenario::Echo => (0..config.message_size)
                .map(|i| b'a' + (i % 26) as u8)
                .collect(),
            Scenario::Http10 | Scenario::Http11 => build_http_request(
                &config.method,
                &config.path,
                &config.host,
                &config.headers,
                config.scenario == Scenario::Http10,
            ),
        };
        let batch = one.repeat(config.pipeline);
        let start = Instant::now();
        let measure_start = start + config.warmup;
        Plan {
            config,
            req_len: one.len(),
            batch,
            keep_alive: config.scenario != Scenario::Http10,
            start,
            measure_start,
            end: measure_start + config.duration,
        }
    }

    fn decoder(&self) -> Decoder {
        match self.config.scenario {
            Scenario::Echo => Decoder::Echo {
                size: self.config.message_size,
                remaining: self.config.message_size,
            },
            Scenario::Http10 | Scenario::Http11 => {
                Decoder::Http(ResponseParser::new(&self.config.method))
            }
        }
    }
}

/// Send times of a connection's unanswered requests, oldest first, in fixed storage.
#[derive(Debug)]
struct Ring {
    slots: Box<[Instant]>,
    head: usize,
    len: usize,
}

impl Ring {
    fn new(cap: usize, fill: Instant) -> Ring {
        Ring {
            slots: vec![fill; cap.max(1)].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.len == self.slots.len()
    }

    fn push(&mut self, t: Instant) {
        debug_assert!(!self.is_full(), "callers check the window first");
        if self.is_full() {
            return;
        }
        let mut i = self.head + self.len;
        if i >= self.slots.len() {
            i -= self.slots.len();
        }
        self.slots[i] = t;
        self.len += 1;
    }

    fn pop(&mut self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        let t = self.slots[self.head];
        self.head += 1;
        if self.head == self.slots.len() {
            self.head = 0;
        }
        self.len -= 1;
        Some(t)
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No socket; (re)connect at or after `retry_at`.
    Idle { retry_at: Instant },
    /// Non-blocking connect under way since `since`.
    Connecting { since: Instant },
    /// Established.
    Open,
}

#[derive(Debug)]
struct Conn {
    stream: Option<TcpStream>,
    phase: Phase,
    decoder: Decoder,
    /// Start times (send or intended) of unanswered requests; the newest ones may be unsent.
    ring: Ring,
    /// Bytes of the queued requests not yet written.
    unsent: usize,
    /// Open loop: this connection's next schedule slot.
    next_seq: u64,
    /// Last time the connection made progress (connected, sent into an empty window, got a
    /// response); the per-request timeout counts from here.
    last_progress: Instant,
    backoff: Duration,
    source: Option<IpAddr>,
    /// Listed in `Worker::answered` (to be refilled after this batch of events).
    answered: bool,
}

/// Open-loop schedule of one thread.
#[derive(Debug)]
struct Schedule {
    origin: Instant,
    /// Nanoseconds between consecutive slots of this thread.
    interval_ns: f64,
    /// First slot not yet dispatched.
    next_slot: u64,
}

impl Schedule {
    fn slot_time(&self, k: u64) -> Instant {
        self.origin + Duration::from_nanos((k as f64 * self.interval_ns) as u64)
    }
}

/// Outcome of feeding one read to a connection's decoder.
enum Fed {
    /// Keep reading.
    More,
    /// The server announced a close (or HTTP/1.0 response done): close gracefully.
    Close,
    /// Failed with this kind.
    Fail(ErrorKind),
}

struct Worker<'p, 'c> {
    plan: &'p Plan<'c>,
    poll: Poll,
    conns: Vec<Conn>,
    stats: Stats,
    rbuf: Box<[u8]>,
    measuring: bool,
    /// This thread's share of `--requests`.
    cap: Option<u64>,
    /// Measured requests issued so far.
    issued: u64,
    /// Requests in all rings.
    outstanding: u64,
    last_completion: Instant,
    schedule: Option<Schedule>,
    timer: Option<sys::TimerFd>,
    timer_armed_for: Option<Instant>,
    /// `PipelineMode::Batch`.
    batch_mode: bool,
    /// Connections that read responses during the current batch of events.
    answered: Vec<usize>,
}

impl<'p, 'c> Worker<'p, 'c> {
    fn run_thread(plan: &'p Plan<'c>, thread: usize) -> Result<(Stats, Instant), RunError> {
        let config = plan.config;
        if !config.cpus.is_empty() {
            let cpu = config.cpus[thread % config.cpus.len()];
            sys::pin_current_thread(&[cpu]).map_err(|source| RunError::Pin {
                thread,
                cpu,
                source,
            })?;
        }
        let mut w =
            Worker::new(plan, thread).map_err(|source| RunError::Setup { thread, source })?;
        w.event_loop()
            .map_err(|source| RunError::Poll { thread, source })?;
        let finished = if w.cap.is_some() && w.done() {
            w.last_completion.max(plan.measure_start)
        } else {
            plan.end
        };
        Ok((w.stats, finished))
    }

    fn new(plan: &'p Plan<'c>, thread: usize) -> io::Result<Worker<'p, 'c>> {
        let config = plan.config;
        let t = thread;
        let threads = config.threads;
        let now = Instant::now();
        let conns: Vec<Conn> = (t..config.connections)
            .step_by(threads)
            .map(|g| Conn {
                stream: None,
                phase: Phase::Idle { retry_at: now },
                decoder: plan.decoder(),
                ring: Ring::new(config.pipeline, now),
                unsent: 0,
                next_seq: 0,
                last_progress: now,
                backoff: MIN_BACKOFF,
                answered: false,
                source: (!config.source_ips.is_empty())
                    .then(|| config.source_ips[g % config.source_ips.len()]),
            })
            .collect();
        let cap = config.requests.map(|n| {
            let (q, r) = (n / threads as u64, n % threads as u64);
            q + u64::from((t as u64) < r)
        });
        let poll = Poll::new()?;
        let conns_len = conns.len();
        let (schedule, timer) = match config.rate {
            Some(rate) => {
                let share = conns.len() as f64 / config.connections as f64;
                let thread_rate = rate * share;
                let timer = sys::TimerFd::new()?;
                poll.registry().register(
                    &mut SourceFd(&timer.raw_fd()),
                    TIMER_TOKEN,
                    Interest::READABLE,
                )?;
                let schedule = Schedule {
                    origin: plan.start + Duration::from_secs_f64(t as f64 / rate),
                    interval_ns: 1e9 / thread_rate,
                    next_slot: 0,
                };
                (Some(schedule), Some(timer))
            }
            None => (None, None),
        };
        Ok(Worker {
            plan,
            poll,
            conns,
            stats: Stats::new(),
            rbuf: vec![0u8; READ_BUF].into_boxed_slice(),
            measuring: plan.config.warmup.is_zero(),
            cap,
            issued: 0,
            outstanding: 0,
            last_completion: plan.start,
            schedule,
            timer,
            timer_armed_for: None,
            batch_mode: config.pipeline_mode == PipelineMode::Batch,
            answered: Vec::with_capacity(conns_len),
        })
    }

    /// The request cap is reached and every request is answered (or failed).
    fn done(&self) -> bool {
        self.cap.is_some_and(|c| self.issued >= c) && self.outstanding == 0
    }

    fn event_loop(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let now = Instant::now();
        for i in 0..self.conns.len() {
            self.kick_idle(i, now);
        }
        let mut next_scan = now + SCAN_EVERY;
        loop {
            let now = Instant::now();
            if !self.measuring && now >= self.plan.measure_start {
                self.stats.reset();
                self.measuring = true;
            }
            if now >= self.plan.end || self.done() {
                return Ok(());
            }
            if now >= next_scan {
                self.scan(now);
                next_scan = now + SCAN_EVERY;
            }
            if self.schedule.is_some() {
                self.dispatch(now);
            }
            let mut wake = self.plan.end.min(next_scan);
            if !self.measuring {
                wake = wake.min(self.plan.measure_start);
            }
            if let Some(s) = &self.schedule {
                let due = s.slot_time(s.next_slot).max(now + TIMER_SLACK);
                if due < wake {
                    wake = due;
                    if self.timer_armed_for != Some(wake) {
                        if let Some(timer) = &self.timer {
                            timer.arm(wake.saturating_duration_since(now))?;
                        }
                        self.timer_armed_for = Some(wake);
                    }
                }
            }
            let timeout = wake.saturating_duration_since(now);
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                let token = ev.token();
                if token == TIMER_TOKEN {
                    if let Some(timer) = &self.timer {
                        timer.clear();
                    }
                    self.timer_armed_for = None;
                    continue;
                }
                let i = token.0;
                if i >= self.conns.len() {
                    continue;
                }
                let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                self.on_event(i, readable, ev.is_writable(), ev.is_read_closed());
            }
            self.flush_answered();
        }
    }

    /// Refill and write every connection that got responses in this batch of events. Doing it
    /// after the whole batch (as wrk does) hands the server its next requests in bursts rather
    /// than one at a time, which is cheaper for it: fewer wake-ups, more work per `epoll_wait`.
    fn flush_answered(&mut self) {
        if self.answered.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut answered = std::mem::take(&mut self.answered);
        for &i in &answered {
            self.conns[i].answered = false;
            if self.conns[i].phase == Phase::Open {
                if self.plan.keep_alive {
                    self.fill(i, now);
                }
                self.flush(i);
            }
        }
        answered.clear();
        self.answered = answered;
    }

    fn on_event(&mut self, i: usize, readable: bool, writable: bool, read_closed: bool) {
        match self.conns[i].phase {
            Phase::Idle { .. } => {}
            Phase::Connecting { .. } => {
                self.check_connect(i);
                // The same edge may carry data already; it will not be reported again.
                if readable && self.conns[i].phase == Phase::Open {
                    self.on_readable(i, read_closed);
                }
            }
            Phase::Open => {
                if readable {
                    self.on_readable(i, read_closed);
                }
                if writable && self.conns[i].phase == Phase::Open {
                    self.flush(i);
                }
            }
        }
    }

    /// Every `SCAN_EVERY`: retry idle connections whose back-off has passed, enforce timeouts.
    fn scan(&mut self, now: Instant) {
        let timeout = self.plan.config.timeout;
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            match c.phase {
                Phase::Idle { retry_at } if retry_at <= now => self.kick_idle(i, now),
                Phase::Idle { .. } => {}
                Phase::Connecting { since } => {
                    if now.saturating_duration_since(since) > timeout {
                        self.fail(i, ErrorKind::Timeout, now);
                    }
                }
                Phase::Open => {
                    if c.ring.len > 0 && now.saturating_duration_since(c.last_progress) > timeout {
                        self.fail(i, ErrorKind::Timeout, now);
                    }
                }
            }
        }
    }

    /// Open loop: hand newly due slots to their connections.
    fn dispatch(&mut self, now: Instant) {
        let Some(s) = &mut self.schedule else { return };
        if now < s.origin {
            return;
        }
        let elapsed = now.duration_since(s.origin).as_nanos() as f64;
        let due = (elapsed / s.interval_ns) as u64 + 1;
        if due <= s.next_slot {
            return;
        }
        let n = self.conns.len() as u64;
        let first = s.next_slot;
        s.next_slot = due;
        if due - first >= n {
            for i in 0..self.conns.len() {
                self.offer(i, now);
            }
        } else {
            for k in first..due {
                self.offer((k % n) as usize, now);
            }
        }
    }

    /// Open loop: connection `i` has (or may have) due requests.
    fn offer(&mut self, i: usize, now: Instant) {
        match self.conns[i].phase {
            Phase::Open => {
                self.fill(i, now);
                self.flush(i);
            }
            Phase::Idle { retry_at } if retry_at <= now => self.kick_idle(i, now),
            _ => {}
        }
    }

    /// The start time of the next request connection `i` may issue now, if any.
    fn next_start(&self, i: usize, now: Instant) -> Option<Instant> {
        let c = &self.conns[i];
        let t = match &self.schedule {
            Some(s) => {
                let k = c.next_seq * self.conns.len() as u64 + i as u64;
                let t = s.slot_time(k);
                if t > now {
                    return None;
                }
                t
            }
            None => now,
        };
        let measured = t >= self.plan.measure_start;
        if measured && self.cap.is_some_and(|cap| self.issued >= cap) {
            return None;
        }
        Some(t)
    }

    /// Queue as many requests as the window, the schedule and the cap allow.
    fn fill(&mut self, i: usize, now: Instant) {
        if self.batch_mode && self.conns[i].ring.len > 0 {
            // Batch pipelining: the next batch waits for every response of this one.
            return;
        }
        while !self.conns[i].ring.is_full() {
            let Some(t) = self.next_start(i, now) else {
                break;
            };
            let req_len = self.plan.req_len;
            let c = &mut self.conns[i];
            if c.ring.len == 0 {
                c.last_progress = now;
            }
            c.ring.push(t);
            c.unsent += req_len;
            if self.schedule.is_some() {
                c.next_seq += 1;
            }
            if t >= self.plan.measure_start {
                self.issued += 1;
            }
            self.outstanding += 1;
        }
    }

    /// An idle connection: connect now (keep-alive), or queue its one request first
    /// (HTTP/1.0, whose connect time is part of the request).
    fn kick_idle(&mut self, i: usize, now: Instant) {
        if !matches!(self.conns[i].phase, Phase::Idle { .. }) {
            return;
        }
        if self.plan.keep_alive {
            // Closed loop with the cap reached and nothing to resend: stay idle.
            let nothing_to_do = self.schedule.is_none()
                && self.conns[i].ring.len == 0
                && self.next_start(i, now).is_none();
            if nothing_to_do {
                return;
            }
        } else {
            if self.conns[i].ring.len == 0 {
                self.fill(i, now);
            }
            if self.conns[i].ring.len == 0 {
                return;
            }
        }
        self.start_connect(i, now);
    }

    fn start_connect(&mut self, i: usize, now: Instant) {
        let target = self.plan.config.target;
        match connect_socket(target, self.conns[i].source) {
            Ok(mut stream) => {
                if let Err(_e) = self.poll.registry().register(
                    &mut stream,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    self.fail(i, ErrorKind::Io, now);
                    return;
                }
                let c = &mut self.conns[i];
                c.stream = Some(stream);
                c.phase = Phase::Connecting { since: now };
            }
            Err(_) => self.fail(i, ErrorKind::Connect, now),
        }
    }

    /// A connecting socket reported readiness: established, failed, or spurious.
    fn check_connect(&mut self, i: usize) {
        let now = Instant::now();
        let Some(stream) = self.conns[i].stream.as_ref() else {
            return;
        };
        match stream.take_error() {
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => return self.fail(i, ErrorKind::Connect, now),
        }
        match stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
            Err(_) => return self.fail(i, ErrorKind::Connect, now),
        }
        let req_len = self.plan.req_len;
        let c = &mut self.conns[i];
        c.phase = Phase::Open;
        c.backoff = MIN_BACKOFF;
        c.last_progress = now;
        // Requests left unanswered by a graceful close are sent again, with their start times.
        c.unsent = c.ring.len * req_len;
        if self.plan.keep_alive {
            self.fill(i, now);
        }
        self.flush(i);
    }

    fn on_readable(&mut self, i: usize, read_closed: bool) {
        loop {
            let Some(stream) = self.conns[i].stream.as_mut() else {
                return;
            };
            match stream.read(&mut self.rbuf) {
                Ok(0) => return self.on_eof(i),
                Ok(n) => {
                    self.stats.bytes_read += n as u64;
                    let now = Instant::now();
                    match self.feed(i, n, now) {
                        Fed::More => {}
                        Fed::Close => return self.close_gracefully(i, now),
                        Fed::Fail(kind) => return self.fail(i, kind, now),
                    }
                    // A short read drained the socket: the next arrival raises a new edge.
                    if n < self.rbuf.len() && !read_closed {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(i, ErrorKind::from_io(&e), Instant::now()),
            }
        }
        // Refill after the whole batch of events: see `flush_answered`.
        let c = &mut self.conns[i];
        if !c.answered {
            c.answered = true;
            self.answered.push(i);
        }
    }

    /// Parse `rbuf[..n]` as responses of connection `i`.
    fn feed(&mut self, i: usize, n: usize, now: Instant) -> Fed {
        let plan = self.plan;
        let (measure_start, req_len) = (plan.measure_start, plan.req_len);
        let Worker {
            conns,
            rbuf,
            stats,
            outstanding,
            last_completion,
            ..
        } = self;
        let c = &mut conns[i];
        let data = &rbuf[..n];
        let mut pos = 0;
        while pos < data.len() {
            match c.decoder.feed(&data[pos..]) {
                Ok(Progress::Complete { used, response }) => {
                    pos += used;
                    let Some(start) = c.ring.pop() else {
                        return Fed::Fail(ErrorKind::Parse);
                    };
                    if c.unsent > c.ring.len * req_len {
                        // Answer to a request we have not finished sending.
                        return Fed::Fail(ErrorKind::Parse);
                    }
                    *outstanding -= 1;
                    c.last_progress = now;
                    *last_completion = now;
                    if start >= measure_start {
                        stats.requests += 1;
                        stats
                            .record_latency(now.saturating_duration_since(start).as_nanos() as u64);
                        if !(200..400).contains(&response.status) {
                            stats.error(ErrorKind::BadStatus);
                        }
                    }
                    if response.close || !plan.keep_alive {
                        return Fed::Close;
                    }
                }
                Ok(Progress::Partial) => break,
                Err(_) => return Fed::Fail(ErrorKind::Parse),
            }
        }
        Fed::More
    }

    fn on_eof(&mut self, i: usize) {
        let now = Instant::now();
        let c = &mut self.conns[i];
        if let Some(response) = c.decoder.finish() {
            // A body delimited by the close: complete it.
            if let Some(start) = c.ring.pop() {
                self.outstanding -= 1;
                self.last_completion = now;
                if start >= self.plan.measure_start {
                    self.stats.requests += 1;
                    self.stats
                        .record_latency(now.saturating_duration_since(start).as_nanos() as u64);
                    if !(200..400).contains(&response.status) {
                        self.stats.error(ErrorKind::BadStatus);
                    }
                }
                return self.close_gracefully(i, now);
            }
            return self.fail(i, ErrorKind::Parse, now);
        }
        let written = c.ring.len * self.plan.req_len > c.unsent;
        if !written && c.decoder.is_idle() {
            // The server closed a connection with nothing outstanding: just reconnect.
            return self.close_gracefully(i, now);
        }
        self.fail(i, ErrorKind::Eof, now);
    }

    /// Drop the socket after a graceful close; unanswered requests stay queued for the next
    /// connection, which is opened right away.
    fn close_gracefully(&mut self, i: usize, now: Instant) {
        let c = &mut self.conns[i];
        c.stream = None;
        c.decoder.reset();
        c.unsent = 0;
        c.phase = Phase::Idle { retry_at: now };
        self.kick_idle(i, now);
    }

    /// Count an error, drop the connection and its outstanding requests, retry later.
    fn fail(&mut self, i: usize, kind: ErrorKind, now: Instant) {
        self.stats.error(kind);
        let c = &mut self.conns[i];
        self.outstanding -= c.ring.len as u64;
        c.ring.clear();
        c.stream = None;
        c.decoder.reset();
        c.unsent = 0;
        let retry_at = if kind == ErrorKind::Connect {
            let at = now + c.backoff;
            c.backoff = (c.backoff * 2).min(MAX_BACKOFF);
            at
        } else {
            now
        };
        c.phase = Phase::Idle { retry_at };
        if retry_at <= now {
            self.kick_idle(i, now);
        }
    }

    /// Write queued request bytes until done or the socket is full.
    fn flush(&mut self, i: usize) {
        let plan = self.plan;
        let batch = &plan.batch;
        loop {
            let c = &mut self.conns[i];
            if c.unsent == 0 || c.phase != Phase::Open {
                return;
            }
            let Some(stream) = c.stream.as_mut() else {
                return;
            };
            let from = batch.len().saturating_sub(c.unsent);
            match stream.write(&batch[from..]) {
                Ok(0) => return self.fail(i, ErrorKind::Io, Instant::now()),
                Ok(n) => {
                    c.unsent -= n;
                    self.stats.bytes_written += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(i, ErrorKind::from_io(&e), Instant::now()),
            }
        }
    }
}

/// A non-blocking TCP socket, optionally bound to `source` (with `IP_BIND_ADDRESS_NO_PORT`, so
/// the port is picked at connect time), with the connect under way.
fn connect_socket(target: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    socket.set_nodelay(true)?;
    if let Some(ip) = source {
        sys::set_bind_address_no_port(socket.as_raw_fd())?;
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_ring_wraps_in_order() {
        let t0 = Instant::now();
        let mut r = Ring::new(3, t0);
        let ts: Vec<Instant> = (0..10).map(|i| t0 + Duration::from_millis(i)).collect();
        let mut next = 0;
        for (k, &t) in ts.iter().enumerate() {
            r.push(t);
            if r.is_full() || k == ts.len() - 1 {
                while let Some(got) = r.pop() {
                    assert_eq!(got, ts[next]);
                    next += 1;
                }
            }
        }
        assert_eq!(next, ts.len());
    }

    #[test]
    fn test_schedule_slot_times_are_evenly_spaced() {
        let origin = Instant::now();
        let s = Schedule {
            origin,
            interval_ns: 250_000.0,
            next_slot: 0,
        };
        assert_eq!(s.slot_time(4) - origin, Duration::from_millis(1));
    }
}
