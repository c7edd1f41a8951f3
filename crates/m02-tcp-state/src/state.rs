//! The TCP state machine as our model sees it: the eleven states of RFC 9293 §3.3.2, the events
//! user space can observe, and the one function that maps (state, event) to the next state.
//!
//! No socket and no clock here: [`next`] is a pure function, tested state by state
//! (`test_<state>_<event>`), and the same function drives the live table.
//!
//! ## What user space can see
//!
//! The kernel runs the real state machine on packets; a server sees only what its system calls
//! report. Each [`Event`] names such an observation:
//!
//! | observation | event |
//! |---|---|
//! | `accept4` returns a descriptor | [`Event::Accepted`] (the kernel already went LISTEN → SYN-RECEIVED → ESTABLISHED) |
//! | non-blocking `connect` returns `EINPROGRESS` | [`Event::ConnectStarted`] (our SYN is out) |
//! | the connecting socket becomes writable with `SO_ERROR` = 0 | [`Event::Connected`] |
//! | `recv` returns 0, or `poll` reports `POLLRDHUP` | [`Event::PeerFin`] |
//! | `shutdown(SHUT_WR)` | [`Event::ShutdownWrite`] (our FIN is queued) |
//! | `SIOCOUTQ` reaches 0 after our FIN | [`Event::FinAcked`] (the FIN takes one sequence number, so nothing unacknowledged means the FIN was acknowledged) |
//! | `ECONNRESET` / `EPIPE`, `ECONNREFUSED` | [`Event::Reset`] |
//! | `ETIMEDOUT` | [`Event::TimedOut`] (retransmissions, SYN retries or keepalive probes gave up) |
//! | `close` | [`Event::Close`] (sends FIN unless one was sent) |
//! | `SO_LINGER` 0 then `close` | [`Event::Abort`] (RST, no TIME-WAIT) |
//! | 2×MSL after entering TIME-WAIT | [`Event::TimeWaitExpired`] |
//!
//! Two states are never entered by the model: LISTEN belongs to the listening socket, not to a
//! connection, and SYN-RECEIVED lives in the kernel's SYN queue (a *request sock*,
//! `NEW_SYN_RECV` in `/proc/net/tcp` as state `03`) until the handshake completes: `accept4`
//! only ever returns ESTABLISHED connections (or later ones). They are in the enum because they
//! are TCP states the kernel reports, and [`KernelState`] maps onto them.

use std::fmt;

use serde::Serialize;

/// The connection states of RFC 9293 §3.3.2.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum TcpState {
    /// No connection (the fictional state before and after).
    Closed,
    /// A passive socket waiting for SYNs (the listener, never a connection of the table).
    Listen,
    /// Our SYN is sent; waiting for SYN+ACK.
    SynSent,
    /// Their SYN received and our SYN+ACK sent; waiting for the ACK (kernel-only for a server).
    SynReceived,
    /// The handshake is done; data flows both ways.
    Established,
    /// We sent FIN; waiting for its ACK (or their FIN).
    #[serde(rename = "FIN_WAIT_1")]
    FinWait1,
    /// Our FIN is acknowledged; waiting for their FIN.
    #[serde(rename = "FIN_WAIT_2")]
    FinWait2,
    /// Their FIN received; waiting for our application to close.
    CloseWait,
    /// Both sent FIN before seeing the other's: waiting for the ACK of ours.
    Closing,
    /// Their FIN came first, then ours: waiting for the ACK of ours.
    LastAck,
    /// Both FINs exchanged and acknowledged, we closed first: 2×MSL of quarantine.
    TimeWait,
}

impl TcpState {
    /// Every state, in the order of [`index`](Self::index).
    pub const ALL: [TcpState; 11] = [
        TcpState::Closed,
        TcpState::Listen,
        TcpState::SynSent,
        TcpState::SynReceived,
        TcpState::Established,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::CloseWait,
        TcpState::Closing,
        TcpState::LastAck,
        TcpState::TimeWait,
    ];

    /// Number of states.
    pub const COUNT: usize = 11;

