//! Byte layouts of AppleMIDI session packets (IN, OK, NO, BY, CK, RS) and of RTP-MIDI data
//! packets, as plain functions over bytes so they can be checked byte for byte without sockets.
//!
//! Only what a test participant needs: the recovery journal is skipped, never interpreted, and
//! delta times in a received command list are dropped.

/// The only session protocol version in use (Apple's and rtpmidid's).
pub const PROTOCOL_VERSION: u32 = 2;
/// RTP payload type commonly used for RTP-MIDI; rtpmidid routes data packets only with this one.
pub const MIDI_PAYLOAD_TYPE: u8 = 0x61;
/// Longest MIDI command list the long (12-bit LEN) header can carry.
pub const MAX_COMMAND_LIST_LEN: usize = 0x0FFF;

const SIGNATURE: [u8; 2] = [0xFF, 0xFF];
const COMMAND_INVITATION: [u8; 2] = *b"IN";
const COMMAND_ACCEPT: [u8; 2] = *b"OK";
const COMMAND_REJECT: [u8; 2] = *b"NO";
const COMMAND_END: [u8; 2] = *b"BY";
const COMMAND_CLOCK_SYNC: [u8; 2] = *b"CK";
const COMMAND_RECEIVER_FEEDBACK: [u8; 2] = *b"RS";

/// Every AppleMIDI command code (what follows the 0xFFFF signature).
pub const COMMAND_CODES: [[u8; 2]; 6] = [
    COMMAND_INVITATION,
    COMMAND_ACCEPT,
    COMMAND_REJECT,
    COMMAND_END,
    COMMAND_CLOCK_SYNC,
    COMMAND_RECEIVER_FEEDBACK,
];

/// Whether an RTP sequence number spells an AppleMIDI command code: rtpmidid 26.01 without
/// midihub's patch took such a packet for a command and dropped it.
pub fn spells_a_command(sequence: u16) -> bool {
    COMMAND_CODES.contains(&sequence.to_be_bytes())
}

const CLOCK_SYNC_LEN: usize = 36;
const RECEIVER_FEEDBACK_LEN: usize = 12;
const RTP_HEADER_LEN: usize = 12;

/// A packet that cannot be read as AppleMIDI session or RTP-MIDI data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{what} packet is {actual} bytes long, it needs at least {needed}")]
    TooShort {
        what: &'static str,
        needed: usize,
        actual: usize,
    },
    #[error("not an AppleMIDI session packet: it does not start with FF FF")]
    NoSignature,
    #[error("unknown AppleMIDI session command {0:?}")]
    UnknownCommand([u8; 2]),
    #[error("AppleMIDI protocol version {0} is not supported (only version 2 is)")]
    UnsupportedVersion(u32),
    #[error("session name is not valid UTF-8")]
    NameNotUtf8,
    #[error("RTP version {0} is not 2: not an RTP-MIDI packet")]
    RtpVersion(u8),
    #[error("{0}")]
    Malformed(&'static str),
    #[error(
        "MIDI command list of {0} bytes is longer than the 4095 bytes an RTP-MIDI packet can carry"
    )]
    CommandListTooLong(usize),
    #[error("an empty MIDI command list is not worth a packet")]
    EmptyCommandList,
}

/// Fields shared by an invitation (IN) and its acceptance (OK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Chosen by the initiator, echoed by the responder.
    pub token: u32,
    /// Sender's synchronization source.
    pub ssrc: u32,
    /// Sender's session name.
    pub name: String,
}

/// A clock synchronization packet; timestamps count 100 µs units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSync {
    pub ssrc: u32,
    /// 0 from the initiator (ts1), 1 from the responder (adds ts2), 2 from the initiator (adds ts3).
    pub count: u8,
    pub timestamps: [u64; 3],
}

/// Every session packet, on either port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionPacket {
    Invitation(Invitation),
    Accept(Invitation),
    Reject {
        token: u32,
        ssrc: u32,
        name: Option<String>,
    },
    End {
        token: u32,
        ssrc: u32,
    },
    ClockSync(ClockSync),
    ReceiverFeedback {
        ssrc: u32,
        sequence: u16,
    },
}

/// True when the bytes start like a session packet rather than RTP data.
pub fn is_session_packet(bytes: &[u8]) -> bool {
    bytes.starts_with(&SIGNATURE)
}

