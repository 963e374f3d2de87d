//! The rtpmidid configuration of a hub: its rooms (one listening RTP-MIDI session per port) and
//! the INI file rtpmidid reads at start-up. The operator puts it in the hub's ConfigMap; the hub
//! sidecar writes the same file in local mode.
//!
//! Session names come from users and land in an INI file, so every value is checked before it
//! is written: rtpmidid's parser (26.01, `src/ini.cpp`) cuts a line at the first `#` anywhere,
//! trims keys and values, splits at the first `=`, replaces `{{hostname}}` in values, starts a
//! section at a line beginning with `[`, and stops the daemon on any unknown section or key.
//! It knows no quoting or escaping, so a value that could change how a line parses is refused,
//! never escaped. Admission rejects the same names; this is the second line of defence.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use thiserror::Error;

use crate::HubPort;

/// Start of rtpmidid's ALSA sequencer client name; see [`alsa_client_name`].
pub const ALSA_CLIENT_PREFIX: &str = "rtpmidid";
/// Directory of rtpmidid's control socket; it must exist before rtpmidid starts.
pub const CONTROL_SOCKET_DIR: &str = "/run/rtpmidid";
/// rtpmidid's control socket, where the sidecar asks for `status`.
pub const CONTROL_SOCKET_PATH: &str = "/run/rtpmidid/control.sock";

/// Longest session name or ALSA client name, in characters (admission allows the same).
pub const MAX_NAME_CHARS: usize = 63;
/// Longest control socket path: a Unix socket path holds at most 107 bytes.
const MAX_SOCKET_PATH_BYTES: usize = 107;
/// Lowest control port of a room (ports below are privileged).
pub const MIN_PORT: u16 = 1024;
/// Highest control port of a room (its data port is the next one, 65535).
pub const MAX_PORT: u16 = 65534;

/// Characters that mean something to rtpmidid's INI parser or to rtpmidid itself (`{{hostname}}`
/// substitution), plus those that other INI readers treat as quoting or comments.
pub const RESERVED_CHARACTERS: [char; 9] = ['#', '[', ']', '=', ';', '{', '}', '"', '\\'];

/// One room: a listening RTP-MIDI session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    /// The session name participants see.
    pub name: String,
    /// The control UDP port; MIDI data uses `port + 1`.
    pub port: u16,
}

/// Everything the INI file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpmididConfig {
    /// Name of rtpmidid's ALSA sequencer client.
    pub alsa_name: String,
    /// Path of rtpmidid's control socket.
    pub control_socket: String,
    /// The listening sessions.
    pub rooms: Vec<Room>,
}

impl RtpmididConfig {
    /// The configuration of a hub: its rooms with the standard ALSA client name and control
    /// socket path.
    pub fn for_hub(hub_name: &str, ports: &[HubPort]) -> Result<Self, ConfigError> {
        Ok(RtpmididConfig {
            alsa_name: alsa_client_name(ports),
            control_socket: CONTROL_SOCKET_PATH.to_owned(),
            rooms: rooms(hub_name, ports)?,
        })
    }
}

/// Why a value cannot go into the INI file.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ValueProblem {
    #[error("is empty")]
    Empty,
    #[error("is {length} characters long, more than the {max} allowed")]
    TooLong { length: usize, max: usize },
    #[error("takes {length} bytes, more than the {max} a Unix socket path holds")]
    TooManyBytes { length: usize, max: usize },
    #[error("starts or ends with whitespace")]
    SurroundingWhitespace,
    #[error("contains a control character ({0:?})")]
    ControlCharacter(char),
    #[error("contains the reserved character {0:?}")]
    ReservedCharacter(char),
}