    /// Position in [`ALL`](Self::ALL) (for per-state arrays).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The RFC 9293 name, as in its diagram: `FIN-WAIT-1`, `ESTABLISHED`.
    pub const fn rfc_name(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSED",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynReceived => "SYN-RECEIVED",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST-ACK",
            TcpState::TimeWait => "TIME-WAIT",
        }
    }

    /// The same name with underscores (`FIN_WAIT_1`): an identifier for JSON and diagrams.
    pub const fn ident(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSED",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynReceived => "SYN_RECEIVED",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN_WAIT_1",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
        }
    }

    /// Looks a state up by [`ident`](Self::ident) or [`rfc_name`](Self::rfc_name).
    pub fn from_name(name: &str) -> Option<TcpState> {
        TcpState::ALL
            .into_iter()
            .find(|s| s.ident() == name || s.rfc_name() == name)
    }

    /// Whether our side has sent its FIN (or the connection is over).
    pub const fn fin_sent(self) -> bool {
        matches!(
            self,
            TcpState::FinWait1
                | TcpState::FinWait2
                | TcpState::Closing
                | TcpState::LastAck
                | TcpState::TimeWait
                | TcpState::Closed
        )
    }

    /// Whether our FIN is out and not known to be acknowledged: the states where
    /// [`Event::FinAcked`] means something.
    pub const fn awaits_fin_ack(self) -> bool {
        matches!(
            self,
            TcpState::FinWait1 | TcpState::Closing | TcpState::LastAck
        )
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rfc_name())
    }
}

/// What user space observed about one connection (see the module docs for the syscall behind
/// each).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// `accept4` returned the connection.
    Accepted,
    /// A non-blocking `connect` sent our SYN.
    ConnectStarted,
    /// The handshake we started completed.
    Connected,
    /// `recv` returned 0: the peer's FIN.
    PeerFin,
    /// `shutdown(SHUT_WR)`: our FIN is queued.
    ShutdownWrite,
    /// Our FIN was acknowledged (`SIOCOUTQ` = 0 after it).
    FinAcked,
    /// An RST arrived (`ECONNRESET`, `EPIPE` after it, `ECONNREFUSED` for a SYN).
    Reset,
    /// The kernel gave up (`ETIMEDOUT`): retransmissions, SYN retries or keepalive probes.
    TimedOut,
    /// `close`: our FIN if none was sent yet; the kernel finishes the closing alone.
    Close,
    /// `SO_LINGER` 0 then `close`: RST sent, everything discarded.
    Abort,
    /// TIME-WAIT's 2×MSL (60 s on Linux) passed.
    TimeWaitExpired,
}

impl Event {
    /// Every event.
    pub const ALL: [Event; 11] = [
        Event::Accepted,
        Event::ConnectStarted,
        Event::Connected,
        Event::PeerFin,
        Event::ShutdownWrite,
        Event::FinAcked,
        Event::Reset,
        Event::TimedOut,
        Event::Close,
        Event::Abort,
        Event::TimeWaitExpired,
    ];

    /// A short name (`peer_fin`), as in the transition log and the diagram's labels.
    pub const fn name(self) -> &'static str {
        match self {
            Event::Accepted => "accepted",
            Event::ConnectStarted => "connect_started",
            Event::Connected => "connected",
            Event::PeerFin => "peer_fin",
            Event::ShutdownWrite => "shutdown_write",
            Event::FinAcked => "fin_acked",
            Event::Reset => "reset",
            Event::TimedOut => "timed_out",
            Event::Close => "close",
            Event::Abort => "abort",
            Event::TimeWaitExpired => "time_wait_expired",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An event that makes no sense in a state (a second `PeerFin`, `Connected` on an accepted
/// connection): a bug in the driver or a missed observation, never a panic.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct InvalidTransition {
    /// The state the connection was in.
    pub state: TcpState,
    /// The event that does not apply.
    pub event: Event,
}

impl fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {} is not valid in {}", self.event, self.state)
    }
}

impl std::error::Error for InvalidTransition {}

