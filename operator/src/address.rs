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
use midihub_api::contract::reasons::public_address;

/// Node annotation naming the address participants should dial to reach hubs on that node.
pub const PUBLIC_ADDRESS_ANNOTATION: &str = "midihub.io/public-address";

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
            reason: public_address::ANNOTATED,
            message: format!(
                "participants dial {value}, named by the annotation {PUBLIC_ADDRESS_ANNOTATION} of node {name}"
            ),
        };
    }
    let fallback = from_node_addresses(node, &name);
    match annotated {
        Some(value) => HubAddress {
            public: false,
            reason: public_address::INVALID_ANNOTATION,
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
            reason: public_address::EXTERNAL_IP,
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
            reason: public_address::INTERNAL_IP_ONLY,
            message: format!(
                "node {name} has no ExternalIP: the hub's address {internal} is its InternalIP{}, which participants outside the cluster's network may not reach. If the node is reachable under another address (port forwarding, an elastic IP, a DNS name): {annotate}",
                ipv6_note(&internal)
            ),
        };
    }
    HubAddress {
        address: None,
        public: false,
        reason: public_address::NO_ADDRESS,
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
mod tests;
