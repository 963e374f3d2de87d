//! The ALSA sequencer client of the sidecar, on a thread of its own.
//!
//! One named thread owns the `alsa::seq::Seq` handle and blocks in `poll()` on the
//! sequencer's descriptors plus the read end of a wake-up socket. The async side talks to it
//! through a command channel (answers come back on oneshot channels) and receives
//! announcements (clients and ports coming and going, subscriptions made and broken) on an
//! unbounded channel as the kernel delivers them: nothing polls the sequencer on a timer.
//!
//! The thread also wires the joins of rooms that admit everyone itself, the moment it reads
//! their ports' announcements (see [`OpenRooms`]): no hand-off between the announcement and the
//! subscriptions.
//!
//! The thread stops when the [`Sequencer`] is dropped, or on a fatal `poll()` error; in both
//! cases the event receiver closes and later requests fail with [`SequencerError::ThreadGone`].

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::ops::ControlFlow;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use alsa::seq::{
    Addr, ClientIter, Connect, Event, EventType, PortCap, PortIter, PortSubscribe,
    PortSubscribeIter, PortType, QuerySubsType, Seq,
};
use tokio::sync::{mpsc as async_mpsc, oneshot, watch};

use crate::allow::RoomRules;
use crate::sequencer_thread::{self, WakeReader, Waker};
use crate::wiring::{self, ParticipantPort, PortAddr, Subscription, WiringPlan};

/// Name of the thread that owns the sequencer handle (visible in `ps -T`, `top -H`).
const THREAD_NAME: &str = "alsa-sequencer";

/// What the kernel announced on System:Announce (0:1), about any client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SequencerEvent {
    ClientStart(i32),
    ClientExit(i32),
    PortStart(PortAddr),
    PortExit(PortAddr),
    PortChanged(PortAddr),
    Subscribed(Subscription),
    Unsubscribed(Subscription),
    /// The kernel dropped announcements because our input queue was full: whatever the caller
    /// tracks from events may be stale, so it should take a fresh [`Sequencer::snapshot`].
    EventsLost,
}

/// An announcement and the moment the sequencer thread read it from the kernel: how long the
/// rest of the sidecar takes to act on it is measured from there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub event: SequencerEvent,
    pub read_at: Instant,
    /// For a port that joined an open room: the subscriptions the thread made for it before
    /// passing the announcement on, and when it was done.
    pub wired: Option<Wired>,
}

/// The subscriptions the sequencer thread made for a join, all of them, in which room (its
/// control port), and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wired {
    pub subscriptions: Vec<Subscription>,
    pub room: u16,
    pub at: Instant,
}

/// The rooms whose joins the sequencer thread wires itself, by the sequencer client each has of
/// its own. Every port of such a client is a participant of the room who plays, but those
/// `not_playing` (a participant who is leaving, say), so a port that starts there is subscribed
/// to and from each of them as soon as the thread reads its announcement — if the room still
/// admits everyone and the client still has its name.
pub type OpenRooms = BTreeMap<i32, OpenRoom>;

/// A room whose joins the sequencer thread may wire (see [`OpenRooms`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenRoom {
    /// The room's control port, whose rule the thread checks at each join.
    pub room: u16,
    /// The client's name when the pass looked: under that number, a client of another name is
    /// another client.
    pub client_name: String,
    pub not_playing: BTreeSet<PortAddr>,
}

/// What the thread goes by to wire joins: the open rooms the last pass found, and the rooms'
/// rules as they are now (a room that gets a list is wired by passes alone from that moment).
#[derive(Default)]
struct JoinWiring {
    rooms: OpenRooms,
    rules: Option<watch::Receiver<RoomRules>>,
}

/// One port of a client, as the sequencer lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    pub addr: PortAddr,
    pub name: String,
}

/// A client's ports and the subscriptions between them, and those of some more clients (the
/// daemon's sessions'), read from the kernel at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientSnapshot {
    /// The named client's id; `None` when no client has the requested name.
    pub client: Option<i32>,
    /// The ports of the named client, then those of the other clients asked for, in order.
    pub ports: Vec<PortInfo>,
    /// Subscriptions between two ports of one of those clients.
    pub subscriptions: BTreeSet<Subscription>,
    /// The names of the other clients asked for that are there.
    pub more_client_names: BTreeMap<i32, String>,
}

