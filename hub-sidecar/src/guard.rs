//! The stuck-note guard's sequencer client: it listens to every participant's port and, when
//! a participant leaves, releases what it held on the room's remaining participants.
//!
//! A client of its own ("midihub-guard"), apart from the wiring client, on a thread of its own
//! running the same loop (`sequencer_thread`): its input carries every note of every
//! room, and a burst of them must never delay the wiring's announcements (nor the other way
//! round). Its input port subscribes read-only to the participant ports it is told to
//! [`Guard::watch`] and to System:Announce; what arrives from a participant is fed into that
//! room's [`HeldInRoom`]. When a participant leaves — [`Guard::leave`], dropped from `watch`,
//! or its port exits — [`HeldInRoom::leave`]'s events are sent from the output port directly
//! to each remaining participant of the room. [`Guard::panic`] sends [`midi::panic`] to every
//! participant of every room.
//!
//! Whatever the guard sends is paced: at most [`EVENTS_PER_BURST`] events, then a pause of
//! [`BURST_PAUSE`] before the next ones. A receiver is rtpmidid, whose kernel input queue holds
//! 200 events for all its participants' ports together and which the kernel clears *entirely*
//! when it overflows: a release of thousands of events at once would cost the room the notes
//! others are playing. An ordinary leave (a chord and a pedal, to a few participants) fits in
//! one burst and goes out at once.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::sync::mpsc;
use std::thread::JoinHandle;

use alsa::seq::{Addr, Event, EventType, PortCap, PortSubscribe, PortType, Seq};
use tokio::sync::{mpsc as async_mpsc, oneshot};

use crate::held::HeldInRoom;
use crate::midi::{self, ChannelEvent};
use crate::sequencer::{SequencerError, alsa_addr, port_addr};
use crate::sequencer_thread::{self, WakeReader, Waker, would_block};
use crate::wiring::{PortAddr, Rooms, Subscription};

/// The guard's sequencer client's name in a hub (`aconnect -l`, /proc/asound/seq/clients).
pub const CLIENT_NAME: &str = "midihub-guard";

/// Name of the guard's thread (visible in `ps -T`, `top -H`).
const THREAD_NAME: &str = "midihub-guard";

/// The guard's input buffer in the ALSA library, in bytes (the default is a page).
const INPUT_BUFFER_BYTES: u32 = 64 * 1024;

/// What the guard sends goes out in bursts of at most this many events (to all receivers
/// together), each drained into the kernel before the pause that follows it: the library's
/// output buffer (16 KiB by default, 28 bytes an event) never fills, and a receiver's queue
/// (rtpmidid's holds 200 events) has room for a burst beside the notes being played.
const EVENTS_PER_BURST: usize = 32;

/// The pause between two bursts, for the receivers to read what the last one brought.
const BURST_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// What the guard did, for logs, metrics and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuardEvent {
    /// `participant` left `room` holding something; its release was sent to `receivers`.
    Released {
        room: u16,
        participant: PortAddr,
        /// Note-offs sent to each receiver (one per unreleased press).
        notes: usize,
        /// Events sent to each receiver, pedals up included.
        events: usize,
        /// The remaining participants that were sent the release without an error.
        receivers: Vec<PortAddr>,
    },
    /// The kernel dropped events because the guard's input was full: what it believes is
    /// held may be stale until the participants play on.
    EventsLost,
}

/// Someone asked for the hub-wide panic; `why` says who or what, for the log and the Event
/// (e.g. "annotation midihub.io/panic=1764700000", "POST /panic").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanicRequest {
    pub why: String,
}

/// What a hub-wide panic reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanicSent {
    /// The participants that were sent it without an error, of every room.
    pub receivers: usize,
    /// The participants the kernel refused it for (each logged).
    pub failed: usize,
}

/// Handle to the guard's thread. Dropping it stops the thread (its client, and with it every
/// subscription it made, goes away) and waits for it.
pub struct Guard {
    commands: mpsc::Sender<Command>,
    waker: Waker,
    thread: Option<JoinHandle<()>>,
}

enum Command {
    Watch {
        rooms: Rooms,
        reply: oneshot::Sender<()>,
    },
    Leave {
        participant: PortAddr,
        reply: oneshot::Sender<()>,
    },
    Panic {
        reply: oneshot::Sender<PanicSent>,
    },
    Stop,
}