impl SessionPacket {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        match self {
            SessionPacket::Invitation(invitation) => {
                encode_invitation(&mut out, COMMAND_INVITATION, invitation)
            }
            SessionPacket::Accept(invitation) => {
                encode_invitation(&mut out, COMMAND_ACCEPT, invitation)
            }
            SessionPacket::Reject { token, ssrc, name } => {
                out.extend_from_slice(&COMMAND_REJECT);
                out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
                out.extend_from_slice(&token.to_be_bytes());
                out.extend_from_slice(&ssrc.to_be_bytes());
                if let Some(name) = name {
                    out.extend_from_slice(name.as_bytes());
                    out.push(0);
                }
            }
            SessionPacket::End { token, ssrc } => {
                out.extend_from_slice(&COMMAND_END);
                out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
                out.extend_from_slice(&token.to_be_bytes());
                out.extend_from_slice(&ssrc.to_be_bytes());
            }
            SessionPacket::ClockSync(clock_sync) => {
                out.extend_from_slice(&COMMAND_CLOCK_SYNC);
                out.extend_from_slice(&clock_sync.ssrc.to_be_bytes());
                out.push(clock_sync.count);
                out.extend_from_slice(&[0, 0, 0]);
                for timestamp in clock_sync.timestamps {
                    out.extend_from_slice(&timestamp.to_be_bytes());
                }
            }
            SessionPacket::ReceiverFeedback { ssrc, sequence } => {
                out.extend_from_slice(&COMMAND_RECEIVER_FEEDBACK);
                out.extend_from_slice(&ssrc.to_be_bytes());
                out.extend_from_slice(&sequence.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<SessionPacket, WireError> {
        require_len("session", bytes, 4)?;
        if !is_session_packet(bytes) {
            return Err(WireError::NoSignature);
        }
        let command = [bytes[2], bytes[3]];
        match command {
            COMMAND_INVITATION | COMMAND_ACCEPT | COMMAND_REJECT | COMMAND_END => {
                require_len("IN/OK/NO/BY", bytes, 16)?;
                let version = read_u32(bytes, 4);
                if version != PROTOCOL_VERSION {
                    return Err(WireError::UnsupportedVersion(version));
                }
                let token = read_u32(bytes, 8);
                let ssrc = read_u32(bytes, 12);
                let name = read_name(&bytes[16..])?;
                Ok(match command {
                    COMMAND_INVITATION => SessionPacket::Invitation(Invitation {
                        token,
                        ssrc,
                        name: name.unwrap_or_default(),
                    }),
                    COMMAND_ACCEPT => SessionPacket::Accept(Invitation {
                        token,
                        ssrc,
                        name: name.unwrap_or_default(),
                    }),
                    COMMAND_REJECT => SessionPacket::Reject { token, ssrc, name },
                    _ => SessionPacket::End { token, ssrc },
                })
            }
            COMMAND_CLOCK_SYNC => {
                require_len("CK", bytes, CLOCK_SYNC_LEN)?;
                Ok(SessionPacket::ClockSync(ClockSync {
                    ssrc: read_u32(bytes, 4),
                    count: bytes[8],
                    timestamps: [
                        read_u64(bytes, 12),
                        read_u64(bytes, 20),
                        read_u64(bytes, 28),
                    ],
                }))
            }
            COMMAND_RECEIVER_FEEDBACK => {
                require_len("RS", bytes, RECEIVER_FEEDBACK_LEN)?;
                Ok(SessionPacket::ReceiverFeedback {
                    ssrc: read_u32(bytes, 4),
                    sequence: read_u16(bytes, 8),
                })
            }
            other => Err(WireError::UnknownCommand(other)),
        }
    }
}

fn encode_invitation(out: &mut Vec<u8>, command: [u8; 2], invitation: &Invitation) {
    out.extend_from_slice(&command);
    out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    out.extend_from_slice(&invitation.token.to_be_bytes());
    out.extend_from_slice(&invitation.ssrc.to_be_bytes());
    out.extend_from_slice(invitation.name.as_bytes());
    out.push(0);
}

/// The name runs to its NUL; a missing NUL is tolerated (the name then runs to the end).
fn read_name(bytes: &[u8]) -> Result<Option<String>, WireError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8(bytes[..end].to_vec())
        .map(Some)
        .map_err(|_| WireError::NameNotUtf8)
}

/// Encodes one RTP-MIDI packet: no journal, no delta time, short header when the list fits in
/// 15 bytes, long header otherwise.
pub fn encode_midi_packet(
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    commands: &[u8],
) -> Result<Vec<u8>, WireError> {
    if commands.is_empty() {
        return Err(WireError::EmptyCommandList);
    }
    if commands.len() > MAX_COMMAND_LIST_LEN {
        return Err(WireError::CommandListTooLong(commands.len()));
    }
    let mut out = Vec::with_capacity(RTP_HEADER_LEN + 2 + commands.len());
    out.push(0x80);
    out.push(MIDI_PAYLOAD_TYPE);
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    if commands.len() <= 0x0F {
        // Short form: B=0 J=0 Z=0 P=0, LEN in the low nibble; the check above makes it fit.
        out.push(commands.len() as u8);
    } else {
        let len = commands.len() as u16;
        out.push(0x80 | (len >> 8) as u8);
        out.push((len & 0xFF) as u8);
    }
    out.extend_from_slice(commands);
    Ok(out)
}

/// A received RTP-MIDI packet, reduced to what a test checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MidiPacket {
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// The MIDI commands without delta times, running status written out in full.
    pub commands: Vec<u8>,
    /// Whether a recovery journal followed the list (it was skipped).
    pub had_journal: bool,
}

pub fn decode_midi_packet(bytes: &[u8]) -> Result<MidiPacket, WireError> {
    require_len("RTP-MIDI", bytes, RTP_HEADER_LEN + 1)?;
    let version = bytes[0] >> 6;
    if version != 2 {
        return Err(WireError::RtpVersion(version));
    }
    let has_padding = bytes[0] & 0x20 != 0;
    let has_extension = bytes[0] & 0x10 != 0;
    let csrc_count = usize::from(bytes[0] & 0x0F);
    let sequence = read_u16(bytes, 2);
    let timestamp = read_u32(bytes, 4);
    let ssrc = read_u32(bytes, 8);

    let mut end = bytes.len();
    if has_padding {
        let padding = usize::from(bytes[end - 1]);
        end = end.checked_sub(padding).ok_or(WireError::Malformed(
            "RTP padding is longer than the packet",
        ))?;
    }
    let mut position = RTP_HEADER_LEN + 4 * csrc_count;
    if has_extension {
        require_len(
            "RTP-MIDI with header extension",
            &bytes[..end],
            position + 4,
        )?;
        let words = usize::from(read_u16(bytes, position + 2));
        position += 4 + 4 * words;
    }
    let payload = bytes
        .get(position..end)
        .filter(|payload| !payload.is_empty())
        .ok_or(WireError::Malformed(
            "RTP-MIDI packet ends before its MIDI command section",
        ))?;

    let flags = payload[0];
    let long_header = flags & 0x80 != 0;
    let has_journal = flags & 0x40 != 0;
    let first_has_delta = flags & 0x20 != 0;
    let (list_len, header_len) = if long_header {
        let low = *payload.get(1).ok_or(WireError::Malformed(
            "long MIDI command section header is cut short",
        ))?;
        ((usize::from(flags & 0x0F) << 8) | usize::from(low), 2)
    } else {
        (usize::from(flags & 0x0F), 1)
    };
    let list = payload
        .get(header_len..header_len + list_len)
        .ok_or(WireError::Malformed(
            "MIDI command list is shorter than its LEN says",
        ))?;
    if has_journal {
        let journal = &payload[header_len + list_len..];
        let journal_len = recovery_journal_len(journal)?;
        if journal_len > journal.len() {
            return Err(WireError::Malformed(
                "recovery journal is shorter than its headers say",
            ));
        }
    }
    Ok(MidiPacket {
        sequence,
        timestamp,
        ssrc,
        commands: strip_delta_times(list, first_has_delta)?,
        had_journal: has_journal,
    })
}

/// Length of a recovery journal (RFC 6295 §5) from its own headers, so it can be skipped:
/// 3 header bytes (S Y A H TOTCHAN, checkpoint sequence number), then the system journal when
/// Y=1 and TOTCHAN+1 channel journals when A=1, each starting with a 10-bit LENGTH that counts
/// its own header.
pub fn recovery_journal_len(journal: &[u8]) -> Result<usize, WireError> {
    require_len("recovery journal", journal, 3)?;
    let has_system_journal = journal[0] & 0x40 != 0;
    let has_channel_journals = journal[0] & 0x20 != 0;
    let channel_journals = usize::from(journal[0] & 0x0F) + 1;
    let mut position = 3;
    let skip_one = |position: &mut usize, min_len: usize| -> Result<(), WireError> {
        let header = journal
            .get(*position..*position + 2)
            .ok_or(WireError::Malformed(
                "recovery journal ends inside a chapter header",
            ))?;
        let len = (usize::from(header[0] & 0x03) << 8) | usize::from(header[1]);
        if len < min_len {
            return Err(WireError::Malformed(
                "recovery journal chapter is shorter than its own header",
            ));
        }
        *position += len;
        Ok(())
    };
    if has_system_journal {
        skip_one(&mut position, 2)?;
    }
    if has_channel_journals {
        for _ in 0..channel_journals {
            skip_one(&mut position, 3)?;
        }
    }
    Ok(position)
}

/// Walks a command list (RFC 6295 §3): a delta time before every command but the first, and
/// before the first too when Z=1; returns the commands alone, with running status expanded.
fn strip_delta_times(list: &[u8], first_has_delta: bool) -> Result<Vec<u8>, WireError> {
    let mut commands = Vec::with_capacity(list.len());
    let mut running_status: Option<u8> = None;
    let mut position = 0;
    let mut first = true;
    while position < list.len() {
        if !first || first_has_delta {
            position = skip_delta_time(list, position)?;
            if position >= list.len() {
                return Err(WireError::Malformed(
                    "MIDI command list ends after a delta time",
                ));
            }
        }
        first = false;
        let byte = list[position];
        let status = if byte >= 0x80 {
            position += 1;
            byte
        } else {
            running_status.ok_or(WireError::Malformed(
                "MIDI command list uses running status before any status byte",
            ))?
        };
        commands.push(status);
        match status {
            0xF0 | 0xF7 => {
                // A SysEx segment runs to F7 (end), F0 (more segments follow) or F4 (cancel).
                let rest = &list[position..];
                let end = rest
                    .iter()
                    .position(|b| matches!(b, 0xF7 | 0xF0 | 0xF4))
                    .ok_or(WireError::Malformed(
                        "SysEx in a MIDI command list has no end",
                    ))?;
                commands.extend_from_slice(&rest[..=end]);
                position += end + 1;
                running_status = None;
            }
            0xF8..=0xFF => {} // real-time: no data, leaves running status alone
            _ => {
                let data_len = data_len(status);
                let data = list
                    .get(position..position + data_len)
                    .ok_or(WireError::Malformed(
                        "MIDI command list ends inside a command",
                    ))?;
                if data.iter().any(|b| *b >= 0x80) {
                    return Err(WireError::Malformed(
                        "MIDI command has a status byte where a data byte belongs",
                    ));
                }
                commands.extend_from_slice(data);
                position += data_len;
                running_status = (status < 0xF0).then_some(status);
            }
        }
    }
    Ok(commands)
}

/// Data bytes after a status byte, for every status but SysEx's (which runs to its end).
fn data_len(status: u8) -> usize {
    match status {
        0x80..=0xBF | 0xE0..=0xEF | 0xF2 => 2,
        0xC0..=0xDF | 0xF1 | 0xF3 => 1,
        _ => 0,
    }
}

/// The single MIDI messages of a received command list ([`MidiPacket::commands`], where every
/// message has its status byte): a packet may carry several, and a test that counts notes
/// must count each. A SysEx segment is one message up to its end byte; a message cut short
/// (never in a decoded list) ends the list.
pub fn messages(commands: &[u8]) -> Vec<&[u8]> {
    let mut messages = Vec::new();
    let mut position = 0;
    while position < commands.len() {
        let status = commands[position];
        let len = match status {
            0xF0 | 0xF7 => commands[position + 1..]
                .iter()
                .position(|b| matches!(b, 0xF7 | 0xF0 | 0xF4))
                .map_or(commands.len() - position, |end| end + 2),
            _ => 1 + data_len(status),
        };
        let Some(message) = commands.get(position..position + len) else {
            break;
        };
        messages.push(message);
        position += len;
    }
    messages
}

/// A delta time is 1 to 4 bytes; every byte but the last has its top bit set.
fn skip_delta_time(list: &[u8], start: usize) -> Result<usize, WireError> {
    for (offset, byte) in list.iter().skip(start).take(4).enumerate() {
        if byte & 0x80 == 0 {
            return Ok(start + offset + 1);
        }
    }
    Err(WireError::Malformed(
        "delta time in a MIDI command list is cut short or longer than 4 bytes",
    ))
}

fn require_len(what: &'static str, bytes: &[u8], needed: usize) -> Result<(), WireError> {
    if bytes.len() < needed {
        return Err(WireError::TooShort {
            what,
            needed,
            actual: bytes.len(),
        });
    }
    Ok(())
}

// Callers check the length first (require_len), so these fixed-size reads are in bounds.
fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut buffer = [0; 8];
    buffer.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER_SEQ_TS_SSRC: [u8; 10] = [
        0x12, 0x34, // sequence
        0x00, 0x01, 0x02, 0x03, // timestamp
        0xAA, 0xBB, 0xCC, 0xDD, // ssrc
    ];

