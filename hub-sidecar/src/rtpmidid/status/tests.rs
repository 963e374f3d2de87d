use super::*;

/// Captured from rtpmidid v26.01: rooms jam-studio-a (5004) and jam-studio-b (5006),
/// "Alice MacBook" and "bob-linux" in a, "Carol iPad" in b; request id 7.
const CAPTURED_STATUS: &str = include_str!("../../../tests/fixtures/rtpmidid-status.json");
const CAPTURED_NO_PARTICIPANTS: &str =
    include_str!("../../../tests/fixtures/rtpmidid-status-no-participants.json");
const CAPTURED_HELP: &str = include_str!("../../../tests/fixtures/rtpmidid-help.json");
const TRUNCATED_STATUS: &str =
    include_str!("../../../tests/fixtures/rtpmidid-status-truncated.json");
const UNKNOWN_METHOD_ERROR: &str =
    include_str!("../../../tests/fixtures/rtpmidid-error-unknown-method.json");
const PARSE_ERROR: &str = include_str!("../../../tests/fixtures/rtpmidid-error-parse.json");
const NEWER_DAEMON_STATUS: &str =
    include_str!("../../../tests/fixtures/rtpmidid-status-newer-daemon.json");

const CAPTURED_ID: u64 = 7;
/// Every participant of the capture joined from this host, which rtpmidid reports IPv4-mapped.
const LOOPBACK_AS_REPORTED: IpAddr = IpAddr::V6(std::net::Ipv6Addr::new(
    0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001,
));
// Router ids in the capture.
const ALICE_NETWORK: u64 = 4;
const ALICE_ALSA: u64 = 3;
const BOB_NETWORK: u64 = 6;
const CAROL_NETWORK: u64 = 8;
const ROOM_B_LISTENER: u64 = 2;

fn captured_participants() -> Vec<ParticipantStatus> {
    let loopback_latency = Some(LatencyMs {
        last: 0.4,
        average: 0.4,
        stddev: 0.0,
    });
    vec![
        ParticipantStatus {
            room_port: 5004,
            room_name: "jam-studio-a".into(),
            name: "Alice MacBook".into(),
            remote_address: "127.0.0.1".into(),
            address: Some(LOOPBACK_AS_REPORTED),
            remote_port: 7000,
            ssrc: 3_435_137_940,
            alsa_port: Some(1),
            connected: true,
            latency: Some(LatencyMs {
                last: 1.4,
                average: 1.4,
                stddev: 0.0,
            }),
        },
        ParticipantStatus {
            room_port: 5004,
            room_name: "jam-studio-a".into(),
            name: "bob-linux".into(),
            remote_address: "127.0.0.1".into(),
            address: Some(LOOPBACK_AS_REPORTED),
            remote_port: 7002,
            ssrc: 4_271_493_077,
            alsa_port: Some(2),
            connected: true,
            latency: loopback_latency,
        },
        ParticipantStatus {
            room_port: 5006,
            room_name: "jam-studio-b".into(),
            name: "Carol iPad".into(),
            remote_address: "127.0.0.1".into(),
            address: Some(LOOPBACK_AS_REPORTED),
            remote_port: 7004,
            ssrc: 3_280_022_554,
            alsa_port: Some(3),
            connected: true,
            latency: loopback_latency,
        },
    ]
}

fn captured_rooms() -> Vec<RoomStatus> {
    vec![
        RoomStatus {
            port: 5004,
            name: "jam-studio-a".into(),
            alsa_client: None,
        },
        RoomStatus {
            port: 5006,
            name: "jam-studio-b".into(),
            alsa_client: None,
        },
    ]
}

/// The captured reply after `change`, as one line.
fn captured_with(change: impl FnOnce(&mut Value)) -> String {
    let mut reply: Value = serde_json::from_str(CAPTURED_STATUS).unwrap();
    change(&mut reply);
    serde_json::to_string(&reply).unwrap()
}

