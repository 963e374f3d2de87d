//! The `MidiHub` custom resource (`midihub.io/v1alpha1`): its spec, its status and the
//! admission rules that the generated CRD carries.
//!
//! Doc comments on the fields are user documentation: they become `kubectl explain` text.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the MidiHub resource.
pub const GROUP: &str = "midihub.io";

/// A MidiHub is an internet MIDI hub: a public host where every participant connects over
/// RTP-MIDI (AppleMIDI) and hears every other participant of the same room. Each entry in
/// `ports` is one room (one RTP-MIDI session). The hub runs only inside its schedule and
/// scales to zero (no pod, no cost) outside it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "midihub.io",
    version = "v1alpha1",
    kind = "MidiHub",
    plural = "midihubs",
    shortname = "mh",
    category = "all",
    namespaced,
    cel,
    validation = Rule::new("size(self.metadata.name) <= 55").message(
        "a MidiHub's name may have at most 55 characters: it names the hub's pod and labels"
    ),
    status = "MidiHubStatus",
    derive = "PartialEq",
    doc = "An internet MIDI hub: RTP-MIDI rooms on a public host, awake on a schedule.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Address", type_ = "string", json_path = ".status.address"),
    printcolumn(name = "Ports", type_ = "string", json_path = ".status.ports"),
    printcolumn(
        name = "Participants",
        type_ = "integer",
        json_path = ".status.participantCount"
    ),
    printcolumn(name = "Latency", type_ = "string", json_path = ".status.latency"),
    printcolumn(name = "Next", type_ = "string", json_path = ".status.nextTransition"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    // `kubectl get mh --field-selector spec.listed=true`; the public page watches only these.
    selectable = ".spec.listed"
)]
#[x_kube(validation = Rule::new("!(self.suspend && has(self.wakeUntil))").message(
    "suspend and wakeUntil cannot be set at once: remove wakeUntil to sleep, or set suspend to false to wake"
))]
#[serde(rename_all = "camelCase")]
pub struct MidiHubSpec {
    /// The hub's rooms. Each entry is one RTP-MIDI session that participants join: it listens
    /// on UDP control port `port` (even) and MIDI data port `port + 1`. Participants of a room
    /// hear each other, never participants of another room. At least one, at most 16.
    #[schemars(length(min = 1, max = 16))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q.port == p.port))").message(
        "each port may appear only once in ports: remove the duplicate entry"
    ))]
    #[x_kube(validation = Rule::new("self.all(p, !self.exists(q, q.port == p.port + 1))").message(
        "a room's data port (port + 1) is another room's control port: space the ports by 2, e.g. 5004, 5006"
    ))]
    pub ports: Vec<HubPort>,

    /// Where the hub runs: the pod is placed only on nodes labelled
    /// `topology.kubernetes.io/region=<region>`. Choose the region with the lowest latency to
    /// all participants. Empty means any region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
    )]
    pub region: Option<String>,

    /// When the hub is awake. Outside these windows it sleeps: no pod runs and it costs nothing.
    /// Without a schedule the hub is always awake (unless suspended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,

    /// Force the hub to sleep now, whatever the schedule says, until set back to false.
    /// `kubectl patch mh <name> --type=merge -p '{"spec":{"suspend":true}}'`
    #[serde(default)]
    pub suspend: bool,

    /// Force the hub awake until this time (RFC 3339, e.g. `2026-11-25T23:00:00Z`), whatever the
    /// schedule says; after it the schedule applies again. Cannot be combined with `suspend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_until: Option<Time>,

    /// How long the hub stays awake after its window ends (or `wakeUntil` passes) while
    /// participants are still playing. Unset: until the rooms have been empty for 10 minutes,
    /// at most 2 hours after the window's end. `suspend` always sleeps at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overtime: Option<Overtime>,

    /// Show this hub on the operator's public page and JSON API: its phase, the address, port
    /// and session name of every room, and for each participant their session name, since when
    /// they are connected and their latency. Participants' names are personal data: list a hub
    /// only with its participants' consent. Participants' IP addresses never appear.
    #[serde(default)]
    pub listed: bool,

    /// Settings of the hub's pod: images, resources and placement.
    #[serde(default)]
    pub pod: HubPodSettings,
}

/// The occupied-room rule: a hub whose window ends while a room is playing stays awake until
/// its rooms have been empty for `grace`, but no longer than `limit` after the window's end.
/// Durations are written like `90s`, `10m`, `1h30m`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Overtime {
    /// How long every room must have been empty before the hub sleeps. Default `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 16))]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]{1,3}h)?([0-9]{1,4}m)?([0-9]{1,6}s)?$')").message(
        "grace must be a duration in hours, minutes and seconds, such as 90s, 10m or 1h30m"
    ))]
    pub grace: Option<String>,

    /// The longest the hub stays awake after its window's end, however busy. Default `2h`;
    /// `0s` turns the rule off (the hub sleeps when its window ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 16))]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]{1,3}h)?([0-9]{1,4}m)?([0-9]{1,6}s)?$')").message(
        "limit must be a duration in hours, minutes and seconds, such as 2h, 90m or 0s (off)"
    ))]
    pub limit: Option<String>,
}

