//! Tests of the stream analysis: hand-computed cases per metric, a seeded pattern checked
//! against a plain independent computation, keys, limits and hostile input.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use super::*;
use crate::header::{Iperf2Header, UdpcomHeader, FLAG_LAST, FLAG_REFLECTED};

/// CLOCK_REALTIME − CLOCK_MONOTONIC in these tests.
const CLOCK_OFFSET_NS: u64 = 1_700_000_000_000_000_000;

fn source(port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], port))
}

fn udpcom_packet(header: UdpcomHeader) -> Vec<u8> {
    let mut packet = vec![0u8; 64];
    header.encode(&mut packet).unwrap();
    packet
}

fn iperf2_packet(sequence: u64, last: bool, departure_ns: u64) -> Vec<u8> {
    let mut packet = vec![0u8; 100];
    Iperf2Header {
        sequence,
        last,
        departure_ns,
    }
    .encode(&mut packet)
    .unwrap();
    packet
}

/// Feeds udpcom datagrams of stream 1 from one source: departure and target on the realtime
/// clock, arrival on the monotonic one (realtime = monotonic + CLOCK_OFFSET_NS).
struct Feeder {
    analyzer: Analyzer,
}

impl Feeder {
    fn udpcom() -> Feeder {
        Feeder {
            analyzer: Analyzer::new(AnalyzeMode::Udpcom),
        }
    }

    fn iperf2() -> Feeder {
        Feeder {
            analyzer: Analyzer::new(AnalyzeMode::Iperf2),
        }
    }

    /// A datagram with sequence number `sequence` whose delay (arrival − departure) is
    /// `delay_ns`, arriving at monotonic time `arrival_ns`.
    fn delayed(&mut self, sequence: u64, arrival_ns: u64, delay_ns: i64) -> Outcome {
        let departure_ns = (CLOCK_OFFSET_NS + arrival_ns).checked_add_signed(-delay_ns).unwrap();
        self.header(
            UdpcomHeader {
                stream_id: 1,
                sequence,
                departure_ns,
                ..Default::default()
            },
            arrival_ns,
        )
    }

    /// A datagram that arrives at `sequence × 1000` with a delay of 100 ns.
    fn seq(&mut self, sequence: u64) -> Outcome {
        self.delayed(sequence, sequence * 1000, 100)
    }

    fn header(&mut self, header: UdpcomHeader, arrival_ns: u64) -> Outcome {
        let packet = udpcom_packet(header);
        self.analyzer
            .analyze(arrival_ns, arrival_ns + CLOCK_OFFSET_NS, source(5000), &packet)
    }

    fn iperf(&mut self, sequence: u64, last: bool) -> Outcome {
        let arrival_ns = sequence * 1000;
        let packet = iperf2_packet(sequence, last, CLOCK_OFFSET_NS + arrival_ns - 2000);
        self.analyzer
            .analyze(arrival_ns, arrival_ns + CLOCK_OFFSET_NS, source(5001), &packet)
    }

    fn only(&self) -> StreamSnapshot {
        let streams = self.analyzer.streams();
        assert_eq!(streams.len(), 1);
        streams.into_iter().next().unwrap()
    }

    fn state(&self) -> &StreamState {
        &self.analyzer.streams[0]
    }
}

#[test]
fn in_order_stream_has_nothing_to_report() {
    let mut feeder = Feeder::udpcom();
    for sequence in 0..10 {
        assert_eq!(feeder.seq(sequence), Outcome::InOrder);
    }
    let s = feeder.only();
    assert_eq!((s.received, s.expected, s.lost, s.loss_runs), (10, 10, 0, 0));
    assert_eq!((s.duplicates, s.reordered, s.max_reorder_extent), (0, 0, 0));
    assert_eq!((s.stream_id, s.source), (Some(1), source(5000)));
    assert_eq!(
        (s.ipdv_pairs, s.ipdv_p50_ns, s.ipdv_p99_ns, s.jitter_ns),
        (9, 0, 0, 0.0)
    );
    assert!(!s.ended && s.round_trip.is_none());
}

#[test]
fn late_arrivals_fill_in_losses_and_loss_runs_follow() {
    let mut feeder = Feeder::udpcom();
    for sequence in [0, 1, 4, 5, 8] {
        assert_eq!(feeder.seq(sequence), Outcome::InOrder);
    }
    let s = feeder.only();
    // Missing: {2, 3} and {6, 7}.
    assert_eq!((s.expected, s.lost, s.loss_runs, s.reordered), (9, 4, 2, 0));

    // Arrival positions so far: 0@1 1@2 4@3 5@4 8@5.
    let steps = [
        // (sequence, lost, loss runs, max extent): 6@6, first greater is 8@5: extent 1.
        (6, 3, 2, 1), // missing {2, 3}, {7}
        (3, 2, 2, 4), // 3@7, first greater is 4@3: extent 4; missing {2}, {7}
        (2, 1, 1, 5), // 2@8, first greater 4@3: extent 5; missing {7}
        (7, 0, 0, 5), // 7@9, first greater 8@5: extent 4
    ];
    for (sequence, lost, loss_runs, extent) in steps {
        assert_eq!(feeder.seq(sequence), Outcome::Reordered, "sequence {sequence}");
        let s = feeder.only();
        assert_eq!(
            (s.lost, s.loss_runs, s.max_reorder_extent),
            (lost, loss_runs, extent),
            "after {sequence}"
        );
    }
    let s = feeder.only();
    assert_eq!((s.received, s.reordered, s.duplicates), (9, 4, 0));
}

