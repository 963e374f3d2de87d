use jiff::SignedDuration;

use super::*;
use crate::page::examples::{hub, now, participant};
use crate::page::history::History;
use crate::page::view::hub_view;

fn rendered(participants: &[midihub_api::Participant]) -> String {
    let berlin = hub(true, participants);
    let mut history = History::default();
    history.record(&berlin, now());
    let view = hub_view(&berlin, &history, now()).unwrap();
    document(&[view], now()).into_string()
}

#[test]
fn the_page_shows_rooms_participants_and_their_round_trips() {
    let html = rendered(&[participant(5004, "alice", "198.51.100.7:5004", 20.0)]);
    for wanted in [
        "<!DOCTYPE html>",
        r#"<meta name="viewport""#,
        "Main room",
        "berlin-5006",
        r#"<code class="endpoint">203.0.113.10:5004</code>"#,
        r#"data-copy="203.0.113.10:5004""#,
        "alice",
        "20.0 ms",
        "avg 21.0 ms",
        "jitter 0.5 ms",
        "<svg",
        "Ready",
        "sleep Wed 23:00 Europe/Berlin",
    ] {
        assert!(html.contains(wanted), "{wanted} missing from {html}");
    }
}

#[test]
fn times_are_written_in_utc_and_in_the_hubs_zone() {
    let html = rendered(&[]);
    assert!(
        html.contains(r#"<time datetime="2026-12-02T22:00:00Z">Wed 2 Dec 22:00 UTC</time>"#),
        "{html}"
    );
    assert!(html.contains("(Wed 2 Dec 23:00 Europe/Berlin)"), "{html}");
}

#[test]
fn names_chosen_by_users_are_text_not_markup() {
    let mut berlin = hub(
        true,
        &[participant(
            5004,
            "<script>alert(1)</script>",
            "198.51.100.7:5004",
            20.0,
        )],
    );
    berlin.spec.ports[0].name = Some("<b>room</b> & co".to_owned());
    let view = hub_view(&berlin, &History::default(), now()).unwrap();
    let html = hubs_fragment(&[view], now()).into_string();
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<b>room</b>"), "{html}");
    assert!(html.contains("&lt;b&gt;room&lt;/b&gt; &amp; co"), "{html}");
}

#[test]
fn no_listed_hub_says_so() {
    let html = hubs_fragment(&[], now()).into_string();
    assert!(html.contains("No hub is listed right now."), "{html}");
}

#[test]
fn a_chart_holds_each_round_trip_until_the_next_and_the_last_until_now() {
    let samples = [
        Sample {
            at: now() - SignedDuration::from_mins(10),
            round_trip_ms: 10.0,
        },
        Sample {
            at: now() - SignedDuration::from_mins(5),
            round_trip_ms: 20.0,
        },
    ];
    // Inside a margin of 3: x from 3 to 157, y from 33 (0 ms) up to 3 (24 ms, the top: 20 ms
    // and a fifth more).
    let points: Vec<String> = chart_points(&samples, now(), 20.0)
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    assert_eq!(points, ["3.0,20.5", "80.0,20.5", "80.0,8.0", "157.0,8.0"]);
}

#[test]
fn a_sample_from_before_the_window_starts_at_its_left_edge() {
    let samples = [Sample {
        at: now() - SignedDuration::from_mins(30),
        round_trip_ms: 5.0,
    }];
    assert_eq!(chart_points(&samples, now(), 5.0)[0].0, 3.0);
}

#[test]
fn a_participant_without_samples_has_no_chart() {
    assert_eq!(sparkline(&[], now()).into_string(), "");
}

#[test]
fn every_shape_of_a_chart_is_closed_as_svg_inside_html_needs() {
    // HTML has no void SVG elements: an unclosed <rect> would swallow the line and the dot.
    let samples = [Sample {
        at: now() - SignedDuration::from_mins(5),
        round_trip_ms: 20.0,
    }];
    let svg = sparkline(&samples, now()).into_string();
    for shape in ["rect", "polyline", "circle"] {
        assert_eq!(
            svg.matches(&format!("<{shape} ")).count(),
            svg.matches(&format!("</{shape}>")).count(),
            "{svg}"
        );
    }
    assert!(svg.contains(r#"<circle cx="157.0" cy="8.0""#), "{svg}");
}
