//! The reactor: "tell me which of these descriptors are ready", behind a small interface.
//!
//! [`Reactor`] is all the event loop asks of the operating system: register a descriptor
//! with an [`Interest`] and a token, change or remove it, and wait for [`Event`]s.
//! [`EpollReactor`] is the lesson: raw `epoll` with both triggering modes and
//! `EPOLLONESHOT`. [`MioReactor`] is the same interface over `mio`, so the loop and its tests
//! build and run where there is no epoll (kqueue on macOS and the BSDs); mio is edge-triggered,
//! so the loop runs it in [`Trigger::Edge`] mode.
//!
//! ```text
//!  level-triggered: ready while data is buffered ─▶ reported at every wait ─▶ read once, come back
//!  edge-triggered:  reported when it *becomes* ready ─▶ read until EAGAIN (or remember to)
//!  oneshot:         reported once, then disarmed until re-armed with MOD (one syscall per event)
//! ```

use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::{AsFd, OwnedFd};
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

#[cfg(target_os = "linux")]
use crate::sys;

/// Readable and/or writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interest {
    /// Wake when there is something to read (or the peer closed).
    pub read: bool,
    /// Wake when the socket accepts more output.
    pub write: bool,
}

impl Interest {
    /// Neither: the descriptor stays registered but reports only errors and hang-ups.
    pub const NONE: Interest = Interest {
        read: false,
        write: false,
    };
    /// Readable only (the common case: output is written at once, not when asked).
    pub const READ: Interest = Interest {
        read: true,
        write: false,
    };
    /// Writable only (the socket's buffer was full and input is paused).
    pub const WRITE: Interest = Interest {
        read: false,
        write: true,
    };
    /// Both.
    pub const BOTH: Interest = Interest {
        read: true,
        write: true,
    };
}

/// Level- or edge-triggered notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Reported at every wait while the condition holds.
    Level,
    /// Reported when the condition becomes true (`EPOLLET`).
    Edge,
}

/// How a descriptor is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Level or edge.
    pub trigger: Trigger,
    /// `EPOLLONESHOT`: disarmed after one report until modified again.
    pub oneshot: bool,
    /// `EPOLLEXCLUSIVE` (listeners shared by several loops: wake one, not all).
    pub exclusive: bool,
}

impl Mode {
    /// Level-triggered, re-armed automatically.
    pub const LEVEL: Mode = Mode {
        trigger: Trigger::Level,
        oneshot: false,
        exclusive: false,
    };
    /// Edge-triggered.
    pub const EDGE: Mode = Mode {
        trigger: Trigger::Edge,
        oneshot: false,
        exclusive: false,
    };
}

/// One readiness report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The token given at registration.
    pub token: u64,
    /// Data (or a FIN) can be read.
    pub readable: bool,
    /// Output can be written.
    pub writable: bool,
    /// The peer shut its sending side (`EPOLLRDHUP`).
    pub read_closed: bool,
    /// Both directions are closed (`EPOLLHUP`).
    pub hangup: bool,
    /// An error is pending on the socket (`EPOLLERR`).
    pub error: bool,
}

/// What the event loop needs from the operating system.
pub trait Reactor {
    /// Starts watching `fd`.
    fn register(&mut self, fd: RawFd, token: u64, interest: Interest, mode: Mode)
    -> io::Result<()>;
    /// Changes what `fd` is watched for (and re-arms a oneshot registration).
    fn modify(&mut self, fd: RawFd, token: u64, interest: Interest, mode: Mode) -> io::Result<()>;
    /// Stops watching `fd` (closing the descriptor also does, for epoll).
    fn deregister(&mut self, fd: RawFd) -> io::Result<()>;
    /// Waits up to `timeout` (`None`: forever) and appends ready events to `out` (cleared
    /// first), at most `max` of them.
    fn wait(
        &mut self,
        out: &mut Vec<Event>,
        max: usize,
        timeout: Option<Duration>,
    ) -> io::Result<usize>;
    /// Whether registrations are edge-triggered whatever [`Mode`] says (mio).
    fn forces_edge(&self) -> bool {
        false
    }
    /// A name for reports (`epoll`, `mio`).
    fn name(&self) -> &'static str;
}

