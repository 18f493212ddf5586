//! Writes a capture file of a perfectly paced UDP stream, for the replay benchmark: `count`
//! datagrams exactly `1e9 / rate` ns apart (Ethernet link type, nanosecond pcap), each payload
//! starting with its sequence number (u64, big-endian) so that a capture of the replay can be
//! matched datagram by datagram.
//!
//! ```text
//! pcap_synth --out FILE [--count 20000] [--rate 10000] [--size 64]
//!            [--from 10.204.0.1:40000] [--to 10.204.0.2:5555]
//! ```

mod common;

use std::fs::File;
use std::net::SocketAddr;

use udpcom_engine::pcap::{CaptureFormat, LinkType, PacketMeta, PcapWriter, StampSource};

/// The first datagram's time, ns since 1970 (any time works: replays are relative).
const FIRST_NS: u64 = 1_700_000_000_000_000_000;

fn main() {
    let args = common::args(1);
    let get = |name: &str, default: &str| args.get(name).cloned().unwrap_or_else(|| default.to_string());
    let out = args.get("out").expect("--out FILE");
    let count: u64 = get("count", "20000").parse().expect("--count");
    let rate: u64 = get("rate", "10000").parse().expect("--rate");
    let size: usize = get("size", "64").parse().expect("--size");
    let from: SocketAddr = get("from", "10.204.0.1:40000").parse().expect("--from");
    let to: SocketAddr = get("to", "10.204.0.2:5555").parse().expect("--to");
    assert!(rate > 0 && size >= 8, "--rate > 0, --size >= 8");
    let period_ns = 1_000_000_000 / rate;
    let file = File::create(out).expect("create the file");
    let mut writer = PcapWriter::new(file, CaptureFormat::Pcap, LinkType::Ethernet, 65_535).expect("header");
    let mut payload = vec![0u8; size];
    for sequence in 0..count {
        payload[..8].copy_from_slice(&sequence.to_be_bytes());
        let meta = PacketMeta::received(StampSource::Kernel);
        writer
            .write_datagram(FIRST_NS + sequence * period_ns, from, to, &payload, meta)
            .expect("write");
    }
    writer.finish().expect("flush");
    println!("{{\"count\":{count},\"periodNs\":{period_ns}}}");
}