#[test]
fn a_late_arrival_inside_a_run_of_losses_splits_it() {
    let mut feeder = Feeder::udpcom();
    feeder.seq(0);
    feeder.seq(5);
    assert_eq!(feeder.only().loss_runs, 1); // {1, 2, 3, 4}
    feeder.seq(2);
    let s = feeder.only();
    assert_eq!((s.lost, s.loss_runs), (3, 2)); // {1}, {3, 4}
}

#[test]
fn losses_at_the_start_count_from_the_first_sequence_number() {
    let mut feeder = Feeder::udpcom();
    feeder.seq(3); // 0, 1, 2 lost
    let s = feeder.only();
    assert_eq!((s.expected, s.lost, s.loss_runs), (4, 3, 1));
    assert_eq!(feeder.seq(0), Outcome::Reordered); // first sequence number: no predecessor
    let s = feeder.only();
    assert_eq!((s.lost, s.loss_runs), (2, 1));

    let mut feeder = Feeder::iperf2(); // iperf 2 starts at 1
    feeder.iperf(1, false);
    feeder.iperf(3, false);
    let s = feeder.only();
    assert_eq!((s.stream_id, s.expected, s.lost, s.loss_runs), (None, 3, 1, 1));
}

#[test]
fn rfc4737_extent_example() {
    // RFC 4737 §4.2: 1, 2, 3, 5, 6, 7, 4: packet 4 arrives at position 7, and the earliest
    // arrival with a greater number is 5 at position 4: extent 3.
    let mut feeder = Feeder::iperf2();
    for sequence in [1, 2, 3, 5, 6, 7, 4] {
        feeder.iperf(sequence, false);
    }
    let s = feeder.only();
    assert_eq!((s.reordered, s.max_reorder_extent, s.lost, s.loss_runs), (1, 3, 0, 0));
}

#[test]
fn duplicates_are_counted_and_take_no_part_in_the_rest() {
    let mut feeder = Feeder::udpcom();
    assert_eq!(feeder.seq(0), Outcome::InOrder);
    assert_eq!(feeder.seq(1), Outcome::InOrder);
    assert_eq!(feeder.seq(1), Outcome::Duplicate);
    assert_eq!(feeder.seq(2), Outcome::InOrder);
    assert_eq!(feeder.seq(0), Outcome::Duplicate);
    let s = feeder.only();
    assert_eq!(
        (s.received, s.duplicates, s.reordered, s.lost, s.loss_runs),
        (5, 2, 0, 0, 0)
    );
    assert_eq!((s.timed, s.ipdv_pairs), (3, 2), "duplicates are not timed");
}

#[test]
fn jitter_and_ipdv_by_hand_in_order() {
    // Delays 100, 130, 110, 110 ns for sequence numbers 0..4, in order.
    let mut feeder = Feeder::udpcom();
    for (sequence, delay) in [(0, 100), (1, 130), (2, 110), (3, 110)] {
        feeder.delayed(sequence, 10_000 * sequence, delay);
    }
    let s = feeder.only();
    // J: |30|/16 = 1.875; + (20 − 1.875)/16 = 3.0078125; + (0 − 3.0078125)/16 = 2.81982421875.
    assert_eq!(s.jitter_ns, 2.819_824_218_75);
    // IPDV: 30, −20, 0 → sorted −20, 0, 30: p50 is rank 2 (0), p99 rank 3 (30).
    assert_eq!((s.ipdv_pairs, s.ipdv_p50_ns, s.ipdv_p99_ns), (3, 0, 30));
    // Delays sorted 100, 110, 110, 130: p50 rank 2, p99 rank 4; PDV p99 = 130 − 100.
    assert_eq!(
        (
            s.one_way_latency_p50_ns,
            s.one_way_latency_p99_ns,
            s.one_way_latency_p999_ns
        ),
        (110, 130, 130)
    );
    assert_eq!(
        (s.one_way_latency_min_ns, s.one_way_latency_max_ns, s.pdv_p99_ns),
        (100, 130, 30)
    );
}