/// A configuration that cannot be written safely, or that rtpmidid would not run as meant.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("a hub needs at least one room: add an entry to spec.ports, e.g. port 5004")]
    NoRooms,
    #[error(
        "the session name {name:?} of the room on port {port} {problem}: use at most 63 letters, digits, spaces and simple punctuation, without control characters or any of [ ] = ; # {{ }} \" \\"
    )]
    InvalidSessionName {
        port: u16,
        name: String,
        problem: ValueProblem,
    },
    #[error(
        "the rtpmidid setting {setting} ({value:?}) {problem}: use a value without control characters, surrounding spaces or any of [ ] = ; # {{ }} \" \\"
    )]
    InvalidSetting {
        setting: &'static str,
        value: String,
        problem: ValueProblem,
    },
    #[error("port {port} is outside 1024–65534: choose an even port in that range, e.g. 5004")]
    PortOutOfRange { port: i64 },
    #[error(
        "port {port} is odd: a room's control port must be even because the next port carries its MIDI data (e.g. 5004, 5006)"
    )]
    PortOdd { port: i64 },
    #[error("port {port} is listed more than once: remove the duplicate room")]
    DuplicatePort { port: u16 },
}

/// rtpmidid's ALSA client name for a hub with `ports`: `rtpmidid-<first control port>`.
///
/// Every hub on a node shares the node's one sequencer, and the sidecar finds its daemon by
/// this name, so it must differ between hubs of a node: two hubs cannot share a node with the
/// same UDP port, so the first port tells them apart.
pub fn alsa_client_name(ports: &[HubPort]) -> String {
    match ports.first() {
        Some(port) => format!("{ALSA_CLIENT_PREFIX}-{}", port.port),
        None => ALSA_CLIENT_PREFIX.to_owned(),
    }
}

/// Default session name `<hub>-<port>`, shortened (cut at the end of the hub part, on a char
/// boundary) so the whole fits 63 characters.
pub fn default_session_name(hub_name: &str, port: u16) -> String {
    let suffix = format!("-{port}");
    let hub_budget = MAX_NAME_CHARS.saturating_sub(suffix.chars().count());
    let hub_part: String = hub_name.chars().take(hub_budget).collect();
    format!("{hub_part}{suffix}")
}