/// The state after `event` in `state`; `Ok(state)` unchanged when the event changes nothing
/// (closing a descriptor whose FIN is already out).
///
/// ```text
/// CLOSED       ─connect_started─► SYN-SENT ─connected─► ESTABLISHED
/// CLOSED       ─accepted──────► ESTABLISHED            (LISTEN, SYN-RECEIVED: inside the kernel)
/// ESTABLISHED  ─peer_fin──────► CLOSE-WAIT ─shutdown_write|close─► LAST-ACK ─fin_acked─► CLOSED
/// ESTABLISHED  ─shutdown_write|close─► FIN-WAIT-1 ─fin_acked─► FIN-WAIT-2 ─peer_fin─► TIME-WAIT
/// FIN-WAIT-1   ─peer_fin──────► CLOSING ─fin_acked─► TIME-WAIT ─time_wait_expired─► CLOSED
/// any open     ─reset|timed_out|abort─► CLOSED
/// ```
pub fn next(state: TcpState, event: Event) -> Result<TcpState, InvalidTransition> {
    use Event as E;
    use TcpState as S;
    let invalid = Err(InvalidTransition { state, event });
    let to = match (state, event) {
        // Opening.
        (S::Closed, E::Accepted) => S::Established,
        (S::Closed, E::ConnectStarted) => S::SynSent,
        (S::SynSent, E::Connected) => S::Established,
        // A server's SYN-RECEIVED completes inside the kernel; the model never holds it, but the
        // RFC edge is here for completeness (TCP Fast Open hands such sockets to accept).
        (S::SynReceived, E::Connected) => S::Established,
        // Passive close: they finish first.
        (S::Established, E::PeerFin) => S::CloseWait,
        (S::CloseWait, E::ShutdownWrite | E::Close) => S::LastAck,
        (S::LastAck, E::FinAcked) => S::Closed,
        // Active close: we finish first.
        (S::Established, E::ShutdownWrite | E::Close) => S::FinWait1,
        (S::SynReceived, E::ShutdownWrite | E::Close) => S::FinWait1,
        (S::FinWait1, E::FinAcked) => S::FinWait2,
        (S::FinWait2, E::PeerFin) => S::TimeWait,
        // Simultaneous close.
        (S::FinWait1, E::PeerFin) => S::Closing,
        (S::Closing, E::FinAcked) => S::TimeWait,
        (S::TimeWait, E::TimeWaitExpired) => S::Closed,
        // Closing a descriptor whose FIN is already out changes nothing on the wire.
        (S::FinWait1 | S::FinWait2 | S::Closing | S::LastAck | S::TimeWait, E::Close) => state,
        (S::FinWait1 | S::FinWait2 | S::Closing | S::LastAck, E::ShutdownWrite) => state,
        (S::Closed, E::Close | E::Abort) => S::Closed,
        // The peer's FIN can be seen twice: first by `poll` (POLLRDHUP, while data is still
        // queued), then by `recv` returning 0. The second sighting changes nothing.
        (S::CloseWait | S::LastAck | S::Closing | S::TimeWait, E::PeerFin) => state,
        // A SYN that never got its SYN+ACK, or was refused, or that we gave up on.
        (S::SynSent, E::Reset | E::TimedOut | E::Close | E::Abort) => S::Closed,
        // RST, retransmission timeout or abort end any synchronized state at once. (RFC 1337:
        // Linux by default lets an RST end TIME-WAIT early, net.ipv4.tcp_rfc1337 = 0.)
        (
            S::SynReceived
            | S::Established
            | S::FinWait1
            | S::FinWait2
            | S::CloseWait
            | S::Closing
            | S::LastAck
            | S::TimeWait,
            E::Reset | E::TimedOut | E::Abort,
        ) => S::Closed,
        _ => return invalid,
    };
    Ok(to)
}

/// The kernel's numbering of TCP states (`include/net/tcp_states.h`), as `tcpi_state` of
/// `TCP_INFO` and the `st` column of `/proc/net/tcp` report it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum KernelState {
    /// 1
    Established,
    /// 2
    SynSent,
    /// 3 (also how `/proc/net/tcp` prints request socks of the SYN queue)
    SynRecv,
    /// 4
    FinWait1,
    /// 5
    FinWait2,
    /// 6 (a separate, small `inet_timewait_sock`)
    TimeWait,
    /// 7: closed, or a socket whose connection moved to a timewait sock
    Close,
    /// 8
    CloseWait,
    /// 9
    LastAck,
    /// 10
    Listen,
    /// 11
    Closing,
    /// 12: a request sock in the SYN queue (Linux 4.4+)
    NewSynRecv,
    /// 13: bound, not listening or connected (Linux 6.5+)
    BoundInactive,
    /// Anything else (a newer kernel).
    Unknown(u8),
}

impl KernelState {
    /// Decodes the kernel's number.
    pub const fn from_code(code: u8) -> KernelState {
        match code {
            1 => KernelState::Established,
            2 => KernelState::SynSent,
            3 => KernelState::SynRecv,
            4 => KernelState::FinWait1,
            5 => KernelState::FinWait2,
            6 => KernelState::TimeWait,
            7 => KernelState::Close,
            8 => KernelState::CloseWait,
            9 => KernelState::LastAck,
            10 => KernelState::Listen,
            11 => KernelState::Closing,
            12 => KernelState::NewSynRecv,
            13 => KernelState::BoundInactive,
            other => KernelState::Unknown(other),
        }
    }