/// Everything that can go wrong talking to the ALSA sequencer.
#[derive(Debug, thiserror::Error)]
pub enum SequencerError {
    #[error(
        "cannot open the ALSA sequencer: {error}. /dev/snd/seq must exist and be readable and \
         writable by this process: load the snd-seq kernel module on the node, mount /dev/snd \
         into the container, and run it privileged or with a device plugin that grants /dev/snd"
    )]
    Open { error: alsa::Error },
    #[error("invalid sequencer client name {0:?}: ALSA names cannot contain a NUL byte")]
    InvalidClientName(String),
    #[error("cannot set up the sequencer client ({step}): {error}")]
    Setup {
        step: &'static str,
        error: alsa::Error,
    },
    #[error("cannot create the wake-up socket of the sequencer thread: {0}")]
    WakeSocket(std::io::Error),
    #[error("cannot start the sequencer thread: {0}")]
    SpawnThread(std::io::Error),
    #[error(
        "cannot subscribe {subscription}: {error}. Both ports must exist, the sender must \
         allow read subscriptions and the receiver write subscriptions"
    )]
    Subscribe {
        subscription: Subscription,
        error: alsa::Error,
    },
    #[error("cannot unsubscribe {subscription}: {error}")]
    Unsubscribe {
        subscription: Subscription,
        error: alsa::Error,
    },
    #[error(
        "the ALSA sequencer thread has stopped (after a fatal poll error, see the log); \
         restart the sidecar"
    )]
    ThreadGone,
}

impl SequencerError {
    /// The subscription a failed subscribe or unsubscribe was about.
    pub fn subscription(&self) -> Option<Subscription> {
        match self {
            SequencerError::Subscribe { subscription, .. }
            | SequencerError::Unsubscribe { subscription, .. } => Some(*subscription),
            _ => None,
        }
    }
}

/// Handle to the sequencer thread. Dropping it stops the thread and waits for it (the thread
/// answers within a request's time, so the wait is short even on an async worker).
pub struct Sequencer {
    commands: mpsc::Sender<Command>,
    /// Writing a byte here wakes the thread out of `poll()`.
    wake_writer: Waker,
    thread: Option<JoinHandle<()>>,
}

enum Command {
    Snapshot {
        client_name: String,
        more_clients: Vec<i32>,
        reply: oneshot::Sender<ClientSnapshot>,
    },
    Rewire {
        plan: WiringPlan,
        reply: oneshot::Sender<Vec<SequencerError>>,
    },
    WireJoinsOf {
        rooms: OpenRooms,
        rules: watch::Receiver<RoomRules>,
    },
    Stop,
}

