//! Test-stream packet headers: udpcom's own, and iperf 2's UDP datagram header.
//!
//! Both are written at the start of a datagram's payload; the bytes after the header are the
//! caller's and are left untouched. All fields are in network byte order (big-endian). The
//! encoders and decoders here are pure functions on byte buffers: a decoder never panics,
//! whatever the buffer holds, and says why it refused (a [`HeaderError`]).
//!
//! # The udpcom header, version 1 (56 bytes)
//!
//! | offset | size | field | meaning |
//! |-------:|-----:|-------|---------|
//! | 0  | 4 | magic | the ASCII bytes `UDPC` (0x55 0x44 0x50 0x43): tells a udpcom test packet from anything else |
//! | 4  | 1 | version | 1 |
//! | 5  | 1 | flags | bit 0 `REFLECTED`: a reply from a reflector; bit 1 `LAST`: the final packet of a stream; bits 2-7 are sent as 0 and ignored on receipt |
//! | 6  | 2 | header length | 56: the bytes from offset 0 to the payload. A receiver accepts more (and skips the extra bytes, which a later revision of version 1 may define), never less |
//! | 8  | 4 | stream id | chosen by the sender; with the source address and port it names the stream |
//! | 12 | 4 | reserved | sent as 0, ignored on receipt |
//! | 16 | 8 | sequence | 0 for the first packet of the stream, then +1 for every packet |
//! | 24 | 8 | target time | when the schedule wanted the packet to leave (0: no target) |
//! | 32 | 8 | departure time | taken right before the send system call (0: not stamped) |
//! | 40 | 8 | reflector receive time | when the reflector received the packet (0 unless reflected) |
//! | 48 | 8 | reflector send time | taken by the reflector right before it sent the reply (0 unless reflected) |
//!
//! Times are unsigned nanoseconds since the Unix epoch on CLOCK_REALTIME, the clock that PTP
//! (linuxptp's `phc2sys`) and NTP discipline, so that one-way latency works between two hosts
//! whose clocks are kept in step; 0 means "absent". Every 8-byte field sits at an offset that
//! is a multiple of 8, so a header at an 8-byte-aligned address has naturally aligned fields.
//!
//! A sender writes the whole header once per stream ([`UdpcomHeader::encode`]) and then, per
//! packet, only the sequence and target ([`UdpcomHeader::write_sequence_and_target`]) and,
//! right before the send system call, the departure time ([`UdpcomHeader::write_departure`]).
//! A reflector marks a received packet as its reply ([`UdpcomHeader::reflect`]: sets
//! `REFLECTED`, writes the receive time) and writes its send time last
//! ([`UdpcomHeader::write_reflector_send`]); the original sender's analysis then splits the
//! round trip into its two directions (TWAMP-light style).
//!
//! Two rules make the header last: a receiver accepts a header length of *at least* 56, so a
//! later revision can append fields without a new version; and a time of 0 means absent, so
//! that a packet that was never stamped (or has no target) is not taken for one that left in
//! 1970.
//!
//! # The iperf 2 UDP header (20 bytes as written here)
//!
//! What iperf 2.1.8 (Debian package `iperf`) writes and reads, from its source
//! (`include/payloads.h` `struct UDP_datagram`, `Client::WritePacketID`,
//! `Server::ReadPacketID`, `Listener::apply_client_settings_udp`) and checked against
//! `iperf -s -u -e`:
//!
//! | offset | size | field | meaning |
//! |-------:|-----:|-------|---------|
//! | 0  | 4 | id | the low 32 bits of the signed 64-bit sequence number |
//! | 4  | 4 | tv_sec | departure time, CLOCK_REALTIME seconds (modulo 2^32) |
//! | 8  | 4 | tv_usec | its microseconds, 0..=999999 |
//! | 12 | 4 | id2 | the high 32 bits of the sequence number |
//! | 16 | 4 | flags | `HEADER_SEQNO64B` (0x0800_0000): "read id and id2 as one 64-bit number" |
//!
//! - The first datagram of an iperf 2 client has sequence **1**. iperf 2's server ignores a
//!   datagram with sequence 0 entirely (it counts neither it nor its bytes).
//! - A **negative** sequence number ends the test: the server takes its absolute value as the
//!   datagram's number, counts it as a datagram like any other, and reports
//!   `Lost/Total` with Total = the highest absolute sequence number seen. So a stream whose
//!   last datagram carries −N is reported as N datagrams. The iperf 2 client sends its data as
//!   1..=N, then a final datagram −(N+1) (so `iperf -s` reports N+1), and, until the server
//!   answers with its report (a 128-byte datagram back to the client's port), repeats the final
//!   datagram every 10 ms for up to 2 s with −(N+2), −(N+3), ... (same timestamps).
//! - The server reads `id2` only if the client's first datagram has `HEADER_SEQNO64B` in its
//!   flags word at offset 16; otherwise it reads `id` alone as a signed 32-bit number. The
//!   iperf 2.1.8 client always sets it (among other flags: 0x4801_0098 in a default test).
//!   Flags without `HEADER_VERSION1`, `HEADER_VERSION2`, `HEADER_EXTEND` or
//!   `HEADER32_SMALL_TRIPTIMES` make the server read no further test settings, so the bytes
//!   after offset 20 are free payload.
//! - A stream carrying this header is measured by `iperf -s -u -e` with no control connection.

