//! The controller's watches, made to recover quickly from an API server restart, and to report
//! their health to [`WatchHealth`] (which `/healthz` reads).
//!
//! With kube-runtime's own `Controller::new`, `owns` and `watches`, an API server restart could
//! leave the operator deaf for minutes:
//!
//! - All watches share one back-off, the controller's trigger back-off (0.8 s doubling to 30 s,
//!   with jitter): any watch's error pauses every watch, MidiHubs included, and as the watches
//!   fail one after another the pause grows past 50 s.
//! - A watcher whose stream broke resumes at its last resource version. A restarted server may
//!   no longer serve that version (410 Gone), and a watch that fails to start is retried at the
//!   same version instead of listing afresh.
//! - A request the starting server accepted but never answered waits forever; [`crate::client`]
//!   bounds that wait.
//!
//! So each watch here starts over with a fresh list after any error, paces its own retries
//! ([`RETRY`], at most two seconds apart), and reports its progress and errors; the controller's
//! shared back-off is turned off with [`NoSharedBackoff`]. Listing again after an error costs
//! one list of the operator's own (label-selected) objects, and it also re-reconciles every
//! hub, so that nothing changed during the outage is missed.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::utils::Backoff as StreamBackoff;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::controller::Backoff;
use crate::health::{Change, WatchHealth};

/// How long a watch waits before listing again after consecutive errors: doubling from half a
/// second, and never more than two seconds, so that a watch is back within a few seconds of
/// the API server (client-go's 30 s would exceed the operator's promise to act within 10 s).
pub const RETRY: Backoff = Backoff {
    first: Duration::from_millis(500),
    max: Duration::from_secs(2),
};

/// A watch of `api`, named `name` in logs and health reports, that lists afresh after every
/// error, pacing its attempts with [`RETRY`], and reports to `health`. Errors are still passed
/// on, as from kube's watcher.
pub fn watch<K>(
    name: &'static str,
    api: Api<K>,
    config: watcher::Config,
    health: Arc<WatchHealth>,
) -> impl Stream<Item = watcher::Result<Event<K>>> + Send + 'static
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let watch = Watch {
        name,
        api,
        config,
        health,
        stream: None,
        failures: 0,
    };
    futures::stream::unfold(watch, |mut watch| async move {
        let item = watch.next_item().await;
        Some((item, watch))
    })
}

/// A [`watch`] of the `K` objects in all namespaces that `config` selects, kept in a cache
/// (their `managedFields` stripped, as nothing reads them, and then `trim` applied), and the
/// objects it touched: the input `Controller::owns_stream` and `watches_stream` expect.
pub fn cached<K>(
    client: &Client,
    config: watcher::Config,
    health: &Arc<WatchHealth>,
    trim: fn(&mut K),
) -> (
    Store<K>,
    impl Stream<Item = watcher::Result<K>> + Send + 'static,
)
where
    K: k8s_openapi::Resource
        + Resource<DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watch(
        K::KIND,
        Api::<K>::all(client.clone()),
        config,
        health.clone(),
    )
    .modify(move |object| {
        object.managed_fields_mut().clear();
        trim(object);
    })
    .reflect(writer)
    .touched_objects();
    (store, stream)
}

/// The controller's trigger back-off, turned off: it pauses every watch whenever one fails,
/// whereas each watch made by [`watch`] already waits on its own.
pub struct NoSharedBackoff;

impl Iterator for NoSharedBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        // `None` would mean "give up" and end every watch: no pause is zero.
        Some(Duration::ZERO)
    }
}

impl StreamBackoff for NoSharedBackoff {
    fn reset(&mut self) {}
}

struct Watch<K> {
    name: &'static str,
    api: Api<K>,
    config: watcher::Config,
    health: Arc<WatchHealth>,
    /// The current kube watcher; `None` after an error, to start over with a fresh list.
    stream: Option<BoxStream<'static, watcher::Result<Event<K>>>>,
    /// Errors since the last change seen, for the retry delay.
    failures: u32,
}

impl<K> Watch<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    async fn next_item(&mut self) -> watcher::Result<Event<K>> {
        loop {
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None => {
                    if self.failures > 0 {
                        tokio::time::sleep(RETRY.delay(self.failures)).await;
                    }
                    self.stream
                        .insert(watcher(self.api.clone(), self.config.clone()).boxed())
                }
            };
            match stream.next().await {
                Some(item) => {
                    self.report(&item);
                    return item;
                }
                // kube's watcher never ends; should it, start over after a pause.
                None => {
                    self.stream = None;
                    self.failures = self.failures.max(1);
                }
            }
        }
    }

    fn report(&mut self, item: &watcher::Result<Event<K>>) {
        let watch = self.name;
        match item {
            // `Init` comes before the list is even requested: it says nothing about the server.
            Ok(Event::Init) => {}
            Ok(event) => {
                // Only a change seen proves that watching works: a list may succeed where the
                // watch after it fails, and such a watch must not retry at the shortest delay.
                if matches!(event, Event::Apply(_) | Event::Delete(_)) {
                    self.failures = 0;
                }
                if let Change::Recovered { failed_for } =
                    self.health.progressed(watch, Instant::now())
                {
                    tracing::info!(watch, ?failed_for, "watch works again");
                }
            }
            Err(error) => {
                self.stream = None;
                self.failures = self.failures.saturating_add(1);
                let retry_in = RETRY.delay(self.failures);
                match self.health.failed(watch, Instant::now()) {
                    Change::StartedFailing => {
                        tracing::warn!(watch, %error, ?retry_in, "watch failed; listing again");
                    }
                    Change::WentDeaf { failing_for } => tracing::error!(
                        watch,
                        %error,
                        ?failing_for,
                        grace = ?self.health.grace(),
                        "watch has failed for longer than the grace period: /healthz reports unhealthy"
                    ),
                    Change::Unchanged | Change::Recovered { .. } => {
                        tracing::debug!(watch, %error, ?retry_in, "watch failed again");
                    }
                }
            }
        }
    }
}