impl Sequencer {
    /// Opens a sequencer client named `own_name` (e.g. "midihub-sidecar") with one port
    /// subscribed to System:Announce (0:1), and starts the thread. Events arrive on the
    /// returned receiver as the kernel delivers them; the receiver closes when the thread
    /// stops (the `Sequencer` was dropped, or `poll()` failed fatally).
    pub fn start(
        own_name: &str,
    ) -> Result<(Sequencer, async_mpsc::UnboundedReceiver<Announcement>), SequencerError> {
        let seq = sequencer_thread::open_client(own_name)?;
        let announce_port = seq
            .create_simple_port(
                c"announcements",
                // NO_EXPORT: nobody else may subscribe to this port; it only listens.
                PortCap::WRITE | PortCap::NO_EXPORT,
                PortType::APPLICATION,
            )
            .map_err(|error| SequencerError::Setup {
                step: "create the announcement port",
                error,
            })?;
        let own_client = seq.client_id().map_err(|error| SequencerError::Setup {
            step: "read the own client id",
            error,
        })?;
        let subscribe = PortSubscribe::empty().map_err(|error| SequencerError::Setup {
            step: "allocate a subscription",
            error,
        })?;
        subscribe.set_sender(Addr::system_announce());
        subscribe.set_dest(Addr {
            client: own_client,
            port: announce_port,
        });
        seq.subscribe_port(&subscribe)
            .map_err(|error| SequencerError::Setup {
                step: "subscribe to System:Announce (0:1)",
                error,
            })?;

        let (wake_writer, wake_reader) =
            sequencer_thread::wake_socket().map_err(SequencerError::WakeSocket)?;
        let (commands, command_receiver) = mpsc::channel();
        let (event_sender, events) = async_mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || run(seq, wake_reader, command_receiver, event_sender))
            .map_err(SequencerError::SpawnThread)?;
        tracing::info!(
            client = own_client,
            name = own_name,
            "ALSA sequencer client opened"
        );
        Ok((
            Sequencer {
                commands,
                wake_writer,
                thread: Some(thread),
            },
            events,
        ))
    }

    /// The client named `client_name` (the lowest id among clients of that name), its ports
    /// and those of the clients `more_clients` (a client that is not there has none), and
    /// every subscription whose sender and receiver are two ports of one of these clients,
    /// read from the kernel. `client` is `None` when no client has that name.
    pub async fn snapshot(
        &self,
        client_name: &str,
        more_clients: &[i32],
    ) -> Result<ClientSnapshot, SequencerError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Snapshot {
            client_name: client_name.to_owned(),
            more_clients: more_clients.to_vec(),
            reply,
        })?;
        answer.await.map_err(|_| SequencerError::ThreadGone)
    }

    /// Removes the plan's `remove` subscriptions, then makes its `add` ones, in one request to
    /// the thread (a join's subscriptions are made together, not one round trip each); returns
    /// the errors of those that failed, each naming its subscription. A subscription already
    /// there, or already gone (a port that is gone takes its subscriptions with it), is success.
    pub async fn rewire(&self, plan: WiringPlan) -> Result<Vec<SequencerError>, SequencerError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Rewire { plan, reply })?;
        answer.await.map_err(|_| SequencerError::ThreadGone)
    }

    /// From now on the thread wires the joins of `rooms` itself, while `rules` say they admit
    /// everyone (replacing the rooms it was given before; none: it wires nothing by itself).
    pub fn wire_joins_of(
        &self,
        rooms: OpenRooms,
        rules: watch::Receiver<RoomRules>,
    ) -> Result<(), SequencerError> {
        self.send(Command::WireJoinsOf { rooms, rules })
    }

    fn send(&self, command: Command) -> Result<(), SequencerError> {
        self.commands
            .send(command)
            .map_err(|_| SequencerError::ThreadGone)?;
        self.wake();
        Ok(())
    }

    fn wake(&self) {
        self.wake_writer.wake();
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        // Fails only when the thread has already stopped.
        let _ = self.commands.send(Command::Stop);
        self.wake();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the sequencer thread panicked");
        }
    }
}

/// The thread's body: wait for the kernel or a command, handle it, repeat.
fn run(
    seq: Seq,
    wake_reader: WakeReader,
    commands: mpsc::Receiver<Command>,
    events: async_mpsc::UnboundedSender<Announcement>,
) {
    let join_wiring = RefCell::new(JoinWiring::default());
    sequencer_thread::serve(
        THREAD_NAME,
        &seq,
        wake_reader,
        &commands,
        |command| match command {
            Command::Stop => ControlFlow::Break(()),
            Command::WireJoinsOf { rooms, rules } => {
                *join_wiring.borrow_mut() = JoinWiring {
                    rooms,
                    rules: Some(rules),
                };
                ControlFlow::Continue(())
            }
            command => {
                // A snapshot comes after the announcements of what it shows: a port it lists
                // has been announced by the time its reply arrives.
                if matches!(command, Command::Snapshot { .. }) {
                    forward_announcements(&seq, &events, &mut join_wiring.borrow_mut());
                }
                handle_command(&seq, command);
                ControlFlow::Continue(())
            }
        },
        || forward_announcements(&seq, &events, &mut join_wiring.borrow_mut()),
    );
}

fn handle_command(seq: &Seq, command: Command) {
    // A requester that stopped waiting is not an error: send results are ignored.
    match command {
        Command::Snapshot {
            client_name,
            more_clients,
            reply,
        } => {
            let _ = reply.send(snapshot(seq, &client_name, &more_clients));
        }
        Command::Rewire { plan, reply } => {
            let removed = plan.remove.into_iter().map(|s| unsubscribe(seq, s));
            let added = plan.add.into_iter().map(|s| subscribe(seq, s));
            let failures = removed.chain(added).filter_map(Result::err).collect();
            let _ = reply.send(failures);
        }
        Command::WireJoinsOf { .. } | Command::Stop => {}
    }
}

