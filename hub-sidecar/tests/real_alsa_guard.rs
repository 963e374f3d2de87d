//! The stuck-note guard against a real ALSA sequencer kernel, without rtpmidid: plain
//! sequencer clients stand in for participants' ports; one leaves mid-chord with the sustain
//! pedal down, and the rest of its room — and only its room — is released within 100 ms.
//!
//! Needs `/dev/snd/seq`: run this binary in the ALSA VM (`alsa-vm/run` as cargo's runner).
//! Without the device each test prints `SKIP: ...` to stderr and returns; inside the VM
//! (`ALSA_VM` set) a missing device is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io::Write;
use std::time::{Duration, Instant};

use alsa::PollDescriptors;
use alsa::seq::{PortCap, PortType, Seq};
use hub_sidecar::guard::{self, Guard, GuardEvent};
use hub_sidecar::midi::{Channel, ChannelEvent, Note, Pedal};
use hub_sidecar::wiring::{PortAddr, Rooms};
use midihub_tests::real_alsa::sequencer_or_skip;

/// The room's remaining participants must have the release this fast after the port is gone.
const RELEASE_DEADLINE: Duration = Duration::from_millis(100);

/// How long a participant that should get nothing is listened to.
const SILENCE: Duration = Duration::from_millis(300);

const ROOM: u16 = 5004;
const OTHER_ROOM: u16 = 5006;

