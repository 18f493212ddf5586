//! Hand-built frames and capture files for the tests: each byte placed here, not by the code
//! under test, so the reader is checked against the formats as specified.

use std::net::SocketAddr;

use etherparse::{IpNumber, Ipv4Header, PacketBuilder};

/// A VLAN tag: 802.1Q customer tag (TPID 0x8100) or 802.1ad service tag (TPID 0x88a8).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Vlan {
    Customer(u16),
    Service(u16),
}

/// An IPv4 or IPv6 packet holding one UDP datagram (checksums set by etherparse).
pub(crate) fn ip_udp(source: SocketAddr, destination: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let builder = match (source, destination) {
        (SocketAddr::V4(from), SocketAddr::V4(to)) => PacketBuilder::ipv4(from.ip().octets(), to.ip().octets(), 64),
        (SocketAddr::V6(from), SocketAddr::V6(to)) => PacketBuilder::ipv6(from.ip().octets(), to.ip().octets(), 64),
        _ => panic!("mixed address families"),
    };
    let mut packet = Vec::new();
    builder
        .udp(source.port(), destination.port())
        .write_to_vec(&mut packet, payload)
        .unwrap();
    packet
}

fn ether_type_of(ip: &[u8]) -> u16 {
    if ip.first().map(|byte| byte >> 4) == Some(6) {
        0x86dd
    } else {
        0x0800
    }
}

/// An Ethernet frame carrying `ip` behind the given VLAN tags, outermost first.
pub(crate) fn ethernet(vlans: &[Vlan], ip: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    for vlan in vlans {
        let (tpid, id) = match vlan {
            Vlan::Customer(id) => (0x8100u16, *id),
            Vlan::Service(id) => (0x88a8u16, *id),
        };
        frame.extend_from_slice(&tpid.to_be_bytes());
        frame.extend_from_slice(&id.to_be_bytes());
    }
    frame.extend_from_slice(&ether_type_of(ip).to_be_bytes());
    frame.extend_from_slice(ip);
    frame
}

