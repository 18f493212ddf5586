//! Capture files: a streaming reader of the UDP datagrams in pcap and pcapng files, and a
//! writer of datagrams as pcap or pcapng that Wireshark, tshark and tcpdump read.
//!
//! This is the file-format layer under replay and capture; it knows nothing of sockets or
//! threads.
//!
//! ## Reading ([`PcapReader`])
//!
//! The reader takes any [`std::io::Read`] (a `File`, or `&[u8]` for a file held in memory) and
//! hands out one [`Datagram`] at a time: its capture time in ns since the Unix epoch, source and
//! destination addresses, UDP payload, where it sits in the file and its original length. It
//! keeps one block in memory at a time (a buffer of up to 256 KiB that grows beyond it only
//! as far as the largest block really present, at most [`MAX_BLOCK_BYTES`]), so a 10 GB capture reads in
//! bounded memory.
//!
//! - Formats: pcap with microsecond or nanosecond stamps (magic `a1b2c3d4` / `a1b23c4d`, either
//!   byte order; also the "modified" Kuznetzov pcap `a1b2cd34`), and pcapng: any number of
//!   sections (each with its own byte order), interfaces with their own link types, `if_tsresol`
//!   (powers of 10 and of 2) and `if_tsoffset`, Enhanced and Simple Packet Blocks. Other blocks
//!   (statistics, name resolution, decryption secrets, custom and unknown ones) are skipped and
//!   counted in [`PcapReader::blocks_ignored`].
//! - Link types: Ethernet (with up to three stacked 802.1Q/802.1ad VLAN tags), Linux cooked
//!   capture SLL (113) and SLL2 (276), raw IP (101, and 12 as some writers spell DLT_RAW), raw
//!   IPv4 (228) and IPv6 (229), BSD loopback NULL (0) and LOOP (108). IPv4 and IPv6, with the
//!   IPv6 extension headers that `etherparse` walks (hop-by-hop, routing, destination options,
//!   fragment, authentication).
//! - A frame that is not a whole, unfragmented UDP datagram is skipped and counted by reason in
//!   [`SkipCounts`]: nothing is dropped silently. UDP checksums are not checked: captures of
//!   locally sent packets carry the unfinished checksums of checksum offload.
//! - A corrupt or truncated file ends the reading with an [`Error`](crate::Error) of code
//!   `ERR_UDPCOM_PCAP` whose message names the byte offset and the reason; every datagram before
//!   it has been delivered. The reader never panics, never loops on a zero-length block, and
//!   never allocates from a length field beyond [`MAX_BLOCK_BYTES`].
//!
//! Block contents are parsed by `pcap-parser` and frames by `etherparse`. The reader does its
//! own framing (it reads a block's 8-byte type and length, then hands exactly that block to
//! `pcap-parser`) for three reasons found in `pcap-parser` 0.17's streaming reader: it cannot
//! tell "more input needed" from "a field overruns its block" (a hostile caplen makes it read
//! on to the end of the file), it has no cap on how far it grows, and its pcapng time helpers
//! read `if_tsoffset` as little-endian in big-endian sections and reject every power-of-2
//! `if_tsresol`. Timestamps are computed here, exactly, from the interface's raw options.
//!
//! ## Writing ([`PcapWriter`])
//!
//! Each datagram is written with IPv4 or IPv6 and UDP headers built by `etherparse` from its
//! real addresses and ports (checksums valid), optionally behind an Ethernet header with fixed,
//! locally administered MAC addresses ([`ETHERNET_SOURCE_MAC`], [`ETHERNET_DESTINATION_MAC`]).
//! See [`PcapWriter`] for what each format records.

mod decode;
mod reader;
mod writer;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod test_files;

use std::net::SocketAddr;

pub use reader::PcapReader;
pub use writer::{
    CaptureFormat, Direction, LinkType, PacketMeta, PcapWriter, StampSource, ETHERNET_DESTINATION_MAC,
    ETHERNET_SOURCE_MAC,
};

/// The largest block (pcapng) or record (pcap) the reader accepts, in bytes; a length field
/// beyond it is an `ERR_UDPCOM_PCAP` error, never an allocation.
pub const MAX_BLOCK_BYTES: usize = 256 * 1024 * 1024;