    fn rtp(payload: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x80, 0x61];
        packet.extend_from_slice(&HEADER_SEQ_TS_SSRC);
        packet.extend_from_slice(payload);
        packet
    }

    #[test]
    fn invitation_is_signature_command_version_token_ssrc_and_nul_terminated_name() {
        let packet = SessionPacket::Invitation(Invitation {
            token: 0x0102_0304,
            ssrc: 0x0A0B_0C0D,
            name: "Alé".to_string(),
        });
        let bytes = packet.encode();
        assert_eq!(
            bytes,
            [
                0xFF, 0xFF, 0x49, 0x4E, 0, 0, 0, 2, 1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D, 0x41, 0x6C,
                0xC3, 0xA9, 0x00
            ]
        );
        assert_eq!(SessionPacket::decode(&bytes).unwrap(), packet);
    }

    #[test]
    fn accept_from_the_hub_decodes_with_its_session_name() {
        let bytes = [
            0xFF, 0xFF, 0x4F, 0x4B, 0, 0, 0, 2, 1, 2, 3, 4, 0, 0, 0x12, 0x34, b'r', b'o', b'o',
            b'm', 0,
        ];
        assert_eq!(
            SessionPacket::decode(&bytes).unwrap(),
            SessionPacket::Accept(Invitation {
                token: 0x0102_0304,
                ssrc: 0x1234,
                name: "room".to_string()
            })
        );
        assert_eq!(SessionPacket::decode(&bytes).unwrap().encode(), bytes);
    }

    #[test]
    fn reject_decodes_with_or_without_a_name() {
        let bare = [0xFF, 0xFF, 0x4E, 0x4F, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 9];
        assert_eq!(
            SessionPacket::decode(&bare).unwrap(),
            SessionPacket::Reject {
                token: 7,
                ssrc: 9,
                name: None
            }
        );
        let mut named = bare.to_vec();
        named.extend_from_slice(b"hub\0");
        assert_eq!(
            SessionPacket::decode(&named).unwrap(),
            SessionPacket::Reject {
                token: 7,
                ssrc: 9,
                name: Some("hub".to_string())
            }
        );
    }

    #[test]
    fn goodbye_is_sixteen_bytes() {
        let packet = SessionPacket::End {
            token: 0xDEAD_BEEF,
            ssrc: 0x0000_0102,
        };
        assert_eq!(
            packet.encode(),
            [
                0xFF, 0xFF, 0x42, 0x59, 0, 0, 0, 2, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 1, 2
            ]
        );
        assert_eq!(SessionPacket::decode(&packet.encode()).unwrap(), packet);
    }

    #[test]
    fn clock_sync_is_thirty_six_bytes_with_three_timestamps() {
        let packet = SessionPacket::ClockSync(ClockSync {
            ssrc: 0x0102_0304,
            count: 1,
            timestamps: [0x10, 0x0203_0405_0607_0809, 0],
        });
        let bytes = packet.encode();
        assert_eq!(
            bytes,
            [
                0xFF, 0xFF, 0x43, 0x4B, 1, 2, 3, 4, 1, 0, 0, 0, //
                0, 0, 0, 0, 0, 0, 0, 0x10, //
                2, 3, 4, 5, 6, 7, 8, 9, //
                0, 0, 0, 0, 0, 0, 0, 0,
            ]
        );
        assert_eq!(SessionPacket::decode(&bytes).unwrap(), packet);
    }

    #[test]
    fn receiver_feedback_is_ssrc_and_sequence_number() {
        let bytes = [0xFF, 0xFF, 0x52, 0x53, 0, 0, 0x43, 0x21, 0x01, 0x02, 0, 0];
        let packet = SessionPacket::ReceiverFeedback {
            ssrc: 0x4321,
            sequence: 0x0102,
        };
        assert_eq!(SessionPacket::decode(&bytes).unwrap(), packet);
        assert_eq!(packet.encode(), bytes);
    }

    #[test]
    fn session_packets_with_missing_bytes_or_wrong_version_are_refused() {
        assert!(matches!(
            SessionPacket::decode(&[0xFF, 0xFF, 0x43, 0x4B, 0, 0, 0, 1]),
            Err(WireError::TooShort { what: "CK", .. })
        ));
        assert_eq!(
            SessionPacket::decode(&[0xFF, 0xFF, 0x42, 0x59, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(WireError::UnsupportedVersion(3))
        );
        assert_eq!(
            SessionPacket::decode(&[0xFF, 0xFF, b'Z', b'Z', 0]),
            Err(WireError::UnknownCommand(*b"ZZ"))
        );
        assert_eq!(
            SessionPacket::decode(&[0x80, 0x61, 0, 0]),
            Err(WireError::NoSignature)
        );
    }

    #[test]
    fn a_note_on_goes_out_with_the_short_header_and_no_journal() {
        let bytes =
            encode_midi_packet(0x1234, 0x0001_0203, 0xAABB_CCDD, &[0x90, 0x3C, 0x64]).unwrap();
        assert_eq!(
            bytes,
            [
                0x80, 0x61, 0x12, 0x34, 0x00, 0x01, 0x02, 0x03, 0xAA, 0xBB, 0xCC, 0xDD, 0x03, 0x90,
                0x3C, 0x64
            ]
        );
    }

    #[test]
    fn a_list_longer_than_fifteen_bytes_goes_out_with_the_long_header() {
        let sysex: Vec<u8> = [0xF0].into_iter().chain(0..18).chain([0xF7]).collect();
        let bytes = encode_midi_packet(1, 2, 3, &sysex).unwrap();
        assert_eq!(&bytes[12..14], &[0x80, 20]);
        assert_eq!(&bytes[14..], sysex.as_slice());
        assert_eq!(decode_midi_packet(&bytes).unwrap().commands, sysex);
        assert_eq!(
            encode_midi_packet(1, 2, 3, &[]),
            Err(WireError::EmptyCommandList)
        );
        assert_eq!(
            encode_midi_packet(1, 2, 3, &vec![0xF8; 4096]),
            Err(WireError::CommandListTooLong(4096))
        );
    }

    #[test]
    fn a_short_header_packet_decodes_to_its_commands() {
        let packet = decode_midi_packet(&rtp(&[0x03, 0x90, 0x3C, 0x64])).unwrap();
        assert_eq!(
            packet,
            MidiPacket {
                sequence: 0x1234,
                timestamp: 0x0001_0203,
                ssrc: 0xAABB_CCDD,
                commands: vec![0x90, 0x3C, 0x64],
                had_journal: false,
            }
        );
    }

    #[test]
    fn delta_times_are_dropped_and_running_status_written_out() {
        // Z=1: delta 0 before note-on; then delta 0x81 0x00 (two bytes) and a running-status
        // note-on; then delta 5 and a clock tick (real-time, keeps running status); then delta 0
        // and another running-status note.
        let list = [
            0x00, 0x90, 0x3C, 0x64, // delta, note on C4
            0x81, 0x00, 0x40, 0x64, // delta (2 bytes), running status E4
            0x05, 0xF8, // delta, clock
            0x00, 0x43, 0x00, // delta, running status G4 velocity 0
        ];
        let mut payload = vec![0x20 | list.len() as u8];
        payload.extend_from_slice(&list);
        let packet = decode_midi_packet(&rtp(&payload)).unwrap();
        assert_eq!(
            packet.commands,
            [0x90, 0x3C, 0x64, 0x90, 0x40, 0x64, 0xF8, 0x90, 0x43, 0x00]
        );
    }

    #[test]
    fn a_list_of_several_commands_splits_into_single_messages() {
        // note off, delta 0, note on, delta 0, running-status note on, clock, SysEx
        let list = [
            0x80, 0x3C, 0x10, 0x00, 0x91, 0x3E, 0x20, 0x00, 0x40, 0x21, 0x00, 0xF8, 0x00, 0xF0,
            0x7D, 0x01, 0xF7,
        ];
        let mut payload = vec![0x80, list.len() as u8];
        payload.extend_from_slice(&list);
        let packet = decode_midi_packet(&rtp(&payload)).unwrap();
        assert_eq!(
            messages(&packet.commands),
            [
                &[0x80, 0x3C, 0x10][..],
                &[0x91, 0x3E, 0x20],
                &[0x91, 0x40, 0x21],
                &[0xF8],
                &[0xF0, 0x7D, 0x01, 0xF7],
            ]
        );
        assert_eq!(messages(&[0x90, 0x3C]), Vec::<&[u8]>::new(), "cut short");
    }

    #[test]
    fn without_z_the_first_command_has_no_delta_but_the_second_has() {
        let payload = [0x06, 0xB0, 0x07, 0x7F, 0x00, 0xC0, 0x05];
        let packet = decode_midi_packet(&rtp(&payload)).unwrap();
        assert_eq!(packet.commands, [0xB0, 0x07, 0x7F, 0xC0, 0x05]);
    }

    #[test]
    fn bytes_after_len_are_not_part_of_the_list() {
        let payload = [0x03, 0x90, 0x3C, 0x64, 0x00, 0x80, 0x3C, 0x00];
        let packet = decode_midi_packet(&rtp(&payload)).unwrap();
        assert_eq!(packet.commands, [0x90, 0x3C, 0x64]);
    }

    #[test]
    fn a_recovery_journal_after_the_list_is_skipped() {
        // J=1, LEN=3, note on; journal: header with Y=1 A=1 TOTCHAN=0, checkpoint 0x1233;
        // system journal of 4 bytes; one channel journal of 5 bytes (channel 0).
        let payload = [
            0x43, 0x90, 0x3C, 0x64, // command section
            0x60, 0x12, 0x33, // journal header: Y=1 A=1 TOTCHAN=0
            0x00, 0x04, 0xAB, 0xCD, // system journal, LENGTH=4
            0x00, 0x05, 0x80, 0x01, 0x02, // channel journal, LENGTH=5
        ];
        let packet = decode_midi_packet(&rtp(&payload)).unwrap();
        assert_eq!(packet.commands, [0x90, 0x3C, 0x64]);
        assert!(packet.had_journal);
        assert_eq!(recovery_journal_len(&payload[4..]).unwrap(), 12);
    }

    #[test]
    fn a_journal_with_two_channel_journals_counts_both() {
        // A=1, TOTCHAN=1 (two channel journals), no system journal
        let journal = [
            0x21, 0x00, 0x01, // header
            0x00, 0x04, 0x80, 0x00, // channel 0, LENGTH=4
            0x08, 0x06, 0x00, 0x00, 0x00, 0x00, // channel 1, LENGTH=6
        ];
        assert_eq!(recovery_journal_len(&journal).unwrap(), 3 + 4 + 6);
    }

    #[test]
    fn a_journal_cut_short_is_refused() {
        let payload = [0x43, 0x90, 0x3C, 0x64, 0x20, 0x00, 0x01, 0x00, 0x09, 0x80];
        assert_eq!(
            decode_midi_packet(&rtp(&payload)),
            Err(WireError::Malformed(
                "recovery journal is shorter than its headers say"
            ))
        );
    }

    #[test]
    fn broken_command_lists_are_refused() {
        // LEN 4 but only 3 bytes follow
        assert!(decode_midi_packet(&rtp(&[0x04, 0x90, 0x3C, 0x64])).is_err());
        // running status with nothing before it
        assert!(decode_midi_packet(&rtp(&[0x02, 0x3C, 0x64])).is_err());
        // note on cut short
        assert!(decode_midi_packet(&rtp(&[0x02, 0x90, 0x3C])).is_err());
        // not RTP version 2
        let mut wrong_version = rtp(&[0x03, 0x90, 0x3C, 0x64]);
        wrong_version[0] = 0x40;
        assert_eq!(
            decode_midi_packet(&wrong_version),
            Err(WireError::RtpVersion(1))
        );
    }

    #[test]
    fn contributing_sources_are_skipped_before_the_command_section() {
        let mut packet = vec![0x81, 0x61];
        packet.extend_from_slice(&HEADER_SEQ_TS_SSRC);
        packet.extend_from_slice(&[0x01, 0x02, 0x03, 0x04]);
        packet.extend_from_slice(&[0x02, 0xC0, 0x05]);
        assert_eq!(decode_midi_packet(&packet).unwrap().commands, [0xC0, 0x05]);
    }
}
