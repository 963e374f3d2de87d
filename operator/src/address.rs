//! Which address participants dial, and whether they can be expected to reach it. Pure.
//!
//! The rule, first match wins:
//! 1. the node's annotation [`PUBLIC_ADDRESS_ANNOTATION`] (an IP address or a DNS name), set by
//!    whoever knows how the node is reached from the internet (a router's port forwarding, an
//!    elastic IP, a DNS name). It wins over the ExternalIP because it is a deliberate statement
//!    about this very node, while the ExternalIP is whatever the cloud or kubelet reports;
//! 2. the node's `ExternalIP`;
//! 3. the node's `InternalIP`, reported with the `PublicAddress` condition False: participants
//!    outside the cluster's network may not reach it.
//!
//! Within `ExternalIP` and within `InternalIP` an IPv4 address comes before an IPv6 one: most
//! participants' home networks still reach IPv4 only, and a dual-stack node lists both. An IPv6
//! address is taken only when the node lists none of IPv4 of that type (an IPv6-only cluster),
//! and the condition's message says so. The order of types comes first: an IPv6 ExternalIP
//! beats an IPv4 InternalIP, which is usually private. An annotation is taken as written,
//! whatever its family: the user chose it.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;

/// Node annotation naming the address participants should dial to reach hubs on that node.
pub const PUBLIC_ADDRESS_ANNOTATION: &str = "midihub.io/public-address";

/// Reasons of the `PublicAddress` condition.
pub mod reasons {
    /// The address is the one the node's annotation names.
    pub const ANNOTATED: &str = "Annotated";
    /// The address is the node's ExternalIP.
    pub const EXTERNAL_IP: &str = "ExternalIP";
    /// The node has neither annotation nor ExternalIP: the address is its InternalIP.
    pub const INTERNAL_IP_ONLY: &str = "InternalIPOnly";
    /// The node's annotation is neither an IP address nor a DNS name.
    pub const INVALID_ANNOTATION: &str = "InvalidAnnotation";
    /// The node reports no usable address at all.
    pub const NO_ADDRESS: &str = "NoAddress";
}

/// The address of a hub on a node, and what the `PublicAddress` condition says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubAddress {
    /// What participants dial; `None` when the node has no usable address.
    pub address: Option<String>,
    /// Whether the address is meant to be reached from outside the cluster's network.
    pub public: bool,
    pub reason: &'static str,
    pub message: String,
}

/// The address participants dial to reach a hub on `node`, by the rule in the module
/// documentation.
pub fn hub_address(node: &Node) -> HubAddress {
    let name = node.name_any();
    let annotated = node
        .annotations()
        .get(PUBLIC_ADDRESS_ANNOTATION)
        .map(|value| value.trim());
    if let Some(value) = annotated
        && is_address_or_dns_name(value)
    {
        return HubAddress {
            address: Some(value.to_owned()),
            public: true,
            reason: reasons::ANNOTATED,
            message: format!(
                "participants dial {value}, named by the annotation {PUBLIC_ADDRESS_ANNOTATION} of node {name}"
            ),
        };
    }
    let fallback = from_node_addresses(node, &name);
    match annotated {
        Some(value) => HubAddress {
            public: false,
            reason: reasons::INVALID_ANNOTATION,
            message: format!(
                "the annotation {PUBLIC_ADDRESS_ANNOTATION} of node {name} is neither an IP address nor a DNS name ({value:?}), so it is ignored: {}",
                fallback.message
            ),
            ..fallback
        },
        None => fallback,
    }
}

/// The ExternalIP, else the InternalIP, IPv4 first within each.
fn from_node_addresses(node: &Node, name: &str) -> HubAddress {
    let listed = node
        .status
        .as_ref()
        .and_then(|status| status.addresses.as_deref())
        .unwrap_or_default();
    let of_type = |type_: &str| -> Option<IpAddr> {
        let addresses: Vec<IpAddr> = listed
            .iter()
            .filter(|address| address.type_ == type_)
            .filter_map(|address| address.address.trim().parse().ok())
            .collect();
        addresses
            .iter()
            .find(|address| address.is_ipv4())
            .or_else(|| addresses.first())
            .copied()
    };
    let annotate = format!(
        "kubectl annotate node {name} {PUBLIC_ADDRESS_ANNOTATION}=<address participants can reach>"
    );
    let ipv6_note = |address: &IpAddr| {
        if address.is_ipv6() {
            format!(
                " (IPv6: the node lists no IPv4 address of this type, and participants need IPv6 to reach it; for another address: {annotate})"
            )
        } else {
            String::new()
        }
    };
    if let Some(external) = of_type("ExternalIP") {
        return HubAddress {
            address: Some(external.to_string()),
            public: true,
            reason: reasons::EXTERNAL_IP,
            message: format!(
                "participants dial {external}, the ExternalIP of node {name}{}",
                ipv6_note(&external)
            ),
        };
    }
    if let Some(internal) = of_type("InternalIP") {
        return HubAddress {
            address: Some(internal.to_string()),
            public: false,
            reason: reasons::INTERNAL_IP_ONLY,
            message: format!(
                "node {name} has no ExternalIP: the hub's address {internal} is its InternalIP{}, which participants outside the cluster's network may not reach. If the node is reachable under another address (port forwarding, an elastic IP, a DNS name): {annotate}",
                ipv6_note(&internal)
            ),
        };
    }
    HubAddress {
        address: None,
        public: false,
        reason: reasons::NO_ADDRESS,
        message: format!(
            "node {name} lists neither an ExternalIP nor an InternalIP: name the hub's address with {annotate}"
        ),
    }
}

/// Whether `value` is an IP address or a DNS name (RFC 1123: dot-separated labels of letters,
/// digits and inner hyphens, at most 63 characters each and 253 in all).
fn is_address_or_dns_name(value: &str) -> bool {
    if value.parse::<IpAddr>().is_ok() {
        return true;
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    (1..=253).contains(&value.len()) && value.split('.').all(label_ok)
}

#[cfg(test)]
mod tests {
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
        assert_eq!(chosen.reason, reasons::EXTERNAL_IP);
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
            assert_eq!(chosen.reason, reasons::ANNOTATED);
        }
    }

    #[test]
    fn an_internal_ip_alone_is_used_but_said_not_to_be_public_with_the_fix() {
        let node = node(None, json!([address("InternalIP", "10.0.0.7")]));
        let chosen = hub_address(&node);
        assert_eq!(chosen.address.as_deref(), Some("10.0.0.7"));
        assert!(!chosen.public);
        assert_eq!(chosen.reason, reasons::INTERNAL_IP_ONLY);
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
            assert_eq!(chosen.reason, reasons::INVALID_ANNOTATION);
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
        assert_eq!(chosen.reason, reasons::NO_ADDRESS);
    }
}
