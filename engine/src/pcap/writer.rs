//! The writer: UDP datagrams as pcap or pcapng frames with synthesized headers.

use std::borrow::Cow;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};

use etherparse::{PacketBuilder, PacketBuilderStep};
use pcap_parser::pcapng::{
    EnhancedPacketBlock, InterfaceDescriptionBlock, OptionCode, PcapNGOption, SectionHeaderBlock, BOM_MAGIC, EPB_MAGIC,
    IDB_MAGIC, SHB_MAGIC,
};
use pcap_parser::{LegacyPcapBlock, Linktype, PcapHeader, ToVec};

/// Source MAC address of the Ethernet header the writer synthesizes: locally administered
/// (bit 1 of the first byte set), unicast, and the same for every frame.
pub const ETHERNET_SOURCE_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
/// Destination MAC address of the synthesized Ethernet header (see [`ETHERNET_SOURCE_MAC`]).
pub const ETHERNET_DESTINATION_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

/// TTL (IPv4) and hop limit (IPv6) of the synthesized IP headers.
const HOP_LIMIT: u8 = 64;
/// Largest UDP payloads the IP length fields can describe, in bytes (65535 − headers).
const MAX_UDP_PAYLOAD_V4: usize = 65_535 - 20 - 8;
const MAX_UDP_PAYLOAD_V6: usize = 65_535 - 8;
/// pcap magic of a file with nanosecond stamps, written little-endian.
const PCAP_NANOS_MAGIC: u32 = 0xa1b2_3c4d;
/// `if_tsresol` 9: timestamps count 10^-9 s, so ns are written as they are.
const TSRESOL_NANOSECONDS: u8 = 9;
/// pcapng option codes of the Enhanced Packet Block.
const EPB_FLAGS: OptionCode = OptionCode(2);
/// `epb_flags` bits 0-1: the direction.
const EPB_FLAGS_INBOUND: u32 = 0b01;
const EPB_FLAGS_OUTBOUND: u32 = 0b10;

/// The file format a [`PcapWriter`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// pcap with nanosecond timestamps (magic `a1b23c4d`, little-endian).
    Pcap,
    /// pcapng: one section, one interface with `if_tsresol` = 9 (ns), Enhanced Packet Blocks.
    Pcapng,
}

/// The link layer a [`PcapWriter`] puts each datagram in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// Raw IP (LINKTYPE_RAW, 101): the frame starts with the IPv4 or IPv6 header.
    RawIp,
    /// Ethernet (LINKTYPE_ETHERNET, 1), with [`ETHERNET_SOURCE_MAC`] and
    /// [`ETHERNET_DESTINATION_MAC`].
    Ethernet,
}

impl LinkType {
    fn number(self) -> u16 {
        match self {
            LinkType::RawIp => super::linktype::RAW as u16,
            LinkType::Ethernet => super::linktype::ETHERNET as u16,
        }
    }
}

/// Whether a datagram was received or sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received by the local socket (`epb_flags` inbound).
    Inbound,
    /// Sent by the local socket (`epb_flags` outbound).
    Outbound,
}

/// Where a datagram's timestamp came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StampSource {
    /// The kernel's software stamp (`SO_TIMESTAMPING` software RX or TX).
    Kernel,
    /// The NIC's hardware stamp.
    Hardware,
    /// Read by user space (the receiver thread's clock) when no kernel stamp was had.
    User,
    /// The time the sender handed the datagram to the kernel (sent packets without a TX stamp).
    Departure,
}

impl StampSource {
    /// The name used in the pcapng comment: `kernel`, `hardware`, `user`, `departure`.
    pub fn name(self) -> &'static str {
        match self {
            StampSource::Kernel => "kernel",
            StampSource::Hardware => "hardware",
            StampSource::User => "user",
            StampSource::Departure => "departure",
        }
    }
}

/// What a pcapng file records of a datagram besides its bytes and time (pcap records neither).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketMeta {
    /// Written as `epb_flags` (inbound or outbound).
    pub direction: Direction,
    /// Written as the packet comment `timestamp: kernel` (`hardware`, `user`, `departure`).
    pub stamp_source: StampSource,
}