/// One room: an RTP-MIDI session on a control port and the data port after it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HubPort {
    /// UDP control port of the session; the MIDI data port is `port + 1`. Must be even and
    /// within 1024–65534. RTP-MIDI's convention is 5004, 5006, 5008, …
    #[schemars(range(min = 1024, max = 65534))]
    #[x_kube(validation = Rule::new("self % 2 == 0").message(
        "port must be even: it is the control port N and N+1 carries MIDI data (e.g. 5004, 5006)"
    ))]
    pub port: i32,

    /// The session name participants see when they connect (at most 63 characters). Defaults
    /// to `<hub name>-<port>`. It may not start or end with a space, nor contain control
    /// characters or any of `[ ] = ; # { } " \`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new(r#"!self.matches('[\\x00-\\x1f\\x7f-\\x9f\\[\\]=;#{}"\\\\]')"#).message(
        r#"session name may not contain control characters (such as a newline) or any of [ ] = ; # { } " \ : use letters, digits, spaces and simple punctuation"#
    ))]
    #[x_kube(validation = Rule::new("self == self.trim()").message(
        "session name may not start or end with whitespace"
    ))]
    pub name: Option<String>,

    /// Who may play in this room: CIDRs such as `203.0.113.0/24` or `2001:db8::/32` (one
    /// address is `203.0.113.7/32`). A participant from any other address is never wired: they
    /// hear nobody and nobody hears them, and the status lists them as refused. Empty: anyone.
    /// Addresses are judged as the hub sees them, which is the participant's own only where
    /// nothing translates addresses on the way (the hub runs on the host network).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(max = 64)))]
    #[x_kube(validation = Rule::new("self.all(c, isCIDR(c))").message(
        "each entry of allow must be a CIDR such as 203.0.113.0/24 or 2001:db8::/32 (one address: 203.0.113.7/32)"
    ))]
    pub allow: Vec<String>,
}

/// When a hub is awake: weekly windows in one time zone.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// IANA time zone the windows are written in, e.g. `Europe/Berlin`, `Australia/Sydney` or
    /// `UTC`. Daylight-saving changes are followed. An unknown zone does not crash anything: the
    /// hub reports it in its `Awake` condition and sleeps until it is fixed.
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: String,

    /// Weekly windows during which the hub is awake. Overlapping windows merge.
    #[schemars(length(min = 1, max = 32))]
    pub windows: Vec<Window>,
}

/// A weekly window, e.g. Mon–Fri 19:00–23:00. A window whose end is earlier than its start
/// crosses midnight: `start: "22:00", end: "02:00"` on Friday lasts until Saturday 02:00.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.start != self.end").message(
    "a window's start and end must differ; for a whole day use start 00:00 and end 23:59, or drop the schedule to stay awake"
))]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// Days on which the window starts.
    #[schemars(length(min = 1, max = 7))]
    #[x_kube(validation = Rule::new("self.all(d, self.exists_one(e, e == d))").message(
        "each day may appear only once in days"
    ))]
    pub days: Vec<Weekday>,

    /// Start time of day, 24-hour `HH:MM` (e.g. `19:00`), in the schedule's time zone.
    #[schemars(length(max = 5))]
    #[x_kube(validation = Rule::new("self.matches('^([01][0-9]|2[0-3]):[0-5][0-9]$')").message(
        "start must be a 24-hour time HH:MM, e.g. 19:00 (not 7pm, not 24:00)"
    ))]
    pub start: String,

    /// End time of day, 24-hour `HH:MM` (e.g. `23:30`). Earlier than `start` means the window
    /// ends on the next day.
    #[schemars(length(max = 5))]
    #[x_kube(validation = Rule::new("self.matches('^([01][0-9]|2[0-3]):[0-5][0-9]$')").message(
        "end must be a 24-hour time HH:MM, e.g. 23:30 (use 00:00 for midnight)"
    ))]
    pub end: String,
}

/// A day of the week.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// Settings of the hub's pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HubPodSettings {
    /// Image of the rtpmidid container. Defaults to the operator's configured image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub rtpmidid_image: Option<String>,

    /// Image of the hub-sidecar container. Defaults to the operator's configured image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub sidecar_image: Option<String>,

    /// Compute resources of the rtpmidid container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtpmidid_resources: Option<ResourceRequirements>,

    /// Compute resources of the hub-sidecar container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_resources: Option<ResourceRequirements>,

    /// Tolerations of the hub's pod, e.g. to run on tainted audio nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Extra node labels the hub's node must have, in addition to the sound-ready label and
    /// the region.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Priority class of the hub's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// The observed state of a MidiHub. The operator writes phase, conditions, address, node,