fn router(reply: &mut Value) -> &mut Vec<Value> {
    reply["result"]["router"].as_array_mut().unwrap()
}

fn entry(reply: &mut Value, id: u64) -> &mut Value {
    router(reply)
        .iter_mut()
        .find(|entry| entry["id"] == id)
        .unwrap()
}

fn remove_entry(reply: &mut Value, id: u64) {
    router(reply).retain(|entry| entry["id"] != id);
}

/// Applies `change` to a participant's own peer status and to its copy in its room's list.
fn change_peer_status(reply: &mut Value, ssrc: u64, change: impl Fn(&mut Value)) {
    for entry in router(reply) {
        if entry["peer"]["remote"]["ssrc"] == ssrc {
            change(&mut entry["peer"]);
        }
        if let Some(peers) = entry["peers"].as_array_mut() {
            for peer in peers
                .iter_mut()
                .filter(|peer| peer["remote"]["ssrc"] == ssrc)
            {
                change(peer);
            }
        }
    }
}

fn parse_captured_with(change: impl FnOnce(&mut Value)) -> RtpmididStatus {
    parse_status_reply(&captured_with(change), CAPTURED_ID).unwrap()
}

fn named<'a>(status: &'a RtpmididStatus, name: &str) -> Vec<&'a ParticipantStatus> {
    status
        .participants
        .iter()
        .filter(|participant| participant.name == name)
        .collect()
}

fn names(status: &RtpmididStatus) -> Vec<&str> {
    status
        .participants
        .iter()
        .map(|participant| participant.name.as_str())
        .collect()
}

#[test]
fn captured_status_gives_both_rooms_and_all_three_participants() {
    let status = parse_status_reply(CAPTURED_STATUS, CAPTURED_ID).unwrap();

    assert_eq!(status.version, "");
    assert_eq!(status.alsa_name, "rtpmidid");
    assert_eq!(status.rooms, captured_rooms());
    assert_eq!(status.participants, captured_participants());
    assert_eq!(status.warnings, Vec::<String>::new());
    assert_eq!(status.participants[0].remote_endpoint(), "127.0.0.1:7000");
}

#[test]
fn captured_status_without_participants_gives_one_empty_room() {
    let status = parse_status_reply(CAPTURED_NO_PARTICIPANTS, 1).unwrap();

    assert_eq!(
        status.rooms,
        vec![RoomStatus {
            port: 5004,
            name: "jam-studio-a".into(),
            alsa_client: None,
        }]
    );
    assert!(status.participants.is_empty());
    assert!(status.warnings.is_empty());
}

#[test]
fn a_session_with_a_sequencer_client_of_its_own_says_which() {
    // midihub's patched rtpmidid names each session's client in its router entry (id 1 is
    // jam-studio-a's); the release names none.
    let status = parse_captured_with(|reply| entry(reply, 1)["alsa_client"] = 129.into());

    let clients: Vec<_> = status.rooms.iter().map(|room| room.alsa_client).collect();
    assert_eq!(clients, [Some(129), None]);
    assert_eq!(status.participants, captured_participants());
}

#[test]
fn order_of_router_entries_does_not_matter() {
    let reversed = parse_captured_with(|reply| router(reply).reverse());

    assert_eq!(reversed.rooms, captured_rooms());
    assert_eq!(reversed.participants, captured_participants());
}

#[test]
fn reply_to_help_is_not_taken_for_a_status() {
    let error = parse_status_reply(CAPTURED_HELP, 1).unwrap_err();

    assert!(matches!(error, StatusError::Malformed { .. }), "{error:?}");
    assert!(
        error.to_string().contains("a list, not the status object"),
        "{error}"
    );
    assert_eq!(error.reason(), "MalformedStatus");
}

#[test]
fn garbage_is_not_json() {
    let error = parse_status_reply("HTTP/1.1 400 Bad Request", 1).unwrap_err();

    assert!(matches!(error, StatusError::NotJson { .. }), "{error:?}");
    assert_eq!(error.reason(), "MalformedStatus");
}