use std::fmt;

use crate::error::Error;

/// Why a header could not be written or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The buffer is shorter than the header.
    TooShort {
        /// Bytes the header needs.
        needed: usize,
        /// Bytes the buffer has.
        got: usize,
    },
    /// The first four bytes are not `UDPC`: not a udpcom test packet.
    BadMagic,
    /// A udpcom header of a version this code does not know.
    UnsupportedVersion(u8),
    /// A udpcom header whose length field is below 56 bytes or beyond the datagram's end.
    BadHeaderLength(u16),
    /// An iperf 2 sequence number must be in 1..=2^63 − 1.
    SequenceOutOfRange(u64),
    /// An iperf 2 header whose microseconds field is 1,000,000 or more: not an iperf 2 packet.
    BadMicroseconds(u32),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HeaderError::TooShort { needed, got } => {
                write!(f, "needs {needed} bytes for the header, has {got}")
            }
            HeaderError::BadMagic => write!(f, "does not start with the udpcom magic \"UDPC\""),
            HeaderError::UnsupportedVersion(version) => {
                write!(
                    f,
                    "has udpcom header version {version}; only version {UDPCOM_VERSION} is known"
                )
            }
            HeaderError::BadHeaderLength(length) => write!(
                f,
                "has a header length of {length} bytes; it must be at least {UDPCOM_HEADER_LEN} and within the datagram"
            ),
            HeaderError::SequenceOutOfRange(sequence) => write!(
                f,
                "has iperf 2 sequence number {sequence}; it must be in 1..={}",
                i64::MAX
            ),
            HeaderError::BadMicroseconds(usec) => {
                write!(f, "has an iperf 2 tv_usec of {usec}; it must be below 1000000")
            }
        }
    }
}

impl std::error::Error for HeaderError {}

impl From<HeaderError> for Error {
    /// A buffer too short for the header is a size out of range (`ERR_OUT_OF_RANGE`);
    /// everything else is a packet that is not what it should be (`ERR_INVALID_ARG_VALUE`).
    fn from(err: HeaderError) -> Error {
        match err {
            HeaderError::TooShort { needed, got } => {
                Error::out_of_range("the packet size", &format!(">= {needed} bytes to hold the header"), got)
            }
            HeaderError::SequenceOutOfRange(sequence) => Error::out_of_range(
                "the iperf 2 sequence number",
                &format!(">= 1 and <= {}", i64::MAX),
                sequence,
            ),
            other => Error::invalid_arg_value("The packet", &other.to_string(), "a packet of another format"),
        }
    }
}

/// `UDPC`, the first four bytes of every udpcom test packet.
pub const UDPCOM_MAGIC: [u8; 4] = *b"UDPC";
/// The header version written and read here.
pub const UDPCOM_VERSION: u8 = 1;
/// Length of the version 1 header, in bytes.
pub const UDPCOM_HEADER_LEN: usize = 56;

/// Flag bit: the packet is a reflector's reply.
pub const FLAG_REFLECTED: u8 = 1 << 0;
/// Flag bit: the final packet of its stream.
pub const FLAG_LAST: u8 = 1 << 1;