/// One UDP datagram read from a capture file.
///
/// `payload` borrows the reader's buffer: it is valid until the next call to
/// [`PcapReader::next_datagram`]; copy it to keep it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Datagram<'a> {
    /// Capture time, ns since the Unix epoch. Exact for pcap files and for pcapng interfaces
    /// whose `if_tsresol` is 10^-9 or coarser; finer or power-of-2 resolutions are rounded down
    /// to the ns. Includes the interface's `if_tsoffset`. A pcapng Simple Packet Block has no
    /// timestamp: its datagram gets the timestamp of the datagram before it (0 for the first),
    /// so that a replay sends it right after that one, and `has_timestamp` is false.
    pub timestamp_ns: u64,
    /// False for a datagram from a Simple Packet Block (see `timestamp_ns`).
    pub has_timestamp: bool,
    /// Source address and UDP port, as captured.
    pub source: SocketAddr,
    /// Destination address and UDP port, as captured.
    pub destination: SocketAddr,
    /// The UDP payload (as long as the UDP header's length field says).
    pub payload: &'a [u8],
    /// Byte offset in the file of the pcap record or pcapng block that holds the frame.
    pub frame_offset: u64,
    /// The frame's length on the wire, in bytes (the record's original length; a datagram is
    /// only delivered whole, so the captured length may be smaller only by link-layer padding).
    pub original_len: u32,
    /// The pcapng interface the frame was captured on (0 in pcap files).
    pub interface_id: u32,
}

/// Packets (frames) the reader skipped, by reason. A frame is counted once, under the first
/// reason found, walking from the link layer inwards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkipCounts {
    /// The interface's link type is not one the reader decodes (see the module doc).
    pub unsupported_link_type: u64,
    /// Not IPv4 or IPv6: ARP, other EtherTypes, encrypted MACsec, more than three VLAN tags,
    /// a loopback frame of another address family.
    pub not_ip: u64,
    /// IP, but not UDP (TCP, ICMP, ...).
    pub not_udp: u64,
    /// A fragment of a fragmented IP datagram (first or later); datagrams are not reassembled.
    pub ip_fragment: u64,
    /// Cut short by the capture's snapshot length: the headers say the datagram is longer than
    /// what was captured, and the captured length is below the original length.
    pub truncated: u64,
    /// A header is malformed or lengths disagree (an IPv4 header length below 20, a UDP length
    /// below 8, headers claiming more bytes than the whole frame, a raw-IPv4 link carrying
    /// IPv6, ...).
    pub bad_header: u64,
    /// The timestamp (with `if_tsoffset`) falls before 1970 or after the year 2554, which
    /// nanoseconds in a u64 cannot hold.
    pub timestamp_out_of_range: u64,
    /// A packet in a block kind the reader does not decode: the obsolete pcapng Packet Block
    /// (type 2).
    pub unsupported_block: u64,
}

impl SkipCounts {
    /// All skipped packets.
    pub fn total(&self) -> u64 {
        self.unsupported_link_type
            + self.not_ip
            + self.not_udp
            + self.ip_fragment
            + self.truncated
            + self.bad_header
            + self.timestamp_out_of_range
            + self.unsupported_block
    }
}

/// Why one frame was skipped (one [`SkipCounts`] field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SkipReason {
    UnsupportedLinkType,
    NotIp,
    NotUdp,
    IpFragment,
    Truncated,
    BadHeader,
    TimestampOutOfRange,
    UnsupportedBlock,
}

impl SkipCounts {
    pub(crate) fn count(&mut self, reason: SkipReason) {
        let counter = match reason {
            SkipReason::UnsupportedLinkType => &mut self.unsupported_link_type,
            SkipReason::NotIp => &mut self.not_ip,
            SkipReason::NotUdp => &mut self.not_udp,
            SkipReason::IpFragment => &mut self.ip_fragment,
            SkipReason::Truncated => &mut self.truncated,
            SkipReason::BadHeader => &mut self.bad_header,
            SkipReason::TimestampOutOfRange => &mut self.timestamp_out_of_range,
            SkipReason::UnsupportedBlock => &mut self.unsupported_block,
        };
        *counter += 1;
    }
}

/// Link types, as numbered in the pcap and pcapng registries (tcpdump.org/linktypes.html).
pub(crate) mod linktype {
    pub(crate) const NULL: u32 = 0;
    pub(crate) const ETHERNET: u32 = 1;
    /// DLT_RAW as most systems number it; libpcap writes it as 101, some writers do not.
    pub(crate) const DLT_RAW: u32 = 12;
    pub(crate) const RAW: u32 = 101;
    pub(crate) const LOOP: u32 = 108;
    pub(crate) const LINUX_SLL: u32 = 113;
    pub(crate) const IPV4: u32 = 228;
    pub(crate) const IPV6: u32 = 229;
    pub(crate) const LINUX_SLL2: u32 = 276;
}