#[test]
fn ipdv_pairs_by_sequence_number_jitter_by_arrival() {
    // Arrival order 0, 2, 1, 3 with delays 100, 110, 1500, 110 (1 is held up).
    let mut feeder = Feeder::udpcom();
    feeder.delayed(0, 1_100, 100);
    feeder.delayed(2, 3_110, 110);
    assert_eq!(feeder.delayed(1, 3_500, 1_500), Outcome::Reordered);
    feeder.delayed(3, 4_110, 110);
    let s = feeder.only();
    // Pairs (0,1): 1500 − 100 = 1400; (1,2): 110 − 1500 = −1390; (2,3): 0.
    assert_eq!((s.ipdv_pairs, s.ipdv_p50_ns, s.ipdv_p99_ns), (3, 0, 1400));
    assert_eq!((feeder.state().ipdv.min, feeder.state().ipdv.max), (-1390, 1400));
    // Jitter in arrival order, delays 100, 110, 1500, 110: D = 10, 1390, −1390.
    // J = 0.625; 0.625 + (1390 − 0.625)/16 = 87.4609375; + (1390 − 87.4609375)/16.
    assert_eq!(s.jitter_ns, 168.869_628_906_25);
    // 1 arrived at position 3; the earliest greater is 2 at position 2.
    assert_eq!((s.reordered, s.max_reorder_extent), (1, 1));
}

#[test]
fn signed_latency_percentiles() {
    // The sender's clock is ahead: delays −5, 3, −1 ns → sorted −5, −1, 3.
    let mut feeder = Feeder::udpcom();
    for (sequence, delay) in [(0, -5), (1, 3), (2, -1)] {
        feeder.delayed(sequence, 1_000 * (sequence + 1), delay);
    }
    let s = feeder.only();
    assert_eq!(
        (
            s.one_way_latency_p50_ns,
            s.one_way_latency_p99_ns,
            s.one_way_latency_p999_ns
        ),
        (-1, 3, 3)
    );
    assert_eq!((s.one_way_latency_min_ns, s.one_way_latency_max_ns), (-5, 3));
    assert_eq!(s.pdv_p99_ns, 8, "3 − (−5)");
}

#[test]
fn signed_quantiles_cross_zero_at_the_right_rank() {
    let mut histogram = SignedHistogram::default();
    for value in [-200, -100, -50, 0, 10, 20, 30, 40, 50, 60] {
        histogram.record(value);
    }
    let q = |numerator, denominator| histogram.quantile(Quantile { numerator, denominator });
    assert_eq!(q(1, 10), -200); // rank 1
    assert_eq!(q(2, 10), -100); // rank 2
    assert_eq!(q(3, 10), -50); // rank 3
    assert_eq!(q(4, 10), 0); // rank 4
    assert_eq!(q(1, 2), 10); // rank 5
    assert_eq!(q(99, 100), 60); // rank 10
    assert_eq!(q(0, 1), -200, "rank is at least 1");
    assert_eq!(SignedHistogram::default().quantile(P99), 0);

    // Beyond the histogram's exact range: within 1%, an upper bound, inside [min, max].
    let mut histogram = SignedHistogram::default();
    for value in [-1_234_567, 7_654_321, 7_654_321, 9_999_999] {
        histogram.record(value);
    }
    let p50 = histogram.quantile(P50); // rank 2: 7_654_321
    assert!((7_654_321..=7_654_321 + 76_543).contains(&p50), "{p50}");
    let p25 = histogram.quantile(Quantile {
        numerator: 1,
        denominator: 4,
    });
    assert!((-1_234_567..=-1_234_567 + 12_345).contains(&p25), "{p25}");
    assert_eq!(histogram.quantile(P999), 9_999_999, "clamped to the exact maximum");
}

#[test]
fn lateness_against_the_header_target() {
    let mut feeder = Feeder::udpcom();
    for (sequence, lateness) in [(0u64, 7i64), (1, -2), (2, 4)] {
        let arrival_ns = 1_000 * (sequence + 1);
        let target_ns = (CLOCK_OFFSET_NS + arrival_ns).checked_add_signed(-lateness).unwrap();
        feeder.header(
            UdpcomHeader {
                stream_id: 1,
                sequence,
                target_ns,
                departure_ns: target_ns,
                ..Default::default()
            },
            arrival_ns,
        );
    }
    let s = feeder.only();
    // Sorted −2, 4, 7.
    assert_eq!((s.lateness_p50_ns, s.lateness_p99_ns, s.lateness_max_ns), (4, 7, 7));

    let mut feeder = Feeder::iperf2();
    feeder.iperf(1, false);
    feeder.iperf(2, false);
    let s = feeder.only();
    assert_eq!((s.lateness_p50_ns, s.lateness_p99_ns, s.lateness_max_ns), (0, 0, 0));
    assert_eq!(s.one_way_latency_max_ns, 2000, "iperf 2 departures are timed");
}

#[test]
fn absent_times_take_no_part() {
    let mut feeder = Feeder::udpcom();
    for sequence in 0..3 {
        feeder.header(
            UdpcomHeader {
                stream_id: 1,
                sequence,
                ..Default::default()
            },
            sequence * 1000,
        );
    }
    let s = feeder.only();
    assert_eq!((s.received, s.timed, s.ipdv_pairs, s.jitter_ns), (3, 0, 0, 0.0));
    assert_eq!((s.one_way_latency_max_ns, s.lateness_max_ns), (0, 0));
}