impl Guard {
    /// Opens the guard's sequencer client named `own_name` (e.g. "midihub-guard") and starts
    /// its thread. What it does arrives on the returned receiver, which closes when the thread
    /// stops.
    pub fn start(
        own_name: &str,
    ) -> Result<(Guard, async_mpsc::UnboundedReceiver<GuardEvent>), SequencerError> {
        let seq = sequencer_thread::open_client(own_name)?;
        let setup = |step: &'static str| move |error| SequencerError::Setup { step, error };
        seq.input()
            .set_input_buffer_size(INPUT_BUFFER_BYTES)
            .map_err(setup("raise the input buffer size"))?;
        let input_port = seq
            .create_simple_port(
                c"guard-in",
                // NO_EXPORT: only the guard subscribes it, and only to read participants.
                PortCap::WRITE | PortCap::NO_EXPORT,
                PortType::APPLICATION,
            )
            .map_err(setup("create the input port"))?;
        let output_port = seq
            .create_simple_port(
                c"guard-out",
                // Releases go direct to each receiver; nobody subscribes to this port.
                PortCap::READ | PortCap::NO_EXPORT,
                PortType::APPLICATION,
            )
            .map_err(setup("create the output port"))?;
        let own_client = seq.client_id().map_err(setup("read the own client id"))?;
        let input = PortAddr {
            client: own_client,
            port: input_port,
        };
        subscribe(&seq, port_addr(Addr::system_announce()), input)
            .map_err(setup("subscribe to System:Announce (0:1)"))?;

        let (waker, wake_reader) =
            sequencer_thread::wake_socket().map_err(SequencerError::WakeSocket)?;
        let (commands, command_receiver) = mpsc::channel();
        let (event_sender, events) = async_mpsc::unbounded_channel();
        let state = GuardThread {
            input,
            output_port,
            rooms: BTreeMap::new(),
            events: event_sender,
        };
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || state.run(&seq, wake_reader, command_receiver))
            .map_err(SequencerError::SpawnThread)?;
        tracing::info!(
            client = own_client,
            name = own_name,
            "stuck-note guard's sequencer client opened"
        );
        Ok((
            Guard {
                commands,
                waker,
                thread: Some(thread),
            },
            events,
        ))
    }

    /// Watches exactly these rooms' participants from now on: subscribes to the new ones'
    /// ports and forgets the ones no longer listed, releasing what they held for the rest of
    /// their room (so a participant's removal from the roster is its leave). Returns once the
    /// subscriptions are made; one that fails (a port already gone) is logged and skipped.
    pub async fn watch(&self, rooms: Rooms) -> Result<(), SequencerError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Watch { rooms, reply })?;
        answer.await.map_err(|_| SequencerError::ThreadGone)
    }

    /// `participant` has left: releases what it held for the rest of its room and stops
    /// watching it. Unknown participants are ignored. Returns once the release is sent.
    pub async fn leave(&self, participant: PortAddr) -> Result<(), SequencerError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Leave { participant, reply })?;
        answer.await.map_err(|_| SequencerError::ThreadGone)
    }

    /// Sends the hub-wide panic ([`midi::panic`]: pedals up, all notes off, controllers reset,
    /// on all 16 channels) to every watched participant of every room, and forgets what
    /// anyone held (nothing is held after it). Returns once it is sent.
    pub async fn panic(&self) -> Result<PanicSent, SequencerError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Panic { reply })?;
        answer.await.map_err(|_| SequencerError::ThreadGone)
    }

    fn send(&self, command: Command) -> Result<(), SequencerError> {
        self.commands
            .send(command)
            .map_err(|_| SequencerError::ThreadGone)?;
        self.waker.wake();
        Ok(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Fails only when the thread has already stopped.
        let _ = self.commands.send(Command::Stop);
        self.waker.wake();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the stuck-note guard's thread panicked");
        }
    }
}

/// One watched room: its participants and what each holds.
#[derive(Default)]
struct Room {
    participants: BTreeSet<PortAddr>,
    held: HeldInRoom<PortAddr>,
}

/// What the guard's thread keeps besides the sequencer handle.
struct GuardThread {
    input: PortAddr,
    output_port: i32,
    rooms: BTreeMap<u16, Room>,
    events: async_mpsc::UnboundedSender<GuardEvent>,
}

impl GuardThread {
    fn run(self, seq: &Seq, wake_reader: WakeReader, commands: mpsc::Receiver<Command>) {
        // The loop calls one closure at a time: the borrows never overlap.
        let state = std::cell::RefCell::new(self);
        sequencer_thread::serve(
            THREAD_NAME,
            seq,
            wake_reader,
            &commands,
            |command| state.borrow_mut().handle(seq, command),
            || state.borrow_mut().read_input(seq),
        );
    }