impl PacketMeta {
    /// A received datagram stamped by `stamp_source`.
    pub fn received(stamp_source: StampSource) -> Self {
        PacketMeta {
            direction: Direction::Inbound,
            stamp_source,
        }
    }

    /// A sent datagram stamped by `stamp_source`.
    pub fn sent(stamp_source: StampSource) -> Self {
        PacketMeta {
            direction: Direction::Outbound,
            stamp_source,
        }
    }
}

/// Writes UDP datagrams as a pcap or pcapng capture.
///
/// Each datagram becomes one frame: an IPv4 header (checksum set) or an IPv6 header, and a
/// UDP header whose checksum covers the pseudo header, all built by `etherparse` from the real
/// addresses and ports, behind an Ethernet header if the link type asks for one. A frame longer
/// than `snaplen` is cut to it, its original length kept. Times are written in ns.
///
/// - **pcap**: the nanosecond-magic file header, then one record per datagram. The format has
///   no place for a direction or a comment: [`PacketMeta`] is not recorded.
/// - **pcapng**: a section header (`shb_userappl` = `udpcom`), one interface description
///   (the link type, `snaplen`, `if_tsresol` = 9), then one Enhanced Packet Block per datagram
///   on interface 0, with `epb_flags` giving the direction and a comment `opt_comment` saying
///   where the timestamp came from (`timestamp: kernel`, see [`StampSource::name`]); tshark
///   shows them as `frame.comment` and the packet's direction.
///
/// The file header is written and flushed by [`PcapWriter::new`], so even an empty capture is
/// a valid file. Each record or block is handed to the buffer whole, and the buffer writes to
/// the sink only whole blocks; so the file is complete after [`flush`](Self::flush) or
/// [`finish`](Self::finish), and after a crash it holds every block up to the last one fully
/// written (a reader reports the cut-off one as truncated).
///
/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4 peers)
/// is written as the IPv4 address when the other address is IPv4 or mapped too.
pub struct PcapWriter<W: Write> {
    out: BufWriter<W>,
    format: CaptureFormat,
    link: LinkType,
    snaplen: u32,
    /// The frame being built, reused from datagram to datagram.
    frame: Vec<u8>,
    written: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Starts a capture on `sink`: writes and flushes the file header. `snaplen` (bytes, at
    /// least 1) is the longest frame kept whole; tcpdump's default is 262144.
    pub fn new(sink: W, format: CaptureFormat, link: LinkType, snaplen: u32) -> io::Result<Self> {
        if snaplen == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "snaplen must be at least 1 byte",
            ));
        }
        let mut writer = PcapWriter {
            out: BufWriter::with_capacity(256 * 1024, sink),
            format,
            link,
            snaplen,
            frame: Vec::with_capacity(2048),
            written: 0,
        };
        match format {
            CaptureFormat::Pcap => {
                let header = PcapHeader {
                    magic_number: PCAP_NANOS_MAGIC,
                    version_major: 2,
                    version_minor: 4,
                    thiszone: 0,
                    sigfigs: 0,
                    snaplen,
                    network: Linktype(i32::from(link.number())),
                };
                writer.out.write_all(&encoded(header.to_vec_raw())?)?;
            }
            CaptureFormat::Pcapng => {
                let mut section = SectionHeaderBlock {
                    block_type: SHB_MAGIC,
                    block_len1: 0,
                    bom: BOM_MAGIC,
                    major_version: 1,
                    minor_version: 0,
                    // -1: the section's length is not known in advance.
                    section_len: -1,
                    options: vec![option(OptionCode::ShbUserAppl, Cow::Borrowed(b"udpcom"))],
                    block_len2: 0,
                };
                writer.out.write_all(&encoded(section.to_vec())?)?;
                let mut interface = InterfaceDescriptionBlock {
                    block_type: IDB_MAGIC,
                    block_len1: 0,
                    linktype: Linktype(i32::from(link.number())),
                    reserved: 0,
                    snaplen,
                    options: vec![option(OptionCode::IfTsresol, Cow::Owned(vec![TSRESOL_NANOSECONDS]))],
                    block_len2: 0,
                    if_tsresol: TSRESOL_NANOSECONDS,
                    if_tsoffset: 0,
                };
                writer.out.write_all(&encoded(interface.to_vec())?)?;
            }
        }
        writer.out.flush()?;
        Ok(writer)
    }

    /// Writes one datagram, stamped `timestamp_ns` (ns since the Unix epoch).
    ///
    /// Fails with `InvalidInput` (writing nothing) when the two addresses are of different
    /// families, the payload is too long for an IP datagram (65507 bytes over IPv4, 65527 over
    /// IPv6), or, in pcap, the time is past 2106 (the format's seconds are a u32).
    pub fn write_datagram(
        &mut self,
        timestamp_ns: u64,
        source: SocketAddr,
        destination: SocketAddr,
        payload: &[u8],
        meta: PacketMeta,
    ) -> io::Result<()> {
        self.build_frame(source, destination, payload)?;
        let original_len = self.frame.len() as u32;
        let captured = &self.frame[..self.frame.len().min(self.snaplen as usize)];
        let block = match self.format {
            CaptureFormat::Pcap => {
                let seconds = u32::try_from(timestamp_ns / 1_000_000_000)
                    .map_err(|_| invalid("a pcap file cannot hold a timestamp past 2106"))?;
                LegacyPcapBlock {
                    ts_sec: seconds,
                    // In a nanosecond-magic file this field holds ns.
                    ts_usec: (timestamp_ns % 1_000_000_000) as u32,
                    caplen: captured.len() as u32,
                    origlen: original_len,
                    data: captured,
                }
                .to_vec_raw()
            }
            CaptureFormat::Pcapng => {
                let flags = match meta.direction {
                    Direction::Inbound => EPB_FLAGS_INBOUND,
                    Direction::Outbound => EPB_FLAGS_OUTBOUND,
                };
                let comment = format!("timestamp: {}", meta.stamp_source.name());
                EnhancedPacketBlock {
                    block_type: EPB_MAGIC,
                    block_len1: 0,
                    if_id: 0,
                    ts_high: (timestamp_ns >> 32) as u32,
                    ts_low: timestamp_ns as u32,
                    caplen: captured.len() as u32,
                    origlen: original_len,
                    data: captured,
                    options: vec![
                        option(OptionCode::Comment, Cow::Owned(comment.into_bytes())),
                        option(EPB_FLAGS, Cow::Owned(flags.to_le_bytes().to_vec())),
                    ],
                    block_len2: 0,
                }
                .to_vec()
            }
        };
        self.out.write_all(&encoded(block)?)?;
        self.written += 1;
        Ok(())
    }

    /// Datagrams written so far.
    pub fn datagrams_written(&self) -> u64 {
        self.written
    }

    /// Writes everything buffered to the sink and flushes it.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the sink.
    pub fn finish(self) -> io::Result<W> {
        self.out.into_inner().map_err(io::IntoInnerError::into_error)
    }

    /// The IP and UDP headers (and Ethernet header) and `payload`, into `self.frame`.
    fn build_frame(&mut self, source: SocketAddr, destination: SocketAddr, payload: &[u8]) -> io::Result<()> {
        let builder: PacketBuilderStep<etherparse::IpHeaders> =
            match (
                unmapped(source.ip(), destination.ip()),
                unmapped(destination.ip(), source.ip()),
            ) {
                (IpAddr::V4(from), IpAddr::V4(to)) => {
                    if payload.len() > MAX_UDP_PAYLOAD_V4 {
                        return Err(invalid("a UDP payload over IPv4 is at most 65507 bytes"));
                    }
                    match self.link {
                        LinkType::RawIp => PacketBuilder::ipv4(from.octets(), to.octets(), HOP_LIMIT),
                        LinkType::Ethernet => PacketBuilder::ethernet2(ETHERNET_SOURCE_MAC, ETHERNET_DESTINATION_MAC)
                            .ipv4(from.octets(), to.octets(), HOP_LIMIT),
                    }
                }
                (IpAddr::V6(from), IpAddr::V6(to)) => {
                    if payload.len() > MAX_UDP_PAYLOAD_V6 {
                        return Err(invalid("a UDP payload over IPv6 is at most 65527 bytes"));
                    }
                    match self.link {
                        LinkType::RawIp => PacketBuilder::ipv6(from.octets(), to.octets(), HOP_LIMIT),
                        LinkType::Ethernet => PacketBuilder::ethernet2(ETHERNET_SOURCE_MAC, ETHERNET_DESTINATION_MAC)
                            .ipv6(from.octets(), to.octets(), HOP_LIMIT),
                    }
                }
                _ => {
                    return Err(invalid(&format!(
                        "source {source} and destination {destination} are not of one address family"
                    )))
                }
            };
        self.frame.clear();
        builder
            .udp(source.port(), destination.port())
            .write_to_vec(&mut self.frame, payload)
            .map_err(|error| invalid(&format!("etherparse could not build the frame: {error}")))
    }
}

