//! The sequencer client against a real ALSA sequencer kernel: lookups, subscriptions (checked
//! against `aconnect -l` too), announcements as they happen, MIDI through a subscription it
//! made, and a clean stop.
//!
//! Needs `/dev/snd/seq`: run this binary in the ALSA VM (`alsa-vm/run` as cargo's runner).
//! Without the device each test prints `SKIP: ...` to stderr and returns; inside the VM
//! (`ALSA_VM` set) a missing device is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use alsa::PollDescriptors;
use alsa::seq::{EvNote, Event, EventType, PortCap, PortType, Seq};
use hub_sidecar::allow::{AllowList, RoomRules};
use hub_sidecar::sequencer::{Announcement, OpenRoom, Sequencer, SequencerError, SequencerEvent};
use hub_sidecar::wiring::{PortAddr, Subscription, WiringPlan};
use midihub_tests::real_alsa::sequencer_or_skip;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;

/// Announcements must arrive this fast after the change (they are pushed, not polled).
const ANNOUNCEMENT_DEADLINE: Duration = Duration::from_millis(100);

/// Writes a line to stderr past the test harness's output capture, so skips and measured
/// figures show in a normal `cargo test` run.
fn show(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The tests run one at a time: in the emulated VM, parallel tests delay each other's threads
/// enough to blur the announcement timings.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Another sequencer client with ports of its own, standing in for rtpmidid.
struct TestPeer {
    seq: Seq,
    client: i32,
}

impl TestPeer {
    fn new(name: &str) -> TestPeer {
        let seq = Seq::open(None, None, true).unwrap();
        seq.set_client_name(&CString::new(name).unwrap()).unwrap();
        let client = seq.client_id().unwrap();
        TestPeer { seq, client }
    }

    /// A port others can read from and write to, like a participant's port in rtpmidid.
    fn add_port(&self, name: &str) -> PortAddr {
        let port = self
            .seq
            .create_simple_port(
                &CString::new(name).unwrap(),
                PortCap::READ | PortCap::WRITE | PortCap::SUBS_READ | PortCap::SUBS_WRITE,
                PortType::MIDI_GENERIC | PortType::APPLICATION,
            )
            .unwrap();
        PortAddr {
            client: self.client,
            port,
        }
    }

    fn send_note_on(&self, from: PortAddr, note: u8) {
        let mut event = Event::new(
            EventType::Noteon,
            &EvNote {
                channel: 0,
                note,
                velocity: 100,
                off_velocity: 0,
                duration: 0,
            },
        );
        event.set_source(from.port);
        event.set_subs();
        event.set_direct();
        self.seq.event_output(&mut event).unwrap();
        self.seq.drain_output().unwrap();
    }

    /// Waits (up to `within`) for a note-on delivered to `port`; returns its note number.
    fn receive_note_on(&self, port: PortAddr, within: Duration) -> Option<u8> {
        let deadline = Instant::now() + within;
        let mut input = self.seq.input();
        loop {
            match input.event_input() {
                Ok(event) => {
                    if event.get_type() == EventType::Noteon && event.get_dest().port == port.port {
                        return event.get_data::<EvNote>().map(|note| note.note);
                    }
                }
                Err(error) if error.errno() == 11 => {
                    // EAGAIN: nothing yet.
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    let mut fds = (&self.seq, Some(alsa::Direction::Capture)).get().unwrap();
                    alsa::poll::poll(&mut fds, i32::try_from(left.as_millis()).unwrap()).unwrap();
                }
                Err(error) => panic!("reading the test peer's input: {error}"),
            }
        }
    }
}

fn subscription(from: PortAddr, to: PortAddr) -> Subscription {
    Subscription { from, to }
}

/// Waits for `wanted`, skipping other announcements; returns how long it took.
/// Makes `subscriptions` in one request to the sequencer's thread; each must succeed.
async fn subscribe(sequencer: &Sequencer, subscriptions: &[Subscription]) {
    rewire(sequencer, Vec::new(), subscriptions.to_vec()).await;
}

/// Removes `subscriptions` in one request; each must succeed.
async fn unsubscribe(sequencer: &Sequencer, subscriptions: &[Subscription]) {
    rewire(sequencer, subscriptions.to_vec(), Vec::new()).await;
}

async fn rewire(sequencer: &Sequencer, remove: Vec<Subscription>, add: Vec<Subscription>) {
    let errors = sequencer.rewire(WiringPlan { remove, add }).await.unwrap();
    assert!(errors.is_empty(), "{errors:?}");
}

async fn wait_for(
    events: &mut UnboundedReceiver<Announcement>,
    wanted: &SequencerEvent,
    started: Instant,
    within: Duration,
) -> Duration {
    announcement(events, wanted, started, within).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed <= within,
        "{wanted:?} took {elapsed:?}, over {within:?}"
    );
    elapsed
}