    fn handle(&mut self, seq: &Seq, command: Command) -> ControlFlow<()> {
        // A requester that stopped waiting is not an error: send results are ignored.
        match command {
            Command::Watch { rooms, reply } => {
                // Announcements already queued come first: a port that went before the loop
                // saw its number come back (a participant who left and joined again) is
                // forgotten before its new self is watched, not after.
                self.read_input(seq);
                self.watch(seq, rooms);
                let _ = reply.send(());
            }
            Command::Leave { participant, reply } => {
                self.leave(seq, participant);
                let _ = reply.send(());
            }
            Command::Panic { reply } => {
                let _ = reply.send(self.panic(seq));
            }
            Command::Stop => return ControlFlow::Break(()),
        }
        ControlFlow::Continue(())
    }

    fn watch(&mut self, seq: &Seq, rooms: Rooms) {
        let watched: Vec<(u16, PortAddr)> = self
            .rooms
            .iter()
            .flat_map(|(&room, state)| state.participants.iter().map(move |&p| (room, p)))
            .collect();
        for (room, participant) in watched {
            if !rooms
                .get(&room)
                .is_some_and(|wanted| wanted.contains(&participant))
            {
                self.leave(seq, participant);
                if let Err(error) =
                    seq.unsubscribe_port(alsa_addr(participant), alsa_addr(self.input))
                {
                    // A port that is gone took its subscription with it.
                    tracing::debug!(%participant, %error, "cannot unsubscribe a participant's port");
                }
            }
        }
        for (room, participants) in rooms {
            for participant in participants {
                let state = self.rooms.entry(room).or_default();
                if state.participants.contains(&participant) {
                    continue;
                }
                match subscribe(seq, participant, self.input) {
                    Ok(()) => {
                        state.participants.insert(participant);
                    }
                    Err(error) => tracing::warn!(
                        room,
                        %participant,
                        %error,
                        "the stuck-note guard cannot listen to a participant's port"
                    ),
                }
            }
        }
        self.rooms.retain(|_, state| !state.participants.is_empty());
    }

    /// Forgets `participant` and sends its release to the rest of its room.
    fn leave(&mut self, seq: &Seq, participant: PortAddr) {
        let Some((&room, state)) = self
            .rooms
            .iter_mut()
            .find(|(_, state)| state.participants.contains(&participant))
        else {
            return;
        };
        state.participants.remove(&participant);
        let release = state.held.leave(&participant);
        if release.is_empty() {
            return;
        }
        let remaining: Vec<PortAddr> = state.participants.iter().copied().collect();
        let receivers = self.send_to_each(seq, remaining, &release);
        let notes = release.iter().filter(|event| event.is_note_off()).count();
        tracing::info!(
            room,
            %participant,
            notes,
            events = release.len(),
            receivers = receivers.len(),
            "released what a leaving participant held"
        );
        let _ = self.events.send(GuardEvent::Released {
            room,
            participant,
            notes,
            events: release.len(),
            receivers,
        });
    }

    /// Sends the panic to everyone watched and forgets what they held.
    fn panic(&mut self, seq: &Seq) -> PanicSent {
        let everyone: Vec<PortAddr> = self
            .rooms
            .values()
            .flat_map(|state| state.participants.iter().copied())
            .collect();
        let receivers = self.send_to_each(seq, everyone.iter().copied(), &midi::panic());
        for state in self.rooms.values_mut() {
            state.held = HeldInRoom::new();
        }
        let sent = PanicSent {
            receivers: receivers.len(),
            failed: everyone.len() - receivers.len(),
        };
        tracing::info!(
            receivers = sent.receivers,
            failed = sent.failed,
            "sent the hub-wide panic"
        );
        sent
    }

    /// Sends `events` from the output port directly to each of `receivers` in turn, paced in
    /// bursts; returns those the kernel took them for (a refusal is logged).
    fn send_to_each(
        &self,
        seq: &Seq,
        receivers: impl IntoIterator<Item = PortAddr>,
        events: &[ChannelEvent],
    ) -> Vec<PortAddr> {
        let mut in_burst = 0;
        receivers
            .into_iter()
            .filter(|&receiver| self.send_paced(seq, receiver, events, &mut in_burst))
            .collect()
    }