pub(crate) fn ethernet_with_type(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    frame.extend_from_slice(&ether_type.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Linux cooked capture v1: packet type, ARPHRD type, address length, 8 address bytes,
/// protocol (the EtherType).
pub(crate) fn sll(ip: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&0u16.to_be_bytes()); // to us
    frame.extend_from_slice(&772u16.to_be_bytes()); // ARPHRD_LOOPBACK
    frame.extend_from_slice(&6u16.to_be_bytes());
    frame.extend_from_slice(&[0; 8]);
    frame.extend_from_slice(&ether_type_of(ip).to_be_bytes());
    frame.extend_from_slice(ip);
    frame
}

/// Linux cooked capture v2: protocol, reserved, interface index, ARPHRD type, packet type,
/// address length, 8 address bytes.
pub(crate) fn sll2(ip: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&ether_type_of(ip).to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(&1u32.to_be_bytes());
    frame.extend_from_slice(&772u16.to_be_bytes());
    frame.push(0);
    frame.push(6);
    frame.extend_from_slice(&[0; 8]);
    frame.extend_from_slice(ip);
    frame
}

/// BSD loopback: the address family as a u32, in host order (NULL, written little-endian
/// here) or network order (LOOP). IPv6 uses Darwin's AF_INET6 (30) for LOOP, Linux's (10)
/// for NULL.
pub(crate) fn loopback(ip: &[u8], network_order: bool) -> Vec<u8> {
    let v6 = ether_type_of(ip) == 0x86dd;
    let mut frame = if network_order {
        (if v6 { 30u32 } else { 2 }).to_be_bytes().to_vec()
    } else {
        (if v6 { 10u32 } else { 2 }).to_le_bytes().to_vec()
    };
    frame.extend_from_slice(ip);
    frame
}

/// Inserts an IPv6 extension header (`header`, whose first byte will be set to the old next
/// header) after the fixed header of `v6`, naming it `kind`.
fn with_ipv6_extension(mut v6: Vec<u8>, kind: u8, mut header: Vec<u8>) -> Vec<u8> {
    header[0] = v6[6];
    v6[6] = kind;
    let payload_len = u16::from_be_bytes([v6[4], v6[5]]) + header.len() as u16;
    v6[4..6].copy_from_slice(&payload_len.to_be_bytes());
    v6.splice(40..40, header);
    v6
}

/// IPv6 with a hop-by-hop options header (a PadN option) before the UDP header.
pub(crate) fn ipv6_udp_behind_hop_by_hop(source: SocketAddr, destination: SocketAddr, payload: &[u8]) -> Vec<u8> {
    with_ipv6_extension(ip_udp(source, destination, payload), 0, vec![0, 0, 1, 4, 0, 0, 0, 0])
}

/// IPv6 first fragment (More Fragments set) of a UDP datagram.
pub(crate) fn ipv6_udp_fragment() -> Vec<u8> {
    let v6 = ip_udp("[::1]:1".parse().unwrap(), "[::2]:2".parse().unwrap(), &[1; 16]);
    with_ipv6_extension(v6, 44, vec![0, 0, 0, 1, 0, 0, 0, 42])
}

/// IPv4 packets: the first fragment (More Fragments) and a later one (offset 2048 bytes).
pub(crate) fn ipv4_udp_fragments() -> (Vec<u8>, Vec<u8>) {
    let v4 = ip_udp("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap(), &[1; 16]);
    let mut first = v4.clone();
    first[6] = 0x20;
    let mut later = v4;
    later[6] = 0x01;
    (first, later)
}

pub(crate) fn ipv4_with_protocol(protocol: u8, payload: &[u8]) -> Vec<u8> {
    let header = Ipv4Header::new(
        payload.len() as u16,
        64,
        IpNumber(protocol),
        [10, 0, 0, 1],
        [10, 0, 0, 2],
    )
    .unwrap();
    let mut packet = Vec::new();
    header.write(&mut packet).unwrap();
    packet.extend_from_slice(payload);
    packet
}

pub(crate) fn ipv4_tcp() -> Vec<u8> {
    let mut packet = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(1, 2, 3, 4)
        .write_to_vec(&mut packet, b"tcp")
        .unwrap();
    packet
}

/// One pcap record: seconds, fraction (µs or ns), original length, captured bytes.
pub(crate) struct Record<'a> {
    pub(crate) seconds: u32,
    pub(crate) fraction: u32,
    pub(crate) original_len: u32,
    pub(crate) data: &'a [u8],
}

fn put_u32(out: &mut Vec<u8>, value: u32, big_endian: bool) {
    out.extend_from_slice(&if big_endian {
        value.to_be_bytes()
    } else {
        value.to_le_bytes()
    });
}

fn put_u16(out: &mut Vec<u8>, value: u16, big_endian: bool) {
    out.extend_from_slice(&if big_endian {
        value.to_be_bytes()
    } else {
        value.to_le_bytes()
    });
}

/// A pcap file.
pub(crate) fn pcap_file(
    big_endian: bool,
    nanoseconds: bool,
    link: u32,
    snaplen: u32,
    records: &[Record<'_>],
) -> Vec<u8> {
    let mut file = Vec::new();
    put_u32(
        &mut file,
        if nanoseconds { 0xa1b2_3c4d } else { 0xa1b2_c3d4 },
        big_endian,
    );
    put_u16(&mut file, 2, big_endian);
    put_u16(&mut file, 4, big_endian);
    put_u32(&mut file, 0, big_endian);
    put_u32(&mut file, 0, big_endian);
    put_u32(&mut file, snaplen, big_endian);
    put_u32(&mut file, link, big_endian);
    for record in records {
        put_u32(&mut file, record.seconds, big_endian);
        put_u32(&mut file, record.fraction, big_endian);
        put_u32(&mut file, record.data.len() as u32, big_endian);
        put_u32(&mut file, record.original_len, big_endian);
        file.extend_from_slice(record.data);
    }
    file
}

/// A pcapng file, block by block, in one byte order (which a new section may change).
pub(crate) struct Pcapng {
    pub(crate) bytes: Vec<u8>,
    big_endian: bool,
}

/// An interface description: link type, snaplen, `if_tsresol` and `if_tsoffset` if given.
#[derive(Clone, Copy)]
pub(crate) struct Idb {
    pub(crate) link: u16,
    pub(crate) snaplen: u32,
    pub(crate) tsresol: Option<u8>,
    pub(crate) tsoffset: Option<i64>,
}

impl Idb {
    pub(crate) fn new(link: u32) -> Self {
        Idb {
            link: link as u16,
            snaplen: 0,
            tsresol: None,
            tsoffset: None,
        }
    }
}

impl Pcapng {
    /// Starts a file with a section header.
    pub(crate) fn new(big_endian: bool) -> Self {
        let mut file = Pcapng {
            bytes: Vec::new(),
            big_endian,
        };
        file.section(big_endian);
        file
    }

    /// Offset of the next block.
    pub(crate) fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub(crate) fn section(&mut self, big_endian: bool) -> &mut Self {
        self.big_endian = big_endian;
        let mut body = Vec::new();
        put_u32(&mut body, 0x1a2b_3c4d, big_endian);
        put_u16(&mut body, 1, big_endian);
        put_u16(&mut body, 0, big_endian);
        body.extend_from_slice(&(-1i64).to_le_bytes());
        self.block(0x0a0d_0d0a, &body)
    }

    /// Appends a block of `block_type` whose body (without type and lengths) is `body`,
    /// padded to 4 bytes.
    pub(crate) fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Self {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        let big_endian = self.big_endian;
        put_u32(&mut self.bytes, block_type, big_endian);
        put_u32(&mut self.bytes, total, big_endian);
        self.bytes.extend_from_slice(body);
        self.bytes.resize(self.bytes.len() + padded - body.len(), 0);
        put_u32(&mut self.bytes, total, big_endian);
        self
    }

    fn option(&self, body: &mut Vec<u8>, code: u16, value: &[u8]) {
        put_u16(body, code, self.big_endian);
        put_u16(body, value.len() as u16, self.big_endian);
        body.extend_from_slice(value);
        body.resize(body.len().div_ceil(4) * 4, 0);
    }

    pub(crate) fn idb(&mut self, idb: Idb) -> &mut Self {
        let mut body = Vec::new();
        put_u16(&mut body, idb.link, self.big_endian);
        put_u16(&mut body, 0, self.big_endian);
        put_u32(&mut body, idb.snaplen, self.big_endian);
        if let Some(tsresol) = idb.tsresol {
            self.option(&mut body, 9, &[tsresol]);
        }
        if let Some(offset) = idb.tsoffset {
            let bytes = if self.big_endian {
                offset.to_be_bytes()
            } else {
                offset.to_le_bytes()
            };
            self.option(&mut body, 14, &bytes);
        }
        if idb.tsresol.is_some() || idb.tsoffset.is_some() {
            self.option(&mut body, 0, &[]);
        }
        self.block(1, &body)
    }

    /// An Enhanced Packet Block: `units` in the interface's resolution, the captured bytes and
    /// the original length.
    pub(crate) fn epb(&mut self, interface_id: u32, units: u64, data: &[u8], original_len: u32) -> &mut Self {
        let mut body = Vec::new();
        put_u32(&mut body, interface_id, self.big_endian);
        put_u32(&mut body, (units >> 32) as u32, self.big_endian);
        put_u32(&mut body, units as u32, self.big_endian);
        put_u32(&mut body, data.len() as u32, self.big_endian);
        put_u32(&mut body, original_len, self.big_endian);
        body.extend_from_slice(data);
        self.block(6, &body)
    }

    /// A Simple Packet Block.
    pub(crate) fn spb(&mut self, data: &[u8], original_len: u32) -> &mut Self {
        let mut body = Vec::new();
        put_u32(&mut body, original_len, self.big_endian);
        body.extend_from_slice(data);
        self.block(3, &body)
    }
}