#[test]
fn first_last_arrival_and_rate() {
    let mut feeder = Feeder::udpcom();
    feeder.delayed(0, 5_000_000, 100);
    let s = feeder.only();
    assert_eq!(
        (s.first_arrival_ns, s.last_arrival_ns, s.rate_pps),
        (5_000_000, 5_000_000, 0.0)
    );
    for sequence in 1..=10 {
        feeder.delayed(sequence, 5_000_000 + 100_000 * sequence, 100);
    }
    feeder.delayed(10, 6_000_000, 100); // a duplicate at the same time still counts as received
    let s = feeder.only();
    assert_eq!((s.first_arrival_ns, s.last_arrival_ns), (5_000_000, 6_000_000));
    assert_eq!(s.rate_pps, 11.0 / 0.001);
}

#[test]
fn reflected_datagrams_split_the_round_trip() {
    // Sender clock: departure 1000, arrival 1200. Reflector clock 500 ns ahead: received at
    // 1300 (= 800 on the sender's clock), sent at 1350.
    let mut feeder = Feeder::udpcom();
    for sequence in 0..3u64 {
        let shift = 10_000 * sequence;
        feeder.header(
            UdpcomHeader {
                flags: FLAG_REFLECTED,
                stream_id: 1,
                sequence,
                departure_ns: CLOCK_OFFSET_NS + 1_000 + shift,
                reflector_receive_ns: CLOCK_OFFSET_NS + 1_300 + shift,
                reflector_send_ns: CLOCK_OFFSET_NS + 1_350 + shift + sequence, // held 50, 51, 52
                ..Default::default()
            },
            1_200 + shift,
        );
    }
    let round_trip = feeder.only().round_trip.expect("reflected");
    // RTT = 200 − hold: 150, 149, 148.
    assert_eq!(
        round_trip,
        RoundTripSnapshot {
            count: 3,
            rtt_p50_ns: 149,
            rtt_p99_ns: 150,
            rtt_max_ns: 150,
            forward_p50_ns: 300,
            backward_p50_ns: -151,
        }
    );
    // Not reflected, or reflected without both times: no round trip.
    let mut feeder = Feeder::udpcom();
    feeder.header(
        UdpcomHeader {
            flags: FLAG_REFLECTED,
            stream_id: 1,
            departure_ns: CLOCK_OFFSET_NS + 1,
            reflector_receive_ns: CLOCK_OFFSET_NS + 2,
            ..Default::default()
        },
        10,
    );
    assert_eq!(feeder.only().round_trip, None);
}

#[test]
fn udpcom_streams_are_keyed_by_id_and_source_in_order_of_first_arrival() {
    let mut analyzer = Analyzer::new(AnalyzeMode::Udpcom);
    let packet = |stream_id, sequence| {
        udpcom_packet(UdpcomHeader {
            stream_id,
            sequence,
            ..Default::default()
        })
    };
    let (a, b) = (source(1000), SocketAddr::from(([0xfe80, 0, 0, 0, 0, 0, 0, 1], 1000)));
    for sequence in 0..4 {
        analyzer.analyze(sequence, sequence, b, &packet(7, sequence)); // first seen
        analyzer.analyze(sequence, sequence, a, &packet(7, sequence));
        analyzer.analyze(sequence, sequence, a, &packet(8, sequence));
        analyzer.analyze(sequence, sequence, a, &packet(8, sequence)); // duplicate, same stream
    }
    let streams = analyzer.streams();
    let keys: Vec<_> = streams.iter().map(|s| (s.stream_id, s.source)).collect();
    assert_eq!(keys, [(Some(7), b), (Some(7), a), (Some(8), a)]);
    let counts: Vec<_> = streams.iter().map(|s| (s.received, s.duplicates, s.lost)).collect();
    assert_eq!(counts, [(4, 0, 0), (4, 0, 0), (8, 4, 0)]);
}

#[test]
fn iperf2_streams_are_keyed_by_source() {
    let mut analyzer = Analyzer::new(AnalyzeMode::Iperf2);
    for sequence in 1..=3 {
        for port in [7000, 7001] {
            analyzer.analyze(0, 0, source(port), &iperf2_packet(sequence, false, 0));
        }
    }
    let streams = analyzer.streams();
    assert_eq!(streams.len(), 2);
    assert!(streams
        .iter()
        .all(|s| s.stream_id.is_none() && s.received == 3 && s.lost == 0));
    assert_eq!((streams[0].source, streams[1].source), (source(7000), source(7001)));
}