/// Raw `epoll`.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct EpollReactor {
    epfd: OwnedFd,
    raw: Vec<libc::epoll_event>,
}

#[cfg(target_os = "linux")]
impl EpollReactor {
    /// `epoll_create1`.
    pub fn new() -> io::Result<EpollReactor> {
        Ok(EpollReactor {
            epfd: sys::epoll_create()?,
            raw: Vec::new(),
        })
    }

    /// The epoll descriptor itself.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.epfd.as_fd()
    }

    /// The `epoll_event.events` bits for an interest and mode.
    pub fn bits(interest: Interest, mode: Mode) -> u32 {
        // EPOLLEXCLUSIVE accepts only EPOLLIN/OUT/ET/WAKEUP beside it (EINVAL otherwise), and
        // a listener has no half-close to report: no EPOLLRDHUP there.
        let mut bits = if mode.exclusive {
            0
        } else {
            libc::EPOLLRDHUP as u32
        };
        if interest.read {
            bits |= libc::EPOLLIN as u32;
        }
        if interest.write {
            bits |= libc::EPOLLOUT as u32;
        }
        if mode.trigger == Trigger::Edge {
            bits |= libc::EPOLLET as u32;
        }
        if mode.oneshot {
            bits |= libc::EPOLLONESHOT as u32;
        }
        if mode.exclusive {
            bits |= libc::EPOLLEXCLUSIVE as u32;
        }
        bits
    }
}

#[cfg(target_os = "linux")]
impl Reactor for EpollReactor {
    fn register(
        &mut self,
        fd: RawFd,
        token: u64,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()> {
        sys::epoll_ctl(
            self.epfd.as_fd(),
            libc::EPOLL_CTL_ADD,
            fd,
            Self::bits(interest, mode),
            token,
        )
    }

    fn modify(&mut self, fd: RawFd, token: u64, interest: Interest, mode: Mode) -> io::Result<()> {
        // EPOLLEXCLUSIVE may not be used with MOD.
        let mode = Mode {
            exclusive: false,
            ..mode
        };
        sys::epoll_ctl(
            self.epfd.as_fd(),
            libc::EPOLL_CTL_MOD,
            fd,
            Self::bits(interest, mode),
            token,
        )
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        sys::epoll_ctl(self.epfd.as_fd(), libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    fn wait(
        &mut self,
        out: &mut Vec<Event>,
        max: usize,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        out.clear();
        let n = sys::epoll_wait(self.epfd.as_fd(), &mut self.raw, max, timeout)?;
        for e in &self.raw {
            let bits = e.events;
            out.push(Event {
                token: e.u64,
                readable: bits & libc::EPOLLIN as u32 != 0,
                writable: bits & libc::EPOLLOUT as u32 != 0,
                read_closed: bits & libc::EPOLLRDHUP as u32 != 0,
                hangup: bits & libc::EPOLLHUP as u32 != 0,
                error: bits & libc::EPOLLERR as u32 != 0,
            });
        }
        Ok(n)
    }

    fn name(&self) -> &'static str {
        "epoll"
    }
}

/// Raw `epoll` is Linux's: elsewhere the type exists (so code naming it builds) but cannot be
/// made; [`DefaultReactor`] is [`MioReactor`] there.
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
pub struct EpollReactor {
    never: std::convert::Infallible,
}

#[cfg(not(target_os = "linux"))]
impl EpollReactor {
    /// Refused: epoll is Linux-only.
    pub fn new() -> io::Result<EpollReactor> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "epoll is Linux-only: use MioReactor (ReactorKind::Mio, kqueue here)",
        ))
    }

    /// Unreachable: no value of this type exists here.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        match self.never {}
    }
}