#[test]
fn truncated_reply_is_not_json() {
    let error = parse_status_reply(TRUNCATED_STATUS, CAPTURED_ID).unwrap_err();

    assert!(matches!(error, StatusError::NotJson { .. }), "{error:?}");
    assert!(error.to_string().contains("EOF"), "{error}");
}

#[test]
fn error_reply_carries_the_daemons_message() {
    let error = parse_status_reply(UNKNOWN_METHOD_ERROR, 1).unwrap_err();

    match &error {
        StatusError::DaemonError { message } => {
            assert_eq!(message, "Unknown method 'nosuch'")
        }
        other => panic!("expected DaemonError, got {other:?}"),
    }
    assert_eq!(error.reason(), "StatusRequestRefused");
}

#[test]
fn parse_error_reply_without_id_is_a_daemon_error() {
    let error = parse_status_reply(PARSE_ERROR, 1).unwrap_err();

    assert!(
        matches!(&error, StatusError::DaemonError { message } if message.starts_with("[json.exception.parse_error.101]")),
        "{error:?}"
    );
}

#[test]
fn reply_to_another_request_is_refused() {
    let error = parse_status_reply(CAPTURED_STATUS, 8).unwrap_err();

    assert!(
        matches!(
            error,
            StatusError::WrongId {
                expected: 8,
                got: 7
            }
        ),
        "{error:?}"
    );
}

#[test]
fn reply_without_id_is_malformed() {
    let line = captured_with(|reply| {
        reply.as_object_mut().unwrap().remove("id");
    });

    let error = parse_status_reply(&line, CAPTURED_ID).unwrap_err();

    assert!(error.to_string().contains("no id"), "{error}");
}

#[test]
fn reply_without_result_is_malformed() {
    let error = parse_status_reply(r#"{"id":1}"#, 1).unwrap_err();

    assert!(matches!(error, StatusError::Malformed { .. }), "{error:?}");
    assert!(
        error.to_string().contains("neither result nor error"),
        "{error}"
    );
}

#[test]
fn router_that_is_not_a_list_is_malformed() {
    let line = captured_with(|reply| reply["result"]["router"] = serde_json::json!({"1": {}}));

    let error = parse_status_reply(&line, CAPTURED_ID).unwrap_err();

    assert_eq!(
        error.to_string(),
        "rtpmidid status: result.router is an object, not a list of router entries"
    );
}

#[test]
fn status_without_alsa_name_is_malformed() {
    let line = captured_with(|reply| reply["result"]["settings"] = serde_json::json!({}));

    let error = parse_status_reply(&line, CAPTURED_ID).unwrap_err();

    assert!(error.to_string().contains("settings.alsa_name"), "{error}");
}

#[test]
fn participant_without_alsa_side_has_no_alsa_port() {
    let status = parse_captured_with(|reply| remove_entry(reply, ALICE_ALSA));

    let alice = named(&status, "Alice MacBook");
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0].alsa_port, None);
    assert!(alice[0].connected);
    // The others keep their ports; Alice, without one, sorts last in her room.
    assert_eq!(names(&status), ["bob-linux", "Alice MacBook", "Carol iPad"]);
    assert_eq!(named(&status, "bob-linux")[0].alsa_port, Some(2));
}

#[test]
fn participant_not_in_status_3_is_kept_as_not_connected() {
    let status = parse_captured_with(|reply| {
        change_peer_status(reply, 3_435_137_940, |peer| peer["status"] = "2".into())
    });

    let alice = named(&status, "Alice MacBook");
    assert_eq!(alice.len(), 1);
    assert!(!alice[0].connected);
    assert_eq!(alice[0].alsa_port, Some(1));
    assert!(named(&status, "bob-linux")[0].connected);
}

