use serde_json::{Value, json};

use super::*;

fn node(annotation: Option<&str>, addresses: Value) -> Node {
    let annotations = annotation.map_or_else(
        || json!({}),
        |value| json!({ PUBLIC_ADDRESS_ANNOTATION: value }),
    );
    serde_json::from_value(json!({
        "metadata": {"name": "node-a", "annotations": annotations},
        "status": {"addresses": addresses}
    }))
    .unwrap()
}

fn address(type_: &str, address: &str) -> Value {
    json!({"type": type_, "address": address})
}

#[test]
fn the_external_ip_is_the_public_address() {
    let node = node(
        None,
        json!([
            address("Hostname", "node-a"),
            address("InternalIP", "10.0.0.7"),
            address("ExternalIP", "203.0.113.7")
        ]),
    );
    let chosen = hub_address(&node);
    assert_eq!(chosen.address.as_deref(), Some("203.0.113.7"));
    assert!(chosen.public);
    assert_eq!(chosen.reason, public_address::EXTERNAL_IP);
}

#[test]
fn the_annotation_names_the_address_even_over_an_external_ip() {
    for named in ["198.51.100.20", "hub.example.org", "2001:db8::20"] {
        let node = node(
            Some(named),
            json!([
                address("InternalIP", "10.0.0.7"),
                address("ExternalIP", "203.0.113.7")
            ]),
        );
        let chosen = hub_address(&node);
        assert_eq!(chosen.address.as_deref(), Some(named));
        assert!(chosen.public);
        assert_eq!(chosen.reason, public_address::ANNOTATED);
    }
}

#[test]
fn an_internal_ip_alone_is_used_but_said_not_to_be_public_with_the_fix() {
    let node = node(None, json!([address("InternalIP", "10.0.0.7")]));
    let chosen = hub_address(&node);
    assert_eq!(chosen.address.as_deref(), Some("10.0.0.7"));
    assert!(!chosen.public);
    assert_eq!(chosen.reason, public_address::INTERNAL_IP_ONLY);
    assert!(
        chosen
            .message
            .contains("outside the cluster's network may not reach"),
        "{}",
        chosen.message
    );
    assert!(
        chosen
            .message
            .contains("kubectl annotate node node-a midihub.io/public-address="),
        "{}",
        chosen.message
    );
}

#[test]
fn ipv4_comes_before_ipv6_within_a_type_whatever_the_order_listed() {
    let dual_stack = node(
        None,
        json!([
            address("ExternalIP", "2001:db8::7"),
            address("ExternalIP", "203.0.113.7"),
            address("InternalIP", "fd00::7"),
            address("InternalIP", "10.0.0.7")
        ]),
    );
    assert_eq!(
        hub_address(&dual_stack).address.as_deref(),
        Some("203.0.113.7")
    );

    let internal_only = node(
        None,
        json!([
            address("InternalIP", "fd00::7"),
            address("InternalIP", "10.0.0.7")
        ]),
    );
    assert_eq!(
        hub_address(&internal_only).address.as_deref(),
        Some("10.0.0.7")
    );
}

#[test]
fn ipv6_is_taken_only_when_a_type_has_no_ipv4_and_is_said_to_be_ipv6() {
    let node = node(
        None,
        json!([
            address("InternalIP", "10.0.0.7"),
            address("ExternalIP", "2001:db8::7")
        ]),
    );
    let chosen = hub_address(&node);
    assert_eq!(chosen.address.as_deref(), Some("2001:db8::7"));
    assert!(chosen.public);
    assert!(chosen.message.contains("IPv6"), "{}", chosen.message);
}

#[test]
fn an_annotation_that_is_no_address_is_ignored_and_said_so() {
    for bad in [
        "not an address",
        "-hub.example.org",
        "http://hub.example.org",
        "",
    ] {
        let node = node(Some(bad), json!([address("ExternalIP", "203.0.113.7")]));
        let chosen = hub_address(&node);
        assert_eq!(chosen.address.as_deref(), Some("203.0.113.7"), "{bad:?}");
        assert!(!chosen.public, "{bad:?}");
        assert_eq!(chosen.reason, public_address::INVALID_ANNOTATION);
        assert!(
            chosen.message.contains(PUBLIC_ADDRESS_ANNOTATION),
            "{}",
            chosen.message
        );
    }
}

#[test]
fn a_node_without_addresses_has_none() {
    let node = node(None, json!([address("Hostname", "node-a")]));
    let chosen = hub_address(&node);
    assert_eq!(chosen.address, None);
    assert_eq!(chosen.reason, public_address::NO_ADDRESS);
}