const MAGIC_AT: usize = 0;
const VERSION_AT: usize = 4;
const FLAGS_AT: usize = 5;
const HEADER_LEN_AT: usize = 6;
const STREAM_ID_AT: usize = 8;
const RESERVED_AT: usize = 12;
const SEQUENCE_AT: usize = 16;
const TARGET_AT: usize = 24;
const DEPARTURE_AT: usize = 32;
const REFLECTOR_RECEIVE_AT: usize = 40;
const REFLECTOR_SEND_AT: usize = 48;

/// Reads a big-endian `u32` at `at`; the caller has checked the length.
#[inline]
fn get_u32(buf: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&buf[at..at + 4]);
    u32::from_be_bytes(bytes)
}

/// Reads a big-endian `u64` at `at`; the caller has checked the length.
#[inline]
fn get_u64(buf: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    u64::from_be_bytes(bytes)
}

#[inline]
fn put_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

#[inline]
fn put_u64(buf: &mut [u8], at: usize, value: u64) {
    buf[at..at + 8].copy_from_slice(&value.to_be_bytes());
}

#[inline]
fn check_len(buf: &[u8], needed: usize) -> Result<(), HeaderError> {
    if buf.len() < needed {
        return Err(HeaderError::TooShort { needed, got: buf.len() });
    }
    Ok(())
}

/// A udpcom version 1 header, decoded. Times are CLOCK_REALTIME ns since the Unix epoch,
/// 0 when absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpcomHeader {
    /// [`FLAG_REFLECTED`], [`FLAG_LAST`]; unknown bits are kept as read.
    pub flags: u8,
    /// The sender's stream id.
    pub stream_id: u32,
    /// 0 for the stream's first packet.
    pub sequence: u64,
    /// When the schedule wanted the packet to leave.
    pub target_ns: u64,
    /// When it left (read right before the send system call).
    pub departure_ns: u64,
    /// When a reflector received it.
    pub reflector_receive_ns: u64,
    /// When the reflector sent its reply.
    pub reflector_send_ns: u64,
}

impl UdpcomHeader {
    /// Whether the packet is a reflector's reply.
    pub fn is_reflected(&self) -> bool {
        self.flags & FLAG_REFLECTED != 0
    }

    /// Whether the packet is the last of its stream.
    pub fn is_last(&self) -> bool {
        self.flags & FLAG_LAST != 0
    }

    /// Writes the whole header into the first 56 bytes of `packet`; the rest is untouched.
    pub fn encode(&self, packet: &mut [u8]) -> Result<(), HeaderError> {
        check_len(packet, UDPCOM_HEADER_LEN)?;
        packet[MAGIC_AT..MAGIC_AT + 4].copy_from_slice(&UDPCOM_MAGIC);
        packet[VERSION_AT] = UDPCOM_VERSION;
        packet[FLAGS_AT] = self.flags;
        packet[HEADER_LEN_AT..HEADER_LEN_AT + 2].copy_from_slice(&(UDPCOM_HEADER_LEN as u16).to_be_bytes());
        put_u32(packet, STREAM_ID_AT, self.stream_id);
        put_u32(packet, RESERVED_AT, 0);
        put_u64(packet, SEQUENCE_AT, self.sequence);
        put_u64(packet, TARGET_AT, self.target_ns);
        put_u64(packet, DEPARTURE_AT, self.departure_ns);
        put_u64(packet, REFLECTOR_RECEIVE_AT, self.reflector_receive_ns);
        put_u64(packet, REFLECTOR_SEND_AT, self.reflector_send_ns);
        Ok(())
    }

    /// Reads the header at the start of `packet`.
    pub fn decode(packet: &[u8]) -> Result<UdpcomHeader, HeaderError> {
        check_prefix(packet)?;
        Ok(UdpcomHeader {
            flags: packet[FLAGS_AT],
            stream_id: get_u32(packet, STREAM_ID_AT),
            sequence: get_u64(packet, SEQUENCE_AT),
            target_ns: get_u64(packet, TARGET_AT),
            departure_ns: get_u64(packet, DEPARTURE_AT),
            reflector_receive_ns: get_u64(packet, REFLECTOR_RECEIVE_AT),
            reflector_send_ns: get_u64(packet, REFLECTOR_SEND_AT),
        })
    }

