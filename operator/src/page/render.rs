//! The page's HTML, rendered on the server from the public [`HubView`]s: the whole document
//! for `/`, and the hubs fragment alone for the live updates, which the page's script swaps
//! in. One renderer for both, so the page looks the same with JavaScript off (then it shows
//! the state when loaded, times in UTC and each hub's zone).
//!
//! Every value is spliced through maud, which escapes it: session and participant names are
//! chosen by users. The latency charts are inline SVG, drawn here.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use maud::{DOCTYPE, Markup, html};

use super::history::{Sample, WINDOW};
use super::view::{HubView, ParticipantView, RoomView};

/// Where the stylesheet and the script are served.
pub const STYLESHEET_PATH: &str = "/assets/page.css";
pub const SCRIPT_PATH: &str = "/assets/page.js";

/// The size of a latency chart, in SVG user units (CSS pixels).
const CHART_WIDTH: f64 = 160.0;
const CHART_HEIGHT: f64 = 36.0;
/// The room left free around a chart's line, for the dot at its end.
const CHART_MARGIN: f64 = 3.0;

/// The whole page at `now`.
pub fn document(hubs: &[HubView], now: Timestamp) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { "MIDI hubs" }
                link rel="stylesheet" href=(STYLESHEET_PATH);
                script src=(SCRIPT_PATH) defer {}
            }
            body {
                header.page-head {
                    h1 { "MIDI hubs" }
                    p.lede {
                        "Open a network MIDI session (RTP-MIDI: macOS Audio MIDI Setup, rtpMIDI on \
                         Windows, rtpmidid on Linux) to a room's address, and play with everyone \
                         in that room."
                    }
                    p.status {
                        span #live .live hidden { "live" }
                        noscript { "Reload the page to see changes. " }
                        "Loaded " (when(now, UTC_ZONE)) "."
                    }
                }
                main #hubs { (hubs_fragment(hubs, now)) }
                footer.page-foot {
                    p {
                        "Times are shown in UTC and in each hub's own time zone (and in yours, \
                         with JavaScript on). Participants' addresses are never shown."
                    }
                    p { "The same as JSON: " a href="/api/hubs" { "/api/hubs" } }
                }
            }
        }
    }
}

/// The listed hubs, as the page's `#hubs` element holds them.
pub fn hubs_fragment(hubs: &[HubView], now: Timestamp) -> Markup {
    html! {
        @if hubs.is_empty() {
            p.empty { "No hub is listed right now." }
        }
        @for hub in hubs {
            (hub_section(hub, now))
        }
    }
}

fn hub_section(hub: &HubView, now: Timestamp) -> Markup {
    let phase = hub.phase.unwrap_or("Unknown");
    html! {
        section.hub data-hub={ (hub.namespace) "/" (hub.name) } {
            header.hub-head {
                h2 { (hub.name) }
                span class={ "phase phase-" (phase.to_ascii_lowercase()) } { (phase) }
                span.namespace { "in " (hub.namespace) }
            }
            @if let Some(next) = &hub.next_transition {
                p.next {
                    "Next: " strong { (next.what) }
                    @if let Some(at) = next.at {
                        " — " (when_in_both(at, &hub.time_zone))
                    }
                }
            }
            div.rooms {
                @for room in &hub.rooms {
                    (room_card(room, now))
                }
            }
        }
    }
}

fn room_card(room: &RoomView, now: Timestamp) -> Markup {
    html! {
        article.room {
            h3.session { (room.session) }
            @match &room.endpoint {
                Some(endpoint) => {
                    div.dial {
                        code.endpoint { (endpoint) }
                        button.copy type="button" data-copy=(endpoint) hidden { "Copy" }
                    }
                }
                None => p.no-address { "Port " (room.port) ": no address while the hub is not running." },
            }
            @if room.participants.is_empty() {
                p.nobody { "Nobody here yet." }
            } @else {
                ul.participants {
                    @for participant in &room.participants {
                        (participant_item(participant, now))
                    }
                }
            }
        }
    }
}

fn participant_item(participant: &ParticipantView, now: Timestamp) -> Markup {
    html! {
        li.participant {
            div.who {
                span.name { (participant.name) }
                @if let Some(joined) = participant.joined_at {
                    span.joined { "since " (when(joined, UTC_ZONE)) }
                }
            }
            @if let Some(latency) = &participant.latency {
                div.latency {
                    span.rtt title="last round trip" { (milliseconds(latency.last_ms)) }
                    span.stats {
                        "avg " (milliseconds(latency.average_ms))
                        " · jitter " (milliseconds(latency.jitter_ms))
                    }
                }
            }
            (sparkline(&participant.history, now))
        }
    }
}