#[test]
fn participant_whose_room_is_missing_is_skipped_with_a_warning() {
    let status = parse_captured_with(|reply| remove_entry(reply, ROOM_B_LISTENER));

    assert_eq!(status.rooms, captured_rooms()[..1]);
    assert_eq!(names(&status), ["Alice MacBook", "bob-linux"]);
    assert_eq!(status.warnings.len(), 1, "{:?}", status.warnings);
    assert!(
        status.warnings[0].contains("\"Carol iPad\" is in no listed room"),
        "{:?}",
        status.warnings
    );
}

#[test]
fn participant_missing_from_its_rooms_list_is_placed_by_its_local_port() {
    let status = parse_captured_with(|reply| {
        entry(reply, ROOM_B_LISTENER)["peers"] = serde_json::json!([]);
    });

    assert_eq!(status.participants, captured_participants());
}

#[test]
fn same_ssrc_in_two_rooms_is_told_apart_by_local_port() {
    let status = parse_captured_with(|reply| {
        change_peer_status(reply, 3_280_022_554, |peer| {
            peer["remote"]["ssrc"] = 3_435_137_940_u64.into()
        })
    });

    assert_eq!(named(&status, "Carol iPad")[0].room_name, "jam-studio-b");
    assert_eq!(named(&status, "Alice MacBook")[0].room_name, "jam-studio-a");
}

#[test]
fn participant_without_ssrc_is_skipped_and_the_others_kept() {
    let status = parse_captured_with(|reply| {
        entry(reply, ALICE_NETWORK)["peer"]["remote"]
            .as_object_mut()
            .unwrap()
            .remove("ssrc");
    });

    assert_eq!(names(&status), ["bob-linux", "Carol iPad"]);
    assert_eq!(
        status.warnings,
        [
            "rtpmidid status: router entry 4 (network_rtpmidi_peer_t) has no peer.remote.ssrc; skipped"
        ]
    );
}

#[test]
fn participant_entry_of_the_wrong_shape_is_skipped_and_the_others_kept() {
    let status = parse_captured_with(|reply| {
        entry(reply, BOB_NETWORK)["send_to"] = "five".into();
    });

    assert_eq!(names(&status), ["Alice MacBook", "Carol iPad"]);
    assert_eq!(status.warnings.len(), 1);
    assert!(
        status.warnings[0].starts_with(
            "rtpmidid status: router entry 6 (network_rtpmidi_peer_t) is not understood"
        ),
        "{:?}",
        status.warnings
    );
}

#[test]
fn room_without_control_port_is_skipped() {
    let status = parse_captured_with(|reply| {
        entry(reply, ROOM_B_LISTENER)["listening"]["control_port"] = 0.into();
    });

    assert_eq!(status.rooms, captured_rooms()[..1]);
    assert_eq!(names(&status), ["Alice MacBook", "bob-linux"]);
    assert!(
        status.warnings[0].contains("\"jam-studio-b\" has no listening.control_port"),
        "{:?}",
        status.warnings
    );
}

#[test]
fn non_ascii_and_duplicate_names_are_kept_apart() {
    let status = parse_captured_with(|reply| {
        entry(reply, BOB_NETWORK)["name"] = "Alice MacBook".into();
        entry(reply, CAROL_NETWORK)["name"] = "Zoë's iPad 🎹 \"live\"".into();
    });

    let alices = named(&status, "Alice MacBook");
    assert_eq!(alices.len(), 2);
    assert_eq!(
        alices
            .iter()
            .map(|alice| (alice.alsa_port, alice.ssrc))
            .collect::<Vec<_>>(),
        [(Some(1), 3_435_137_940), (Some(2), 4_271_493_077)]
    );
    let zoe = named(&status, "Zoë's iPad 🎹 \"live\"");
    assert_eq!(zoe.len(), 1);
    assert_eq!(zoe[0].alsa_port, Some(3));
}

