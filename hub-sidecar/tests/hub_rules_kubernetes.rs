//! The sidecar following its own hub's allow-lists, against the FAKE API server (not
//! Kubernetes; its RBAC and admission are proven on the control-plane tier): a list changed on
//! the hub reaches the rules the loop reads, without a restart; a new value of the panic
//! annotation asks for one panic, the value found at start for none.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use hub_sidecar::allow::RoomRules;
use hub_sidecar::hub_rules::{self, Followed};
use kube::Api;
use midihub_api::contract::PANIC_ANNOTATION;
use midihub_tests::fake_apiserver::{FailureRule, FakeApiServer, Method};
use serde_json::json;
use tokio::sync::watch;

const HUBS: &str = "/apis/midihub.io/v1alpha1/namespaces/default/midihubs";
const JAM: &str = "/apis/midihub.io/v1alpha1/namespaces/default/midihubs/jam";

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

const BAND: &str = "::ffff:203.0.113.10";
const STRANGER: &str = "::ffff:198.51.100.7";

/// The fake API server holding hub `jam`, whose room 5004 admits 203.0.113.0/24, and another
/// hub of the same namespace.
async fn fake_with_hubs() -> FakeApiServer {
    let fake = FakeApiServer::start().await;
    for (name, allow) in [("jam", "203.0.113.0/24"), ("other", "192.0.2.0/24")] {
        fake.insert(
            HUBS,
            json!({"apiVersion": "midihub.io/v1alpha1", "kind": "MidiHub",
                   "metadata": {"name": name, "namespace": "default"},
                   "spec": {"ports": [{"port": 5004, "allow": [allow]}, {"port": 5006}]}}),
        );
    }
    fake
}

/// Follows hub `jam` of `fake`; the future that keeps following is the caller's to spawn.
async fn follow_jam(fake: &FakeApiServer) -> (Followed, impl Future<Output = ()> + use<>) {
    hub_rules::follow(Api::namespaced(fake.client(), "default"), "jam")
        .await
        .unwrap()
}

fn set_allow(fake: &FakeApiServer, path: &str, allow: serde_json::Value) {
    fake.update(path, |hub| hub["spec"]["ports"][0]["allow"] = allow)
        .unwrap();
}

/// Waits until the rules the loop would read next satisfy `wanted`.
async fn rules_become(
    rules: &mut watch::Receiver<RoomRules>,
    what: &str,
    wanted: impl FnMut(&RoomRules) -> bool,
) {
    let waited = tokio::time::timeout(Duration::from_secs(10), rules.wait_for(wanted))
        .await
        .map(|result| result.map(drop));
    match waited {
        Ok(result) => result.expect("the hub is still followed"),
        Err(_) => panic!("{what}: the rules are still {:?}", *rules.borrow()),
    }
}

#[tokio::test]
async fn a_list_changed_on_the_hub_reaches_the_loops_rules_without_a_restart() {
    let fake = fake_with_hubs().await;
    let (Followed { mut rules, .. }, follow) = follow_jam(&fake).await;
    // At once, from the hub as read: no moment with the room open.
    assert!(rules.borrow().admits(5004, ip(BAND)));
    assert!(!rules.borrow().admits(5004, ip(STRANGER)));
    assert!(
        rules.borrow().admits(5006, ip(STRANGER)),
        "a room without a list"
    );
    tokio::spawn(follow);

    set_allow(&fake, JAM, json!(["198.51.100.0/24"]));
    rules_become(&mut rules, "the new list", |rules| {
        rules.admits(5004, ip(STRANGER)) && !rules.admits(5004, ip(BAND))
    })
    .await;

    set_allow(&fake, JAM, json!([]));
    rules_become(&mut rules, "the list emptied", |rules| {
        rules.admits(5004, ip(STRANGER)) && rules.admits(5004, ip(BAND))
    })
    .await;

    // The watch names the hub, as the sidecar's Role requires.
    let watches: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|request| request.method == Method::GET && request.path == HUBS)
        .collect();
    assert!(!watches.is_empty());
    for request in watches {
        assert_eq!(
            request.query_param("fieldSelector").as_deref(),
            Some("metadata.name=jam"),
            "{request:?}"
        );
    }
}