    /// Sends `events` to `receiver`, pausing whenever the current burst (`in_burst` events
    /// so far) would grow past [`EVENTS_PER_BURST`]; false (logged) when the kernel refused
    /// them.
    fn send_paced(
        &self,
        seq: &Seq,
        receiver: PortAddr,
        events: &[ChannelEvent],
        in_burst: &mut usize,
    ) -> bool {
        for chunk in events.chunks(EVENTS_PER_BURST) {
            if *in_burst + chunk.len() > EVENTS_PER_BURST {
                std::thread::sleep(BURST_PAUSE);
                *in_burst = 0;
            }
            *in_burst += chunk.len();
            for &event in chunk {
                let mut event = event.to_sequencer();
                event.set_source(self.output_port);
                event.set_dest(alsa_addr(receiver));
                event.set_direct();
                if let Err(error) = output(seq, &mut event) {
                    tracing::warn!(%receiver, %error, "cannot send a release to a participant");
                    return false;
                }
            }
            if let Err(error) = drain(seq) {
                tracing::warn!(%receiver, %error, "cannot send a release to a participant");
                return false;
            }
        }
        true
    }

    /// Reads every pending event without blocking: participants' channel events are taken
    /// note of, a participant port's exit is its leave.
    fn read_input(&mut self, seq: &Seq) {
        loop {
            let seen = match seq.input().event_input() {
                Ok(event) => Seen::of(&event),
                Err(error) => {
                    match sequencer_thread::errno_kind(&error) {
                        std::io::ErrorKind::WouldBlock => {}
                        // ENOSPC: the kernel's input pool overflowed and events were lost.
                        std::io::ErrorKind::StorageFull => {
                            tracing::warn!(
                                "the stuck-note guard's input overran: events were lost"
                            );
                            let _ = self.events.send(GuardEvent::EventsLost);
                        }
                        _ => tracing::warn!(%error, "the stuck-note guard cannot read an event"),
                    }
                    return;
                }
            };
            match seen {
                Some(Seen::Played { from, event }) => {
                    if let Some(state) = self
                        .rooms
                        .values_mut()
                        .find(|state| state.participants.contains(&from))
                    {
                        state.held.observe(from, event);
                    }
                }
                Some(Seen::PortExit(port)) => self.leave(seq, port),
                None => {}
            }
        }
    }
}

/// Queues `event`; when the library's buffer is full, drains it into the kernel first.
fn output(seq: &Seq, event: &mut Event<'_>) -> alsa::Result<()> {
    match seq.event_output(event) {
        Err(error) if would_block(&error) => {
            drain(seq)?;
            seq.event_output(event).map(drop)
        }
        result => result.map(drop),
    }
}

/// Hands the library's buffer to the kernel. The handle is non-blocking: while the
/// kernel's pool for us is full it answers EAGAIN, so this retries a bounded number of
/// times, yielding in between, rather than wait for `poll()` in the middle of a release.
fn drain(seq: &Seq) -> alsa::Result<()> {
    let mut attempts = 0;
    loop {
        match seq.drain_output() {
            Ok(_) => return Ok(()),
            Err(error) if would_block(&error) && attempts < 100 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(error) => {
                // Whatever could not be delivered must not go to the next receiver.
                let _ = seq.drop_output();
                return Err(error);
            }
        }
    }
}

/// What the guard reads from one event, copied out of the library's buffer.
enum Seen {
    Played { from: PortAddr, event: ChannelEvent },
    PortExit(PortAddr),
}

impl Seen {
    fn of(event: &Event<'_>) -> Option<Seen> {
        if event.get_type() == EventType::PortExit {
            // Only the kernel's word counts: any client may write to the input port.
            if port_addr(event.get_source()) != port_addr(Addr::system_announce()) {
                return None;
            }
            return event
                .get_data::<Addr>()
                .map(|addr| Seen::PortExit(port_addr(addr)));
        }
        ChannelEvent::from_sequencer(event).map(|played| Seen::Played {
            from: port_addr(event.get_source()),
            event: played,
        })
    }
}

/// Subscribes `to` to `from`; already subscribed is success.
fn subscribe(seq: &Seq, from: PortAddr, to: PortAddr) -> alsa::Result<()> {
    let request = PortSubscribe::empty()?;
    request.set_sender(alsa_addr(from));
    request.set_dest(alsa_addr(to));
    match seq.subscribe_port(&request) {
        Ok(()) => {
            tracing::debug!(subscription = %Subscription { from, to }, "guard subscribed");
            Ok(())
        }
        // EBUSY: the subscription exists already.
        Err(error) if error.errno().abs() == nix::errno::Errno::EBUSY as i32 => Ok(()),
        Err(error) => Err(error),
    }
}
