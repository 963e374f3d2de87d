//! An RTP-MIDI (AppleMIDI) test participant: it joins a hub's room as an initiator over UDP,
//! keeps the session alive with clock sync, sends and receives MIDI, reports its clock-sync round
//! trip and leaves, so tests and benchmarks can play the musicians.
//!
//! Written by this project from the wire format ([`wire`]); it is a test participant, not a full
//! RTP-MIDI implementation: it keeps no recovery journal of its own (and skips received ones),
//! does not retransmit invitations, does not announce itself by mDNS and accepts no invitations.

pub mod wire;

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant as TokioInstant;

pub use wire::WireError;
use wire::{ClockSync, Invitation, SessionPacket};

/// Largest UDP datagram the participant reads; rtpmidid sends at most 4096 + 12 bytes.
const RECEIVE_BUFFER_LEN: usize = 8192;
/// How many random local ports to try for a free control/data pair (N, N+1).
const PORT_PAIR_ATTEMPTS: u32 = 32;
const NO_ROUND_TRIP: u64 = u64::MAX;
/// How long to wait for an answer to an invitation before sending it again.
const INVITATION_RETRY: Duration = Duration::from_millis(1500);

/// How a participant joins and keeps its session.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// How often to run clock sync after the first one; rtpmidid drops a participant after 60 s
    /// without it.
    pub ck_interval: Duration,
    /// How long to wait for each answer of the hub while joining.
    pub timeout: Duration,
    /// Local control port to bind (the data port is the next one, as rtpmidid sends MIDI to the
    /// participant's control port + 1); `None` picks a free pair.
    pub control_port: Option<u16>,
    /// Local address to bind (e.g. 127.0.0.2, to come from another address of loopback's
    /// 127.0.0.0/8); `None`: loopback for a hub on loopback, any address otherwise.
    pub local_address: Option<IpAddr>,
    /// The RTP sequence number of the first MIDI packet; `None`: a random one, as RFC 3550
    /// asks (a real session's numbers take every value in time).
    pub first_sequence: Option<u16>,
}

impl Default for JoinOptions {
    fn default() -> Self {
        JoinOptions {
            ck_interval: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
            control_port: None,
            local_address: None,
            first_sequence: None,
        }
    }
}

/// Which of the two UDP ports of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    Control,
    Data,
}

impl fmt::Display for PortKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PortKind::Control => "control",
            PortKind::Data => "data (MIDI)",
        })
    }
}

/// What can go wrong for a test participant.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(
        "cannot bind the participant's {port} UDP socket on {address}: {source} \
         (choose another local control port, or none to let the system pick a free pair)"
    )]
    Bind {
        port: PortKind,
        address: SocketAddr,
        source: io::Error,
    },
    #[error(
        "found no free pair of consecutive local UDP ports (control N, data N+1) in \
         {attempts} attempts"
    )]
    NoFreePortPair { attempts: u32 },
    #[error("local control port {0} has no next port for data; choose a lower one")]
    NoDataPortAfter(u16),
    #[error("the hub at {hub} rejected the invitation of \"{name}\" on its {port} port (NO)")]
    Rejected {
        hub: SocketAddr,
        name: String,
        port: PortKind,
    },
    #[error(
        "the hub at {hub} did not answer {what} within {after:?}: is rtpmidid running with a \
         room on that control port (and the next port for MIDI)?"
    )]
    Timeout {
        hub: SocketAddr,
        what: &'static str,
        after: Duration,
    },
    #[error("cannot send {what} to {to}: {source}")]
    Send {
        what: &'static str,
        to: SocketAddr,
        source: io::Error,
    },
    #[error("cannot receive on the participant's {port} socket: {source}")]
    Receive { port: PortKind, source: io::Error },
    #[error("the hub sent a packet this participant cannot read: {0}")]
    Wire(#[from] WireError),
    #[error("the participant's MIDI receiver has stopped after an earlier socket error")]
    ReceiverStopped,
}

/// One participant in a hub's room; dropping it stops its background tasks without saying BY.
pub struct Participant {
    session: Arc<Session>,
    hub_session_name: String,
    received_midi: tokio::sync::Mutex<mpsc::UnboundedReceiver<Result<ReceivedMidi, PeerError>>>,
    tasks: Vec<JoinHandle<()>>,
}

