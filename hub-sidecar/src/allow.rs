//! Room allow-lists: who may play in a room, by address (`spec.ports[].allow`, or `--allow` in
//! local mode). A participant from outside its room's list is never wired. Pure: parsing and
//! matching.
//!
//! rtpmidid reports an IPv4 participant as an IPv4-mapped IPv6 address (`::ffff:203.0.113.10`);
//! it is judged as the IPv4 address it is, so lists are written in plain IPv4 (Kubernetes
//! refuses IPv4-mapped CIDRs at admission anyway).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::net::IpAddr;

use ipnet::IpNet;
use midihub_api::HubPort;

/// The CIDRs a room admits; empty admits everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

/// An allow-list entry that is not a CIDR.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{entry:?} is not a CIDR: write it like 203.0.113.0/24 or 2001:db8::/32 (one address: 203.0.113.7/32)"
)]
pub struct AllowError {
    entry: String,
}

impl AllowList {
    /// The list of `entries`, each a CIDR such as `203.0.113.0/24` or `2001:db8::/32`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, AllowError> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry.parse::<IpNet>().map_err(|_| AllowError {
                    entry: entry.to_owned(),
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether a participant at `address` may play: always with an empty list; otherwise only
    /// from inside one of its CIDRs. An address that could not be read (`None`) is refused by
    /// a list: who cannot be judged does not play.
    pub fn admits(&self, address: Option<IpAddr>) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Some(address) = address.map(unmapped) else {
            return false;
        };
        self.0.iter().any(|net| net.contains(&address))
    }
}

/// Every room's allow-list, by the room's control port; a room without one admits everyone.
/// The loop passes the lists in on every pass, so a change of a list takes effect at the next.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomRules(BTreeMap<u16, Rule>);

/// What one room admits.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    List(AllowList),
    /// Nobody: the room's list could not be read.
    Closed,
}

/// Something in the hub's rooms that keeps a list from being read as written.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum RulesProblem {
    #[error("room {port} admits nobody, as its allow-list cannot be read: {error}")]
    UnreadableList { port: u16, error: AllowError },
    #[error(
        "room {port} admits nobody, as it appears twice in spec.ports: remove the duplicate entry"
    )]
    RoomTwice { port: u16 },
    #[error("{port} is not a port number, so no room listens there: its allow-list is ignored")]
    NotAPort { port: i32 },
}

impl RoomRules {
    /// The rules of a hub's rooms (`spec.ports`), and what could not be read in them.
    ///
    /// None of these problems can pass admission, but the sidecar must not trust that: a room
    /// whose allow-list cannot be read, or that appears twice, is **closed** (it admits
    /// nobody) rather than open, as an open room would let in exactly the players the list
    /// was written to keep out. A port that is no port at all has no room to judge and is
    /// left out. Each problem is returned, for the logs (and later the Wiring condition).
    pub fn from_ports(ports: &[HubPort]) -> (Self, Vec<RulesProblem>) {
        let mut rules = BTreeMap::new();
        let mut problems = Vec::new();
        for room in ports {
            let Ok(port) = u16::try_from(room.port) else {
                problems.push(RulesProblem::NotAPort { port: room.port });
                continue;
            };
            let rule = match AllowList::parse(&room.allow) {
                Ok(list) => Rule::List(list),
                Err(error) => {
                    problems.push(RulesProblem::UnreadableList { port, error });
                    Rule::Closed
                }
            };
            match rules.entry(port) {
                Entry::Vacant(entry) => {
                    entry.insert(rule);
                }
                Entry::Occupied(mut entry) => {
                    if *entry.get() != Rule::Closed {
                        problems.push(RulesProblem::RoomTwice { port });
                    }
                    entry.insert(Rule::Closed);
                }
            }
        }
        (Self(rules), problems)
    }

    /// Whether the room on control port `room` has no list, so that anyone may play in it.
    pub fn admits_everyone(&self, room: u16) -> bool {
        !self.0.contains_key(&room)
    }

    /// Whether a participant at `address` may play in the room on control port `room`.
    pub fn admits(&self, room: u16, address: Option<IpAddr>) -> bool {
        match self.0.get(&room) {
            None => true,
            Some(Rule::List(list)) => list.admits(address),
            Some(Rule::Closed) => false,
        }
    }
}

impl FromIterator<(u16, AllowList)> for RoomRules {
    fn from_iter<I: IntoIterator<Item = (u16, AllowList)>>(lists: I) -> Self {
        Self(
            lists
                .into_iter()
                .map(|(port, list)| (port, Rule::List(list)))
                .collect(),
        )
    }
}