/// Reads every pending announcement without blocking and forwards the ones we translate,
/// wiring first a port that starts in one of the open rooms of `join_wiring` (and forgetting
/// what goes: a port or client number may come back as another's).
fn forward_announcements(
    seq: &Seq,
    events: &async_mpsc::UnboundedSender<Announcement>,
    join_wiring: &mut JoinWiring,
) {
    let mut input = seq.input();
    loop {
        let translated = match input.event_input() {
            Ok(event) => translate(&event).map(|event| {
                let read_at = Instant::now();
                let wired = match &event {
                    SequencerEvent::PortStart(port) => join_wiring.wire(seq, *port),
                    SequencerEvent::PortExit(port) => {
                        if let Some(room) = join_wiring.rooms.get_mut(&port.client) {
                            room.not_playing.remove(port);
                        }
                        None
                    }
                    SequencerEvent::ClientExit(client) => {
                        join_wiring.rooms.remove(client);
                        None
                    }
                    _ => None,
                };
                Announcement {
                    event,
                    read_at,
                    wired,
                }
            }),
            Err(error) => {
                match sequencer_thread::errno_kind(&error) {
                    ErrorKind::WouldBlock => {}
                    // ENOSPC: the kernel's input pool overflowed and announcements were lost.
                    ErrorKind::StorageFull => {
                        tracing::warn!("sequencer input overrun: announcements were lost");
                        let _ = events.send(Announcement {
                            event: SequencerEvent::EventsLost,
                            read_at: Instant::now(),
                            wired: None,
                        });
                    }
                    _ => tracing::warn!(%error, "cannot read a sequencer event"),
                }
                return;
            }
        };
        if let Some(event) = translated {
            // Nobody listening is fine: requests are still served.
            let _ = events.send(event);
        }
    }
}

impl JoinWiring {
    /// Wires `port`, which just started, if it joined an open room that still admits
    /// everyone, on the client that had the room's name.
    fn wire(&self, seq: &Seq, port: PortAddr) -> Option<Wired> {
        let room = self.rooms.get(&port.client)?;
        if !self.rules.as_ref()?.borrow().admits_everyone(room.room) {
            return None;
        }
        let info = seq.get_any_client_info(port.client).ok()?;
        if info.get_name().ok()? != room.client_name {
            return None;
        }
        wire_join(seq, port, room)
    }
}

/// Makes the subscriptions the hub wants ([`wiring::desired_subscriptions`]) to and from
/// `port`, which just started on the client of the open `room`, whose participants who play
/// are that client's ports but those not playing; `None` when a subscription failed (the
/// loop's next pass then wires the join, and logs why it could not).
fn wire_join(seq: &Seq, port: PortAddr, room: &OpenRoom) -> Option<Wired> {
    let participants: Vec<ParticipantPort> = PortIter::new(seq, port.client)
        .map(|info| port_addr(info.addr()))
        .filter(|addr| !room.not_playing.contains(addr))
        .map(|addr| ParticipantPort {
            port: addr,
            room: room.room,
            plays: true,
        })
        .collect();
    let subscriptions: Vec<Subscription> = wiring::desired_subscriptions(&participants)
        .into_iter()
        .filter(|subscription| subscription.from == port || subscription.to == port)
        .collect();
    for subscription in &subscriptions {
        if let Err(error) = subscribe(seq, *subscription) {
            tracing::debug!(%error, "cannot wire a join at its announcement; the loop will");
            return None;
        }
    }
    Some(Wired {
        subscriptions,
        room: room.room,
        at: Instant::now(),
    })
}