fn show(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// One test at a time: in the emulated VM parallel tests blur each other's timings.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A plain sequencer client with one port, standing in for a participant's port in rtpmidid.
struct Participant {
    seq: Seq,
    port: PortAddr,
}

impl Participant {
    fn new(name: &str) -> Participant {
        let seq = Seq::open(None, None, true).unwrap();
        seq.set_client_name(&CString::new(name).unwrap()).unwrap();
        let port = seq
            .create_simple_port(
                &CString::new(name).unwrap(),
                PortCap::READ | PortCap::WRITE | PortCap::SUBS_READ | PortCap::SUBS_WRITE,
                PortType::MIDI_GENERIC | PortType::APPLICATION,
            )
            .unwrap();
        let client = seq.client_id().unwrap();
        Participant {
            seq,
            port: PortAddr { client, port },
        }
    }

    /// Plays `events` to whoever subscribed to the port (as rtpmidid does with what a
    /// participant sends).
    fn play(&self, events: &[ChannelEvent]) {
        for &event in events {
            let mut event = event.to_sequencer();
            event.set_source(self.port.port);
            event.set_subs();
            event.set_direct();
            self.seq.event_output(&mut event).unwrap();
        }
        self.seq.drain_output().unwrap();
    }

    /// The port goes away, as a participant's port in rtpmidid does when it leaves.
    fn leave(&self) {
        self.seq.delete_port(self.port.port).unwrap();
    }

    /// Channel events delivered to the port within `within`, stopping early once `count`
    /// have arrived; with the moment the last of them arrived.
    fn receive(&self, count: usize, within: Duration) -> (Vec<ChannelEvent>, Option<Instant>) {
        let deadline = Instant::now() + within;
        let mut received = Vec::new();
        let mut last = None;
        let mut input = self.seq.input();
        while received.len() < count {
            match input.event_input() {
                Ok(event) => {
                    if let Some(channel_event) = ChannelEvent::from_sequencer(&event) {
                        received.push(channel_event);
                        last = Some(Instant::now());
                    }
                }
                Err(error) if error.errno().abs() == 11 => {
                    // EAGAIN: nothing yet.
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    let mut fds = (&self.seq, Some(alsa::Direction::Capture)).get().unwrap();
                    alsa::poll::poll(&mut fds, i32::try_from(left.as_millis()).unwrap()).unwrap();
                }
                Err(error) => panic!("reading a participant's input: {error}"),
            }
        }
        (received, last)
    }
}

fn channel() -> Channel {
    Channel::new(0).unwrap()
}

fn note_on(note: u8) -> ChannelEvent {
    ChannelEvent::NoteOn {
        channel: channel(),
        note: Note::new(note).unwrap(),
        velocity: 100,
    }
}

fn note_off(note: u8) -> ChannelEvent {
    ChannelEvent::NoteOff {
        channel: channel(),
        note: Note::new(note).unwrap(),
        velocity: 64,
    }
}

fn sustain(down: bool) -> ChannelEvent {
    ChannelEvent::ControlChange {
        channel: channel(),
        controller: Pedal::Sustain.controller(),
        value: if down { 127 } else { 0 },
    }
}

fn rooms(of: &[(u16, &Participant)]) -> Rooms {
    let mut rooms = Rooms::new();
    for (room, participant) in of {
        rooms.entry(*room).or_default().insert(participant.port);
    }
    rooms
}

/// What a receiver should get when the leaver held C major with the sustain pedal down.
fn chord_release() -> BTreeSet<String> {
    [note_off(60), note_off(64), note_off(67), sustain(false)]
        .iter()
        .map(|event| format!("{event:?}"))
        .collect()
}

fn as_set(events: &[ChannelEvent]) -> BTreeSet<String> {
    events.iter().map(|event| format!("{event:?}")).collect()
}

/// Runs one release through every code path of the measured one, in a room of its own, untimed.
/// The ALSA VM emulates its CPU and translates code the first time it runs: a release that
/// is the first ran 50–150 ms late in about one run in three, the later ones 1–5 ms.
async fn warm_up(guard: &Guard, done: &mut tokio::sync::mpsc::UnboundedReceiver<GuardEvent>) {
    const WARM_UP_ROOM: u16 = 5008;
    let leaver = Participant::new("guard-test-warm-up-leaver");
    let receiver = Participant::new("guard-test-warm-up-receiver");
    let watched = rooms(&[(WARM_UP_ROOM, &leaver), (WARM_UP_ROOM, &receiver)]);
    guard.watch(watched).await.unwrap();
    leaver.play(&[note_on(48), sustain(true)]);
    let listening = std::thread::spawn(move || receiver.receive(2, Duration::from_secs(2)));
    leaver.leave();
    let (received, _) = listening.join().unwrap();
    assert_eq!(received.len(), 2, "the warm-up release: {received:?}");
    assert!(matches!(
        done.recv().await.unwrap(),
        GuardEvent::Released {
            room: WARM_UP_ROOM,
            ..
        }
    ));
}

#[tokio::test]
async fn a_participant_leaving_mid_chord_is_released_for_its_room_only() {
    if !sequencer_or_skip("a_participant_leaving_mid_chord_is_released_for_its_room_only") {
        return;
    }
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let (guard, mut done) = Guard::start(guard::CLIENT_NAME).unwrap();
    // Before the room below is watched: watching it forgets the warm-up room.
    warm_up(&guard, &mut done).await;
    let alice = Participant::new("guard-test-alice");
    let bob = Participant::new("guard-test-bob");
    let carol = Participant::new("guard-test-carol");
    let dave = Participant::new("guard-test-dave");
    guard
        .watch(rooms(&[
            (ROOM, &alice),
            (ROOM, &bob),
            (ROOM, &carol),
            (OTHER_ROOM, &dave),
        ]))
        .await
        .unwrap();

    alice.play(&[note_on(60), note_on(64), note_on(67), sustain(true)]);
    // Dave plays in the other room: his notes are his, and never go anywhere on Alice's leave.
    dave.play(&[note_on(72)]);
    // Bob and Carol listen at once, each on a thread of its own, so that each one's delay is
    // its own and not the time the other took to read.
    let listening: Vec<_> = [("bob", bob), ("carol", carol)]
        .into_iter()
        .map(|(name, receiver)| {
            std::thread::spawn(move || {
                let (received, last) = receiver.receive(4, Duration::from_secs(2));
                (name, receiver, received, last)
            })
        })
        .collect();
    let left = Instant::now();
    alice.leave();

    let mut receivers = Vec::new();
    for listener in listening {
        let (name, receiver, received, last) = listener.join().unwrap();
        assert_eq!(
            as_set(&received),
            chord_release(),
            "{name} got {received:?}"
        );
        let delay = last.unwrap().duration_since(left);
        show(&format!(
            "{name} had the release ({} events) {delay:?} after alice's port went away",
            received.len()
        ));
        assert!(
            delay <= RELEASE_DEADLINE,
            "{name} waited {delay:?} for the release"
        );
        receivers.push(receiver);
    }
    let [bob, carol] = <[Participant; 2]>::try_from(receivers).ok().unwrap();
    let (to_dave, _) = dave.receive(1, SILENCE);
    assert_eq!(to_dave, vec![], "the other room got something");
    // Nothing more than the release reached the room either.
    for receiver in [&bob, &carol] {
        assert_eq!(receiver.receive(1, SILENCE).0, vec![]);
    }
    let report = done.recv().await.unwrap();
    assert_eq!(
        report,
        GuardEvent::Released {
            room: ROOM,
            participant: alice.port,
            notes: 3,
            events: 4,
            receivers: vec![bob.port, carol.port],
        }
    );
}

#[tokio::test]
async fn a_participant_who_let_go_of_everything_leaves_without_a_release() {
    if !sequencer_or_skip("a_participant_who_let_go_of_everything_leaves_without_a_release") {
        return;
    }
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let (guard, mut done) = Guard::start(guard::CLIENT_NAME).unwrap();
    let alice = Participant::new("guard-test-alice");
    let bob = Participant::new("guard-test-bob");
    let carol = Participant::new("guard-test-carol");
    guard
        .watch(rooms(&[(ROOM, &alice), (ROOM, &bob), (ROOM, &carol)]))
        .await
        .unwrap();

    alice.play(&[
        note_on(60),
        note_on(64),
        sustain(true),
        note_off(60),
        note_off(64),
        sustain(false),
    ]);
    alice.leave();

    for receiver in [&bob, &carol] {
        assert_eq!(receiver.receive(1, SILENCE).0, vec![]);
    }
    // By now the guard has read the port exit (it reads whenever input is pending); a round
    // trip proves its thread is alive, and it reported nothing.
    guard
        .watch(rooms(&[(ROOM, &bob), (ROOM, &carol)]))
        .await
        .unwrap();
    assert!(done.try_recv().is_err(), "the guard released something");
}

#[tokio::test]
async fn a_participant_said_to_have_left_is_released_for_the_rest_of_its_room() {
    if !sequencer_or_skip("a_participant_said_to_have_left_is_released_for_the_rest_of_its_room") {
        return;
    }
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let (guard, mut done) = Guard::start(guard::CLIENT_NAME).unwrap();
    let alice = Participant::new("guard-test-alice");
    let bob = Participant::new("guard-test-bob");
    guard
        .watch(rooms(&[(ROOM, &alice), (ROOM, &bob)]))
        .await
        .unwrap();

    alice.play(&[note_on(60), note_on(64), note_on(67), sustain(true)]);
    // The chord must have reached the guard before it is told. The thread serves commands
    // before input when both are pending, so a round trip proves nothing: give it a moment.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let told = Instant::now();
    guard.leave(alice.port).await.unwrap();

    let (received, last) = bob.receive(4, Duration::from_secs(2));
    assert_eq!(as_set(&received), chord_release(), "bob got {received:?}");
    show(&format!(
        "bob had the release {:?} after the guard was told alice left",
        last.unwrap().duration_since(told)
    ));
    assert!(matches!(
        done.recv().await.unwrap(),
        GuardEvent::Released {
            notes: 3,
            events: 4,
            ..
        }
    ));
    // Alice's port still exists but is no longer watched: its exit now releases nothing.
    alice.leave();
    assert_eq!(bob.receive(1, SILENCE).0, vec![]);
}