    /// Per packet, on the sender: writes the sequence number and target time of a packet
    /// whose header was encoded before.
    #[inline]
    pub fn write_sequence_and_target(packet: &mut [u8], sequence: u64, target_ns: u64) -> Result<(), HeaderError> {
        check_len(packet, UDPCOM_HEADER_LEN)?;
        put_u64(packet, SEQUENCE_AT, sequence);
        put_u64(packet, TARGET_AT, target_ns);
        Ok(())
    }

    /// Per packet, right before the send system call: writes the departure time.
    #[inline]
    pub fn write_departure(packet: &mut [u8], departure_ns: u64) -> Result<(), HeaderError> {
        check_len(packet, UDPCOM_HEADER_LEN)?;
        put_u64(packet, DEPARTURE_AT, departure_ns);
        Ok(())
    }

    /// Sets or clears the `LAST` flag of an encoded header.
    pub fn set_last(packet: &mut [u8], last: bool) -> Result<(), HeaderError> {
        check_len(packet, UDPCOM_HEADER_LEN)?;
        if last {
            packet[FLAGS_AT] |= FLAG_LAST;
        } else {
            packet[FLAGS_AT] &= !FLAG_LAST;
        }
        Ok(())
    }

    /// On a reflector, for a received packet: checks that it carries a udpcom header, marks it
    /// `REFLECTED`, writes the receive time and clears the send time. Leaves the packet as it
    /// was and says why if it is not a udpcom packet (a reflector then sends it back as is).
    pub fn reflect(packet: &mut [u8], receive_ns: u64) -> Result<(), HeaderError> {
        check_prefix(packet)?;
        packet[FLAGS_AT] |= FLAG_REFLECTED;
        put_u64(packet, REFLECTOR_RECEIVE_AT, receive_ns);
        put_u64(packet, REFLECTOR_SEND_AT, 0);
        Ok(())
    }

    /// On a reflector, right before the send system call: writes the reply's send time.
    #[inline]
    pub fn write_reflector_send(packet: &mut [u8], send_ns: u64) -> Result<(), HeaderError> {
        check_len(packet, UDPCOM_HEADER_LEN)?;
        put_u64(packet, REFLECTOR_SEND_AT, send_ns);
        Ok(())
    }
}

/// Checks length, magic, version and header length: everything that makes a udpcom packet.
#[inline]
fn check_prefix(packet: &[u8]) -> Result<(), HeaderError> {
    check_len(packet, UDPCOM_HEADER_LEN)?;
    if packet[MAGIC_AT..MAGIC_AT + 4] != UDPCOM_MAGIC {
        return Err(HeaderError::BadMagic);
    }
    if packet[VERSION_AT] != UDPCOM_VERSION {
        return Err(HeaderError::UnsupportedVersion(packet[VERSION_AT]));
    }
    let header_len = u16::from_be_bytes([packet[HEADER_LEN_AT], packet[HEADER_LEN_AT + 1]]);
    if (header_len as usize) < UDPCOM_HEADER_LEN || header_len as usize > packet.len() {
        return Err(HeaderError::BadHeaderLength(header_len));
    }
    Ok(())
}

/// iperf 2's flag "the sequence number has 64 bits: id and id2" (`HEADER_SEQNO64B`).
pub const IPERF2_SEQNO64B: u32 = 0x0800_0000;
/// Bytes written by [`Iperf2Header::encode`]: id, tv_sec, tv_usec, id2 and the flags word.
pub const IPERF2_HEADER_LEN: usize = 20;
/// Bytes [`Iperf2Header::decode`] needs: id, tv_sec, tv_usec, id2 (the flags word is read
/// when present).
pub const IPERF2_MIN_HEADER_LEN: usize = 16;
/// The sequence number of an iperf 2 stream's first datagram.
pub const IPERF2_FIRST_SEQUENCE: u64 = 1;

const IPERF2_ID_AT: usize = 0;
const IPERF2_SEC_AT: usize = 4;
const IPERF2_USEC_AT: usize = 8;
const IPERF2_ID2_AT: usize = 12;
const IPERF2_FLAGS_AT: usize = 16;