/// An RTP-MIDI packet the participant received, and when its socket gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMidi {
    pub packet: wire::MidiPacket,
    /// When the participant's reader took it from the socket: a caller that reads it later
    /// can tell its own lag from the network's.
    pub at: Instant,
}

/// What the background tasks share with the participant.
struct Session {
    control: UdpSocket,
    data: UdpSocket,
    hub_control: SocketAddr,
    hub_data: SocketAddr,
    name: String,
    ssrc: u32,
    token: u32,
    clock_origin: Instant,
    /// ts1 and the moment of the CK0 still waiting for its CK1.
    pending_clock_sync: Mutex<Option<(u64, Instant)>>,
    last_round_trip_nanos: AtomicU64,
    next_sequence: AtomicU16,
}

impl Participant {
    /// Invites on the hub's control port N, then its data port N+1 (IN → OK on both), runs clock
    /// sync (CK0 → CK1 → CK2) once, then keeps running it every `ck_interval` in the background.
    pub async fn join(
        hub: SocketAddr,
        name: &str,
        options: JoinOptions,
    ) -> Result<Participant, PeerError> {
        let hub_data = SocketAddr::new(hub.ip(), hub.port().wrapping_add(1));
        let local_ip = options
            .local_address
            .unwrap_or_else(|| local_address_for(hub.ip()));
        let (control, data) = bind_port_pair(local_ip, options.control_port).await?;
        let session = Arc::new(Session {
            control,
            data,
            hub_control: hub,
            hub_data,
            name: name.to_string(),
            ssrc: random_nonzero_u32(),
            token: random_nonzero_u32(),
            clock_origin: Instant::now(),
            pending_clock_sync: Mutex::new(None),
            last_round_trip_nanos: AtomicU64::new(NO_ROUND_TRIP),
            next_sequence: AtomicU16::new(
                options
                    .first_sequence
                    .unwrap_or(random_nonzero_u32() as u16),
            ),
        });

        let hub_session_name = session.invite(PortKind::Control, options.timeout).await?;
        session.invite(PortKind::Data, options.timeout).await?;
        session.first_clock_sync(options.timeout).await?;
        tracing::debug!(participant = %name, hub = %hub, ssrc = session.ssrc, "joined");

        let (midi_sender, received_midi) = mpsc::unbounded_channel();
        let tasks = vec![
            tokio::spawn(Arc::clone(&session).read_data_port(midi_sender)),
            tokio::spawn(Arc::clone(&session).read_control_port()),
            tokio::spawn(Arc::clone(&session).repeat_clock_sync(options.ck_interval)),
        ];
        Ok(Participant {
            session,
            hub_session_name,
            received_midi: tokio::sync::Mutex::new(received_midi),
            tasks,
        })
    }

    pub fn local_control_port(&self) -> u16 {
        local_port(&self.session.control)
    }

    /// The local port MIDI arrives on (the control port + 1).
    pub fn local_data_port(&self) -> u16 {
        local_port(&self.session.data)
    }

    pub fn ssrc(&self) -> u32 {
        self.session.ssrc
    }

    /// The RTP sequence number the next MIDI packet this participant sends will carry.
    pub fn next_sequence(&self) -> u16 {
        self.session.next_sequence.load(Ordering::Relaxed)
    }

    pub fn name(&self) -> &str {
        &self.session.name
    }

    /// The session name the hub answered with in its OK (the room's name).
    pub fn hub_session_name(&self) -> &str {
        &self.hub_session_name
    }

    /// Sends MIDI bytes (e.g. `[0x90, 0x3C, 0x64]`) in one RTP-MIDI packet on the data port
    /// (no journal, no delta time; short header up to 15 bytes, long header beyond).
    pub async fn send_midi(&self, bytes: &[u8]) -> Result<(), PeerError> {
        let session = &self.session;
        let sequence = session.next_sequence.fetch_add(1, Ordering::Relaxed);
        // The RTP timestamp is the session clock at 10 kHz, wrapping at 32 bits.
        let timestamp = session.now_in_100_microseconds() as u32;
        let packet = wire::encode_midi_packet(sequence, timestamp, session.ssrc, bytes)?;
        session
            .data
            .send_to(&packet, session.hub_data)
            .await
            .map_err(|source| PeerError::Send {
                what: "MIDI",
                to: session.hub_data,
                source,
            })?;
        Ok(())
    }