#[test]
fn iperf2_end_of_test_counts_once_then_repeats() {
    // An iperf 2 client: 1..=5, then −6, −7, −8 until the server answers.
    let mut feeder = Feeder::iperf2();
    for sequence in 1..=5 {
        assert_eq!(feeder.iperf(sequence, false), Outcome::InOrder);
    }
    assert_eq!(feeder.iperf(6, true), Outcome::InOrder);
    assert_eq!(feeder.iperf(7, true), Outcome::EndRepeat);
    assert_eq!(feeder.iperf(8, true), Outcome::EndRepeat);
    let s = feeder.only();
    assert_eq!(
        (s.received, s.expected, s.lost, s.end_repeats, s.ended),
        (6, 6, 0, 2, true)
    );
    assert_eq!(feeder.analyzer.totals().analysed, 8);

    // The end datagram after a lost tail: the tail counts as lost.
    let mut feeder = Feeder::iperf2();
    for sequence in [1, 2, 3] {
        feeder.iperf(sequence, false);
    }
    feeder.iperf(6, true);
    let s = feeder.only();
    assert_eq!((s.received, s.lost, s.loss_runs), (4, 2, 1));
}

#[test]
fn udpcom_last_flag_marks_the_end_and_is_a_datagram_like_any_other() {
    let mut feeder = Feeder::udpcom();
    feeder.seq(0);
    feeder.header(
        UdpcomHeader {
            flags: FLAG_LAST,
            stream_id: 1,
            sequence: 1,
            ..Default::default()
        },
        2000,
    );
    feeder.seq(1); // a copy of the last one is a duplicate, not an end repeat
    let s = feeder.only();
    assert_eq!((s.received, s.duplicates, s.end_repeats, s.ended), (3, 1, 0, true));
}

#[test]
fn streams_beyond_the_limit_are_counted_not_kept() {
    let mut analyzer = Analyzer::with_max_streams(AnalyzeMode::Iperf2, 2);
    let packet = iperf2_packet(1, false, 0);
    assert_eq!(analyzer.analyze(0, 0, source(1), &packet), Outcome::InOrder);
    assert_eq!(analyzer.analyze(0, 0, source(2), &packet), Outcome::InOrder);
    assert_eq!(analyzer.analyze(0, 0, source(3), &packet), Outcome::BeyondStreamLimit);
    assert_eq!(analyzer.analyze(0, 0, source(3), &packet), Outcome::BeyondStreamLimit);
    assert_eq!(analyzer.analyze(0, 0, source(1), &packet), Outcome::Duplicate);
    assert_eq!(
        analyzer.totals(),
        AnalyzerTotals {
            datagrams: 5,
            analysed: 3,
            unrecognized: 0,
            beyond_stream_limit: 2,
            streams: 2,
        }
    );
    assert_eq!(analyzer.max_streams(), 2);
    assert_eq!(Analyzer::new(AnalyzeMode::Udpcom).max_streams(), DEFAULT_MAX_STREAMS);
}

#[test]
fn datagrams_without_the_modes_header_are_counted() {
    let mut analyzer = Analyzer::new(AnalyzeMode::Udpcom);
    let good = udpcom_packet(UdpcomHeader::default());
    let mut wrong_magic = good.clone();
    wrong_magic[1] = b'x';
    let mut wrong_version = good.clone();
    wrong_version[4] = 9;
    let unrecognized: [&[u8]; 5] = [
        &[],
        &good[..55],
        &wrong_magic,
        &wrong_version,
        &iperf2_packet(5, false, 0),
    ];
    for payload in unrecognized {
        assert_eq!(analyzer.analyze(0, 0, source(1), payload), Outcome::Unrecognized);
    }
    assert_eq!(analyzer.analyze(0, 0, source(1), &good), Outcome::InOrder);
    assert_eq!(analyzer.totals().unrecognized, 5);
    assert_eq!(analyzer.totals().analysed, 1);

    let mut analyzer = Analyzer::new(AnalyzeMode::Iperf2);
    let mut bad_usec = iperf2_packet(5, false, 0);
    bad_usec[8..12].copy_from_slice(&1_000_000u32.to_be_bytes());
    let mut zero = iperf2_packet(5, false, 0);
    zero[..4].fill(0);
    for payload in [&bad_usec[..], &zero[..], &bad_usec[..15]] {
        assert_eq!(analyzer.analyze(0, 0, source(1), payload), Outcome::Unrecognized);
    }
    assert_eq!(analyzer.totals().unrecognized, 3);
    assert_eq!(analyzer.mode(), AnalyzeMode::Iperf2);
}