/// The announcement `wanted`, arriving within `within` of `started`.
async fn announcement(
    events: &mut UnboundedReceiver<Announcement>,
    wanted: &SequencerEvent,
    started: Instant,
    within: Duration,
) -> Announcement {
    let deadline = started + within;
    tokio::time::timeout_at(deadline.into(), async {
        loop {
            let announcement = events.recv().await.expect("event channel closed");
            if &announcement.event == wanted {
                return announcement;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{wanted:?} did not arrive within {within:?}"))
}

/// Subscriptions as `aconnect -l` lists them ("Connecting To:" lines), the kernel's view
/// through another tool.
fn aconnect_subscriptions() -> BTreeSet<Subscription> {
    let output = std::process::Command::new("aconnect")
        .arg("-l")
        .output()
        .expect("aconnect (alsa-utils) must be installed");
    assert!(output.status.success(), "aconnect -l failed: {output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let parse_addr = |text: &str| -> PortAddr {
        // "128:1" or "128:1[real:0]"
        let plain = text.trim().split('[').next().unwrap();
        let (client, port) = plain.split_once(':').unwrap();
        PortAddr {
            client: client.parse().unwrap(),
            port: port.parse().unwrap(),
        }
    };
    let mut client = None;
    let mut port = None;
    let mut subscriptions = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("client ") {
            client = Some(rest.split(':').next().unwrap().parse::<i32>().unwrap());
        } else if let Some(targets) = line.trim().strip_prefix("Connecting To:") {
            let from = PortAddr {
                client: client.unwrap(),
                port: port.unwrap(),
            };
            for target in targets.split(',') {
                subscriptions.insert(subscription(from, parse_addr(target)));
            }
        } else if line.starts_with("    ") && !line.trim().starts_with("Connect") {
            port = line.split_whitespace().next().and_then(|n| n.parse().ok());
        }
    }
    subscriptions
}

#[test]
fn start_without_a_sequencer_device_says_what_to_fix() {
    if Path::new("/dev/snd/seq").exists() {
        show("SKIP: /dev/snd/seq exists, so opening cannot fail for lack of it");
        return;
    }
    let error = Sequencer::start("midihub-sidecar").err().unwrap();
    assert!(matches!(error, SequencerError::Open { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("/dev/snd/seq"), "{message}");
    assert!(message.contains("snd-seq"), "{message}");
}

#[tokio::test]
async fn snapshot_finds_a_client_by_name_and_lists_its_ports() {
    if !sequencer_or_skip("snapshot_finds_a_client_by_name_and_lists_its_ports") {
        return;
    }
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let (sequencer, _events) = Sequencer::start("midihub-sidecar").unwrap();
    let peer = TestPeer::new("test-peer-snapshot");
    let alpha = peer.add_port("Alice MacBook");
    let bravo = peer.add_port("bob-linux");
    let charlie = peer.add_port("Carol iPad, 2nd");

    let snapshot = sequencer.snapshot("test-peer-snapshot", &[]).await.unwrap();

    assert_eq!(snapshot.client, Some(peer.client));
    let ports: Vec<_> = snapshot
        .ports
        .iter()
        .map(|port| (port.addr, port.name.as_str()))
        .collect();
    assert_eq!(
        ports,
        vec![
            (alpha, "Alice MacBook"),
            (bravo, "bob-linux"),
            (charlie, "Carol iPad, 2nd"),
        ]
    );
    assert!(snapshot.subscriptions.is_empty());

    let virmidi = sequencer
        .snapshot("Virtual Raw MIDI 0-0", &[])
        .await
        .unwrap();
    assert_eq!(virmidi.client, Some(16), "snd-virmidi's first client");

    let missing = sequencer.snapshot("no-such-client", &[]).await.unwrap();
    assert_eq!(missing, Default::default());

    // A session's client as well (the named one is listed once, a missing one adds nothing).
    let session = TestPeer::new("test-peer-snapshot jam");
    let dave = session.add_port("Dave");
    let no_client = 191;
    let snapshot = sequencer
        .snapshot(
            "test-peer-snapshot",
            &[session.client, peer.client, no_client],
        )
        .await
        .unwrap();
    assert_eq!(snapshot.client, Some(peer.client));
    let ports: Vec<_> = snapshot.ports.iter().map(|port| port.addr).collect();
    assert_eq!(ports, vec![alpha, bravo, charlie, dave]);
}

#[tokio::test]
async fn subscriptions_are_idempotent_and_seen_by_the_kernel() {
    if !sequencer_or_skip("subscriptions_are_idempotent_and_seen_by_the_kernel") {
        return;
    }
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let (sequencer, _events) = Sequencer::start("midihub-sidecar").unwrap();
    let peer = TestPeer::new("test-peer-subscribe");
    let alpha = peer.add_port("alpha");
    let bravo = peer.add_port("bravo");
    let alpha_to_bravo = subscription(alpha, bravo);
    let bravo_to_alpha = subscription(bravo, alpha);
    let midi_through = PortAddr {
        client: 14,
        port: 0,
    };
    let alpha_to_other_client = subscription(alpha, midi_through);

    subscribe(
        &sequencer,
        &[alpha_to_bravo, bravo_to_alpha, alpha_to_other_client],
    )
    .await;
    // Again: already there is success.
    subscribe(&sequencer, &[alpha_to_bravo]).await;

    let snapshot = sequencer
        .snapshot("test-peer-subscribe", &[])
        .await
        .unwrap();
    let within_peer = BTreeSet::from([alpha_to_bravo, bravo_to_alpha]);
    assert_eq!(
        snapshot.subscriptions, within_peer,
        "only subscriptions between the client's own ports"
    );
    let kernel_view = aconnect_subscriptions();
    for expected in [alpha_to_bravo, bravo_to_alpha, alpha_to_other_client] {
        assert!(
            kernel_view.contains(&expected),
            "aconnect -l lacks {expected}: {kernel_view:?}"
        );
    }

    unsubscribe(&sequencer, &[alpha_to_bravo]).await;
    unsubscribe(&sequencer, &[alpha_to_bravo]).await;
    let snapshot = sequencer
        .snapshot("test-peer-subscribe", &[])
        .await
        .unwrap();
    assert_eq!(snapshot.subscriptions, BTreeSet::from([bravo_to_alpha]));
    let kernel_view = aconnect_subscriptions();
    assert!(!kernel_view.contains(&alpha_to_bravo), "{kernel_view:?}");
    assert!(kernel_view.contains(&bravo_to_alpha), "{kernel_view:?}");

    // A port that is gone takes its subscriptions with it: unsubscribing is still fine.
    peer.seq.delete_port(bravo.port).unwrap();
    unsubscribe(&sequencer, &[bravo_to_alpha]).await;
    let snapshot = sequencer
        .snapshot("test-peer-subscribe", &[])
        .await
        .unwrap();
    assert!(snapshot.subscriptions.is_empty(), "{snapshot:?}");
    unsubscribe(&sequencer, &[alpha_to_other_client]).await;
    assert!(!aconnect_subscriptions().contains(&alpha_to_other_client));

    // With a session's client: the subscriptions inside each client, none across them.
    let session = TestPeer::new("test-peer-subscribe jam");
    let carol = session.add_port("carol");
    let dave = session.add_port("dave");
    let carol_to_dave = subscription(carol, dave);
    let carol_to_alpha = subscription(carol, alpha);
    subscribe(&sequencer, &[carol_to_dave, carol_to_alpha]).await;
    let snapshot = sequencer
        .snapshot("test-peer-subscribe", &[session.client])
        .await
        .unwrap();
    assert_eq!(snapshot.subscriptions, BTreeSet::from([carol_to_dave]));
}

#[tokio::test]
async fn subscribing_a_missing_port_is_an_error_naming_the_subscription() {
    if !sequencer_or_skip("subscribing_a_missing_port_is_an_error_naming_the_subscription") {
        return;
    }
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let (sequencer, _events) = Sequencer::start("midihub-sidecar").unwrap();
    let peer = TestPeer::new("test-peer-missing");
    let alpha = peer.add_port("alpha");
    let bravo = peer.add_port("bravo");
    let nowhere = PortAddr {
        client: peer.client,
        port: 42,
    };

    let alpha_to_nowhere = subscription(alpha, nowhere);
    let alpha_to_bravo = subscription(alpha, bravo);
    let errors = sequencer
        .rewire(WiringPlan {
            remove: Vec::new(),
            add: vec![alpha_to_nowhere, alpha_to_bravo],
        })
        .await
        .unwrap();

    // The other subscription of the same request is made.
    let [error] = errors.as_slice() else {
        panic!("one error expected: {errors:?}");
    };
    assert!(
        aconnect_subscriptions().contains(&alpha_to_bravo),
        "{alpha_to_bravo} of the same request is missing"
    );
    assert!(
        matches!(error, SequencerError::Subscribe { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&format!("{alpha} -> {nowhere}")),
        "{error}"
    );
}

#[tokio::test]
async fn announcements_arrive_as_they_happen() {
    if !sequencer_or_skip("announcements_arrive_as_they_happen") {
        return;
    }
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let (sequencer, mut events) = Sequencer::start("midihub-sidecar").unwrap();
    // Warm-up, untimed: in the emulated VM the first pass through this code pages it in from
    // the host's file system, which can take hundreds of milliseconds once.
    let warm_up = TestPeer::new("test-peer-announce-warm-up");
    let warm_up_subscription = subscription(warm_up.add_port("one"), warm_up.add_port("two"));
    subscribe(&sequencer, &[warm_up_subscription]).await;
    wait_for(
        &mut events,
        &SequencerEvent::Subscribed(warm_up_subscription),
        Instant::now(),
        Duration::from_secs(10),
    )
    .await;
    drop(warm_up);

    // Timed from when the client exists: opening it (alsa-lib reads its configuration) is
    // not the announcement's delay.
    let peer = TestPeer::new("test-peer-announce");
    let started = Instant::now();
    let client_start = wait_for(
        &mut events,
        &SequencerEvent::ClientStart(peer.client),
        started,
        ANNOUNCEMENT_DEADLINE,
    )
    .await;

    let started = Instant::now();
    let alpha = peer.add_port("alpha");
    let port_start = wait_for(
        &mut events,
        &SequencerEvent::PortStart(alpha),
        started,
        ANNOUNCEMENT_DEADLINE,
    )
    .await;
    let bravo = peer.add_port("bravo");

    // Timed from the subscription's existence, not from the request's round trip.
    subscribe(&sequencer, &[subscription(alpha, bravo)]).await;
    let started = Instant::now();
    let subscribed = wait_for(
        &mut events,
        &SequencerEvent::Subscribed(subscription(alpha, bravo)),
        started,
        ANNOUNCEMENT_DEADLINE,
    )
    .await;

    let started = Instant::now();
    peer.seq.delete_port(alpha.port).unwrap();
    let port_exit = wait_for(
        &mut events,
        &SequencerEvent::PortExit(alpha),
        started,
        ANNOUNCEMENT_DEADLINE,
    )
    .await;

    let started = Instant::now();
    let client = peer.client;
    drop(peer);
    let client_exit = wait_for(
        &mut events,
        &SequencerEvent::ClientExit(client),
        started,
        ANNOUNCEMENT_DEADLINE,
    )
    .await;

    show(&format!(
        "announcement latency: client start {client_start:?}, port start {port_start:?}, \
         subscribed {subscribed:?}, port exit {port_exit:?}, client exit {client_exit:?}"
    ));
}

#[tokio::test]
async fn a_note_travels_through_a_subscription_the_sequencer_made() {
    if !sequencer_or_skip("a_note_travels_through_a_subscription_the_sequencer_made") {
        return;
    }
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let (sequencer, _events) = Sequencer::start("midihub-sidecar").unwrap();
    let peer = TestPeer::new("test-peer-note");
    let alice = peer.add_port("alice");
    let bob = peer.add_port("bob");

    // Without a subscription nothing arrives: the delivery below is the subscription's doing.
    peer.send_note_on(alice, 59);
    assert_eq!(peer.receive_note_on(bob, Duration::from_millis(200)), None);

    subscribe(&sequencer, &[subscription(alice, bob)]).await;
    let sent = Instant::now();
    peer.send_note_on(alice, 60);
    let received = peer.receive_note_on(bob, Duration::from_secs(2));
    let latency = sent.elapsed();

    assert_eq!(received, Some(60));
    show(&format!("note through the subscription: {latency:?}"));
}

#[tokio::test]
async fn dropping_the_sequencer_stops_its_thread() {
    if !sequencer_or_skip("dropping_the_sequencer_stops_its_thread") {
        return;
    }
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let (sequencer, mut events) = Sequencer::start("midihub-sidecar-drop").unwrap();
    let probe = Seq::open(None, None, true).unwrap();
    let started = Instant::now();

    tokio::time::timeout(
        Duration::from_secs(2),
        tokio::task::spawn_blocking(move || drop(sequencer)),
    )
    .await
    .expect("drop hung")
    .unwrap();
    let stop = started.elapsed();

    // The event sender lived on the thread: a closed channel means the thread has ended.
    while let Some(event) = events.recv().await {
        let _ = event;
    }
    let still_there = alsa::seq::ClientIter::new(&probe).any(|client| {
        client
            .get_name()
            .is_ok_and(|name| name == "midihub-sidecar-drop")
    });
    assert!(!still_there, "the sequencer client was not closed");
    show(&format!("drop took {stop:?}"));
}

/// The announcement of `port`'s start, with what the thread did for it.
async fn port_start(events: &mut UnboundedReceiver<Announcement>, port: PortAddr) -> Announcement {
    let start = SequencerEvent::PortStart(port);
    announcement(events, &start, Instant::now(), Duration::from_secs(2)).await
}

#[tokio::test]
async fn the_thread_wires_a_join_of_an_open_room_as_it_reads_the_announcement() {
    if !sequencer_or_skip("the_thread_wires_a_join_of_an_open_room_as_it_reads_the_announcement") {
        return;
    }
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let (sequencer, mut events) = Sequencer::start("midihub-sidecar").unwrap();
    let room = TestPeer::new("test-peer-open-room");
    let other_room = TestPeer::new("test-peer-listed-room");
    let alice = room.add_port("alice");
    let leaving = room.add_port("leaving");
    let mallory = other_room.add_port("mallory");
    port_start(&mut events, mallory).await;
    // Only the first client is an open room, where "leaving" does not play.
    let (rules, rules_receiver) = watch::channel(RoomRules::default());
    let open_room = |not_playing| OpenRoom {
        room: 5004,
        client_name: "test-peer-open-room".to_owned(),
        not_playing,
    };
    sequencer
        .wire_joins_of(
            [(room.client, open_room(BTreeSet::from([leaving])))].into(),
            rules_receiver.clone(),
        )
        .unwrap();
    // The thread is idle: the command is served before the next announcement is read.
    let marker = room.add_port("marker");
    let marked = port_start(&mut events, marker).await;
    assert!(marked.wired.is_some());
    room.seq.delete_port(marker.port).unwrap();

    let bob = room.add_port("bob");
    let announced = port_start(&mut events, bob).await;
    let wired = announced.wired.expect("bob's join is wired by the thread");
    let expected = BTreeSet::from([subscription(bob, alice), subscription(alice, bob)]);
    assert_eq!(
        wired.subscriptions.iter().copied().collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(wired.room, 5004);
    assert!(wired.at >= announced.read_at);
    let kernel_view = aconnect_subscriptions();
    for link in &expected {
        assert!(
            kernel_view.contains(link),
            "aconnect -l lacks {link}: {kernel_view:?}"
        );
    }
    for never in [subscription(bob, leaving), subscription(leaving, bob)] {
        assert!(
            !kernel_view.contains(&never),
            "{never} made: {kernel_view:?}"
        );
    }
    room.send_note_on(bob, 61);
    assert_eq!(
        room.receive_note_on(alice, Duration::from_secs(1)),
        Some(61)
    );

    let eve = other_room.add_port("eve");
    let announced = port_start(&mut events, eve).await;
    assert_eq!(announced.wired, None, "not an open room");
    assert!(!aconnect_subscriptions().contains(&subscription(eve, mallory)));

    // A room that gets an allow-list is not wired by the thread from that moment.
    rules.send_replace(
        [(5004, AllowList::parse(&["192.0.2.0/24"]).unwrap())]
            .into_iter()
            .collect(),
    );
    let dave = room.add_port("dave");
    assert_eq!(
        port_start(&mut events, dave).await.wired,
        None,
        "the room has a list"
    );
    rules.send_replace(RoomRules::default());

    // Told no rooms, it wires nothing.
    sequencer
        .wire_joins_of(Default::default(), rules_receiver.clone())
        .unwrap();
    let carol = room.add_port("carol");
    assert_eq!(port_start(&mut events, carol).await.wired, None);

    // A room's client that exits is forgotten: its number may come back as another client's.
    sequencer
        .wire_joins_of(
            [(room.client, open_room(BTreeSet::new()))].into(),
            rules_receiver.clone(),
        )
        .unwrap();
    let gone = room.client;
    drop(room);
    wait_for(
        &mut events,
        &SequencerEvent::ClientExit(gone),
        Instant::now(),
        ANNOUNCEMENT_DEADLINE,
    )
    .await;
    let newcomer = TestPeer::new("test-peer-newcomer");
    let first = newcomer.add_port("first");
    assert_eq!(
        newcomer.client, gone,
        "the kernel gives the lowest free number"
    );
    assert_eq!(port_start(&mut events, first).await.wired, None);

    // Under a room's client number told the thread, a client of another name is another one.
    sequencer
        .wire_joins_of(
            [(newcomer.client, open_room(BTreeSet::new()))].into(),
            rules_receiver,
        )
        .unwrap();
    let second = newcomer.add_port("second");
    assert_eq!(
        port_start(&mut events, second).await.wired,
        None,
        "another client"
    );
}
