//! The rooms' allow-lists of the sidecar's own MidiHub, followed while it runs: read once at
//! start, then watched, each version turned into [`RoomRules`] and handed to the loop through a
//! `tokio::sync::watch` channel, so that a changed list acts without restarting the pod. The
//! same watch turns each new value of the hub's [`PANIC_ANNOTATION`] into one
//! [`PanicRequest`] (the value found at start asks for nothing: it was someone's earlier
//! request, and a restarted sidecar must not repeat it).
//!
//! The watch names the hub with a field selector (`metadata.name=<hub>`): the sidecar's Role
//! lets it read, list and watch its own hub only, and a list or watch is allowed by a
//! `resourceNames` rule only when it is narrowed to that one name. It recovers with kube's
//! watcher and its default back-off (0.8 s doubling to 30 s); while it cannot watch, the last
//! lists read stay in force.

use std::future::Future;

use futures::StreamExt;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use midihub_api::MidiHub;
use midihub_api::contract::PANIC_ANNOTATION;
use tokio::sync::{mpsc, watch};

use crate::allow::{RoomRules, RulesProblem};
use crate::guard::PanicRequest;

/// What the loop follows of its hub.
pub struct Followed {
    /// The rooms' allow-lists, current.
    pub rules: watch::Receiver<RoomRules>,
    /// One request per new value of the panic annotation.
    pub panics: mpsc::UnboundedReceiver<PanicRequest>,
}

/// The rules of hub `name` as read now, and the future that keeps them current and asks for
/// panics: it watches the hub until every receiver of the rules is gone. Fails when the hub
/// cannot be read.
pub async fn follow(
    api: Api<MidiHub>,
    name: &str,
) -> Result<(Followed, impl Future<Output = ()> + use<>), kube::Error> {
    let hub = api.get(name).await?;
    let (rules, problems) = RoomRules::from_ports(&hub.spec.ports);
    log_problems(&problems);
    let (sender, receiver) = watch::channel(rules);
    let (panic_sender, panics) = mpsc::unbounded_channel();
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let last_panic = panic_value(&hub);
    let watching = keep_current(
        api,
        config,
        sender,
        problems,
        PanicAsker {
            sender: panic_sender,
            last: last_panic,
        },
    );
    Ok((
        Followed {
            rules: receiver,
            panics,
        },
        watching,
    ))
}

/// Turns new values of the panic annotation into requests.
struct PanicAsker {
    sender: mpsc::UnboundedSender<PanicRequest>,
    /// The value last seen (none: no annotation).
    last: Option<String>,
}

impl PanicAsker {
    /// Asks for a panic when `hub` carries a value of the annotation other than the last seen.
    fn see(&mut self, hub: &MidiHub) {
        let value = panic_value(hub);
        if value == self.last {
            return;
        }
        if let Some(value) = &value {
            tracing::info!(annotation = PANIC_ANNOTATION, %value, "a panic is asked for");
            // The loop may be gone (shutting down): nobody left to play to.
            let _ = self.sender.send(PanicRequest {
                why: format!("annotation {PANIC_ANNOTATION}={value}"),
            });
        }
        self.last = value;
    }
}

fn panic_value(hub: &MidiHub) -> Option<String> {
    hub.annotations().get(PANIC_ANNOTATION).cloned()
}

/// Sends the rules of every version of the hub the watch sees, when they differ from the last,
/// and asks for a panic on each new value of its annotation.
async fn keep_current(
    api: Api<MidiHub>,
    config: watcher::Config,
    sender: watch::Sender<RoomRules>,
    mut problems: Vec<RulesProblem>,
    mut panics: PanicAsker,
) {
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut failing = false;
    loop {
        let event = tokio::select! {
            () = sender.closed() => return,
            event = events.next() => event,
        };
        let hub = match event {
            // kube's watcher never ends; should it, the last lists stay in force.
            None => return,
            Some(Err(error)) => {
                if !failing {
                    tracing::warn!(%error, "cannot watch the hub for its rooms' allow-lists; the last lists read stay in force");
                }
                failing = true;
                continue;
            }
            Some(Ok(Event::Apply(hub) | Event::InitApply(hub))) => hub,
            // A deleted hub takes its pod with it; the lists stay until then.
            Some(Ok(Event::Delete(_) | Event::Init | Event::InitDone)) => continue,
        };
        if failing {
            tracing::info!("watching the hub for its rooms' allow-lists again");
            failing = false;
        }
        panics.see(&hub);
        let (rules, new_problems) = RoomRules::from_ports(&hub.spec.ports);
        if new_problems != problems {
            log_problems(&new_problems);
            problems = new_problems;
        }
        sender.send_if_modified(|current| {
            if *current == rules {
                return false;
            }
            *current = rules;
            tracing::info!("the rooms' allow-lists changed; they act at once");
            true
        });
    }
}

fn log_problems(problems: &[RulesProblem]) {
    for problem in problems {
        tracing::warn!(%problem, "a room's allow-list cannot be used as written");
    }
}