fn milliseconds(value: f64) -> String {
    format!("{value:.1} ms")
}

const UTC_ZONE: &str = "UTC";

/// A `<time>` of `at` written in `zone` (the script rewrites it in the viewer's own zone).
fn when(at: Timestamp, zone: &str) -> Markup {
    html! {
        time datetime=(at.to_string()) { (zoned_text(at, zone)) }
    }
}

/// `at` in UTC (rewritten by the script in the viewer's zone) and in the hub's zone, unless
/// that is UTC too.
fn when_in_both(at: Timestamp, hub_zone: &str) -> Markup {
    html! {
        (when(at, UTC_ZONE))
        @if hub_zone != UTC_ZONE {
            " " span.hub-zone { "(" (zoned_text(at, hub_zone)) ")" }
        }
    }
}

/// `at` as a day and time of day in `zone`, e.g. `Fri 4 Dec 19:00 Europe/Berlin`; in UTC if
/// the zone is unknown.
pub fn zoned_text(at: Timestamp, zone: &str) -> String {
    let (time_zone, name) = match TimeZone::get(zone) {
        Ok(time_zone) => (time_zone, zone),
        Err(_) => (TimeZone::UTC, UTC_ZONE),
    };
    format!(
        "{} {name}",
        at.to_zoned(time_zone).strftime("%a %-d %b %H:%M")
    )
}

/// A participant's round trips over the last [`WINDOW`] as a line chart: each sample holds
/// until the next, the last until `now`.
pub fn sparkline(samples: &[Sample], now: Timestamp) -> Markup {
    if samples.is_empty() {
        return html! {};
    }
    let (lowest, highest) = samples.iter().fold((f64::MAX, f64::MIN), |(low, high), s| {
        (low.min(s.round_trip_ms), high.max(s.round_trip_ms))
    });
    let label = format!(
        "Round trip over the last {} minutes: {} to {}",
        WINDOW.as_mins(),
        milliseconds(lowest),
        milliseconds(highest)
    );
    let points = chart_points(samples, now, highest);
    let mut line = String::new();
    for (x, y) in &points {
        let _ = write!(line, "{x:.1},{y:.1} ");
    }
    html! {
        svg.chart role="img" aria-label=(label) viewBox={ "0 0 " (CHART_WIDTH) " " (CHART_HEIGHT) }
            width=(CHART_WIDTH) height=(CHART_HEIGHT) {
            title { (label) }
            // Closed with an end tag, not `;`: inside HTML no SVG element is void.
            rect.chart-area width=(CHART_WIDTH) height=(CHART_HEIGHT) rx="3" {}
            polyline points=(line.trim_end()) fill="none" stroke="currentColor" stroke-width="2"
                stroke-linejoin="round" vector-effect="non-scaling-stroke" {}
            // The round trip now, visible even before the line has grown.
            @if let Some((x, y)) = points.last() {
                circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r=(CHART_MARGIN) fill="currentColor" {}
            }
        }
    }
}

/// The chart's points: time runs left to right over the window before `now` (samples from
/// before it start at the left edge), round trips bottom to top from 0 to a little above
/// `highest`. A margin of [`CHART_MARGIN`] all round leaves room for the dot of the last point.
pub fn chart_points(samples: &[Sample], now: Timestamp, highest: f64) -> Vec<(f64, f64)> {
    let start = now - WINDOW;
    let window_ms = WINDOW.as_millis() as f64;
    let x = |at: Timestamp| {
        let since_start = at.duration_since(start).as_millis() as f64;
        CHART_MARGIN
            + (since_start / window_ms).clamp(0.0, 1.0) * (CHART_WIDTH - 2.0 * CHART_MARGIN)
    };
    let top = (highest * 1.2).max(1.0);
    let y = |ms: f64| {
        CHART_HEIGHT
            - CHART_MARGIN
            - (ms / top).clamp(0.0, 1.0) * (CHART_HEIGHT - 2.0 * CHART_MARGIN)
    };
    let mut points = Vec::with_capacity(samples.len() * 2 + 1);
    for sample in samples {
        let (x, y) = (x(sample.at), y(sample.round_trip_ms));
        if let Some(&(_, previous)) = points.last() {
            points.push((x, previous));
        }
        points.push((x, y));
    }
    if let Some(&(_, last)) = points.last() {
        points.push((x(now), last));
    }
    points
}

#[cfg(test)]
mod tests;