#[tokio::test]
async fn another_hubs_list_is_not_this_hubs() {
    let fake = fake_with_hubs().await;
    let (Followed { mut rules, .. }, follow) = follow_jam(&fake).await;
    tokio::spawn(follow);

    set_allow(&fake, &format!("{HUBS}/other"), json!(["198.51.100.0/24"]));
    // A change of this hub afterwards, to know the other's has been seen if it were watched.
    fake.update(JAM, |hub| {
        hub["spec"]["ports"][1]["allow"] = json!(["192.0.2.0/24"])
    })
    .unwrap();
    rules_become(&mut rules, "this hub's change", |rules| {
        !rules.admits(5006, ip(STRANGER))
    })
    .await;
    assert!(
        !rules.borrow().admits(5004, ip(STRANGER)),
        "{:?}",
        *rules.borrow()
    );
}

#[tokio::test]
async fn a_list_that_cannot_be_read_closes_its_room_and_nothing_panics() {
    let fake = fake_with_hubs().await;
    let (Followed { mut rules, .. }, follow) = follow_jam(&fake).await;
    tokio::spawn(follow);

    // Admission would refuse it; the fake has none.
    set_allow(&fake, JAM, json!(["203.0.113.0/24", "not a cidr"]));
    rules_become(&mut rules, "the room closed", |rules| {
        !rules.admits(5004, ip(BAND))
    })
    .await;
    assert!(
        rules.borrow().admits(5006, ip(STRANGER)),
        "the other room stands"
    );
}

#[tokio::test]
async fn a_watch_that_fails_at_first_recovers_and_delivers_later_changes() {
    let fake = fake_with_hubs().await;
    let (Followed { mut rules, .. }, follow) = follow_jam(&fake).await;
    fake.fail_requests(FailureRule {
        method: Some("GET".into()),
        path_contains: "/midihubs".into(),
        status: 500,
        times: 2,
    });
    tokio::spawn(follow);

    set_allow(&fake, JAM, json!(["198.51.100.0/24"]));
    rules_become(&mut rules, "the change after the failures", |rules| {
        rules.admits(5004, ip(STRANGER))
    })
    .await;
}

fn set_panic(fake: &FakeApiServer, value: &str) {
    fake.update(JAM, |hub| {
        hub["metadata"]["annotations"] = json!({ PANIC_ANNOTATION: value });
    })
    .unwrap();
}

#[tokio::test]
async fn each_new_value_of_the_panic_annotation_asks_for_one_panic_and_the_value_at_start_for_none()
{
    let fake = fake_with_hubs().await;
    set_panic(&fake, "before the sidecar started");
    let (
        Followed {
            mut rules,
            mut panics,
        },
        follow,
    ) = follow_jam(&fake).await;
    tokio::spawn(follow);

    set_panic(&fake, "2");
    let request = tokio::time::timeout(Duration::from_secs(10), panics.recv())
        .await
        .expect("a panic request")
        .expect("the hub is still followed");
    assert_eq!(request.why, format!("annotation {PANIC_ANNOTATION}=2"));

    // A change of something else, and the same value seen again, ask for nothing; a change of
    // the list afterwards tells when the watch has seen them all.
    set_panic(&fake, "2");
    set_allow(&fake, JAM, json!(["198.51.100.0/24"]));
    rules_become(&mut rules, "the list changed after", |rules| {
        rules.admits(5004, ip(STRANGER))
    })
    .await;
    assert!(panics.try_recv().is_err(), "nothing more was asked for");

    set_panic(&fake, "3");
    let request = tokio::time::timeout(Duration::from_secs(10), panics.recv())
        .await
        .expect("a second panic request")
        .expect("the hub is still followed");
    assert_eq!(request.why, format!("annotation {PANIC_ANNOTATION}=3"));
}