    /// The kernel's number.
    pub const fn code(self) -> u8 {
        match self {
            KernelState::Established => 1,
            KernelState::SynSent => 2,
            KernelState::SynRecv => 3,
            KernelState::FinWait1 => 4,
            KernelState::FinWait2 => 5,
            KernelState::TimeWait => 6,
            KernelState::Close => 7,
            KernelState::CloseWait => 8,
            KernelState::LastAck => 9,
            KernelState::Listen => 10,
            KernelState::Closing => 11,
            KernelState::NewSynRecv => 12,
            KernelState::BoundInactive => 13,
            KernelState::Unknown(c) => c,
        }
    }

    /// The RFC state this kernel state is (`Close` and `BoundInactive` → CLOSED).
    pub const fn to_rfc(self) -> Option<TcpState> {
        Some(match self {
            KernelState::Established => TcpState::Established,
            KernelState::SynSent => TcpState::SynSent,
            KernelState::SynRecv | KernelState::NewSynRecv => TcpState::SynReceived,
            KernelState::FinWait1 => TcpState::FinWait1,
            KernelState::FinWait2 => TcpState::FinWait2,
            KernelState::TimeWait => TcpState::TimeWait,
            KernelState::Close | KernelState::BoundInactive => TcpState::Closed,
            KernelState::CloseWait => TcpState::CloseWait,
            KernelState::LastAck => TcpState::LastAck,
            KernelState::Listen => TcpState::Listen,
            KernelState::Closing => TcpState::Closing,
            KernelState::Unknown(_) => return None,
        })
    }

    /// The name `ss` prints (`ESTAB`, `FIN-WAIT-1`, `UNCONN` for CLOSE).
    pub const fn ss_name(self) -> &'static str {
        match self {
            KernelState::Established => "ESTAB",
            KernelState::SynSent => "SYN-SENT",
            KernelState::SynRecv => "SYN-RECV",
            KernelState::FinWait1 => "FIN-WAIT-1",
            KernelState::FinWait2 => "FIN-WAIT-2",
            KernelState::TimeWait => "TIME-WAIT",
            KernelState::Close => "UNCONN",
            KernelState::CloseWait => "CLOSE-WAIT",
            KernelState::LastAck => "LAST-ACK",
            KernelState::Listen => "LISTEN",
            KernelState::Closing => "CLOSING",
            KernelState::NewSynRecv => "NEW-SYN-RECV",
            KernelState::BoundInactive => "BOUND-INACTIVE",
            KernelState::Unknown(_) => "UNKNOWN",
        }
    }
}

impl fmt::Display for KernelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ss_name())
    }
}

