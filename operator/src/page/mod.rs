//! The public page of the listed hubs, and the same as JSON, served on a listener of its own.
//!
//! - `/`: the hubs whose owners set `spec.listed`, their rooms' addresses, who is in each room
//!   and their round trips ([`render`] from the public [`view`]); it updates by itself from
//! - `/events`: server-sent events, each the re-rendered hubs fragment, sent when a listed hub
//!   changes (and every [`REFRESH`], so that the latency charts move on);
//! - `/api/hubs` and `/api/hubs/{namespace}/{name}`: the public view as JSON, the latency
//!   [`history`] included; a hub that is not listed is not found.
//!
//! Only the leader runs the controller, so every replica keeps its own watch of the hubs for the
//! page ([`follow`]): any replica behind a Service answers, and a new leader's page is no
//! emptier than the old one's. The watch is [`watches::watch`], which rides out an API outage
//! and reports to [`WatchHealth`] like the controller's. It selects the listed hubs only, and
//! should an unlisted one come by all the same, it is kept without its status: their
//! participants never reach the page's memory.

#[cfg(test)]
mod examples;
pub mod history;
pub mod render;
pub mod view;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use futures::StreamExt;
use jiff::Timestamp;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::runtime::{WatchStreamExt, reflector::store::Writer};
use kube::{Api, Client, ResourceExt};
use midihub_api::MidiHub;
use midihub_runtime::wait_for;
use serde::Serialize;
use tokio::sync::watch;

use crate::health::WatchHealth;
use crate::watches;
use history::{History, hub_key};
use view::HubView;

/// How often the live page is sent anew without a change, so that its charts slide on.
pub const REFRESH: Duration = Duration::from_secs(15);

/// How long a change waits for others before the page is sent: a burst of status updates
/// makes one update of the page, well within the two seconds the page may lag.
const COALESCE: Duration = Duration::from_millis(100);

/// The hubs the page watches: only the listed ones (a selectable field of the CRD), so that the
/// status updates of the others, most hubs of a large installation, never reach it. A hub that
/// is unlisted leaves the selection, which the watch reports as its deletion.
const LISTED: &str = "spec.listed=true";

/// The name of the page's watch in logs and `/healthz`.
const WATCH_NAME: &str = "MidiHub (page)";

/// Where the page listens: an address, or `off` for no public page at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    Off,
    On(SocketAddr),
}

impl FromStr for Listen {
    type Err = std::net::AddrParseError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.eq_ignore_ascii_case("off") {
            Ok(Listen::Off)
        } else {
            value.parse().map(Listen::On)
        }
    }
}

/// What the page serves from: the hubs as the page's watch last saw them, their latency
/// history, and a counter that moves whenever a listed hub changed.
pub struct Page {
    hubs: Store<MidiHub>,
    history: Mutex<History>,
    changes: watch::Sender<u64>,
    /// Becomes true when the operator stops: the live streams end, so the server can stop.
    stop: watch::Receiver<bool>,
}

impl Page {
    /// A page of the hubs in `hubs` (filled by its writer), whose live streams end once `stop`
    /// is true.
    fn new(hubs: Store<MidiHub>, stop: watch::Receiver<bool>) -> Self {
        Self {
            hubs,
            history: Mutex::default(),
            changes: watch::Sender::new(0),
            stop,
        }
    }

    /// Takes in what the watch saw at `now` (the store already holds it), and tells the live
    /// pages when a listed hub changed, came or went.
    pub fn observe(&self, event: &watcher::Event<MidiHub>, now: Timestamp) {
        let shown = match event {
            watcher::Event::Apply(hub) | watcher::Event::InitApply(hub) => {
                self.history().record(hub, now)
            }
            watcher::Event::Delete(hub) => self.history().forget(&hub_key(hub)),
            watcher::Event::Init => false,
            watcher::Event::InitDone => {
                let hubs = &self.hubs;
                self.history().retain(|(namespace, name)| {
                    hubs.get(&ObjectRef::new(name).within(namespace))
                        .is_some_and(|hub| hub.spec.listed)
                });
                true
            }
        };
        if shown {
            self.changes.send_modify(|version| *version += 1);
        }
    }

    /// The listed hubs at `now`.
    pub fn listed(&self, now: Timestamp) -> Vec<HubView> {
        view::listed_hubs(&self.hubs.state(), &self.history(), now)
    }

    /// The listed hub `name` in `namespace` at `now`, if it is listed.
    pub fn hub(&self, namespace: &str, name: &str, now: Timestamp) -> Option<HubView> {
        let hub = self.hubs.get(&ObjectRef::new(name).within(namespace))?;
        view::hub_view(&hub, &self.history(), now)
    }