    /// The next MIDI command list received on the data port (delta times dropped, running status
    /// written out, a recovery journal skipped), or `None` after `timeout`.
    pub async fn recv_midi(&self, timeout: Duration) -> Result<Option<Vec<u8>>, PeerError> {
        Ok(self
            .recv_midi_packet(timeout)
            .await?
            .map(|received| received.packet.commands))
    }

    /// The next RTP-MIDI packet received on the data port, whole: its RTP sequence number (a
    /// gap says a packet the hub sent never arrived), its commands as [`Participant::recv_midi`]
    /// gives them ([`wire::messages`] splits them) and when it arrived; `None` after `timeout`.
    pub async fn recv_midi_packet(
        &self,
        timeout: Duration,
    ) -> Result<Option<ReceivedMidi>, PeerError> {
        let mut received = self.received_midi.lock().await;
        match tokio::time::timeout(timeout, received.recv()).await {
            Err(_elapsed) => Ok(None),
            Ok(None) => Err(PeerError::ReceiverStopped),
            Ok(Some(result)) => result.map(Some),
        }
    }

    /// Sends BY on both ports (rtpmidid removes a participant only after BY on both) and stops
    /// the background tasks.
    pub async fn leave(self) -> Result<(), PeerError> {
        for task in &self.tasks {
            task.abort();
        }
        let goodbye = SessionPacket::End {
            token: self.session.token,
            ssrc: self.session.ssrc,
        };
        let on_control = self
            .session
            .send_session(PortKind::Control, &goodbye, "BY")
            .await;
        let on_data = self
            .session
            .send_session(PortKind::Data, &goodbye, "BY")
            .await;
        tracing::debug!(participant = %self.session.name, "left");
        on_control.and(on_data)
    }