#[test]
fn datagrams_too_far_behind_are_counted_as_too_old() {
    let mut feeder = Feeder::udpcom();
    feeder.seq(0);
    feeder.seq(70_000);
    assert_eq!(feeder.seq(1), Outcome::TooOld);
    assert_eq!(feeder.seq(0), Outcome::TooOld, "cannot be told from a duplicate");
    let s = feeder.only();
    assert_eq!((s.received, s.reordered, s.too_old, s.duplicates), (4, 2, 2, 0));
    assert_eq!(
        (s.expected, s.lost, s.loss_runs),
        (70_001, 69_999, 1),
        "too-old fills nothing"
    );

    // The window holds 70000 − 65535 = 4465 ..= 70000; a late arrival needs its predecessor
    // in the window too.
    let window_low = 70_000 - (SEQUENCE_WINDOW - 1);
    assert_eq!(feeder.seq(window_low), Outcome::TooOld);
    assert_eq!(feeder.seq(window_low + 1), Outcome::Reordered);
    let s = feeder.only();
    assert_eq!(
        (s.lost, s.loss_runs),
        (69_998, 2),
        "the run split at {}",
        window_low + 1
    );
    assert_eq!(feeder.seq(window_low + 1), Outcome::Duplicate);
}

#[test]
fn reorder_extent_is_unknown_when_its_records_were_forgotten() {
    // Every other sequence number: each arrival starts a new run of records.
    let mut feeder = Feeder::udpcom();
    let last = 2 * (MAX_RECORD_RUNS as u64 + 10);
    for sequence in (0..=last).step_by(2) {
        feeder.seq(sequence);
    }
    assert_eq!(feeder.state().records.len(), MAX_RECORD_RUNS);
    assert_eq!(feeder.seq(1), Outcome::Reordered);
    let s = feeder.only();
    assert_eq!((s.reorder_extent_unknown, s.max_reorder_extent), (1, 0));
    // A late arrival whose record is still kept: the earliest greater (`last`) arrived two
    // positions before it (1 came in between).
    assert_eq!(feeder.seq(last - 1), Outcome::Reordered);
    let s = feeder.only();
    assert_eq!((s.reorder_extent_unknown, s.max_reorder_extent), (1, 2));
}

#[test]
fn ipdv_pairs_too_far_behind_are_counted() {
    let mut feeder = Feeder::udpcom();
    for sequence in (0..=2_000).filter(|&s| s != 5) {
        feeder.seq(sequence);
    }
    assert_eq!(feeder.seq(5), Outcome::Reordered);
    let s = feeder.only();
    assert_eq!((s.ipdv_pairs, s.ipdv_pairs_beyond_window), (1_998, 2));
    assert_eq!((s.lost, s.loss_runs), (0, 0), "the loss itself is still filled in");
}

#[test]
fn hostile_headers_do_not_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut analyzer = Analyzer::with_max_streams(AnalyzeMode::Udpcom, 8);
    let mut iperf = Analyzer::with_max_streams(AnalyzeMode::Iperf2, 8);
    let extremes = [0, 1, u64::MAX, u64::MAX - 1, i64::MAX as u64, 1 << 63];
    for round in 0..20_000u64 {
        let pick = |rng: &mut XorShift| {
            if rng.next() % 2 == 0 {
                extremes[(rng.next() % extremes.len() as u64) as usize]
            } else {
                rng.next()
            }
        };
        let header = UdpcomHeader {
            flags: rng.next() as u8,
            stream_id: (rng.next() % 12) as u32,
            sequence: pick(&mut rng),
            target_ns: pick(&mut rng),
            departure_ns: pick(&mut rng),
            reflector_receive_ns: pick(&mut rng),
            reflector_send_ns: pick(&mut rng),
        };
        let (mono, real) = (pick(&mut rng), pick(&mut rng));
        analyzer.analyze(mono, real, source(round as u16 % 3), &udpcom_packet(header));
        let mut random = [0u8; 24];
        random.iter_mut().for_each(|b| *b = rng.next() as u8);
        iperf.analyze(
            mono,
            real,
            source(round as u16 % 12),
            &random[..(rng.next() % 25) as usize],
        );
    }
    for a in [&analyzer, &iperf] {
        let totals = a.totals();
        assert_eq!(
            totals.datagrams,
            totals.unrecognized + totals.beyond_stream_limit + totals.analysed
        );
        for s in a.streams() {
            assert!(s.lost <= s.expected);
        }
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// True with probability `per_million` / 10^6.
    fn chance(&mut self, per_million: u64) -> bool {
        self.next() % 1_000_000 < per_million
    }
}

/// One arrival of the seeded pattern.
#[derive(Clone, Copy, Debug)]
struct Arrival {
    sequence: u64,
    mono_ns: u64,
    realtime_ns: u64,
}

const PERIOD_NS: u64 = 100_000;

fn departure_of(sequence: u64) -> u64 {
    CLOCK_OFFSET_NS + 1_000_000 + sequence * PERIOD_NS
}

fn target_of(sequence: u64) -> u64 {
    departure_of(sequence) - 5_000 + sequence % 7
}

