//! From one captured frame to the UDP datagram in it, or the reason there is none.
//!
//! Pure functions on byte slices; `etherparse` does the header work. The only bytes read here
//! by hand are the link-layer headers `etherparse` does not know: SLL2's protocol field and the
//! BSD loopback address family.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use etherparse::err::packet::SliceError;
use etherparse::err::Layer;
use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};

use super::{linktype, SkipReason};

/// The UDP datagram found in a frame; `payload` is a range of the frame's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UdpInFrame {
    pub(crate) source: SocketAddr,
    pub(crate) destination: SocketAddr,
    pub(crate) payload: Range<usize>,
}

/// Where a Linux cooked capture header keeps its fields (all big-endian).
struct CookedLayout {
    header_bytes: usize,
    /// The protocol: an EtherType, except for the ARPHRD types below and values under 0x600.
    protocol_at: usize,
    /// The ARPHRD_* type of the capturing interface.
    arphrd_at: usize,
}
/// Linux cooked capture v1 (SLL): packet type, ARPHRD, address length, address (8), protocol.
const SLL: CookedLayout = CookedLayout {
    header_bytes: 16,
    protocol_at: 14,
    arphrd_at: 2,
};
/// Linux cooked capture v2 (SLL2): protocol, reserved, ifindex, ARPHRD, packet type, address
/// length, address (8).
const SLL2: CookedLayout = CookedLayout {
    header_bytes: 20,
    protocol_at: 0,
    arphrd_at: 8,
};
/// ARPHRD types whose cooked protocol field is not an EtherType: netlink (the netlink
/// family), 802.11 radiotap and frame relay (unused).
const ARPHRD_NOT_ETHER_TYPE: [u16; 3] = [824, 803, 770];
/// Length of the BSD loopback header: the address family, 4 bytes.
const LOOPBACK_HEADER_BYTES: usize = 4;
/// Address families in a loopback header: AF_INET everywhere, AF_INET6 as Linux, NetBSD/OpenBSD,
/// FreeBSD and Darwin number it.
const AF_INET: u32 = 2;
const AF_INET6: [u32; 4] = [10, 24, 28, 30];

/// Decodes `frame` (captured bytes, of link type `link`). `cut_by_snaplen` says whether the
/// captured length is below the original length: a frame too short for its headers is then
/// [`SkipReason::Truncated`], otherwise [`SkipReason::BadHeader`].
pub(crate) fn udp_in_frame(link: u32, frame: &[u8], cut_by_snaplen: bool) -> Result<UdpInFrame, SkipReason> {
    let too_short = if cut_by_snaplen {
        SkipReason::Truncated
    } else {
        SkipReason::BadHeader
    };
    let sliced = match link {
        linktype::ETHERNET => SlicedPacket::from_ethernet(frame),
        linktype::LINUX_SLL => cooked(frame, &SLL, too_short)?,
        linktype::LINUX_SLL2 => cooked(frame, &SLL2, too_short)?,
        linktype::RAW | linktype::DLT_RAW => SlicedPacket::from_ip(frame),
        linktype::IPV4 | linktype::IPV6 => {
            let wanted_version = if link == linktype::IPV4 { 4 } else { 6 };
            match frame.first() {
                None => return Err(too_short),
                Some(first) if first >> 4 != wanted_version => return Err(SkipReason::BadHeader),
                Some(_) => SlicedPacket::from_ip(frame),
            }
        }
        linktype::NULL | linktype::LOOP => {
            let Some(family) = frame.get(..LOOPBACK_HEADER_BYTES) else {
                return Err(too_short);
            };
            // NULL stores the family in the capturing host's byte order, LOOP in network order:
            // accept either reading.
            let family = [family[0], family[1], family[2], family[3]];
            let is_ip = |af: u32| af == AF_INET || AF_INET6.contains(&af);
            if !is_ip(u32::from_le_bytes(family)) && !is_ip(u32::from_be_bytes(family)) {
                return Err(SkipReason::NotIp);
            }
            SlicedPacket::from_ip(&frame[LOOPBACK_HEADER_BYTES..])
        }
        _ => return Err(SkipReason::UnsupportedLinkType),
    };
    let sliced = sliced.map_err(|error| skip_reason_of(&error, too_short))?;

    let (source_ip, destination_ip) = match &sliced.net {
        Some(NetSlice::Ipv4(ipv4)) => (
            IpAddr::V4(ipv4.header().source_addr()),
            IpAddr::V4(ipv4.header().destination_addr()),
        ),
        Some(NetSlice::Ipv6(ipv6)) => (
            IpAddr::V6(ipv6.header().source_addr()),
            IpAddr::V6(ipv6.header().destination_addr()),
        ),
        Some(NetSlice::Arp(_)) | None => return Err(SkipReason::NotIp),
    };
    if sliced.is_ip_payload_fragmented() {
        return Err(SkipReason::IpFragment);
    }
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        return Err(SkipReason::NotUdp);
    };
    let payload = udp.payload();
    // `payload` is a subslice of `frame`; its position is what the reader needs.
    let start = payload.as_ptr() as usize - frame.as_ptr() as usize;
    Ok(UdpInFrame {
        source: SocketAddr::new(source_ip, udp.source_port()),
        destination: SocketAddr::new(destination_ip, udp.destination_port()),
        payload: start..start + payload.len(),
    })
}