    /// Last clock-sync round trip measured by this participant: from sending CK0 (ts1) to
    /// receiving the hub's CK1, i.e. ts3 − ts1, at full clock resolution.
    pub fn last_round_trip(&self) -> Option<Duration> {
        match self.session.last_round_trip_nanos.load(Ordering::Relaxed) {
            NO_ROUND_TRIP => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Session {
    fn socket(&self, port: PortKind) -> (&UdpSocket, SocketAddr) {
        match port {
            PortKind::Control => (&self.control, self.hub_control),
            PortKind::Data => (&self.data, self.hub_data),
        }
    }

    fn now_in_100_microseconds(&self) -> u64 {
        (self.clock_origin.elapsed().as_micros() / 100) as u64
    }

    async fn send_session(
        &self,
        port: PortKind,
        packet: &SessionPacket,
        what: &'static str,
    ) -> Result<(), PeerError> {
        let (socket, to) = self.socket(port);
        socket
            .send_to(&packet.encode(), to)
            .await
            .map_err(|source| PeerError::Send { what, to, source })?;
        Ok(())
    }

    /// IN → OK on one port; returns the hub's session name.
    /// Invites on one port, repeating the IN every [`INVITATION_RETRY`] until the hub answers
    /// or `timeout` passes, as real initiators do: a daemon that is still starting may drop
    /// an early invitation.
    async fn invite(&self, port: PortKind, timeout: Duration) -> Result<String, PeerError> {
        let invitation = SessionPacket::Invitation(Invitation {
            token: self.token,
            ssrc: self.ssrc,
            name: self.name.clone(),
        });
        let what = match port {
            PortKind::Control => "the invitation (IN) on its control port",
            PortKind::Data => "the invitation (IN) on its data port",
        };
        let deadline = TokioInstant::now() + timeout;
        loop {
            self.send_session(port, &invitation, "IN").await?;
            let wait =
                INVITATION_RETRY.min(deadline.saturating_duration_since(TokioInstant::now()));
            let answer = self
                .await_session_packet(port, wait, what, |packet| match packet {
                    SessionPacket::Accept(accept) if accept.token == self.token => {
                        Some(Ok(accept.name))
                    }
                    SessionPacket::Reject { token, .. } if token == self.token => {
                        Some(Err(PeerError::Rejected {
                            hub: self.hub_control,
                            name: self.name.clone(),
                            port,
                        }))
                    }
                    _ => None,
                })
                .await;
            match answer {
                Err(PeerError::Timeout { .. }) if TokioInstant::now() < deadline => continue,
                Err(PeerError::Timeout { hub, what, .. }) => {
                    return Err(PeerError::Timeout {
                        hub,
                        what,
                        after: timeout,
                    });
                }
                Err(error) => return Err(error),
                Ok(answer) => return answer,
            }
        }
    }

    /// CK0 → CK1 → CK2 once, in the foreground, so a joined participant has a round trip.
    async fn first_clock_sync(&self, timeout: Duration) -> Result<(), PeerError> {
        let ts1 = self.start_clock_sync().await?;
        let answer =
            self.await_session_packet(PortKind::Data, timeout, "clock sync (CK0)", |packet| {
                match packet {
                    SessionPacket::ClockSync(clock_sync)
                        if clock_sync.count == 1 && clock_sync.timestamps[0] == ts1 =>
                    {
                        Some(clock_sync)
                    }
                    _ => None,
                }
            })
            .await?;
        self.answer_clock_sync(PortKind::Data, answer).await
    }

    /// Sends CK0 on the data port; returns its ts1.
    async fn start_clock_sync(&self) -> Result<u64, PeerError> {
        let ts1 = self.now_in_100_microseconds();
        *self
            .pending_clock_sync
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((ts1, Instant::now()));
        let clock_sync = SessionPacket::ClockSync(ClockSync {
            ssrc: self.ssrc,
            count: 0,
            timestamps: [ts1, 0, 0],
        });
        self.send_session(PortKind::Data, &clock_sync, "CK0")
            .await?;
        Ok(ts1)
    }

    /// Answers the hub's CK0 with CK1, and its CK1 with CK2 (recording the round trip); a CK2
    /// from the hub needs no answer.
    async fn answer_clock_sync(
        &self,
        port: PortKind,
        received: ClockSync,
    ) -> Result<(), PeerError> {
        let now = self.now_in_100_microseconds();
        let [ts1, ts2, _] = received.timestamps;
        let (count, timestamps, what) = match received.count {
            0 => (1, [ts1, now, 0], "CK1"),
            1 => {
                self.record_round_trip(ts1, now);
                (2, [ts1, ts2, now], "CK2")
            }
            _ => return Ok(()),
        };
        let answer = SessionPacket::ClockSync(ClockSync {
            ssrc: self.ssrc,
            count,
            timestamps,
        });
        self.send_session(port, &answer, what).await
    }

    fn record_round_trip(&self, ts1: u64, ts3: u64) {
        let pending = self
            .pending_clock_sync
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let round_trip = match pending {
            Some((pending_ts1, sent_at)) if pending_ts1 == ts1 => sent_at.elapsed(),
            // An answer to an older CK0: only the 100 µs timestamps are left to go by.
            _ => Duration::from_micros(ts3.saturating_sub(ts1) * 100),
        };
        let nanos = u64::try_from(round_trip.as_nanos()).unwrap_or(NO_ROUND_TRIP - 1);
        self.last_round_trip_nanos.store(nanos, Ordering::Relaxed);
    }

    /// Reads one port until `select` takes a session packet from the hub, or the timeout ends.
    async fn await_session_packet<T>(
        &self,
        port: PortKind,
        timeout: Duration,
        what: &'static str,
        mut select: impl FnMut(SessionPacket) -> Option<T>,
    ) -> Result<T, PeerError> {
        let (socket, hub) = self.socket(port);
        let deadline = TokioInstant::now() + timeout;
        let mut buffer = vec![0; RECEIVE_BUFFER_LEN];
        loop {
            let received = tokio::time::timeout_at(deadline, socket.recv_from(&mut buffer)).await;
            let (len, from) = match received {
                Err(_elapsed) => {
                    return Err(PeerError::Timeout {
                        hub: self.hub_control,
                        what,
                        after: timeout,
                    });
                }
                Ok(result) => result.map_err(|source| PeerError::Receive { port, source })?,
            };
            if from != hub || !wire::is_session_packet(&buffer[..len]) {
                continue;
            }
            match SessionPacket::decode(&buffer[..len]) {
                Ok(packet) => {
                    if let Some(selected) = select(packet) {
                        return Ok(selected);
                    }
                }
                Err(error) => {
                    tracing::warn!(participant = %self.name, %port, %error, "unreadable session packet while joining");
                }
            }
        }
    }

    /// Background: MIDI goes to the participant's queue, CK is answered, RS and the rest ignored.
    async fn read_data_port(
        self: Arc<Self>,
        midi_sender: mpsc::UnboundedSender<Result<ReceivedMidi, PeerError>>,
    ) {
        let mut buffer = vec![0; RECEIVE_BUFFER_LEN];
        loop {
            let (len, from) = match self.data.recv_from(&mut buffer).await {
                Ok(received) => received,
                Err(source) => {
                    let _ = midi_sender.send(Err(PeerError::Receive {
                        port: PortKind::Data,
                        source,
                    }));
                    return;
                }
            };
            if from != self.hub_data {
                continue;
            }
            let bytes = &buffer[..len];
            if wire::is_session_packet(bytes) {
                self.handle_session_packet(PortKind::Data, bytes).await;
                continue;
            }
            let at = Instant::now();
            let received = wire::decode_midi_packet(bytes)
                .map(|packet| ReceivedMidi { packet, at })
                .map_err(PeerError::from);
            if midi_sender.send(received).is_err() {
                return; // the participant is gone
            }
        }
    }

    async fn read_control_port(self: Arc<Self>) {
        let mut buffer = vec![0; RECEIVE_BUFFER_LEN];
        loop {
            match self.control.recv_from(&mut buffer).await {
                Ok((len, from)) if from == self.hub_control => {
                    self.handle_session_packet(PortKind::Control, &buffer[..len])
                        .await;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(participant = %self.name, %error, "control socket failed");
                    return;
                }
            }
        }
    }

    async fn handle_session_packet(&self, port: PortKind, bytes: &[u8]) {
        match SessionPacket::decode(bytes) {
            Ok(SessionPacket::ClockSync(clock_sync)) => {
                if let Err(error) = self.answer_clock_sync(port, clock_sync).await {
                    tracing::warn!(participant = %self.name, %error, "cannot answer clock sync");
                }
            }
            Ok(SessionPacket::End { .. }) => {
                tracing::debug!(participant = %self.name, %port, "the hub said BY");
            }
            // Receiver feedback needs no answer (no journal is kept); late OK/NO/IN are moot.
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(participant = %self.name, %port, %error, "unreadable session packet");
            }
        }
    }

    async fn repeat_clock_sync(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval_at(TokioInstant::now() + interval, interval);
        loop {
            ticker.tick().await;
            if let Err(error) = self.start_clock_sync().await {
                tracing::warn!(participant = %self.name, %error, "cannot send clock sync");
            }
        }
    }
}

/// The local address to reach a hub at `hub_ip` from: loopback for loopback, any otherwise.
fn local_port(socket: &UdpSocket) -> u16 {
    socket
        .local_addr()
        .map(|address| address.port())
        .unwrap_or_default()
}

fn local_address_for(hub_ip: IpAddr) -> IpAddr {
    match (hub_ip, hub_ip.is_loopback()) {
        (IpAddr::V4(_), true) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        (IpAddr::V4(_), false) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (IpAddr::V6(_), true) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        (IpAddr::V6(_), false) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// Binds the control socket on `local_ip`:N and the data socket on N+1, because rtpmidid
/// sends a participant's MIDI to the port after the one it invited from.
async fn bind_port_pair(
    local_ip: IpAddr,
    control_port: Option<u16>,
) -> Result<(UdpSocket, UdpSocket), PeerError> {
    let bind = |port: u16, kind: PortKind| async move {
        let address = SocketAddr::new(local_ip, port);
        UdpSocket::bind(address)
            .await
            .map_err(|source| PeerError::Bind {
                port: kind,
                address,
                source,
            })
    };
    if let Some(port) = control_port {
        let data_port = port
            .checked_add(1)
            .ok_or(PeerError::NoDataPortAfter(port))?;
        let control = bind(port, PortKind::Control).await?;
        let data = bind(data_port, PortKind::Data).await?;
        return Ok((control, data));
    }
    for _ in 0..PORT_PAIR_ATTEMPTS {
        let control = bind(0, PortKind::Control).await?;
        let port = control
            .local_addr()
            .map_err(|source| PeerError::Bind {
                port: PortKind::Control,
                address: SocketAddr::new(local_ip, 0),
                source,
            })?
            .port();
        let Some(data_port) = port.checked_add(1) else {
            continue;
        };
        match bind(data_port, PortKind::Data).await {
            Ok(data) => return Ok((control, data)),
            Err(PeerError::Bind { source, .. }) if source.kind() == io::ErrorKind::AddrInUse => {}
            Err(error) => return Err(error),
        }
    }
    Err(PeerError::NoFreePortPair {
        attempts: PORT_PAIR_ATTEMPTS,
    })
}

/// SSRCs and tokens only need to differ between participants; the standard library's randomly
/// keyed hasher is random enough for that.
fn random_nonzero_u32() -> u32 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let value = hasher.finish() as u32;
        if value != 0 {
            return value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test double for a hub: two bound loopback sockets answered step by step by the test,
    /// for behaviours rtpmidid never shows (NO, a hub-initiated CK, journals).
    struct ScriptedHub {
        control: UdpSocket,
        data: UdpSocket,
    }

    impl ScriptedHub {
        async fn bind() -> ScriptedHub {
            let (control, data) = bind_port_pair(IpAddr::V4(Ipv4Addr::LOCALHOST), None)
                .await
                .unwrap();
            ScriptedHub { control, data }
        }

        fn address(&self) -> SocketAddr {
            self.control.local_addr().unwrap()
        }

        async fn receive(&self, port: PortKind) -> (Vec<u8>, SocketAddr) {
            let socket = match port {
                PortKind::Control => &self.control,
                PortKind::Data => &self.data,
            };
            let mut buffer = vec![0; RECEIVE_BUFFER_LEN];
            let (len, from) =
                tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buffer))
                    .await
                    .expect("the participant sends within 2 s")
                    .unwrap();
            buffer.truncate(len);
            (buffer, from)
        }

        async fn receive_session(&self, port: PortKind) -> (SessionPacket, SocketAddr) {
            let (bytes, from) = self.receive(port).await;
            (SessionPacket::decode(&bytes).unwrap(), from)
        }

        async fn send(&self, port: PortKind, bytes: &[u8], to: SocketAddr) {
            let socket = match port {
                PortKind::Control => &self.control,
                PortKind::Data => &self.data,
            };
            socket.send_to(bytes, to).await.unwrap();
        }

        /// Accepts the invitation on one port and returns it.
        async fn accept(&self, port: PortKind) -> (Invitation, SocketAddr) {
            let (packet, from) = self.receive_session(port).await;
            let SessionPacket::Invitation(invitation) = packet else {
                panic!("expected IN on the {port} port, got {packet:?}");
            };
            let accept = SessionPacket::Accept(Invitation {
                token: invitation.token,
                ssrc: 0x0000_1234,
                name: "scripted-room".to_string(),
            });
            self.send(port, &accept.encode(), from).await;
            (invitation, from)
        }

        /// Answers the participant's CK0 with CK1 and waits for its CK2.
        async fn answer_clock_sync(&self) -> ClockSync {
            let (packet, from) = self.receive_session(PortKind::Data).await;
            let SessionPacket::ClockSync(ck0) = packet else {
                panic!("expected CK0, got {packet:?}");
            };
            assert_eq!(ck0.count, 0);
            let ck1 = SessionPacket::ClockSync(ClockSync {
                ssrc: 0x0000_1234,
                count: 1,
                timestamps: [ck0.timestamps[0], 777, 0],
            });
            self.send(PortKind::Data, &ck1.encode(), from).await;
            let (packet, _) = self.receive_session(PortKind::Data).await;
            let SessionPacket::ClockSync(ck2) = packet else {
                panic!("expected CK2, got {packet:?}");
            };
            ck2
        }
    }

    fn options() -> JoinOptions {
        JoinOptions {
            ck_interval: Duration::from_secs(60),
            timeout: Duration::from_millis(500),
            control_port: None,
            local_address: None,
            first_sequence: None,
        }
    }

    #[tokio::test]
    async fn joining_invites_on_both_ports_then_completes_a_clock_sync() {
        let hub = ScriptedHub::bind().await;
        let joining = tokio::spawn(Participant::join(hub.address(), "peer-x", options()));

        let (on_control, control_from) = hub.accept(PortKind::Control).await;
        let (on_data, data_from) = hub.accept(PortKind::Data).await;
        let ck2 = hub.answer_clock_sync().await;
        let participant = joining.await.unwrap().unwrap();

        assert_eq!(on_control.name, "peer-x");
        assert_eq!(
            on_control, on_data,
            "same token, SSRC and name on both ports"
        );
        assert_eq!(data_from.port(), control_from.port() + 1);
        assert_eq!(participant.local_control_port(), control_from.port());
        assert_eq!(participant.ssrc(), on_control.ssrc);
        assert_eq!(participant.hub_session_name(), "scripted-room");
        assert_eq!(ck2.count, 2);
        assert_eq!(ck2.ssrc, participant.ssrc());
        assert_eq!(ck2.timestamps[1], 777, "CK2 carries the hub's ts2");
        assert!(ck2.timestamps[2] >= ck2.timestamps[0]);
        assert!(participant.last_round_trip().is_some());

        participant.leave().await.unwrap();
        for port in [PortKind::Control, PortKind::Data] {
            let (packet, _) = hub.receive_session(port).await;
            assert_eq!(
                packet,
                SessionPacket::End {
                    token: on_control.token,
                    ssrc: on_control.ssrc
                },
                "BY on the {port} port"
            );
        }
    }

    #[tokio::test]
    async fn a_joined_participant_answers_the_hubs_clock_sync_and_reads_midi_with_a_journal() {
        let hub = ScriptedHub::bind().await;
        let joining = tokio::spawn(Participant::join(hub.address(), "peer-y", options()));
        hub.accept(PortKind::Control).await;
        let (_, data_from) = hub.accept(PortKind::Data).await;
        hub.answer_clock_sync().await;
        let participant = joining.await.unwrap().unwrap();

        let ck0 = SessionPacket::ClockSync(ClockSync {
            ssrc: 0x0000_1234,
            count: 0,
            timestamps: [4242, 0, 0],
        });
        hub.send(PortKind::Data, &ck0.encode(), data_from).await;
        let (packet, _) = hub.receive_session(PortKind::Data).await;
        let SessionPacket::ClockSync(ck1) = packet else {
            panic!("expected CK1, got {packet:?}");
        };
        assert_eq!((ck1.count, ck1.timestamps[0]), (1, 4242));
        assert_eq!(ck1.ssrc, participant.ssrc());

        // Receiver feedback is swallowed; the MIDI after it comes out without its journal.
        let feedback = SessionPacket::ReceiverFeedback {
            ssrc: 0x0000_1234,
            sequence: 1,
        };
        hub.send(PortKind::Data, &feedback.encode(), data_from)
            .await;
        let with_journal = [
            0x80, 0x61, 0, 1, 0, 0, 0, 9, 0, 0, 0x12, 0x34, // RTP header
            0x43, 0x80, 0x3C, 0x00, // J=1, note off
            0x20, 0x00, 0x01, 0x00, 0x03, 0x00, // journal: one empty channel journal
        ];
        hub.send(PortKind::Data, &with_journal, data_from).await;
        assert_eq!(
            participant.recv_midi(Duration::from_secs(2)).await.unwrap(),
            Some(vec![0x80, 0x3C, 0x00])
        );
        assert_eq!(
            participant
                .recv_midi(Duration::from_millis(50))
                .await
                .unwrap(),
            None
        );

        participant.send_midi(&[0x90, 0x3C, 0x64]).await.unwrap();
        let (bytes, _) = hub.receive(PortKind::Data).await;
        let sent = wire::decode_midi_packet(&bytes).unwrap();
        assert_eq!(sent.commands, [0x90, 0x3C, 0x64]);
        assert_eq!(sent.ssrc, participant.ssrc());
        assert_eq!(bytes[12], 0x03, "short header, no journal");
    }

    #[tokio::test]
    async fn every_command_of_a_packet_arrives_with_the_packets_sequence_number() {
        let hub = ScriptedHub::bind().await;
        let joining = tokio::spawn(Participant::join(hub.address(), "peer-m", options()));
        hub.accept(PortKind::Control).await;
        let (_, data_from) = hub.accept(PortKind::Data).await;
        hub.answer_clock_sync().await;
        let participant = joining.await.unwrap().unwrap();

        let before = Instant::now();
        for (sequence, list) in [
            (7_u16, &[0x90, 0x3C, 0x64, 0x00, 0x80, 0x3C, 0x40][..]),
            (9, &[0x91, 0x40, 0x01]),
        ] {
            let packet = wire::encode_midi_packet(sequence, 0, 0x0000_1234, list).unwrap();
            hub.send(PortKind::Data, &packet, data_from).await;
        }

        let first = participant
            .recv_midi_packet(Duration::from_secs(2))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.packet.sequence, 7);
        assert_eq!(
            wire::messages(&first.packet.commands),
            [&[0x90, 0x3C, 0x64][..], &[0x80, 0x3C, 0x40]],
            "both commands of one packet"
        );
        assert!(first.at >= before);
        let second = participant
            .recv_midi_packet(Duration::from_secs(2))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.packet.sequence, 9);
        assert_eq!(second.packet.commands, [0x91, 0x40, 0x01]);
    }