/// `address`, as IPv4 if it is IPv4-mapped and `other` is IPv4 or IPv4-mapped.
fn unmapped(address: IpAddr, other: IpAddr) -> IpAddr {
    let other_is_v4 = match other {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    };
    match address {
        IpAddr::V6(v6) if other_is_v4 => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        _ => address,
    }
}

fn option(code: OptionCode, value: Cow<'static, [u8]>) -> PcapNGOption<'static> {
    PcapNGOption {
        code,
        len: value.len() as u16,
        value,
    }
}

/// The bytes of a serialized block; pcap-parser's (cookie-factory's) error becomes an io::Error.
fn encoded<E: std::fmt::Debug>(result: Result<Vec<u8>, E>) -> io::Result<Vec<u8>> {
    result.map_err(|error| io::Error::other(format!("pcap-parser could not encode a block: {error:?}")))
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.to_string())
}

#[cfg(test)]
mod tests {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use pcap_parser::parse_block_le;
    use pcap_parser::pcapng::Block;

    use super::*;
    use crate::pcap::PcapReader;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    const FORMATS: [CaptureFormat; 2] = [CaptureFormat::Pcap, CaptureFormat::Pcapng];
    const LINKS: [LinkType; 2] = [LinkType::RawIp, LinkType::Ethernet];
    const PAYLOAD_SIZES: [usize; 4] = [0, 1, 1472, 65507];