/// A Linux cooked capture frame, sliced from its protocol field on.
///
/// etherparse's own SLL slicer knows only the Ethernet ARPHRD type and rejects loopback
/// (772), tun (65534) and the rest, which `tcpdump -i any` records; as in Wireshark and the
/// kernel's `packet(7)`, the protocol field is an EtherType for all but a few ARPHRD types.
fn cooked<'a>(
    frame: &'a [u8],
    layout: &CookedLayout,
    too_short: SkipReason,
) -> Result<Result<SlicedPacket<'a>, SliceError>, SkipReason> {
    if frame.len() < layout.header_bytes {
        return Err(too_short);
    }
    let be_u16 = |at: usize| u16::from_be_bytes([frame[at], frame[at + 1]]);
    if ARPHRD_NOT_ETHER_TYPE.contains(&be_u16(layout.arphrd_at)) {
        return Err(SkipReason::NotIp);
    }
    let protocol = EtherType(be_u16(layout.protocol_at));
    Ok(SlicedPacket::from_ether_type(protocol, &frame[layout.header_bytes..]))
}

/// Why `etherparse` gave up on a frame.
fn skip_reason_of(error: &SliceError, too_short: SkipReason) -> SkipReason {
    match error {
        SliceError::Len(len) => match len.layer {
            Layer::Arp => SkipReason::NotIp,
            Layer::TcpHeader
            | Layer::Icmpv4
            | Layer::Icmpv4Timestamp
            | Layer::Icmpv4TimestampReply
            | Layer::Icmpv6
            | Layer::Igmp => SkipReason::NotUdp,
            _ => too_short,
        },
        SliceError::Tcp(_) => SkipReason::NotUdp,
        SliceError::LinuxSll(_)
        | SliceError::Macsec(_)
        | SliceError::Ip(_)
        | SliceError::Ipv4(_)
        | SliceError::Ipv6(_)
        | SliceError::Ipv4Exts(_)
        | SliceError::Ipv6Exts(_) => SkipReason::BadHeader,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::test_files::{self, Vlan};

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn decoded_payload(link: u32, frame: &[u8]) -> Result<(SocketAddr, SocketAddr, Vec<u8>), SkipReason> {
        udp_in_frame(link, frame, false).map(|udp| (udp.source, udp.destination, frame[udp.payload].to_vec()))
    }

    #[test]
    fn every_link_type_yields_the_datagram_for_v4_and_v6() {
        for (source, destination) in [
            (addr("10.1.2.3:4000"), addr("10.9.8.7:5005")),
            (addr("[2001:db8::1]:4000"), addr("[2001:db8::2]:5005")),
        ] {
            let ip = test_files::ip_udp(source, destination, b"hello");
            let mut frames = vec![
                (linktype::ETHERNET, test_files::ethernet(&[], &ip)),
                (linktype::LINUX_SLL, test_files::sll(&ip)),
                (linktype::LINUX_SLL2, test_files::sll2(&ip)),
                (linktype::RAW, ip.clone()),
                (linktype::DLT_RAW, ip.clone()),
                (linktype::NULL, test_files::loopback(&ip, false)),
                (linktype::LOOP, test_files::loopback(&ip, true)),
            ];
            frames.push(if source.is_ipv4() {
                (linktype::IPV4, ip.clone())
            } else {
                (linktype::IPV6, ip.clone())
            });
            for (link, frame) in frames {
                assert_eq!(
                    decoded_payload(link, &frame),
                    Ok((source, destination, b"hello".to_vec())),
                    "link type {link}"
                );
            }
        }
    }

    #[test]
    fn vlan_tags_are_walked_up_to_three_deep() {
        let ip = test_files::ip_udp(addr("10.0.0.1:1"), addr("10.0.0.2:2"), b"tagged");
        let stacks: [&[Vlan]; 4] = [
            &[Vlan::Customer(5)],
            &[Vlan::Service(100), Vlan::Customer(5)],
            &[Vlan::Customer(1), Vlan::Customer(2)],
            &[Vlan::Service(1), Vlan::Service(2), Vlan::Customer(3)],
        ];
        for stack in stacks {
            let frame = test_files::ethernet(stack, &ip);
            assert_eq!(
                decoded_payload(linktype::ETHERNET, &frame).unwrap().2,
                b"tagged",
                "{stack:?}"
            );
        }
        let four = test_files::ethernet(
            &[Vlan::Service(1), Vlan::Service(2), Vlan::Service(3), Vlan::Customer(4)],
            &ip,
        );
        assert_eq!(decoded_payload(linktype::ETHERNET, &four), Err(SkipReason::NotIp));
    }

    #[test]
    fn ethernet_padding_and_trailing_bytes_are_not_payload() {
        let ip = test_files::ip_udp(addr("10.0.0.1:1"), addr("10.0.0.2:2"), b"x");
        let mut frame = test_files::ethernet(&[], &ip);
        frame.resize(60, 0); // minimum Ethernet frame
        frame.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]); // a frame check sequence
        assert_eq!(decoded_payload(linktype::ETHERNET, &frame).unwrap().2, b"x");
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        let frame = test_files::ipv6_udp_behind_hop_by_hop(addr("[::1]:7"), addr("[::2]:9"), b"ext");
        assert_eq!(
            decoded_payload(linktype::RAW, &frame),
            Ok((addr("[::1]:7"), addr("[::2]:9"), b"ext".to_vec()))
        );
    }

    #[test]
    fn skip_reasons() {
        let v4 = test_files::ip_udp(addr("10.0.0.1:1"), addr("10.0.0.2:2"), &[7; 100]);
        let arp = test_files::ethernet_with_type(0x0806, &[0; 28]);
        assert_eq!(decoded_payload(linktype::ETHERNET, &arp), Err(SkipReason::NotIp));
        let lldp = test_files::ethernet_with_type(0x88cc, &[0; 40]);
        assert_eq!(decoded_payload(linktype::ETHERNET, &lldp), Err(SkipReason::NotIp));
        assert_eq!(
            decoded_payload(linktype::NULL, &[7, 0, 0, 0, 0x45]),
            Err(SkipReason::NotIp),
            "AF 7 is not IP"
        );
        assert_eq!(decoded_payload(147, &v4), Err(SkipReason::UnsupportedLinkType));

        let tcp = test_files::ipv4_tcp();
        assert_eq!(decoded_payload(linktype::RAW, &tcp), Err(SkipReason::NotUdp));
        let icmp = test_files::ipv4_with_protocol(1, &[8, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decoded_payload(linktype::RAW, &icmp), Err(SkipReason::NotUdp));

        let (first, later) = test_files::ipv4_udp_fragments();
        assert_eq!(decoded_payload(linktype::RAW, &first), Err(SkipReason::IpFragment));
        assert_eq!(decoded_payload(linktype::RAW, &later), Err(SkipReason::IpFragment));
        let v6_fragment = test_files::ipv6_udp_fragment();
        assert_eq!(
            decoded_payload(linktype::RAW, &v6_fragment),
            Err(SkipReason::IpFragment)
        );

        // Cut by the snaplen: truncated; the same bytes claimed whole: a length mismatch.
        assert_eq!(udp_in_frame(linktype::RAW, &v4[..60], true), Err(SkipReason::Truncated));
        assert_eq!(
            udp_in_frame(linktype::RAW, &v4[..60], false),
            Err(SkipReason::BadHeader)
        );
        assert_eq!(
            udp_in_frame(linktype::LINUX_SLL2, &[0x08, 0], true),
            Err(SkipReason::Truncated)
        );
        let mut netlink = test_files::sll(&v4);
        netlink[2..4].copy_from_slice(&824u16.to_be_bytes());
        assert_eq!(decoded_payload(linktype::LINUX_SLL, &netlink), Err(SkipReason::NotIp));
        let mut llc = test_files::sll(&v4);
        llc[14..16].copy_from_slice(&4u16.to_be_bytes()); // LINUX_SLL_P_802_2
        assert_eq!(decoded_payload(linktype::LINUX_SLL, &llc), Err(SkipReason::NotIp));

        let mut short_ihl = v4.clone();
        short_ihl[0] = 0x44; // header length 16 bytes
        assert_eq!(decoded_payload(linktype::RAW, &short_ihl), Err(SkipReason::BadHeader));
        let mut udp_len_below_header = v4.clone();
        udp_len_below_header[24..26].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(
            decoded_payload(linktype::RAW, &udp_len_below_header),
            Err(SkipReason::BadHeader)
        );
        let mut udp_len_beyond_ip = v4.clone();
        udp_len_beyond_ip[24..26].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(
            decoded_payload(linktype::RAW, &udp_len_beyond_ip),
            Err(SkipReason::BadHeader)
        );
        let v6 = test_files::ip_udp(addr("[::1]:1"), addr("[::2]:2"), b"six");
        assert_eq!(decoded_payload(linktype::IPV4, &v6), Err(SkipReason::BadHeader));
        assert_eq!(decoded_payload(linktype::IPV6, &v4), Err(SkipReason::BadHeader));
        assert_eq!(decoded_payload(linktype::RAW, &[]), Err(SkipReason::BadHeader));
        assert_eq!(
            decoded_payload(linktype::ETHERNET, &[1, 2, 3]),
            Err(SkipReason::BadHeader)
        );
    }
}