fn translate(event: &Event<'_>) -> Option<SequencerEvent> {
    let port = |event: &Event<'_>| event.get_data::<Addr>().map(port_addr);
    let connection = |event: &Event<'_>| {
        event.get_data::<Connect>().map(|connect| Subscription {
            from: port_addr(connect.sender),
            to: port_addr(connect.dest),
        })
    };
    match event.get_type() {
        EventType::ClientStart => port(event).map(|addr| SequencerEvent::ClientStart(addr.client)),
        EventType::ClientExit => port(event).map(|addr| SequencerEvent::ClientExit(addr.client)),
        EventType::PortStart => port(event).map(SequencerEvent::PortStart),
        EventType::PortExit => port(event).map(SequencerEvent::PortExit),
        EventType::PortChange => port(event).map(SequencerEvent::PortChanged),
        EventType::PortSubscribed => connection(event).map(SequencerEvent::Subscribed),
        EventType::PortUnsubscribed => connection(event).map(SequencerEvent::Unsubscribed),
        _ => None,
    }
}

pub(crate) fn port_addr(addr: Addr) -> PortAddr {
    PortAddr {
        client: addr.client,
        port: addr.port,
    }
}

pub(crate) fn alsa_addr(addr: PortAddr) -> Addr {
    Addr {
        client: addr.client,
        port: addr.port,
    }
}

fn snapshot(seq: &Seq, client_name: &str, more_clients: &[i32]) -> ClientSnapshot {
    let Some(client) = ClientIter::new(seq)
        .find(|info| info.get_name().is_ok_and(|name| name == client_name))
        .map(|info| info.get_client())
    else {
        return ClientSnapshot::default();
    };
    let mut ports = Vec::new();
    let mut subscriptions = BTreeSet::new();
    let others = || more_clients.iter().copied().filter(|more| *more != client);
    let clients = std::iter::once(client).chain(others());
    for info in clients.flat_map(|client| PortIter::new(seq, client)) {
        let addr = port_addr(info.addr());
        let name = match info.get_name() {
            Ok(name) => name.to_owned(),
            Err(error) => {
                tracing::warn!(port = %addr, %error, "port name is not UTF-8; listed without a name");
                String::new()
            }
        };
        ports.push(PortInfo { addr, name });
        subscriptions.extend(
            PortSubscribeIter::new(seq, info.addr(), QuerySubsType::READ)
                .map(|subscription| port_addr(subscription.get_dest()))
                .filter(|to| to.client == addr.client)
                .map(|to| Subscription { from: addr, to }),
        );
    }
    let more_client_names = others()
        .filter_map(|more| {
            let info = seq.get_any_client_info(more).ok()?;
            Some((more, info.get_name().ok()?.to_owned()))
        })
        .collect();
    ClientSnapshot {
        client: Some(client),
        ports,
        subscriptions,
        more_client_names,
    }
}

/// Whether the kernel holds this subscription now.
fn is_subscribed(seq: &Seq, subscription: Subscription) -> bool {
    PortSubscribeIter::new(seq, alsa_addr(subscription.from), QuerySubsType::READ)
        .any(|existing| port_addr(existing.get_dest()) == subscription.to)
}

fn subscribe(seq: &Seq, subscription: Subscription) -> Result<(), SequencerError> {
    let request = PortSubscribe::empty().map_err(|error| SequencerError::Subscribe {
        subscription,
        error,
    })?;
    request.set_sender(alsa_addr(subscription.from));
    request.set_dest(alsa_addr(subscription.to));
    match seq.subscribe_port(&request) {
        Ok(()) => {
            tracing::debug!(%subscription, "subscribed");
            Ok(())
        }
        // The kernel refuses a subscription that already exists (EBUSY): that is our goal.
        Err(_) if is_subscribed(seq, subscription) => Ok(()),
        Err(error) => Err(SequencerError::Subscribe {
            subscription,
            error,
        }),
    }
}

fn unsubscribe(seq: &Seq, subscription: Subscription) -> Result<(), SequencerError> {
    match seq.unsubscribe_port(alsa_addr(subscription.from), alsa_addr(subscription.to)) {
        Ok(()) => {
            tracing::debug!(%subscription, "unsubscribed");
            Ok(())
        }
        // Not subscribed, or a port gone (which takes its subscriptions with it): our goal.
        Err(_) if !is_subscribed(seq, subscription) => Ok(()),
        Err(error) => Err(SequencerError::Unsubscribe {
            subscription,
            error,
        }),
    }
}