    fn pairs() -> [(SocketAddr, SocketAddr); 2] {
        [
            (addr("192.0.2.10:40000"), addr("198.51.100.7:5005")),
            (addr("[2001:db8::10]:40000"), addr("[2001:db8::7]:5005")),
        ]
    }

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|index| (index * 7 + len) as u8).collect()
    }

    #[test]
    fn round_trip_in_every_format_link_family_and_size() {
        for format in FORMATS {
            for link in LINKS {
                let mut writer = PcapWriter::new(Vec::new(), format, link, 262_144).unwrap();
                let mut expected = Vec::new();
                let mut timestamp_ns = 1_700_000_000_123_456_789u64;
                for (source, destination) in pairs() {
                    for size in PAYLOAD_SIZES {
                        let data = payload(size);
                        writer
                            .write_datagram(
                                timestamp_ns,
                                source,
                                destination,
                                &data,
                                PacketMeta::received(StampSource::Kernel),
                            )
                            .unwrap();
                        expected.push((timestamp_ns, source, destination, data));
                        timestamp_ns += 1_000_003;
                    }
                }
                assert_eq!(writer.datagrams_written(), 8);
                let file = writer.finish().unwrap();
                let mut reader = PcapReader::new(&file[..]).unwrap();
                let mut got = Vec::new();
                while let Some(datagram) = reader.next_datagram().unwrap() {
                    got.push((
                        datagram.timestamp_ns,
                        datagram.source,
                        datagram.destination,
                        datagram.payload.to_vec(),
                    ));
                }
                assert_eq!(got, expected, "{format:?} {link:?}");
                assert_eq!(reader.skipped().total(), 0);
            }
        }
    }

    /// A frame as written: captured bytes, original length, pcapng options (code, value).
    type WrittenFrame = (Vec<u8>, u32, Vec<(u16, Vec<u8>)>);

    /// The frames of a file the writer made (read with pcap-parser).
    fn frames_of(file: &[u8], format: CaptureFormat) -> Vec<WrittenFrame> {
        let mut frames = Vec::new();
        match format {
            CaptureFormat::Pcap => {
                let mut rest = &file[24..];
                while !rest.is_empty() {
                    let (next, record) = pcap_parser::parse_pcap_frame(rest).unwrap();
                    frames.push((record.data.to_vec(), record.origlen, Vec::new()));
                    rest = next;
                }
            }
            CaptureFormat::Pcapng => {
                let mut rest = file;
                while !rest.is_empty() {
                    let (next, block) = parse_block_le(rest).unwrap();
                    if let Block::EnhancedPacket(epb) = block {
                        let options = epb
                            .options
                            .iter()
                            .map(|o| (o.code.0, o.as_bytes().unwrap().to_vec()))
                            .collect();
                        let captured = &epb.data[..epb.caplen as usize];
                        frames.push((captured.to_vec(), epb.origlen, options));
                    }
                    rest = next;
                }
            }
        }
        frames
    }

    #[test]
    fn checksums_are_valid_over_v4_and_v6() {
        for link in LINKS {
            for (source, destination) in pairs() {
                let mut writer = PcapWriter::new(Vec::new(), CaptureFormat::Pcap, link, 65535).unwrap();
                writer
                    .write_datagram(
                        1,
                        source,
                        destination,
                        &payload(333),
                        PacketMeta::sent(StampSource::Departure),
                    )
                    .unwrap();
                let file = writer.finish().unwrap();
                let (frame, _, _) = frames_of(&file, CaptureFormat::Pcap).remove(0);
                let sliced = match link {
                    LinkType::RawIp => SlicedPacket::from_ip(&frame),
                    LinkType::Ethernet => SlicedPacket::from_ethernet(&frame),
                }
                .unwrap();
                let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
                    panic!("no UDP")
                };
                let udp_header = udp.to_header();
                let expected = match &sliced.net {
                    Some(NetSlice::Ipv4(ipv4)) => {
                        let header = ipv4.header().to_header();
                        assert_eq!(
                            header.header_checksum,
                            header.calc_header_checksum(),
                            "IPv4 header checksum"
                        );
                        udp_header.calc_checksum_ipv4(&header, udp.payload()).unwrap()
                    }
                    Some(NetSlice::Ipv6(ipv6)) => udp_header
                        .calc_checksum_ipv6(&ipv6.header().to_header(), udp.payload())
                        .unwrap(),
                    _ => panic!("no IP"),
                };
                assert_ne!(udp_header.checksum, 0);
                assert_eq!(udp_header.checksum, expected, "UDP checksum {link:?} {source}");
            }
        }
    }

    #[test]
    fn frames_are_cut_to_the_snaplen_with_their_original_length() {
        for format in FORMATS {
            let mut writer = PcapWriter::new(Vec::new(), format, LinkType::Ethernet, 100).unwrap();
            let (source, destination) = pairs()[0];
            writer
                .write_datagram(
                    5,
                    source,
                    destination,
                    &payload(1000),
                    PacketMeta::received(StampSource::Kernel),
                )
                .unwrap();
            let file = writer.finish().unwrap();
            let (frame, original_len, _) = frames_of(&file, format).remove(0);
            assert_eq!(frame.len(), 100);
            assert_eq!(original_len, 14 + 20 + 8 + 1000);
            let mut reader = PcapReader::new(&file[..]).unwrap();
            assert!(reader.next_datagram().unwrap().is_none());
            assert_eq!(reader.skipped().truncated, 1, "{format:?}");
        }
    }

    #[test]
    fn pcapng_packets_carry_direction_flags_and_the_stamp_source() {
        let mut writer = PcapWriter::new(Vec::new(), CaptureFormat::Pcapng, LinkType::RawIp, 65535).unwrap();
        let (source, destination) = pairs()[1];
        let metas = [
            PacketMeta::received(StampSource::Kernel),
            PacketMeta::received(StampSource::Hardware),
            PacketMeta::received(StampSource::User),
            PacketMeta::sent(StampSource::Departure),
        ];
        for meta in metas {
            writer.write_datagram(1, source, destination, b"m", meta).unwrap();
        }
        let file = writer.finish().unwrap();
        let options: Vec<_> = frames_of(&file, CaptureFormat::Pcapng)
            .into_iter()
            .map(|frame| frame.2)
            .collect();
        let expect = |comment: &str, flags: u32| {
            vec![
                (1, comment.as_bytes().to_vec()),
                (2, flags.to_le_bytes().to_vec()),
                (0, vec![]),
            ]
        };
        assert_eq!(
            options,
            [
                expect("timestamp: kernel", 1),
                expect("timestamp: hardware", 1),
                expect("timestamp: user", 1),
                expect("timestamp: departure", 2),
            ]
        );
    }

    #[test]
    fn an_empty_capture_is_a_valid_file_at_once() {
        for format in FORMATS {
            let mut sink = Vec::new();
            {
                let writer = PcapWriter::new(&mut sink, format, LinkType::RawIp, 65535).unwrap();
                // Not finished: the header was flushed by new().
                std::mem::forget(writer);
            }
            let mut reader = PcapReader::new(&sink[..]).unwrap();
            assert!(reader.next_datagram().unwrap().is_none(), "{format:?}");
        }
    }

    #[test]
    fn ipv4_mapped_addresses_are_written_as_ipv4() {
        let mut writer = PcapWriter::new(Vec::new(), CaptureFormat::Pcap, LinkType::RawIp, 65535).unwrap();
        writer
            .write_datagram(
                1,
                addr("[::ffff:10.0.0.1]:1"),
                addr("10.0.0.2:2"),
                b"m",
                PacketMeta::received(StampSource::Kernel),
            )
            .unwrap();
        let file = writer.finish().unwrap();
        let mut reader = PcapReader::new(&file[..]).unwrap();
        let datagram = reader.next_datagram().unwrap().unwrap();
        assert_eq!(datagram.source, addr("10.0.0.1:1"));
    }

    #[test]
    fn impossible_datagrams_are_refused_and_nothing_is_written() {
        let meta = PacketMeta::received(StampSource::Kernel);
        let mut writer = PcapWriter::new(Vec::new(), CaptureFormat::Pcap, LinkType::RawIp, 262_144).unwrap();
        let errors = [
            writer.write_datagram(1, addr("10.0.0.1:1"), addr("[::1]:2"), b"", meta),
            writer.write_datagram(1, addr("10.0.0.1:1"), addr("10.0.0.2:2"), &payload(65508), meta),
            writer.write_datagram(1, addr("[::1]:1"), addr("[::2]:2"), &payload(65528), meta),
            writer.write_datagram(
                5_000_000_000 * 1_000_000_000,
                addr("10.0.0.1:1"),
                addr("10.0.0.2:2"),
                b"",
                meta,
            ),
        ];
        for error in errors {
            assert_eq!(error.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
        assert!(writer
            .write_datagram(1, addr("[::1]:1"), addr("[::2]:2"), &payload(65527), meta)
            .is_ok());
        assert_eq!(writer.datagrams_written(), 1);
        let file = writer.finish().unwrap();
        assert_eq!(file.len(), 24 + 16 + 40 + 8 + 65527);
        assert_eq!(
            PcapWriter::new(Vec::new(), CaptureFormat::Pcap, LinkType::RawIp, 0)
                .err()
                .unwrap()
                .kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