#[test]
fn ipv6_remote_is_bracketed_and_mapped_ipv4_is_plain() {
    let status = parse_captured_with(|reply| {
        change_peer_status(reply, 3_435_137_940, |peer| {
            peer["remote"]["hostname"] = "2001:db8::1".into()
        });
        change_peer_status(reply, 4_271_493_077, |peer| {
            peer["remote"]["hostname"] = "::ffff:203.0.113.10".into()
        });
    });

    let alice = named(&status, "Alice MacBook")[0];
    assert_eq!(alice.remote_address, "[2001:db8::1]");
    assert_eq!(alice.remote_endpoint(), "[2001:db8::1]:7000");
    assert_eq!(alice.address, "2001:db8::1".parse().ok());
    let bob = named(&status, "bob-linux")[0];
    assert_eq!(bob.remote_address, "203.0.113.10");
    assert_eq!(
        bob.address,
        "::ffff:203.0.113.10".parse().ok(),
        "kept as reported: the allow-list unmaps it"
    );
}

#[test]
fn a_host_that_is_no_address_has_none_and_is_still_a_participant() {
    let status = parse_captured_with(|reply| {
        change_peer_status(reply, 3_435_137_940, |peer| {
            peer["remote"]["hostname"] = "fe80::1%eth0".into()
        });
        change_peer_status(reply, 4_271_493_077, |peer| {
            peer["remote"]["hostname"] = "laptop.local".into()
        });
    });

    assert_eq!(named(&status, "Alice MacBook")[0].address, None);
    assert_eq!(named(&status, "bob-linux")[0].address, None);
    assert_eq!(names(&status), ["Alice MacBook", "bob-linux", "Carol iPad"]);
    assert!(status.warnings.is_empty(), "{:?}", status.warnings);
}

#[test]
fn readable_host_keeps_plain_ipv4_and_names() {
    assert_eq!(readable_host("203.0.113.10"), "203.0.113.10");
    assert_eq!(readable_host("fe80::1%eth0"), "[fe80::1%eth0]");
    assert_eq!(readable_host("laptop.local"), "laptop.local");
}

#[test]
fn latency_without_samples_is_none() {
    let status = parse_captured_with(|reply| {
        change_peer_status(reply, 3_435_137_940, |peer| {
            peer["latency_ms"] = serde_json::json!({"last": 0.0, "average": 0.0, "stddev": 0.0})
        })
    });

    assert_eq!(named(&status, "Alice MacBook")[0].latency, None);
    assert!(named(&status, "bob-linux")[0].latency.is_some());
}

#[test]
fn a_participant_whose_latency_statistics_emptied_has_gone_silent_and_is_not_connected() {
    // What rtpmidid shows 120 s after a participant's last clock sync (seen in the test VM:
    // {"average":0.0,"last":67.0,"stddev":0.0} with status "3", its port still there).
    let status = parse_captured_with(|reply| {
        change_peer_status(reply, 3_435_137_940, |peer| {
            peer["latency_ms"] = serde_json::json!({"last": 67.0, "average": 0.0, "stddev": 0.0})
        })
    });

    let alice = &named(&status, "Alice MacBook")[0];
    assert!(!alice.connected);
    assert!(alice.alsa_port.is_some(), "rtpmidid still lists it");
    assert!(named(&status, "bob-linux")[0].connected);
    assert_eq!(
        status.warnings,
        [
            "rtpmidid status: \"Alice MacBook\" (SSRC 3435137940) in room 5004 has sent no clock sync for 2 minutes: treated as gone (rtpmidid still lists it)"
        ]
    );
}

#[test]
fn newer_daemon_with_extra_keys_and_entry_types_gives_the_same_hub() {
    let status = parse_status_reply(NEWER_DAEMON_STATUS, CAPTURED_ID).unwrap();

    assert_eq!(status.version, "v27.03");
    assert_eq!(status.rooms, captured_rooms());
    assert_eq!(status.participants, captured_participants());
    assert!(status.warnings.is_empty(), "{:?}", status.warnings);
}
