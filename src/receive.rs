//! Received packets, copied out of the receive ring into memory the JavaScript layer owns.
//!
//! Building each packet object through Node-API costs microseconds (a Buffer allocation and a
//! property write per field); building it in JavaScript from flat arrays costs a fraction of
//! that. So `take` writes a batch into typed arrays the JavaScript layer allocated once and
//! reuses: the payloads back to back, two stamps per packet, eight 32-bit words per packet,
//! and with `packetInfo` six more words per packet in an array of their own (an instance
//! without it passes none, so its packets cost nothing more). The layout, which
//! `lib/packets.ts` reads:
//!
//! | array | per packet | meaning |
//! |---|---|---|
//! | `bytes` | payload length bytes | the payloads, in order, back to back |
//! | `stamps` | 2 × u64 | arrival (CLOCK_MONOTONIC ns), hardware stamp (0: none) |
//! | `info` | 8 × u32 | length, source (0 user, 1 kernel, 2 hardware) \| family << 8 (0 none, 4, 6), port, IPv6 scope id, address words 0..3 (IPv4: word 0, host order; IPv6: network-order bytes as 4 big-endian words) |
//! | `destinations` (packetInfo) | 6 × u32 | family of the destination address (0 none, 4, 6), index of the interface it arrived on (0 none), address words 0..3 as in `info` |

use std::net::IpAddr;

use napi::bindgen_prelude::{BigUint64ArraySlice, Uint32ArraySlice, Uint8ArraySlice};
use udpcom_engine::{PeerAddr, StampSource, UdpEngine};

/// 32-bit words of `info` per packet.
pub const INFO_WORDS: usize = 8;
/// 32-bit words of `destinations` per packet.
pub const DESTINATION_WORDS: usize = 6;

/// Writes an address as family (0 none, 4, 6) and four address words (see the table).
fn write_address(family_word: &mut u32, words: &mut [u32], address: &PeerAddr) {
    let family = match (address.is_none(), address.is_ipv4()) {
        (true, _) => 0,
        (false, true) => 4,
        (false, false) => 6,
    };
    *family_word = family;
    if family == 6 {
        for (word, bytes) in words.iter_mut().zip(address.ipv6_octets().chunks_exact(4)) {
            *word = u32::from_be_bytes(bytes.try_into().expect("4 bytes"));
        }
    } else {
        words.copy_from_slice(&[address.ipv4_bits(), 0, 0, 0]);
    }
}

/// Moves up to `max` packets (as many as the arrays hold) from the receive ring into the
/// arrays; returns how many.
pub fn take(
    engine: &mut UdpEngine,
    mut bytes: Uint8ArraySlice,
    mut stamps: BigUint64ArraySlice,
    mut info: Uint32ArraySlice,
    mut destinations: Option<Uint32ArraySlice>,
    max: usize,
) -> usize {
    // SAFETY: the arrays are distinct, private to the JavaScript layer (which allocated them
    // and never hands them out), and no JavaScript runs while these slices live: nothing else
    // reads or writes their memory meanwhile.
    let (bytes, stamps, info) = unsafe { (bytes.as_mut(), stamps.as_mut(), info.as_mut()) };
    // SAFETY: as above.
    let mut destinations = destinations.as_mut().map(|d| unsafe { d.as_mut() });
    let mut max = max.min(stamps.len() / 2).min(info.len() / INFO_WORDS);
    if let Some(destinations) = &destinations {
        max = max.min(destinations.len() / DESTINATION_WORDS);
    }
    let (mut count, mut offset) = (0, 0);
    engine.receive(max, bytes.len(), |packet| {
        let length = packet.payload.len();
        bytes[offset..offset + length].copy_from_slice(packet.payload);
        offset += length;
        stamps[2 * count] = packet.meta.arrival_ns;
        stamps[2 * count + 1] = packet.meta.hardware_ns;
        let source = match packet.meta.source {
            StampSource::User => 0,
            StampSource::Kernel => 1,
            StampSource::Hardware => 2,
        };
        let words = &mut info[INFO_WORDS * count..INFO_WORDS * (count + 1)];
        let peer = packet.meta.peer;
        let (head, address) = words.split_at_mut(4);
        let mut family = 0;
        write_address(&mut family, address, &peer);
        head[0] = length as u32;
        head[1] = source | family << 8;
        head[2] = u32::from(peer.port());
        head[3] = peer.scope_id();
        if let Some(destinations) = destinations.as_deref_mut() {
            let words = &mut destinations[DESTINATION_WORDS * count..DESTINATION_WORDS * (count + 1)];
            let destination = match packet.meta.destination {
                None => PeerAddr::default(),
                Some(IpAddr::V4(v4)) => PeerAddr::from_socket_addr((v4, 0).into()),
                Some(IpAddr::V6(v6)) => PeerAddr::from_socket_addr((v6, 0).into()),
            };
            let (head, address) = words.split_at_mut(2);
            write_address(&mut head[0], address, &destination);
            head[1] = packet.meta.interface_index;
        }
        count += 1;
    })
}
