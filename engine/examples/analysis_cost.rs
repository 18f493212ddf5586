//! What the receive analysis costs per datagram: feeds prebuilt datagrams to an
//! [`Analyzer`] and times the loop.
//!
//! ```text
//! analysis_cost [--datagrams 1000000] [--rounds 5] [--scenario 1-stream|64-streams|iperf2]
//! ```
//!
//! Scenarios: one udpcom stream (0.1% loss, 0.1% reordered by a few places); 64 udpcom streams
//! interleaved datagram by datagram (every datagram misses the "same stream as before" fast
//! path); one iperf 2 stream. The datagrams (64 bytes each) are built before the clock
//! starts; each round analyses them all with a fresh analyzer. Prints one JSON line per
//! scenario: ns per datagram, the best and the median round. Run it with `--release`; on a
//! loaded machine the best round is the one to quote.

mod common;

use std::net::SocketAddr;
use std::time::Instant;

use udpcom_engine::analysis::{AnalyzeMode, Analyzer};
use udpcom_engine::header::{Iperf2Header, UdpcomHeader};

const SIZE: usize = 64;
const PERIOD_NS: u64 = 1_000;
const REALTIME_OFFSET_NS: u64 = 1_700_000_000_000_000_000;

struct Datagram {
    arrival_mono_ns: u64,
    source: SocketAddr,
}

fn build(scenario: &str, count: usize) -> (AnalyzeMode, Vec<Datagram>, Vec<u8>) {
    let mode = if scenario == "iperf2" {
        AnalyzeMode::Iperf2
    } else {
        AnalyzeMode::Udpcom
    };
    let streams = if scenario == "64-streams" { 64 } else { 1 };
    let mut datagrams = Vec::with_capacity(count);
    let mut bytes = vec![0u8; count * SIZE];
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // Per stream: sequence numbers with 0.1% lost and 0.1% swapped with the one 3 places on.
    let per_stream = count.div_ceil(streams);
    let orders: Vec<Vec<u64>> = (0..streams)
        .map(|_| {
            let mut order: Vec<u64> = (0..per_stream as u64 * 2).filter(|_| next() % 1000 != 0).collect();
            order.truncate(per_stream);
            for i in 0..order.len().saturating_sub(3) {
                if next() % 1000 == 0 {
                    order.swap(i, i + 3);
                }
            }
            order
        })
        .collect();
    for (i, packet) in bytes.chunks_exact_mut(SIZE).enumerate() {
        let stream = i % streams;
        let sequence = orders[stream][i / streams];
        let departure_ns = REALTIME_OFFSET_NS + i as u64 * PERIOD_NS;
        let arrival_mono_ns = i as u64 * PERIOD_NS + 20_000 + next() % 5_000;
        match mode {
            AnalyzeMode::Udpcom => UdpcomHeader {
                stream_id: stream as u32,
                sequence,
                target_ns: departure_ns - 100,
                departure_ns,
                ..Default::default()
            }
            .encode(packet),
            AnalyzeMode::Iperf2 => Iperf2Header {
                sequence: sequence + 1,
                last: false,
                departure_ns,
            }
            .encode(packet),
        }
        .expect("64 bytes hold either header");
        datagrams.push(Datagram {
            arrival_mono_ns,
            source: SocketAddr::from(([10, 0, 0, 1], 40_000 + (stream as u16 % 8))),
        });
    }
    (mode, datagrams, bytes)
}

fn main() {
    let args = common::args(1);
    let get = |name: &str, default: usize| {
        args.get(name)
            .map_or(default, |v| v.parse().expect("usage: --datagrams N --rounds N"))
    };
    let (count, rounds) = (get("datagrams", 1_000_000), get("rounds", 5).max(1));
    let only = args.get("scenario");
    for scenario in ["1-stream", "64-streams", "iperf2"] {
        if only.is_some_and(|name| name != scenario) {
            continue;
        }
        let (mode, datagrams, bytes) = build(scenario, count);
        let mut per_datagram_ns = Vec::with_capacity(rounds);
        let mut summary = String::new();
        for _ in 0..rounds {
            let mut analyzer = Analyzer::new(mode);
            let start = Instant::now();
            for (datagram, payload) in datagrams.iter().zip(bytes.chunks_exact(SIZE)) {
                let mono = datagram.arrival_mono_ns;
                analyzer.analyze(mono, mono + REALTIME_OFFSET_NS, datagram.source, payload);
            }
            per_datagram_ns.push(start.elapsed().as_nanos() as f64 / count as f64);
            let start = Instant::now();
            let streams = analyzer.streams();
            let snapshot_us = start.elapsed().as_nanos() as f64 / 1e3;
            let (received, lost, reordered): (u64, u64, u64) = streams
                .iter()
                .fold((0, 0, 0), |(r, l, o), s| (r + s.received, l + s.lost, o + s.reordered));
            summary = format!(
                "\"streams\":{},\"received\":{received},\"lost\":{lost},\"reordered\":{reordered},\"snapshotUs\":{snapshot_us:.0}",
                streams.len()
            );
        }
        per_datagram_ns.sort_by(f64::total_cmp);
        println!(
            "{{\"scenario\":\"{scenario}\",\"datagrams\":{count},\"rounds\":{rounds},\"bestNsPerDatagram\":{:.1},\"medianNsPerDatagram\":{:.1},{summary}}}",
            per_datagram_ns[0],
            per_datagram_ns[rounds / 2]
        );
    }
}