/// ports and the next transition; the hub's sidecar writes participants and latency.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MidiHubStatus {
    /// Where the hub is in its life: Sleeping, Starting, Ready, Degraded, Unschedulable, Blocked
    /// or Invalid. The conditions say why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// Standard conditions: `Awake` (whether the hub should run now, and why), `Ready` (whether
    /// it runs and accepts participants, and why not), `PublicAddress` (while the hub has a
    /// node: whether its address is meant to be reached from outside the cluster's network,
    /// and where it comes from) and, from the hub's sidecar, `Wiring`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The generation of the spec that this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Address participants connect to: the node's `midihub.io/public-address` annotation (an IP
    /// address or DNS name), else its ExternalIP, else its InternalIP (which participants outside
    /// the cluster's network may not reach; the `PublicAddress` condition then says so). IPv4
    /// comes before IPv6 among the node's addresses of one type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,

    /// Node the hub runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,

    /// The rooms' control ports, e.g. `5004,5006` (each also uses the next port for data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<String>,

    /// Hub pods wanted now: 1 when awake, 0 when asleep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,

    /// What happens next and when, e.g. `wake Fri 19:00 Europe/Berlin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_transition: Option<String>,

    /// When the next transition happens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_transition_time: Option<Time>,

    /// Set while the hub is awake past its window because a room was occupied when the window
    /// ended (see `spec.overtime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overtime: Option<OvertimeStatus>,

    /// The node the hub last ran on, which its pod prefers so that its address stays the same
    /// from one session to the next. It changes only while the hub sleeps (a change restarts
    /// the pod): a hub placed elsewhere because this node was full or gone prefers its new node
    /// from its next sleep on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_node: Option<String>,

    /// Participants connected now (written by the hub's sidecar).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<Participant>>,

    /// Participants connected now whom their room's allow-list (`spec.ports[].allow`) refuses:
    /// they are never wired (they hear nobody and nobody hears them), and they are not among
    /// `participants` nor counted in `participantCount` (written by the hub's sidecar).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Vec<RefusedParticipant>>,

    /// Number of participants connected now (written by the hub's sidecar).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_count: Option<i32>,

    /// Round-trip latency summary over all participants, e.g. `avg 42.1ms max 80.3ms`
    /// (written by the hub's sidecar).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<String>,
}

/// A hub in overtime: awake past its window's end because a room was occupied.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OvertimeStatus {
    /// When the window (or `wakeUntil`) ended; the limit counts from here.
    pub window_ended: Time,
    /// Since when every room is empty; unset while someone is connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_since: Option<Time>,
}

/// A hub's phase.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Outside the schedule or suspended: no pod runs.
    Sleeping,
    /// Awake: the pod is being scheduled or its containers are starting.
    Starting,
    /// The hub runs and accepts participants.
    Ready,
    /// The hub's pod runs but is not healthy (e.g. a container keeps restarting).
    Degraded,
    /// The hub should run but no node can take it (no node in the region, ports taken, …).
    Unschedulable,
    /// The hub should run but Kubernetes refuses to create its pod (the namespace's Pod
    /// Security level, a quota, a missing PriorityClass, an admission webhook, …); the `Ready`
    /// condition gives Kubernetes' words and what to do.
    Blocked,
    /// The spec cannot be acted on (e.g. an unknown time zone); see the conditions.
    Invalid,
}

impl Phase {
    /// Every phase, for metrics that report a count per phase.
    pub const ALL: [Phase; 7] = [
        Phase::Sleeping,
        Phase::Starting,
        Phase::Ready,
        Phase::Degraded,
        Phase::Unschedulable,
        Phase::Blocked,
        Phase::Invalid,
    ];

    /// The phase's name as written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Sleeping => "Sleeping",
            Phase::Starting => "Starting",
            Phase::Ready => "Ready",
            Phase::Degraded => "Degraded",
            Phase::Unschedulable => "Unschedulable",
            Phase::Blocked => "Blocked",
            Phase::Invalid => "Invalid",
        }
    }
}

/// A participant connected to one of the hub's rooms.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    /// Control port of the room the participant is in.
    pub port: i32,
    /// Session name of the room.
    pub room: String,
    /// The participant's own session name (names need not be unique).
    pub name: String,
    /// The participant's address and control port as the hub sees them.
    pub remote_address: String,
    /// When the participant joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_at: Option<Time>,
    /// Round-trip time between the hub and the participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
}

/// Someone connected to one of the hub's rooms from an address its allow-list refuses.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RefusedParticipant {
    /// Control port of the room they connected to.
    pub port: i32,
    /// Session name of the room.
    pub room: String,
    /// Their own session name.
    pub name: String,
    /// Their address and control port as the hub sees them; the address is what the room's
    /// allow-list was compared with.
    pub remote_address: String,
    /// Since when they are connected and refused.
    pub since: Time,
}

/// Round-trip time statistics, in milliseconds, from RTP-MIDI clock synchronisation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    /// Latest round trip.
    pub last_ms: f64,
    /// Average round trip over the recent samples.
    pub average_ms: f64,
    /// Standard deviation of the recent round trips (jitter).
    pub jitter_ms: f64,
}