    #[tokio::test]
    async fn dropping_without_leave_sends_no_goodbye_and_stops_clock_sync() {
        let hub = ScriptedHub::bind().await;
        let quick_clock_sync = JoinOptions {
            ck_interval: Duration::from_millis(20),
            ..options()
        };
        let joining = tokio::spawn(Participant::join(hub.address(), "peer-d", quick_clock_sync));
        hub.accept(PortKind::Control).await;
        hub.accept(PortKind::Data).await;
        hub.answer_clock_sync().await;
        let participant = joining.await.unwrap().unwrap();
        // The background task repeats CK0 every 20 ms while the participant lives.
        let (packet, _) = hub.receive_session(PortKind::Data).await;
        assert!(matches!(
            packet,
            SessionPacket::ClockSync(ClockSync { count: 0, .. })
        ));

        drop(participant);
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut buffer = vec![0; RECEIVE_BUFFER_LEN];
        // Drain CK0s sent before the drop took effect, then expect silence on both ports.
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(10), hub.data.recv_from(&mut buffer)).await
        {
        }
        for socket in [&hub.control, &hub.data] {
            let heard =
                tokio::time::timeout(Duration::from_millis(200), socket.recv_from(&mut buffer))
                    .await;
            assert!(heard.is_err(), "nothing after drop, got {heard:?}");
        }
    }

    #[tokio::test]
    async fn a_refused_invitation_is_a_rejected_error() {
        let hub = ScriptedHub::bind().await;
        let joining = tokio::spawn(Participant::join(hub.address(), "peer-z", options()));
        let (packet, from) = hub.receive_session(PortKind::Control).await;
        let SessionPacket::Invitation(invitation) = packet else {
            panic!("expected IN, got {packet:?}");
        };
        let reject = SessionPacket::Reject {
            token: invitation.token,
            ssrc: 0x0000_1234,
            name: None,
        };
        hub.send(PortKind::Control, &reject.encode(), from).await;
        let error = joining.await.unwrap().err().expect("join fails");
        assert!(
            matches!(&error, PeerError::Rejected { port: PortKind::Control, name, .. } if name == "peer-z"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_silent_hub_is_a_timeout_error() {
        let hub = ScriptedHub::bind().await;
        let error = Participant::join(hub.address(), "peer-t", options())
            .await
            .err()
            .expect("join fails");
        assert!(
            matches!(error, PeerError::Timeout { hub: address, .. } if address == hub.address()),
            "{error}"
        );
        assert!(error.to_string().contains("is rtpmidid running"), "{error}");
    }
}
