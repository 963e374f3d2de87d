//! The sidecar following its own hub's allow-lists against the REAL API server of the local
//! control plane (`MIDIHUB_CONTROL_PLANE`; skipped without it), with a token of the hub's
//! ServiceAccount, so with exactly the rights of the Role the operator gives it; and a new
//! value of the panic annotation reaching it as one panic request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::Duration;

use hub_sidecar::hub_rules::{self, Followed};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use midihub_api::MidiHub;
use midihub_api::contract::PANIC_ANNOTATION;
use midihub_tests::cluster::{delete_namespace, ensure_namespace, eventually, hub};
use midihub_tests::control_plane::Plane;
use serde_json::json;

const NAMESPACE: &str = "sidecar-rules";
const LIMIT: Duration = Duration::from_secs(60);

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

#[tokio::test]
async fn with_its_roles_rights_the_sidecar_follows_a_list_changed_on_its_hub() {
    let Some(plane) = Plane::from_env() else {
        println!(
            "SKIP: MIDIHUB_CONTROL_PLANE is not set (./scripts/test starts the control plane)"
        );
        return;
    };
    let admin = plane.admin().await.unwrap();
    delete_namespace(&admin, NAMESPACE).await;
    ensure_namespace(&admin, NAMESPACE, json!({})).await;
    let hubs: Api<MidiHub> = Api::namespaced(admin.clone(), NAMESPACE);
    hubs.create(
        &PostParams::default(),
        &hub(
            NAMESPACE,
            "jam",
            json!({ "ports": [{ "port": 6714, "allow": ["203.0.113.0/24"] }] }),
        ),
    )
    .await
    .unwrap();
    let token = eventually("a token of midihub-jam", LIMIT, || async {
        plane
            .service_account_token(NAMESPACE, "midihub-jam")
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    let as_sidecar: Api<MidiHub> =
        Api::namespaced(plane.client_with_token(&token).await.unwrap(), NAMESPACE);
    // The Role's rules take a moment to reach the authorizer's cache.
    let (
        Followed {
            mut rules,
            mut panics,
        },
        follow,
    ) = eventually("the sidecar to read its hub", LIMIT, || async {
        hub_rules::follow(as_sidecar.clone(), "jam")
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    assert!(!rules.borrow().admits(6714, ip("::ffff:198.51.100.7")));
    tokio::spawn(follow);

    hubs.patch(
        "jam",
        &PatchParams::default(),
        &Patch::Merge(
            json!({ "spec": { "ports": [{ "port": 6714, "allow": ["198.51.100.0/24"] }] } }),
        ),
    )
    .await
    .unwrap();
    let followed = tokio::time::timeout(
        LIMIT,
        rules.wait_for(|rules| rules.admits(6714, ip("::ffff:198.51.100.7"))),
    )
    .await
    .map(|result| result.map(drop));
    assert!(
        matches!(followed, Ok(Ok(()))),
        "the new list must reach the rules through the watch (is it allowed?): {:?}",
        *rules.borrow()
    );

    hubs.patch(
        "jam",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "annotations": { PANIC_ANNOTATION: "1" } } })),
    )
    .await
    .unwrap();
    let request = tokio::time::timeout(LIMIT, panics.recv()).await;
    assert!(
        matches!(&request, Ok(Some(request)) if request.why == format!("annotation {PANIC_ANNOTATION}=1")),
        "a new value of the panic annotation must ask for one panic: {request:?}"
    );
    delete_namespace(&admin, NAMESPACE).await;
}