#[cfg(not(target_os = "linux"))]
impl Reactor for EpollReactor {
    fn register(&mut self, _: RawFd, _: u64, _: Interest, _: Mode) -> io::Result<()> {
        match self.never {}
    }

    fn modify(&mut self, _: RawFd, _: u64, _: Interest, _: Mode) -> io::Result<()> {
        match self.never {}
    }

    fn deregister(&mut self, _: RawFd) -> io::Result<()> {
        match self.never {}
    }

    fn wait(&mut self, _: &mut Vec<Event>, _: usize, _: Option<Duration>) -> io::Result<usize> {
        match self.never {}
    }

    fn name(&self) -> &'static str {
        match self.never {}
    }
}

/// The reactor of [`EventLoop::new`](crate::EventLoop::new): raw epoll on Linux, mio (kqueue)
/// elsewhere.
#[cfg(target_os = "linux")]
pub type DefaultReactor = EpollReactor;
/// The reactor of [`EventLoop::new`](crate::EventLoop::new): raw epoll on Linux, mio (kqueue)
/// elsewhere.
#[cfg(not(target_os = "linux"))]
pub type DefaultReactor = MioReactor;

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn test_exclusive_listener_registration_accepted() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut r = EpollReactor::new().expect("epoll");
        let mode = Mode {
            exclusive: true,
            ..Mode::LEVEL
        };
        let bits = EpollReactor::bits(Interest::READ, mode);
        assert_eq!(
            bits & libc::EPOLLRDHUP as u32,
            0,
            "EPOLLRDHUP is invalid with EPOLLEXCLUSIVE"
        );
        use std::os::fd::AsRawFd;
        r.register(l.as_raw_fd(), 1, Interest::READ, mode)
            .expect("EPOLLEXCLUSIVE registration accepted by the kernel");
    }
}

/// The same interface over `mio` (epoll here, kqueue on macOS/BSD). Always edge-triggered.
#[derive(Debug)]
pub struct MioReactor {
    poll: mio::Poll,
    events: mio::Events,
    capacity: usize,
}

impl MioReactor {
    /// A new `mio::Poll`.
    pub fn new() -> io::Result<MioReactor> {
        Ok(MioReactor {
            poll: mio::Poll::new()?,
            events: mio::Events::with_capacity(1024),
            capacity: 1024,
        })
    }

    fn interest(interest: Interest) -> mio::Interest {
        match (interest.read, interest.write) {
            (_, false) => mio::Interest::READABLE,
            (false, true) => mio::Interest::WRITABLE,
            (true, true) => mio::Interest::READABLE | mio::Interest::WRITABLE,
        }
    }
}

impl Reactor for MioReactor {
    fn register(
        &mut self,
        fd: RawFd,
        token: u64,
        interest: Interest,
        _mode: Mode,
    ) -> io::Result<()> {
        self.poll.registry().register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(token as usize),
            Self::interest(interest),
        )
    }

    fn modify(&mut self, fd: RawFd, token: u64, interest: Interest, _mode: Mode) -> io::Result<()> {
        self.poll.registry().reregister(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(token as usize),
            Self::interest(interest),
        )
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        self.poll
            .registry()
            .deregister(&mut mio::unix::SourceFd(&fd))
    }

    fn wait(
        &mut self,
        out: &mut Vec<Event>,
        max: usize,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        out.clear();
        if max != self.capacity {
            self.events = mio::Events::with_capacity(max.max(1));
            self.capacity = max.max(1);
        }
        self.poll.poll(&mut self.events, timeout)?;
        for e in self.events.iter() {
            out.push(Event {
                token: e.token().0 as u64,
                readable: e.is_readable(),
                writable: e.is_writable(),
                read_closed: e.is_read_closed(),
                hangup: e.is_read_closed() && e.is_write_closed(),
                error: e.is_error(),
            });
        }
        Ok(out.len())
    }

    fn forces_edge(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "mio"
    }
}