    /// The history stays usable even if a thread panicked while holding the lock: at worst a
    /// sample is missing.
    fn history(&self) -> MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A page whose store the returned writer fills (give it to [`follow`]).
pub fn page(stop: watch::Receiver<bool>) -> (Arc<Page>, Writer<MidiHub>) {
    let (hubs, writer) = reflector::store();
    (Arc::new(Page::new(hubs, stop)), writer)
}

/// Watches every hub for `page` until `stop` is true, reporting to `health`.
pub async fn follow(
    client: Client,
    health: Arc<WatchHealth>,
    writer: Writer<MidiHub>,
    page: Arc<Page>,
) {
    let events = watches::watch(
        WATCH_NAME,
        Api::<MidiHub>::all(client),
        watcher::Config::default().fields(LISTED),
        health,
    )
    .modify(trim)
    .reflect(writer);
    let observing = events.for_each(|event| {
        // Errors are logged and retried by the watch itself.
        if let Ok(event) = event {
            page.observe(&event, Timestamp::now());
        }
        futures::future::ready(())
    });
    tokio::select! {
        () = observing => {}
        () = wait_for(page.stop.clone(), true) => {}
    }
}

/// Keeps of a hub what the page may show: no `managedFields`, and no status at all for a hub
/// that is not listed (its participants are none of the page's business).
fn trim(hub: &mut MidiHub) {
    hub.managed_fields_mut().clear();
    if !hub.spec.listed {
        hub.status = None;
    }
}

/// The page's routes, every answer with headers that forbid anything from elsewhere.
pub fn router(page: Arc<Page>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/events", get(events))
        .route("/api/hubs", get(api_hubs))
        .route("/api/hubs/{namespace}/{name}", get(api_hub))
        .route(render::STYLESHEET_PATH, get(stylesheet))
        .route(render::SCRIPT_PATH, get(script))
        .layer(axum::middleware::map_response(secure))
        .with_state(page)
}

/// The page loads only its own stylesheet and script, connects only to itself, and may not be
/// framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn index(State(page): State<Arc<Page>>) -> Response {
    let now = Timestamp::now();
    render::document(&page.listed(now), now).into_response()
}

/// Asks a proxy in front of the page (nginx, as many Ingresses are) to pass the live stream on
/// as it comes instead of buffering it.
const NO_BUFFERING: (HeaderName, HeaderValue) = (
    HeaderName::from_static("x-accel-buffering"),
    HeaderValue::from_static("no"),
);

/// The hubs fragment whenever a listed hub changed (coalesced), and every [`REFRESH`]; the
/// first at once, so that a page that reconnects catches up. It ends when the operator stops.
async fn events(State(page): State<Arc<Page>>) -> impl IntoResponse {
    let changes = page.changes.subscribe();
    let stop = page.stop.clone();
    let updates = futures::stream::unfold(
        (page, changes, stop, true),
        |(page, mut changes, stop, first)| async move {
            if !first {
                tokio::select! {
                    changed = changes.changed() => {
                        changed.ok()?;
                        tokio::time::sleep(COALESCE).await;
                    }
                    () = tokio::time::sleep(REFRESH) => {}
                    () = wait_for(stop.clone(), true) => return None,
                }
            }
            changes.borrow_and_update();
            let now = Timestamp::now();
            let fragment = render::hubs_fragment(&page.listed(now), now).into_string();
            let event = Event::default().event("hubs").data(fragment);
            Some((Ok::<_, Infallible>(event), (page, changes, stop, false)))
        },
    );
    (
        [NO_BUFFERING],
        Sse::new(updates).keep_alive(KeepAlive::default()),
    )
}

/// The list the JSON API answers.
#[derive(Serialize)]
struct HubList {
    hubs: Vec<HubView>,
}

/// What the JSON API answers when it has nothing to show.
#[derive(Serialize)]
struct ApiError {
    error: String,
}

async fn api_hubs(State(page): State<Arc<Page>>) -> Json<HubList> {
    Json(HubList {
        hubs: page.listed(Timestamp::now()),
    })
}

async fn api_hub(
    State(page): State<Arc<Page>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    match page.hub(&namespace, &name, Timestamp::now()) {
        Some(hub) => Json(hub).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(ApiError {
                error: format!("no listed hub {name} in namespace {namespace}"),
            }),
        )
            .into_response(),
    }
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/page.css"))
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/page.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