/// Whether `kernel`, read through a descriptor we still hold (`TCP_INFO`), agrees with our
/// model's `ours`.
///
/// Equal states agree, plus one Linux detail: when a connection enters TIME-WAIT, the kernel
/// moves it to a separate small `inet_timewait_sock` and sets the original socket (the one our
/// descriptor still points at) to `TCP_CLOSE`. So a held descriptor of a TIME-WAIT connection
/// reads `CLOSE`; `/proc/net/tcp` shows the 4-tuple as TIME-WAIT.
pub fn agrees_with_fd(ours: TcpState, kernel: KernelState) -> bool {
    match kernel.to_rfc() {
        Some(k) if k == ours => true,
        Some(TcpState::Closed) => ours == TcpState::TimeWait,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Event as E;
    use TcpState as S;

    fn step(state: TcpState, event: Event) -> TcpState {
        next(state, event).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn test_closed_accepted() {
        assert_eq!(step(S::Closed, E::Accepted), S::Established);
    }

    #[test]
    fn test_closed_connect_started() {
        assert_eq!(step(S::Closed, E::ConnectStarted), S::SynSent);
    }

    #[test]
    fn test_syn_sent_connected() {
        assert_eq!(step(S::SynSent, E::Connected), S::Established);
    }

    #[test]
    fn test_syn_sent_reset_or_timeout() {
        assert_eq!(step(S::SynSent, E::Reset), S::Closed);
        assert_eq!(step(S::SynSent, E::TimedOut), S::Closed);
    }

    #[test]
    fn test_syn_received_connected() {
        assert_eq!(step(S::SynReceived, E::Connected), S::Established);
    }

    #[test]
    fn test_established_peer_fin() {
        assert_eq!(step(S::Established, E::PeerFin), S::CloseWait);
    }

    #[test]
    fn test_established_shutdown_write() {
        assert_eq!(step(S::Established, E::ShutdownWrite), S::FinWait1);
        assert_eq!(step(S::Established, E::Close), S::FinWait1);
    }

    #[test]
    fn test_established_reset() {
        assert_eq!(step(S::Established, E::Reset), S::Closed);
        assert_eq!(step(S::Established, E::TimedOut), S::Closed);
        assert_eq!(step(S::Established, E::Abort), S::Closed);
    }

    #[test]
    fn test_close_wait_shutdown_write() {
        assert_eq!(step(S::CloseWait, E::ShutdownWrite), S::LastAck);
        assert_eq!(step(S::CloseWait, E::Close), S::LastAck);
    }

    #[test]
    fn test_last_ack_fin_acked() {
        assert_eq!(step(S::LastAck, E::FinAcked), S::Closed);
    }

    #[test]
    fn test_fin_wait_1_fin_acked() {
        assert_eq!(step(S::FinWait1, E::FinAcked), S::FinWait2);
    }

    #[test]
    fn test_fin_wait_1_peer_fin() {
        assert_eq!(step(S::FinWait1, E::PeerFin), S::Closing);
    }

    #[test]
    fn test_fin_wait_2_peer_fin() {
        assert_eq!(step(S::FinWait2, E::PeerFin), S::TimeWait);
    }

    #[test]
    fn test_fin_wait_2_abort() {
        assert_eq!(step(S::FinWait2, E::Abort), S::Closed);
        assert_eq!(step(S::FinWait2, E::Close), S::FinWait2);
    }

    #[test]
    fn test_closing_fin_acked() {
        assert_eq!(step(S::Closing, E::FinAcked), S::TimeWait);
    }

    #[test]
    fn test_time_wait_expired() {
        assert_eq!(step(S::TimeWait, E::TimeWaitExpired), S::Closed);
        assert_eq!(step(S::TimeWait, E::Close), S::TimeWait);
    }

    #[test]
    fn test_invalid_events_are_errors_not_panics() {
        assert_eq!(
            next(S::CloseWait, E::PeerFin),
            Ok(S::CloseWait),
            "seen twice"
        );
        assert!(next(S::SynSent, E::PeerFin).is_err());
        assert!(next(S::Established, E::Connected).is_err());
        assert!(next(S::Closed, E::PeerFin).is_err());
        assert!(next(S::Listen, E::Accepted).is_err());
        let e = next(S::TimeWait, E::Connected).unwrap_err();
        assert_eq!(e.to_string(), "event connected is not valid in TIME-WAIT");
    }

    #[test]
    fn test_every_state_has_a_distinct_index_and_names() {
        for (i, s) in S::ALL.into_iter().enumerate() {
            assert_eq!(s.index(), i);
            assert_eq!(S::from_name(s.ident()), Some(s));
            assert_eq!(S::from_name(s.rfc_name()), Some(s));
        }
        assert_eq!(S::ALL.len(), S::COUNT);
    }

    #[test]
    fn test_kernel_codes_round_trip_and_map_to_rfc() {
        for code in 1..=13u8 {
            let k = KernelState::from_code(code);
            assert_eq!(k.code(), code);
            assert!(k.to_rfc().is_some(), "{k:?}");
        }
        assert_eq!(KernelState::from_code(6).to_rfc(), Some(S::TimeWait));
        assert_eq!(KernelState::from_code(12).to_rfc(), Some(S::SynReceived));
        assert_eq!(KernelState::from_code(99).to_rfc(), None);
        // Every RFC state is the image of some kernel state.
        for s in S::ALL {
            assert!((1..=13u8).any(|c| KernelState::from_code(c).to_rfc() == Some(s)));
        }
    }

    #[test]
    fn test_time_wait_descriptor_reads_close() {
        assert!(agrees_with_fd(S::TimeWait, KernelState::Close));
        assert!(agrees_with_fd(S::TimeWait, KernelState::TimeWait));
        assert!(agrees_with_fd(S::Closed, KernelState::Close));
        assert!(!agrees_with_fd(S::Established, KernelState::Close));
        assert!(!agrees_with_fd(S::FinWait1, KernelState::FinWait2));
    }
}