/// Rooms of a hub: spec ports with their session names (explicit or default).
pub fn rooms(hub_name: &str, ports: &[HubPort]) -> Result<Vec<Room>, ConfigError> {
    let rooms = ports
        .iter()
        .map(|entry| {
            let port = control_port(i64::from(entry.port))?;
            let name = match &entry.name {
                Some(name) => name.clone(),
                None => default_session_name(hub_name, port),
            };
            Ok(Room { name, port })
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    check_rooms(&rooms)?;
    Ok(rooms)
}

/// The INI text: `[general]` (alsa_name, control, log_level=info), one `[rtpmidi_announce]`
/// (name, port) per room, and `[rtpmidi_discover] enabled=false`. No `[alsa_announce]`: it would
/// add a "Network Export" ALSA port that opens outgoing sessions.
pub fn render(config: &RtpmididConfig) -> Result<String, ConfigError> {
    check_value(&config.alsa_name, MAX_NAME_CHARS).map_err(|problem| {
        ConfigError::InvalidSetting {
            setting: "alsa_name",
            value: config.alsa_name.clone(),
            problem,
        }
    })?;
    check_socket_path(&config.control_socket).map_err(|problem| ConfigError::InvalidSetting {
        setting: "control",
        value: config.control_socket.clone(),
        problem,
    })?;
    check_rooms(&config.rooms)?;

    // Every line is either a comment line, a section header or `key=value`; no inline comments,
    // because the parser would keep text before a `;` as part of the value.
    let mut ini = String::from(
        "# rtpmidid configuration of a MIDI hub, generated by midihub from the hub's ports.\n\
         [general]\n",
    );
    // Writing to a String cannot fail.
    let _ = writeln!(ini, "alsa_name={}", config.alsa_name);
    let _ = writeln!(ini, "control={}", config.control_socket);
    ini.push_str("log_level=info\n");
    for room in &config.rooms {
        let _ = write!(
            ini,
            "\n[rtpmidi_announce]\nname={}\nport={}\n",
            room.name, room.port
        );
    }
    ini.push_str("\n[rtpmidi_discover]\nenabled=false\n");
    Ok(ini)
}

fn control_port(port: i64) -> Result<u16, ConfigError> {
    let port_u16 = u16::try_from(port).map_err(|_| ConfigError::PortOutOfRange { port })?;
    if !(MIN_PORT..=MAX_PORT).contains(&port_u16) {
        return Err(ConfigError::PortOutOfRange { port });
    }
    if port_u16 % 2 != 0 {
        return Err(ConfigError::PortOdd { port });
    }
    Ok(port_u16)
}

/// Control ports are even, so no room's data port (N+1, odd) can be another room's control
/// port; the parity check is what rules that collision out.
fn check_rooms(rooms: &[Room]) -> Result<(), ConfigError> {
    if rooms.is_empty() {
        return Err(ConfigError::NoRooms);
    }
    let mut control_ports = BTreeSet::new();
    for room in rooms {
        control_port(i64::from(room.port))?;
        check_value(&room.name, MAX_NAME_CHARS).map_err(|problem| {
            ConfigError::InvalidSessionName {
                port: room.port,
                name: room.name.clone(),
                problem,
            }
        })?;
        if !control_ports.insert(room.port) {
            return Err(ConfigError::DuplicatePort { port: room.port });
        }
    }
    Ok(())
}

fn check_socket_path(path: &str) -> Result<(), ValueProblem> {
    // A socket path is limited in bytes, not characters.
    check_value(path, usize::MAX)?;
    if path.len() > MAX_SOCKET_PATH_BYTES {
        return Err(ValueProblem::TooManyBytes {
            length: path.len(),
            max: MAX_SOCKET_PATH_BYTES,
        });
    }
    Ok(())
}

/// Checks that a value reads back from the INI line exactly as written and cannot start a new
/// line, a section, a comment or a substitution.
fn check_value(value: &str, max_chars: usize) -> Result<(), ValueProblem> {
    if value.is_empty() {
        return Err(ValueProblem::Empty);
    }
    let length = value.chars().count();
    if length > max_chars {
        return Err(ValueProblem::TooLong {
            length,
            max: max_chars,
        });
    }
    if let Some(control) = value.chars().find(|c| c.is_control()) {
        return Err(ValueProblem::ControlCharacter(control));
    }
    if let Some(reserved) = value.chars().find(|c| RESERVED_CHARACTERS.contains(c)) {
        return Err(ValueProblem::ReservedCharacter(reserved));
    }
    if value.trim() != value {
        return Err(ValueProblem::SurroundingWhitespace);
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    use super::*;

    /// A test reimplementation of rtpmidid 26.01's INI reader (`src/ini.cpp`), enough to read
    /// back the sections and keys this module writes. Errors where rtpmidid throws.
    fn parse_like_rtpmidid(ini: &str) -> Result<RtpmididConfig, String> {
        let mut config = RtpmididConfig {
            alsa_name: String::new(),
            control_socket: String::new(),
            rooms: Vec::new(),
        };
        let mut section = String::new();
        // std::getline splits on '\n' only.
        for original in ini.split('\n') {
            let line = match original.find('#') {
                Some(comment) => &original[..comment],
                None => original,
            };
            // C++ std::isspace in the C locale.
            let is_c_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r');
            let line = line.trim_matches(is_c_space);
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let name = rest
                    .strip_suffix(']')
                    .ok_or_else(|| format!("Invalid section: {line}"))?;
                section = name.to_owned();
                match name {
                    "general" | "rtpmidi_discover" => {}
                    "rtpmidi_announce" => config.rooms.push(Room {
                        name: String::new(),
                        port: 0,
                    }),
                    other => return Err(format!("Invalid section: {other}")),
                }
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("Invalid line: {line}"))?;
            let key = key.trim_matches(is_c_space);
            let value = value
                .trim_matches(is_c_space)
                .replace("{{hostname}}", "test-host");
            match (section.as_str(), key) {
                ("general", "alsa_name") => config.alsa_name = value,
                ("general", "control") => config.control_socket = value,
                ("general", "log_level") => {
                    if value != "info" {
                        return Err(format!("unexpected log level {value}"));
                    }
                }
                ("rtpmidi_announce", "name") => config.rooms.last_mut().unwrap().name = value,
                ("rtpmidi_announce", "port") => {
                    config.rooms.last_mut().unwrap().port =
                        value.parse().map_err(|_| format!("bad port {value}"))?
                }
                ("rtpmidi_discover", "enabled") => {
                    if value != "false" {
                        return Err(format!("discovery enabled: {value}"));
                    }
                }
                (section, key) => return Err(format!("Invalid key: {key} in [{section}]")),
            }
        }
        Ok(config)
    }

    fn config_with_rooms(rooms: Vec<Room>) -> RtpmididConfig {
        RtpmididConfig {
            alsa_name: ALSA_CLIENT_PREFIX.to_owned(),
            control_socket: CONTROL_SOCKET_PATH.to_owned(),
            rooms,
        }
    }

    fn room(name: &str, port: u16) -> Room {
        Room {
            name: name.to_owned(),
            port,
        }
    }

    fn hub_port(port: i32, name: Option<&str>) -> HubPort {
        HubPort {
            port,
            name: name.map(str::to_owned),
            allow: Vec::new(),
        }
    }

    #[test]
    fn renders_two_rooms_exactly() {
        let config =
            config_with_rooms(vec![room("jam-studio-a", 5004), room("Jam Studio B", 5006)]);

        let ini = render(&config).unwrap();

        assert_eq!(
            ini,
            "# rtpmidid configuration of a MIDI hub, generated by midihub from the hub's ports.\n\
             [general]\n\
             alsa_name=rtpmidid\n\
             control=/run/rtpmidid/control.sock\n\
             log_level=info\n\
             \n\
             [rtpmidi_announce]\n\
             name=jam-studio-a\n\
             port=5004\n\
             \n\
             [rtpmidi_announce]\n\
             name=Jam Studio B\n\
             port=5006\n\
             \n\
             [rtpmidi_discover]\n\
             enabled=false\n"
        );
        assert_eq!(parse_like_rtpmidid(&ini).unwrap(), config);
    }

    #[test]
    fn rendered_ini_has_no_alsa_announce_and_disables_discovery() {
        let ini = render(&config_with_rooms(vec![room("a", 5004)])).unwrap();

        assert!(!ini.contains("alsa_announce"));
        assert!(ini.contains("[rtpmidi_discover]\nenabled=false\n"));
    }

    #[test]
    fn rooms_take_explicit_names_and_default_the_others() {
        let ports = [hub_port(5004, Some("Main room")), hub_port(5006, None)];

        let rooms = rooms("berlin", &ports).unwrap();

        assert_eq!(
            rooms,
            vec![room("Main room", 5004), room("berlin-5006", 5006)]
        );
    }

    #[test]
    fn config_for_hub_names_the_client_after_its_first_port_and_uses_the_standard_socket() {
        let config =
            RtpmididConfig::for_hub("berlin", &[hub_port(5004, None), hub_port(5006, None)])
                .unwrap();

        assert_eq!(config.alsa_name, "rtpmidid-5004");
        assert_eq!(config.control_socket, "/run/rtpmidid/control.sock");
        assert_eq!(
            config.rooms,
            vec![room("berlin-5004", 5004), room("berlin-5006", 5006)]
        );
    }

    #[test]
    fn default_session_name_keeps_short_hub_names_whole() {
        assert_eq!(default_session_name("sydney", 5004), "sydney-5004");
        assert_eq!(default_session_name("sydney", 65534), "sydney-65534");
    }

    #[test]
    fn default_session_name_cuts_a_long_hub_name_to_fit_63_characters() {
        let hub = "a".repeat(100);

        let name = default_session_name(&hub, 5004);

        assert_eq!(name, format!("{}-5004", "a".repeat(58)));
        assert_eq!(name.chars().count(), 63);
    }

    #[test]
    fn default_session_name_cuts_multibyte_hub_names_on_a_char_boundary() {
        // 40 × 'ü' (2 bytes) + 40 × '音' (3 bytes): the cut falls inside the multibyte run.
        let hub = format!("{}{}", "ü".repeat(40), "音".repeat(40));

        let name = default_session_name(&hub, 5006);

        assert_eq!(name, format!("{}{}-5006", "ü".repeat(40), "音".repeat(18)));
        assert_eq!(name.chars().count(), 63);
        // A default name of a long hub is still accepted at render time.
        let rooms = rooms(&hub, &[hub_port(5006, None)]).unwrap();
        assert_eq!(rooms[0].name, name);
    }

    #[test]
    fn a_default_name_of_exactly_63_characters_is_not_cut() {
        let hub = "h".repeat(58);

        assert_eq!(default_session_name(&hub, 5004), format!("{hub}-5004"));
    }

    #[test]
    fn every_forbidden_value_is_refused_with_the_room_and_the_reason() {
        let too_long = "x".repeat(64);
        let cases: Vec<(&str, ValueProblem)> = vec![
            ("", ValueProblem::Empty),
            (
                &too_long,
                ValueProblem::TooLong {
                    length: 64,
                    max: 63,
                },
            ),
            (" leading", ValueProblem::SurroundingWhitespace),
            ("trailing ", ValueProblem::SurroundingWhitespace),
            ("trailing\u{a0}", ValueProblem::SurroundingWhitespace),
            ("new\nline", ValueProblem::ControlCharacter('\n')),
            ("carriage\rreturn", ValueProblem::ControlCharacter('\r')),
            ("nul\0byte", ValueProblem::ControlCharacter('\0')),
            ("tab\there", ValueProblem::ControlCharacter('\t')),
            ("escape\u{1b}", ValueProblem::ControlCharacter('\u{1b}')),
            ("delete\u{7f}", ValueProblem::ControlCharacter('\u{7f}')),
            ("next-line\u{85}", ValueProblem::ControlCharacter('\u{85}')),
            ("hash#tag", ValueProblem::ReservedCharacter('#')),
            ("open[", ValueProblem::ReservedCharacter('[')),
            ("close]", ValueProblem::ReservedCharacter(']')),
            ("key=value", ValueProblem::ReservedCharacter('=')),
            ("semi;colon", ValueProblem::ReservedCharacter(';')),
            ("{{hostname}}", ValueProblem::ReservedCharacter('{')),
            ("brace}", ValueProblem::ReservedCharacter('}')),
            ("quote\"d", ValueProblem::ReservedCharacter('"')),
            ("back\\slash", ValueProblem::ReservedCharacter('\\')),
        ];
        for (name, problem) in cases {
            let error = render(&config_with_rooms(vec![room(name, 5004)])).unwrap_err();
            assert_eq!(
                error,
                ConfigError::InvalidSessionName {
                    port: 5004,
                    name: name.to_owned(),
                    problem,
                },
                "name {name:?}"
            );
            assert!(error.to_string().contains("port 5004"), "{error}");
            // The same name is refused when it comes from a hub's spec.
            let from_spec = rooms("hub", &[hub_port(5004, Some(name))]);
            assert!(
                matches!(from_spec, Err(ConfigError::InvalidSessionName { .. })),
                "name {name:?}"
            );
        }
    }

    #[test]
    fn a_name_can_never_add_a_section() {
        let name = "jam\n[alsa_announce]\nname=Network Export";

        let error = render(&config_with_rooms(vec![room(name, 5004)])).unwrap_err();

        assert_eq!(
            error.to_string(),
            "the session name \"jam\\n[alsa_announce]\\nname=Network Export\" of the room on port 5004 \
             contains a control character ('\\n'): use at most 63 letters, digits, spaces and simple \
             punctuation, without control characters or any of [ ] = ; # { } \" \\"
        );
    }

    #[test]
    fn the_alsa_name_and_control_socket_are_checked_too() {
        let mut config = config_with_rooms(vec![room("a", 5004)]);
        config.alsa_name = "rtpmidid\n[alsa_announce]".to_owned();
        assert!(matches!(
            render(&config),
            Err(ConfigError::InvalidSetting {
                setting: "alsa_name",
                ..
            })
        ));

        let mut config = config_with_rooms(vec![room("a", 5004)]);
        config.control_socket = "/run/x.sock#".to_owned();
        assert!(matches!(
            render(&config),
            Err(ConfigError::InvalidSetting {
                setting: "control",
                ..
            })
        ));

        let mut config = config_with_rooms(vec![room("a", 5004)]);
        config.control_socket = format!("/run/{}", "d".repeat(103));
        assert_eq!(config.control_socket.len(), 108);
        assert!(matches!(
            render(&config),
            Err(ConfigError::InvalidSetting {
                setting: "control",
                problem: ValueProblem::TooManyBytes {
                    length: 108,
                    max: 107
                },
                ..
            })
        ));
    }

    #[test]
    fn ports_must_be_even_in_range_unique_and_not_collide_with_data_ports() {
        let cases = [
            (
                vec![hub_port(1022, None)],
                ConfigError::PortOutOfRange { port: 1022 },
            ),
            (
                vec![hub_port(65536, None)],
                ConfigError::PortOutOfRange { port: 65536 },
            ),
            (
                vec![hub_port(-5004, None)],
                ConfigError::PortOutOfRange { port: -5004 },
            ),
            (
                vec![hub_port(5005, None)],
                ConfigError::PortOdd { port: 5005 },
            ),
            (
                vec![hub_port(5004, None), hub_port(5004, Some("other"))],
                ConfigError::DuplicatePort { port: 5004 },
            ),
            (vec![], ConfigError::NoRooms),
        ];
        for (ports, expected) in cases {
            assert_eq!(rooms("hub", &ports), Err(expected), "{ports:?}");
        }
        // 65535 is odd and out of range; the highest room is 65534 with data on 65535.
        assert_eq!(
            rooms("hub", &[hub_port(65534, None)]).unwrap()[0].port,
            65534
        );
        assert_eq!(rooms("hub", &[hub_port(1024, None)]).unwrap()[0].port, 1024);
    }

    #[test]
    fn render_refuses_a_room_on_another_rooms_data_port_and_duplicate_ports() {
        let config = config_with_rooms(vec![room("a", 5004), room("b", 5005)]);
        assert_eq!(render(&config), Err(ConfigError::PortOdd { port: 5005 }));

        let config = config_with_rooms(vec![room("a", 5004), room("b", 5004)]);
        assert_eq!(
            render(&config),
            Err(ConfigError::DuplicatePort { port: 5004 })
        );

        let config = config_with_rooms(vec![room("a", 80)]);
        assert_eq!(
            render(&config),
            Err(ConfigError::PortOutOfRange { port: 80 })
        );

        assert_eq!(
            render(&config_with_rooms(vec![])),
            Err(ConfigError::NoRooms)
        );
    }

    /// Every character up to U+3000 and a few beyond, placed at the start, in the middle and at
    /// the end of a name: whatever is accepted reads back from the INI as exactly the rooms
    /// given, and whatever changes how rtpmidid reads the line is refused.
    #[test]
    fn any_accepted_name_reads_back_as_exactly_the_rooms_given() {
        let extra = [
            '\u{2028}',
            '\u{2029}',
            '\u{feff}',
            '\u{fffd}',
            '🎹',
            '\u{10ffff}',
        ];
        let characters = (0u32..0x3000)
            .filter_map(char::from_u32)
            .chain(extra)
            .collect::<Vec<_>>();
        let mut accepted = 0;
        for c in characters {
            for name in [format!("{c}room"), format!("ro{c}om"), format!("room{c}")] {
                let config = config_with_rooms(vec![room(&name, 5004), room("second", 5006)]);
                let must_refuse = c.is_control()
                    || RESERVED_CHARACTERS.contains(&c)
                    || (c.is_whitespace() && (name.starts_with(c) || name.ends_with(c)));
                match render(&config) {
                    Ok(ini) => {
                        assert!(!must_refuse, "{name:?} accepted");
                        accepted += 1;
                        assert_eq!(parse_like_rtpmidid(&ini).as_ref(), Ok(&config), "{name:?}");
                        let sections = ini.split('\n').filter(|l| l.starts_with('['));
                        assert_eq!(sections.count(), 4, "{name:?}");
                    }
                    Err(ConfigError::InvalidSessionName { .. }) => {
                        assert!(must_refuse, "{name:?} refused without reason");
                    }
                    Err(other) => panic!("{name:?}: {other}"),
                }
            }
        }
        assert!(accepted > 30_000, "only {accepted} names accepted");
    }
}