/// An iperf 2 UDP header, decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Iperf2Header {
    /// The datagram's number: the absolute value of the signed sequence number on the wire,
    /// 1 for the first datagram.
    pub sequence: u64,
    /// The sequence number on the wire was negative: this datagram ends the test.
    pub last: bool,
    /// tv_sec and tv_usec as ns since the Unix epoch (microsecond resolution; 0 when both
    /// are 0).
    pub departure_ns: u64,
}

impl Iperf2Header {
    /// Writes id, tv_sec, tv_usec, id2 and the flags word `HEADER_SEQNO64B` into the first
    /// 20 bytes of `packet`; the rest is untouched. The sequence number must be in
    /// 1..=2^63 − 1 (iperf 2's server ignores 0); `last` sends it negated.
    pub fn encode(&self, packet: &mut [u8]) -> Result<(), HeaderError> {
        check_len(packet, IPERF2_HEADER_LEN)?;
        Self::write_sequence(packet, self.sequence, self.last)?;
        Self::write_departure(packet, self.departure_ns)?;
        put_u32(packet, IPERF2_FLAGS_AT, IPERF2_SEQNO64B);
        Ok(())
    }

    /// Reads the header at the start of `packet`. The sequence number is 64 bits (id and
    /// id2) when the flags word is present and has `HEADER_SEQNO64B`, else `id` alone read as
    /// a signed 32-bit number, as iperf 2's server does. A sequence number of 0 is returned
    /// as such (iperf 2's server ignores such a datagram).
    pub fn decode(packet: &[u8]) -> Result<Iperf2Header, HeaderError> {
        check_len(packet, IPERF2_MIN_HEADER_LEN)?;
        let id = get_u32(packet, IPERF2_ID_AT);
        let wide = packet.len() >= IPERF2_HEADER_LEN && get_u32(packet, IPERF2_FLAGS_AT) & IPERF2_SEQNO64B != 0;
        let signed: i64 = if wide {
            (((get_u32(packet, IPERF2_ID2_AT) as u64) << 32) | id as u64) as i64
        } else {
            id as i32 as i64
        };
        let usec = get_u32(packet, IPERF2_USEC_AT);
        if usec >= 1_000_000 {
            return Err(HeaderError::BadMicroseconds(usec));
        }
        let sec = get_u32(packet, IPERF2_SEC_AT) as u64;
        Ok(Iperf2Header {
            sequence: signed.unsigned_abs(),
            last: signed < 0,
            departure_ns: sec * 1_000_000_000 + usec as u64 * 1_000,
        })
    }

    /// Per packet: writes id and id2 (the sequence number, negated if `last`).
    #[inline]
    pub fn write_sequence(packet: &mut [u8], sequence: u64, last: bool) -> Result<(), HeaderError> {
        check_len(packet, IPERF2_HEADER_LEN)?;
        if sequence == 0 || sequence > i64::MAX as u64 {
            return Err(HeaderError::SequenceOutOfRange(sequence));
        }
        let signed = if last { -(sequence as i64) } else { sequence as i64 };
        let wire = signed as u64;
        put_u32(packet, IPERF2_ID_AT, wire as u32);
        put_u32(packet, IPERF2_ID2_AT, (wire >> 32) as u32);
        Ok(())
    }