/// 100k sequence numbers with seeded drops (single and in bursts), duplicates and delays
/// that reorder; returns the arrivals and what the pattern did.
fn seeded_pattern(count: u64, seed: u64) -> (Vec<Arrival>, HashSet<u64>, u64) {
    let mut rng = XorShift(seed);
    let mut dropped = HashSet::new();
    let mut duplicated = 0;
    // (position in the arrival order × 16, sequence): sorted, it is the arrival order.
    let mut order: Vec<(u64, u64)> = Vec::new();
    let mut sequence = 0;
    while sequence < count {
        let last = sequence == count - 1; // the last always arrives: it sets `expected`
        if !last && rng.chance(3_000) {
            let burst = 1 + rng.next() % 5;
            for s in sequence..(sequence + burst).min(count - 1) {
                dropped.insert(s);
            }
            sequence = (sequence + burst).min(count - 1);
            continue;
        }
        let position = sequence * 16;
        let delayed_by = if rng.chance(10_000) { 1 + rng.next() % 20 } else { 0 };
        order.push((position + delayed_by * 16 + 5, sequence));
        if rng.chance(10_000) {
            duplicated += 1;
            order.push((position + (rng.next() % 30) * 16 + 9, sequence));
        }
        sequence += 1;
    }
    order.sort_unstable();
    let mut arrivals = Vec::with_capacity(order.len());
    let mut previous_mono = 0;
    for &(_, sequence) in &order {
        // Delay 20..70 µs, and never before the previous arrival.
        let natural = departure_of(sequence) - CLOCK_OFFSET_NS + 20_000 + rng.next() % 50_000;
        let mono_ns = natural.max(previous_mono + 1);
        previous_mono = mono_ns;
        arrivals.push(Arrival {
            sequence,
            mono_ns,
            realtime_ns: mono_ns + CLOCK_OFFSET_NS,
        });
    }
    (arrivals, dropped, duplicated)
}

/// The nearest-rank quantile of sorted values, written plainly.
fn nearest_rank(sorted: &[i64], numerator: usize, denominator: usize) -> i64 {
    let rank = (numerator * sorted.len()).div_ceil(denominator).max(1);
    sorted[rank - 1]
}

/// Within the histogram's precision: an upper bound, less than 1% above.
fn assert_close(name: &str, reported: i64, exact: i64) {
    let slack = exact.abs() / 100 + 1;
    assert!(
        exact <= reported && reported <= exact + slack,
        "{name}: reported {reported}, exact {exact}"
    );
}