/// `::ffff:a.b.c.d` as the IPv4 address `a.b.c.d`; any other address as it is.
fn unmapped(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse(entries).unwrap()
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn an_empty_list_admits_everyone_even_an_unreadable_address() {
        let open = list(&[]);
        assert!(open.admits(ip("203.0.113.10")));
        assert!(open.admits(ip("2001:db8::1")));
        assert!(open.admits(None));
    }

    #[test]
    fn ipv4_cidrs_admit_their_addresses_only() {
        let band = list(&["203.0.113.0/24", "198.51.100.7/32"]);
        assert!(band.admits(ip("203.0.113.0")));
        assert!(band.admits(ip("203.0.113.255")));
        assert!(band.admits(ip("198.51.100.7")));
        assert!(!band.admits(ip("198.51.100.8")));
        assert!(!band.admits(ip("203.0.114.1")));
        assert!(!band.admits(None), "an unreadable address is refused");
    }

    #[test]
    fn an_ipv4_participant_reported_as_a_mapped_ipv6_address_is_judged_as_ipv4() {
        let band = list(&["203.0.113.0/24"]);
        assert!(band.admits(ip("::ffff:203.0.113.10")));
        assert!(!band.admits(ip("::ffff:198.51.100.7")));
    }

    #[test]
    fn ipv6_cidrs_admit_their_addresses_and_no_ipv4_address() {
        let band = list(&["2001:db8::/32"]);
        assert!(band.admits(ip("2001:db8::1")));
        assert!(band.admits(ip("2001:db8:ffff::7")));
        assert!(!band.admits(ip("2001:db9::1")));
        assert!(!band.admits(ip("203.0.113.10")));
        assert!(!band.admits(ip("::ffff:203.0.113.10")));
    }

    #[test]
    fn loopback_participants_of_a_test_are_told_apart() {
        let band = list(&["127.0.0.2/32"]);
        assert!(band.admits(ip("::ffff:127.0.0.2")));
        assert!(!band.admits(ip("::ffff:127.0.0.3")));
    }

    #[test]
    fn a_cidr_with_host_bits_set_means_its_network() {
        assert!(list(&["203.0.113.7/24"]).admits(ip("203.0.113.200")));
    }

    #[test]
    fn each_room_is_judged_by_its_own_list_and_a_room_without_one_admits_everyone() {
        let rules: RoomRules = [(5004, list(&["203.0.113.0/24"])), (5006, list(&[]))]
            .into_iter()
            .collect();
        assert!(rules.admits(5004, ip("::ffff:203.0.113.10")));
        assert!(!rules.admits(5004, ip("::ffff:198.51.100.7")));
        assert!(rules.admits(5006, ip("::ffff:198.51.100.7")), "empty list");
        assert!(rules.admits(5008, ip("::ffff:198.51.100.7")), "no list");
        assert!(RoomRules::default().admits(5004, None));
    }

    #[test]
    fn an_entry_that_is_not_a_cidr_is_refused_with_an_example() {
        for entry in ["203.0.113.7", "203.0.113.0/33", "example.com/24", ""] {
            let error = AllowList::parse(&["10.0.0.0/8", entry]).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "{entry:?} is not a CIDR: write it like 203.0.113.0/24 or 2001:db8::/32 (one address: 203.0.113.7/32)"
                )
            );
        }
    }

    fn room(port: i32, allow: &[&str]) -> HubPort {
        HubPort {
            port,
            name: None,
            allow: allow.iter().map(|&entry| entry.to_owned()).collect(),
        }
    }

    #[test]
    fn a_hubs_rooms_give_each_room_its_list_and_a_room_without_one_admits_everyone() {
        let (rules, problems) =
            RoomRules::from_ports(&[room(5004, &["203.0.113.0/24"]), room(5006, &[])]);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(rules.admits(5004, ip("::ffff:203.0.113.10")));
        assert!(!rules.admits(5004, ip("::ffff:198.51.100.7")));
        assert!(rules.admits(5006, ip("::ffff:198.51.100.7")));
        assert_eq!(RoomRules::from_ports(&[]), (RoomRules::default(), vec![]));
    }

    #[test]
    fn a_room_whose_list_cannot_be_read_admits_nobody_and_says_why() {
        let (rules, problems) = RoomRules::from_ports(&[
            room(5004, &["203.0.113.0/24", "not a cidr"]),
            room(5006, &["198.51.100.0/24"]),
        ]);
        assert!(!rules.admits(5004, ip("::ffff:203.0.113.10")), "closed");
        assert!(!rules.admits(5004, None));
        assert!(
            rules.admits(5006, ip("::ffff:198.51.100.7")),
            "others stand"
        );
        assert_eq!(
            problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "room 5004 admits nobody, as its allow-list cannot be read: \"not a cidr\" is not a CIDR: write it like 203.0.113.0/24 or 2001:db8::/32 (one address: 203.0.113.7/32)"
            ]
        );
    }

    #[test]
    fn a_room_given_twice_admits_nobody_whichever_list_is_meant() {
        let (rules, problems) = RoomRules::from_ports(&[
            room(5004, &["203.0.113.0/24"]),
            room(5004, &[]),
            room(5004, &["198.51.100.0/24"]),
        ]);
        assert!(!rules.admits(5004, ip("::ffff:203.0.113.10")));
        assert!(!rules.admits(5004, ip("::ffff:198.51.100.7")));
        assert_eq!(problems, [RulesProblem::RoomTwice { port: 5004 }]);
    }

    #[test]
    fn a_port_that_is_no_port_is_left_out_and_reported() {
        let (rules, problems) =
            RoomRules::from_ports(&[room(-2, &["203.0.113.0/24"]), room(70000, &[])]);
        assert_eq!(rules, RoomRules::default());
        assert_eq!(
            problems,
            [
                RulesProblem::NotAPort { port: -2 },
                RulesProblem::NotAPort { port: 70000 }
            ]
        );
    }
}
