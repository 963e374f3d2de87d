//! The rooms' allow-lists of the sidecar's own MidiHub, followed while it runs: read once at
//! start, then watched, each version turned into [`RoomRules`] and handed to the loop through a
//! `tokio::sync::watch` channel, so that a changed list acts without restarting the pod.
//!
//! The watch names the hub with a field selector (`metadata.name=<hub>`): the sidecar's Role
//! lets it read, list and watch its own hub only, and a list or watch is allowed by a
//! `resourceNames` rule only when it is narrowed to that one name. It recovers with kube's
//! watcher and its default back-off (0.8 s doubling to 30 s); while it cannot watch, the last
//! lists read stay in force.

use std::future::Future;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use midihub_api::MidiHub;
use tokio::sync::watch;

use crate::allow::{RoomRules, RulesProblem};

/// The rules of hub `name` as read now, and the future that keeps them current: it watches the
/// hub until every receiver of the rules is gone. Fails when the hub cannot be read.
pub async fn follow(
    api: Api<MidiHub>,
    name: &str,
) -> Result<(watch::Receiver<RoomRules>, impl Future<Output = ()> + use<>), kube::Error> {
    let hub = api.get(name).await?;
    let (rules, problems) = RoomRules::from_ports(&hub.spec.ports);
    log_problems(&problems);
    let (sender, receiver) = watch::channel(rules);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let watching = keep_current(api, config, sender, problems);
    Ok((receiver, watching))
}

/// Sends the rules of every version of the hub the watch sees, when they differ from the last.
async fn keep_current(
    api: Api<MidiHub>,
    config: watcher::Config,
    sender: watch::Sender<RoomRules>,
    mut problems: Vec<RulesProblem>,
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
