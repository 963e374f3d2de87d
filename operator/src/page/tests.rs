use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use kube::runtime::watcher::Event;
use midihub_api::MidiHub;
use tokio::sync::watch;
use tower::ServiceExt;

use super::*;
use crate::page::examples::{hub, named, now, participant};

/// The remote addresses of the example participants, none of which may ever be served.
const ADDRESSES: [&str; 2] = ["198.51.100.7", "2001:db8::77"];

/// A page that has seen `hubs` listed by its watch.
fn page_of(hubs: Vec<MidiHub>) -> Arc<Page> {
    let (page, mut writer) = page(watch::channel(false).1);
    for hub in hubs {
        let mut hub = hub;
        trim(&mut hub);
        let event = Event::Apply(hub);
        writer.apply_watcher_event(&event);
        page.observe(&event, now());
    }
    page
}

/// The listed `berlin` with alice and bob, and the unlisted `hidden` with carol.
fn example_page() -> Arc<Page> {
    page_of(vec![
        hub(
            true,
            &[
                participant(5004, "alice", "198.51.100.7:5004", 20.0),
                participant(5006, "bob", "[2001:db8::77]:5006", 30.0),
            ],
        ),
        named(
            hub(
                false,
                &[participant(5004, "carol", "198.51.100.7:5008", 40.0)],
            ),
            "hidden",
        ),
    ])
}

async fn get(page: Arc<Page>, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = router(page)
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

/// The first event of the live stream (the stream itself never ends while the page runs).
async fn first_live_event(page: Arc<Page>) -> String {
    let response = router(page)
        .oneshot(Request::get("/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let mut body = response.into_body();
    let frame = body.frame().await.unwrap().unwrap();
    String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
}

#[tokio::test]
async fn the_page_lists_the_listed_hubs_and_never_the_unlisted() {
    let (status, headers, html) = get(example_page(), "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(html.contains("berlin") && html.contains("alice") && html.contains("bob"));
    assert!(
        !html.contains("music/hidden") && !html.contains("carol"),
        "{html}"
    );
}

#[tokio::test]
async fn no_participants_address_is_ever_served() {
    let page = example_page();
    let mut outputs = vec![first_live_event(page.clone()).await];
    for path in [
        "/",
        "/api/hubs",
        "/api/hubs/music/berlin",
        "/api/hubs/music/hidden",
    ] {
        outputs.push(get(page.clone(), path).await.2);
    }
    for output in &outputs {
        assert!(
            output.contains("alice") || output.contains("error"),
            "{output}"
        );
        for address in ADDRESSES {
            assert!(!output.contains(address), "{address} served: {output}");
        }
    }
    let store = page.hubs.state();
    let hidden = store.iter().find(|hub| hub.name_any() == "hidden").unwrap();
    assert_eq!(
        hidden.status, None,
        "an unlisted hub's participants are not even kept"
    );
}

#[tokio::test]
async fn the_api_gives_the_listed_hubs_with_their_latency_history() {
    let (status, headers, body) = get(example_page(), "/api/hubs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let hubs = json["hubs"].as_array().unwrap();
    assert_eq!(hubs.len(), 1, "{json}");
    let alice = &hubs[0]["rooms"][0]["participants"][0];
    assert_eq!(alice["name"], "alice");
    assert_eq!(alice["latency"]["lastMs"], 20.0);
    assert_eq!(alice["history"][0]["roundTripMs"], 20.0);
    assert_eq!(alice["history"][0]["at"], "2026-12-02T18:00:00Z");
    assert_eq!(hubs[0]["rooms"][0]["endpoint"], "203.0.113.10:5004");

    let (status, _, body) = get(example_page(), "/api/hubs/music/berlin").await;
    assert_eq!(status, StatusCode::OK);
    let berlin: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(berlin["name"], "berlin");
    assert_eq!(berlin["timeZone"], "Europe/Berlin");
}

#[tokio::test]
async fn an_unlisted_or_unknown_hub_is_not_found_with_a_json_error() {
    for path in ["/api/hubs/music/hidden", "/api/hubs/music/nowhere"] {
        let (status, headers, body) = get(example_page(), path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            json["error"].as_str().unwrap().contains("no listed hub"),
            "{json}"
        );
    }
}

#[tokio::test]
async fn the_live_stream_starts_with_the_hubs_fragment() {
    let event = first_live_event(example_page()).await;
    assert!(event.starts_with("event: hubs\ndata: "), "{event}");
    assert!(
        event.contains("alice") && !event.contains("<html"),
        "{event}"
    );
}

#[tokio::test]
async fn every_answer_forbids_content_from_elsewhere() {
    for path in [
        "/",
        "/api/hubs",
        render::SCRIPT_PATH,
        render::STYLESHEET_PATH,
    ] {
        let (status, headers, _) = get(example_page(), path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.starts_with("default-src 'none'"), "{path}: {policy}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    let (_, headers, script) = get(example_page(), render::SCRIPT_PATH).await;
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.contains("EventSource"));
}

#[test]
fn only_a_change_of_a_listed_hub_moves_the_live_page() {
    let page = page_of(Vec::new());
    let version = || *page.changes.borrow();
    page.observe(&Event::Apply(named(hub(false, &[]), "hidden")), now());
    assert_eq!(version(), 0, "an unlisted hub is of no interest");
    page.observe(&Event::Apply(hub(true, &[])), now());
    assert_eq!(version(), 1);
    page.observe(&Event::Apply(hub(false, &[])), now());
    assert_eq!(
        version(),
        2,
        "a hub that is no longer listed leaves the page"
    );
    page.observe(&Event::Delete(hub(false, &[])), now());
    assert_eq!(version(), 2, "already gone");
}

#[test]
fn the_page_listens_where_told_or_nowhere() {
    assert_eq!("off".parse::<Listen>().unwrap(), Listen::Off);
    assert_eq!(
        "0.0.0.0:8081".parse::<Listen>().unwrap(),
        Listen::On("0.0.0.0:8081".parse().unwrap())
    );
    assert!("nowhere".parse::<Listen>().is_err());
}