#[test]
fn seeded_pattern_matches_an_independent_computation() {
    let count = 100_000;
    let (arrivals, dropped, duplicated) = seeded_pattern(count, 0x5EED_1234_ABCD_0001);
    let mut analyzer = Analyzer::new(AnalyzeMode::Udpcom);
    for arrival in &arrivals {
        let packet = udpcom_packet(UdpcomHeader {
            stream_id: 42,
            sequence: arrival.sequence,
            target_ns: target_of(arrival.sequence),
            departure_ns: departure_of(arrival.sequence),
            ..Default::default()
        });
        analyzer.analyze(arrival.mono_ns, arrival.realtime_ns, source(9), &packet);
    }
    let s = analyzer.streams().pop().unwrap();

    // What the pattern did.
    assert!(
        dropped.len() > 500 && duplicated > 500,
        "{} {duplicated}",
        dropped.len()
    );
    assert_eq!(s.received, arrivals.len() as u64);
    assert_eq!(s.received, count - dropped.len() as u64 + duplicated);
    assert_eq!(s.duplicates, duplicated);
    assert_eq!((s.expected, s.lost), (count, dropped.len() as u64));
    let loss_runs = (0..count)
        .filter(|s| dropped.contains(s) && (*s == 0 || !dropped.contains(&(s - 1))))
        .count() as u64;
    assert_eq!(s.loss_runs, loss_runs);

    // The first copies, in arrival order.
    let mut seen = HashSet::new();
    let firsts: Vec<Arrival> = arrivals.iter().copied().filter(|a| seen.insert(a.sequence)).collect();

    // RFC 4737, plainly: reordered below NextExp; extent against the earliest greater.
    let mut next_expected = 0;
    let mut reordered = 0;
    let mut max_extent = 0;
    let mut prefix_max: Vec<u64> = Vec::with_capacity(firsts.len());
    for (i, arrival) in firsts.iter().enumerate() {
        if arrival.sequence < next_expected {
            reordered += 1;
            let j = prefix_max.partition_point(|&m| m <= arrival.sequence);
            max_extent = max_extent.max(i - j);
        } else {
            next_expected = arrival.sequence + 1;
        }
        prefix_max.push(prefix_max.last().copied().unwrap_or(0).max(arrival.sequence));
    }
    assert!(reordered > 500, "{reordered}");
    assert_eq!((s.reordered, s.max_reorder_extent), (reordered, max_extent as u64));
    assert_eq!(
        (s.too_old, s.reorder_extent_unknown, s.ipdv_pairs_beyond_window),
        (0, 0, 0)
    );

    // Jitter, RFC 3550 A.8 in floating point, in arrival order.
    let transit = |a: &Arrival| a.mono_ns as i64 - departure_of(a.sequence) as i64;
    let mut jitter = 0.0f64;
    for pair in firsts.windows(2) {
        let d = (transit(&pair[1]) - transit(&pair[0])).abs() as f64;
        jitter += (d - jitter) / 16.0;
    }
    assert_eq!(s.jitter_ns, jitter);

    // IPDV over consecutive sequence numbers both received.
    let by_sequence: HashMap<u64, i64> = firsts.iter().map(|a| (a.sequence, transit(a))).collect();
    let mut ipdv: Vec<i64> = (1..count)
        .filter_map(|k| Some(by_sequence.get(&k)? - by_sequence.get(&(k - 1))?))
        .collect();
    ipdv.sort_unstable();
    assert!(ipdv.first().unwrap() < &0 && ipdv.last().unwrap() > &0);
    assert_eq!(s.ipdv_pairs, ipdv.len() as u64);
    let state = &analyzer.streams[0];
    assert_eq!((state.ipdv.min, state.ipdv.max), (ipdv[0], *ipdv.last().unwrap()));
    assert_close("ipdv p50", s.ipdv_p50_ns, nearest_rank(&ipdv, 1, 2));
    assert_close("ipdv p99", s.ipdv_p99_ns, nearest_rank(&ipdv, 99, 100));

    // One-way latency and PDV.
    let mut latency: Vec<i64> = firsts
        .iter()
        .map(|a| a.realtime_ns as i64 - departure_of(a.sequence) as i64)
        .collect();
    latency.sort_unstable();
    let (min, max) = (latency[0], *latency.last().unwrap());
    assert_eq!((s.one_way_latency_min_ns, s.one_way_latency_max_ns), (min, max));
    assert_close("latency p50", s.one_way_latency_p50_ns, nearest_rank(&latency, 1, 2));
    assert_close("latency p99", s.one_way_latency_p99_ns, nearest_rank(&latency, 99, 100));
    assert_close(
        "latency p999",
        s.one_way_latency_p999_ns,
        nearest_rank(&latency, 999, 1000),
    );
    assert_eq!(s.pdv_p99_ns, (s.one_way_latency_p99_ns - min) as u64);
    assert_close("pdv p99", s.pdv_p99_ns as i64, nearest_rank(&latency, 99, 100) - min);

    // Lateness.
    let mut lateness: Vec<i64> = firsts
        .iter()
        .map(|a| a.realtime_ns as i64 - target_of(a.sequence) as i64)
        .collect();
    lateness.sort_unstable();
    assert_eq!(s.lateness_max_ns, *lateness.last().unwrap());
    assert_close("lateness p50", s.lateness_p50_ns, nearest_rank(&lateness, 1, 2));
    assert_close("lateness p99", s.lateness_p99_ns, nearest_rank(&lateness, 99, 100));

    // Arrivals and rate, duplicates included.
    let (first, last) = (arrivals[0].mono_ns, arrivals.last().unwrap().mono_ns);
    assert_eq!((s.first_arrival_ns, s.last_arrival_ns), (first, last));
    assert_eq!(s.rate_pps, (arrivals.len() - 1) as f64 / ((last - first) as f64 / 1e9));
}

#[test]
fn the_ipv6_flow_label_does_not_split_a_stream() {
    use std::net::{Ipv6Addr, SocketAddrV6};
    let mut analyzer = Analyzer::new(AnalyzeMode::Iperf2);
    let ip = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 7);
    for (sequence, flow_label) in [(1, 0), (2, 0x12345), (3, 0xABCDE)] {
        let from = SocketAddr::V6(SocketAddrV6::new(ip, 9000, flow_label, 3));
        analyzer.analyze(0, 0, from, &iperf2_packet(sequence, false, 0));
    }
    let other_scope = SocketAddr::V6(SocketAddrV6::new(ip, 9000, 0, 4));
    analyzer.analyze(0, 0, other_scope, &iperf2_packet(1, false, 0));
    let streams = analyzer.streams();
    assert_eq!(streams.len(), 2);
    assert_eq!((streams[0].received, streams[0].lost), (3, 0));
    assert_eq!(streams[0].source, SocketAddr::V6(SocketAddrV6::new(ip, 9000, 0, 3)));
}

#[test]
fn rank_lookup_agrees_with_a_walk_over_the_histogram() {
    let mut rng = XorShift(77);
    for _ in 0..50 {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, HISTOGRAM_MAX_NS, 2).unwrap();
        let count = 1 + rng.next() % 5_000;
        for _ in 0..count {
            let magnitude = rng.next() >> (rng.next() % 64);
            histogram.saturating_record(magnitude.min(HISTOGRAM_MAX_NS));
        }
        let step = 1 + (rng.next() % 97) as usize;
        for rank in (1..=count).step_by(step).chain([count]) {
            let mut below = 0;
            let walked = histogram
                .iter_recorded()
                .find(|step| {
                    below += step.count_at_value();
                    below >= rank
                })
                .unwrap()
                .value_iterated_to();
            assert_eq!(magnitude_at_rank(&histogram, rank), walked, "rank {rank} of {count}");
        }
    }
}
