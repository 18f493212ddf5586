//! Received packets, copied out of the receive ring into memory the JavaScript layer owns.
//!
//! Building each packet object through Node-API costs microseconds (a Buffer allocation and a
//! property write per field); building it in JavaScript from flat arrays costs a fraction of
//! that. So `take` writes a batch into three typed arrays the JavaScript layer allocated once
//! and reuses: the payloads back to back, two stamps per packet, and eight 32-bit words per
//! packet. The layout, which `lib/packets.ts` reads:
//!
//! | array | per packet | meaning |
//! |---|---|---|
//! | `bytes` | payload length bytes | the payloads, in order, back to back |
//! | `stamps` | 2 × u64 | arrival (CLOCK_MONOTONIC ns), hardware stamp (0: none) |
//! | `info` | 8 × u32 | length, source (0 user, 1 kernel, 2 hardware) \| family << 8 (0 none, 4, 6), port, IPv6 scope id, address words 0..3 (IPv4: word 0, host order; IPv6: network-order bytes as 4 big-endian words) |

use napi::bindgen_prelude::{BigUint64ArraySlice, Uint32ArraySlice, Uint8ArraySlice};
use udpcom_engine::{StampSource, UdpEngine};

/// 32-bit words of `info` per packet.
pub const INFO_WORDS: usize = 8;

/// Moves up to `max` packets (as many as the arrays hold) from the receive ring into the
/// arrays; returns how many.
pub fn take(
    engine: &mut UdpEngine,
    mut bytes: Uint8ArraySlice,
    mut stamps: BigUint64ArraySlice,
    mut info: Uint32ArraySlice,
    max: usize,
) -> usize {
    // SAFETY: the three arrays are distinct, private to the JavaScript layer (which allocated
    // them and never hands them out), and no JavaScript runs while these slices live: nothing
    // else reads or writes their memory meanwhile.
    let (bytes, stamps, info) = unsafe { (bytes.as_mut(), stamps.as_mut(), info.as_mut()) };
    let max = max.min(stamps.len() / 2).min(info.len() / INFO_WORDS);
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
        let family = match (peer.is_none(), peer.is_ipv4()) {
            (true, _) => 0,
            (false, true) => 4,
            (false, false) => 6,
        };
        words[0] = length as u32;
        words[1] = source | family << 8;
        words[2] = u32::from(peer.port());
        words[3] = peer.scope_id();
        if family == 6 {
            for (word, bytes) in words[4..8].iter_mut().zip(peer.ipv6_octets().chunks_exact(4)) {
                *word = u32::from_be_bytes(bytes.try_into().expect("4 bytes"));
            }
        } else {
            words[4..8].copy_from_slice(&[peer.ipv4_bits(), 0, 0, 0]);
        }
        count += 1;
    })
}