    /// Per packet, right before the send system call: writes tv_sec and tv_usec (the
    /// nanoseconds are truncated to microseconds; the seconds wrap modulo 2^32 in 2106).
    #[inline]
    pub fn write_departure(packet: &mut [u8], departure_ns: u64) -> Result<(), HeaderError> {
        check_len(packet, IPERF2_HEADER_LEN)?;
        put_u32(packet, IPERF2_SEC_AT, (departure_ns / 1_000_000_000) as u32);
        put_u32(packet, IPERF2_USEC_AT, (departure_ns % 1_000_000_000 / 1_000) as u32);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by hand from the table in the module doc.
    const UDPCOM_GOLDEN: [u8; 56] = [
        b'U', b'D', b'P', b'C', // magic
        1,    // version
        0b11, // flags: REFLECTED | LAST
        0, 56, // header length
        0xDE, 0xAD, 0xBE, 0xEF, // stream id
        0, 0, 0, 0, // reserved
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // sequence
        0x17, 0x9D, 0x2C, 0x1A, 0x00, 0x00, 0x00, 0x00, // target
        0x17, 0x9D, 0x2C, 0x1A, 0x00, 0x00, 0x00, 0x01, // departure
        0x17, 0x9D, 0x2C, 0x1A, 0x00, 0x00, 0x10, 0x00, // reflector receive
        0x17, 0x9D, 0x2C, 0x1A, 0x00, 0x00, 0x20, 0x00, // reflector send
    ];

    fn golden_header() -> UdpcomHeader {
        UdpcomHeader {
            flags: FLAG_REFLECTED | FLAG_LAST,
            stream_id: 0xDEAD_BEEF,
            sequence: 0x0102_0304_0506_0708,
            target_ns: 0x179D_2C1A_0000_0000,
            departure_ns: 0x179D_2C1A_0000_0001,
            reflector_receive_ns: 0x179D_2C1A_0000_1000,
            reflector_send_ns: 0x179D_2C1A_0000_2000,
        }
    }

    #[test]
    fn udpcom_header_encodes_to_the_documented_bytes() {
        let mut packet = [0xAAu8; 64];
        golden_header().encode(&mut packet).unwrap();
        assert_eq!(packet[..56], UDPCOM_GOLDEN);
        assert_eq!(packet[56..], [0xAA; 8], "the payload after the header is left alone");
        assert_eq!(UdpcomHeader::decode(&UDPCOM_GOLDEN), Ok(golden_header()));
    }

    #[test]
    fn udpcom_header_round_trips() {
        for header in [
            UdpcomHeader::default(),
            golden_header(),
            UdpcomHeader {
                flags: 0xFF,
                stream_id: u32::MAX,
                sequence: u64::MAX,
                target_ns: u64::MAX,
                departure_ns: 1,
                reflector_receive_ns: 2,
                reflector_send_ns: 3,
            },
        ] {
            let mut packet = vec![0u8; 1500];
            header.encode(&mut packet).unwrap();
            assert_eq!(UdpcomHeader::decode(&packet), Ok(header));
        }
    }

    #[test]
    fn udpcom_hot_path_writes_touch_only_their_fields() {
        let mut packet = [0x55u8; 80];
        UdpcomHeader {
            stream_id: 7,
            ..Default::default()
        }
        .encode(&mut packet)
        .unwrap();
        UdpcomHeader::write_sequence_and_target(&mut packet, 41, 1_000).unwrap();
        UdpcomHeader::write_departure(&mut packet, 1_005).unwrap();
        UdpcomHeader::set_last(&mut packet, true).unwrap();
        let header = UdpcomHeader::decode(&packet).unwrap();
        assert_eq!(
            header,
            UdpcomHeader {
                flags: FLAG_LAST,
                stream_id: 7,
                sequence: 41,
                target_ns: 1_000,
                departure_ns: 1_005,
                ..Default::default()
            }
        );
        assert!(header.is_last() && !header.is_reflected());
        assert_eq!(packet[56..], [0x55; 24]);
        UdpcomHeader::set_last(&mut packet, false).unwrap();
        assert!(!UdpcomHeader::decode(&packet).unwrap().is_last());
    }

    #[test]
    fn reflector_marks_and_stamps_in_place() {
        let mut packet = [0u8; 56];
        UdpcomHeader {
            stream_id: 3,
            sequence: 9,
            target_ns: 100,
            departure_ns: 110,
            reflector_send_ns: 999, // stale: reflect() clears it
            ..Default::default()
        }
        .encode(&mut packet)
        .unwrap();
        UdpcomHeader::reflect(&mut packet, 150).unwrap();
        UdpcomHeader::write_reflector_send(&mut packet, 160).unwrap();
        let header = UdpcomHeader::decode(&packet).unwrap();
        assert!(header.is_reflected());
        assert_eq!(
            (
                header.departure_ns,
                header.reflector_receive_ns,
                header.reflector_send_ns
            ),
            (110, 150, 160)
        );

        let mut not_ours = *b"hello, this is not a udpcom packet at all, is it? no....";
        let before = not_ours;
        assert_eq!(UdpcomHeader::reflect(&mut not_ours, 1), Err(HeaderError::BadMagic));
        assert_eq!(not_ours, before, "a packet that is not udpcom's is left as it was");
    }

    #[test]
    fn udpcom_decode_refuses_what_is_not_a_v1_header() {
        for len in 0..56 {
            assert_eq!(
                UdpcomHeader::decode(&UDPCOM_GOLDEN[..len]),
                Err(HeaderError::TooShort { needed: 56, got: len })
            );
        }
        let mut packet = UDPCOM_GOLDEN;
        packet[0] = b'X';
        assert_eq!(UdpcomHeader::decode(&packet), Err(HeaderError::BadMagic));
        let mut packet = UDPCOM_GOLDEN;
        packet[4] = 2;
        assert_eq!(UdpcomHeader::decode(&packet), Err(HeaderError::UnsupportedVersion(2)));
        let mut packet = UDPCOM_GOLDEN;
        packet[7] = 55;
        assert_eq!(UdpcomHeader::decode(&packet), Err(HeaderError::BadHeaderLength(55)));
        packet[7] = 57; // longer than the 56-byte datagram
        assert_eq!(UdpcomHeader::decode(&packet), Err(HeaderError::BadHeaderLength(57)));
        // A longer header is accepted when the datagram holds it.
        let mut longer = [0u8; 64];
        longer[..56].copy_from_slice(&packet);
        assert_eq!(UdpcomHeader::decode(&longer), Ok(golden_header()));
    }

    #[test]
    fn udpcom_writes_refuse_short_buffers() {
        let mut short = [0u8; 55];
        let too_short = Err(HeaderError::TooShort { needed: 56, got: 55 });
        assert_eq!(UdpcomHeader::default().encode(&mut short), too_short);
        assert_eq!(UdpcomHeader::write_sequence_and_target(&mut short, 1, 1), too_short);
        assert_eq!(UdpcomHeader::write_departure(&mut short, 1), too_short);
        assert_eq!(UdpcomHeader::set_last(&mut short, true), too_short);
        assert_eq!(UdpcomHeader::write_reflector_send(&mut short, 1), too_short);
        assert_eq!(UdpcomHeader::reflect(&mut short, 1), too_short);
        assert_eq!(short, [0u8; 55], "nothing written");
    }

    /// Written by hand from the iperf 2 table: sequence 0x1_0000_0002 (64-bit), departure
    /// 1_700_000_000.123456789 s, which goes out as tv_sec 1700000000, tv_usec 123456.
    const IPERF2_GOLDEN: [u8; 20] = [
        0x00, 0x00, 0x00, 0x02, // id: low 32 bits
        0x65, 0x53, 0xF1, 0x00, // tv_sec 1_700_000_000
        0x00, 0x01, 0xE2, 0x40, // tv_usec 123_456
        0x00, 0x00, 0x00, 0x01, // id2: high 32 bits
        0x08, 0x00, 0x00, 0x00, // flags: HEADER_SEQNO64B
    ];

    #[test]
    fn iperf2_header_encodes_to_the_documented_bytes() {
        let mut packet = [0xAAu8; 32];
        Iperf2Header {
            sequence: 0x1_0000_0002,
            last: false,
            departure_ns: 1_700_000_000_123_456_789,
        }
        .encode(&mut packet)
        .unwrap();
        assert_eq!(packet[..20], IPERF2_GOLDEN);
        assert_eq!(packet[20..], [0xAA; 12]);
        assert_eq!(
            Iperf2Header::decode(&IPERF2_GOLDEN),
            Ok(Iperf2Header {
                sequence: 0x1_0000_0002,
                last: false,
                departure_ns: 1_700_000_000_123_456_000,
            })
        );
    }

    #[test]
    fn iperf2_final_datagram_carries_the_negated_sequence() {
        let mut packet = [0u8; 20];
        Iperf2Header {
            sequence: 131,
            last: true,
            departure_ns: 0,
        }
        .encode(&mut packet)
        .unwrap();
        // -131 as a 64-bit two's complement number: id2 = 0xFFFFFFFF, id = 0xFFFFFF7D, as
        // the iperf 2.1.8 client was seen to send (`-131` after 130 datagrams).
        assert_eq!(packet[..4], [0xFF, 0xFF, 0xFF, 0x7D]);
        assert_eq!(packet[12..16], [0xFF, 0xFF, 0xFF, 0xFF]);
        let header = Iperf2Header::decode(&packet).unwrap();
        assert_eq!((header.sequence, header.last), (131, true));
    }

    #[test]
    fn iperf2_reads_32_bit_sequences_without_the_64_bit_flag() {
        // u32 seq, tv_sec, tv_usec, 0: the plain form, read as signed 32 bits.
        let mut packet = [0u8; 16];
        packet[..4].copy_from_slice(&(-7i32).to_be_bytes());
        packet[12..16].copy_from_slice(&5u32.to_be_bytes()); // id2 ignored without the flag
        let header = Iperf2Header::decode(&packet).unwrap();
        assert_eq!((header.sequence, header.last, header.departure_ns), (7, true, 0));
        // With a flags word lacking HEADER_SEQNO64B, still 32 bits.
        let mut packet = [0u8; 20];
        packet[..4].copy_from_slice(&9u32.to_be_bytes());
        packet[12..16].copy_from_slice(&1u32.to_be_bytes());
        packet[16..20].copy_from_slice(&0x4000_0000u32.to_be_bytes());
        assert_eq!(Iperf2Header::decode(&packet).unwrap().sequence, 9);
        // A real iperf 2.1.8 client's flags (0x48010098) include HEADER_SEQNO64B.
        packet[16..20].copy_from_slice(&0x4801_0098u32.to_be_bytes());
        assert_eq!(Iperf2Header::decode(&packet).unwrap().sequence, 0x1_0000_0009);
    }

    #[test]
    fn iperf2_round_trips_and_refuses_bad_input() {
        for sequence in [1, 2, 0xFFFF_FFFF, 0x1_0000_0000, i64::MAX as u64] {
            for last in [false, true] {
                let header = Iperf2Header {
                    sequence,
                    last,
                    departure_ns: 5_000_000_000_999_999_000, // tv_sec wraps past 2^32
                };
                let mut packet = [0u8; 1470];
                header.encode(&mut packet).unwrap();
                let decoded = Iperf2Header::decode(&packet).unwrap();
                assert_eq!((decoded.sequence, decoded.last), (sequence, last));
                assert_eq!(
                    decoded.departure_ns,
                    (5_000_000_000u64 % (1 << 32)) * 1_000_000_000 + 999_999_000
                );
            }
        }
        let mut packet = [0u8; 20];
        for bad in [0, i64::MAX as u64 + 1, u64::MAX] {
            assert_eq!(
                Iperf2Header::write_sequence(&mut packet, bad, false),
                Err(HeaderError::SequenceOutOfRange(bad))
            );
        }
        let mut short = [0u8; 19];
        let too_short = Err(HeaderError::TooShort { needed: 20, got: 19 });
        assert_eq!(Iperf2Header::default().encode(&mut short), too_short);
        assert_eq!(Iperf2Header::write_departure(&mut short, 1), too_short);
        for len in 0..16 {
            assert_eq!(
                Iperf2Header::decode(&IPERF2_GOLDEN[..len]),
                Err(HeaderError::TooShort { needed: 16, got: len })
            );
        }
        let mut packet = IPERF2_GOLDEN;
        packet[8..12].copy_from_slice(&1_000_000u32.to_be_bytes());
        assert_eq!(
            Iperf2Header::decode(&packet),
            Err(HeaderError::BadMicroseconds(1_000_000))
        );
        // i64::MIN on the wire: its absolute value does not fit i64, but decodes without panic.
        let mut packet = [0u8; 20];
        packet[..4].copy_from_slice(&[0, 0, 0, 0]);
        packet[12..16].copy_from_slice(&[0x80, 0, 0, 0]);
        packet[16..20].copy_from_slice(&IPERF2_SEQNO64B.to_be_bytes());
        let header = Iperf2Header::decode(&packet).unwrap();
        assert_eq!((header.sequence, header.last), (1 << 63, true));
    }

    #[test]
    fn header_errors_become_engine_errors_with_codes() {
        let err: Error = HeaderError::TooShort { needed: 56, got: 10 }.into();
        assert_eq!(err.code, crate::error::code::OUT_OF_RANGE);
        assert!(err.message.contains(">= 56 bytes"), "{}", err.message);
        let err: Error = HeaderError::BadMagic.into();
        assert_eq!(err.code, crate::error::code::INVALID_ARG_VALUE);
        let err: Error = HeaderError::SequenceOutOfRange(0).into();
        assert_eq!(err.code, crate::error::code::OUT_OF_RANGE);
    }
}
