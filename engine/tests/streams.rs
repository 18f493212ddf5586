//! Streams generated on the sender thread, end to end on loopback: their schedule (no drift),
//! their headers, their statistics, and how they share the sender with queued packets.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use udpcom_engine::header::{Iperf2Header, UdpcomHeader};
use udpcom_engine::{
    now_ns, Config, Notify, Options, StreamEnd, StreamHeader, StreamLength, StreamRate, StreamSpec, UdpEngine,
};

struct Quiet;
impl Notify for Quiet {
    fn notify(&self) {}
}

/// A started send-only engine connected to a plain socket, and that socket.
fn sender_to_socket() -> (UdpEngine, UdpSocket) {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Room for a whole test's packets while other tests share the CPUs (SO_RCVBUFFORCE as root).
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size_force(&sink, 8 << 20);
    let port = sink.local_addr().unwrap().port();
    let options = Options {
        direction: Some(0.0),
        ..Default::default()
    };
    let mut engine = UdpEngine::new(Config::new("127.0.0.1", 0.0, "127.0.0.1", port as f64, &options).unwrap());
    engine.init_socket().unwrap();
    engine.start(Arc::new(Quiet)).unwrap();
    (engine, sink)
}

fn spec(start_ns: u64, rate: StreamRate, length: StreamLength, header: StreamHeader, size: usize) -> StreamSpec {
    StreamSpec {
        start_ns,
        rate,
        length,
        burst: 1,
        size,
        payload: Vec::new(),
        header,
        destination: None,
    }
}

fn receive(sink: &UdpSocket, count: usize) -> Vec<Vec<u8>> {
    let mut buffer = [0u8; 65_536];
    (0..count)
        .map(|i| {
            let len = sink
                .recv(&mut buffer)
                .unwrap_or_else(|e| panic!("datagram {i} of {count}: {e}"));
            buffer[..len].to_vec()
        })
        .collect()
}

fn wait_for_end(engine: &UdpEngine, id: u32) -> udpcom_engine::StreamSendStats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = engine.stream_stats(id).unwrap();
        if stats.end != StreamEnd::Running {
            return stats;
        }
        assert!(Instant::now() < deadline, "stream {id} did not end: {stats:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_100_kpps_stream_ticks_exactly_at_start_plus_i_periods() {
    let (mut engine, sink) = sender_to_socket();
    let start = now_ns() + 5_000_000;
    let count = 20_000;
    let id = engine
        .start_stream(
            &spec(
                start,
                StreamRate::PacketsPerSecond(100_000.0),
                StreamLength::Count(count),
                StreamHeader::Udpcom,
                64,
            ),
            None,
        )
        .unwrap();
    let packets = receive(&sink, count as usize);
    let headers: Vec<UdpcomHeader> = packets.iter().map(|p| UdpcomHeader::decode(p).unwrap()).collect();
    let first_target = headers[0].target_ns;
    for (i, header) in headers.iter().enumerate() {
        assert_eq!(header.stream_id, id);
        assert_eq!(header.sequence, i as u64, "in order, each once");
        // Exactly start + i × 10 µs, on the realtime clock too: computed from i, never summed.
        assert_eq!(header.target_ns - first_target, i as u64 * 10_000, "tick {i}");
        assert!(
            header.departure_ns + 1_000 >= header.target_ns,
            "packet {i} left before its time"
        );
        assert_eq!(header.is_last(), i as u64 == count - 1);
    }
    let stats = wait_for_end(&engine, id);
    assert_eq!(stats.end, StreamEnd::Completed);
    assert_eq!((stats.sent, stats.errors, stats.bytes), (count, 0, count * 64));
    assert_eq!(stats.lateness.count, count);
    let totals = engine.stats().unwrap();
    assert_eq!(totals.packets_sent, count);
    assert_eq!(
        totals.packets_queued,
        totals.packets_sent + totals.send_errors + totals.packets_discarded + totals.send_queue_length
    );
    engine.close().unwrap();
}

#[test]
fn queued_packets_and_streams_share_the_sender_without_delaying_each_other() {
    let (mut engine, sink) = sender_to_socket();
    // A stream whose next tick is a second away: a packet queued meanwhile leaves at once.
    let start = now_ns() + 1_000_000;
    let id = engine
        .start_stream(
            &spec(
                start,
                StreamRate::PeriodNs(1_000_000_000),
                StreamLength::Count(2),
                StreamHeader::Udpcom,
                64,
            ),
            None,
        )
        .unwrap();
    let first = receive(&sink, 1);
    assert_eq!(UdpcomHeader::decode(&first[0]).unwrap().sequence, 0);
    let queued_at = Instant::now();
    assert!(engine.send(b"queued", 0).unwrap());
    let queued = receive(&sink, 1);
    assert_eq!(queued[0], b"queued");
    assert!(
        queued_at.elapsed() < Duration::from_millis(500),
        "a queued packet waited for the stream's tick"
    );
    // And a timed packet between the stream's ticks leaves at its time, in order with it.
    let at = now_ns() + 20_000_000;
    assert!(engine.send(b"timed", at).unwrap());
    let timed = receive(&sink, 1);
    assert_eq!(timed[0], b"timed");
    assert!(now_ns() >= at);
    let last = receive(&sink, 1);
    assert_eq!(UdpcomHeader::decode(&last[0]).unwrap().sequence, 1);
    assert_eq!(wait_for_end(&engine, id).end, StreamEnd::Completed);
    engine.close().unwrap();
}

#[test]
fn bursts_leave_back_to_back_and_several_streams_run_at_once() {
    let (mut engine, sink) = sender_to_socket();
    let start = now_ns() + 2_000_000;
    let mut burst = spec(
        start,
        StreamRate::PacketsPerSecond(8_000.0),
        StreamLength::Count(32),
        StreamHeader::Udpcom,
        100,
    );
    burst.burst = 8;
    let a = engine.start_stream(&burst, None).unwrap();
    let b = engine
        .start_stream(
            &spec(
                start,
                StreamRate::PeriodNs(500_000),
                StreamLength::Count(8),
                StreamHeader::Udpcom,
                64,
            ),
            Some(77),
        )
        .unwrap();
    assert_eq!(b, 77);
    let packets = receive(&sink, 40);
    let mut by_stream = std::collections::BTreeMap::<u32, Vec<UdpcomHeader>>::new();
    for p in &packets {
        let h = UdpcomHeader::decode(p).unwrap();
        by_stream.entry(h.stream_id).or_default().push(h);
    }
    let bursts = &by_stream[&a];
    assert_eq!(bursts.len(), 32);
    for (i, h) in bursts.iter().enumerate() {
        assert_eq!(h.sequence, i as u64);
        // 8 packets per tick, a tick every 1 ms.
        assert_eq!(h.target_ns - bursts[0].target_ns, (i as u64 / 8) * 1_000_000);
    }
    assert_eq!(by_stream[&77].len(), 8);
    wait_for_end(&engine, a);
    wait_for_end(&engine, 77);
    engine.close().unwrap();
}

#[test]
fn a_stopped_iperf2_stream_sends_the_datagram_that_ends_the_test() {
    let (mut engine, sink) = sender_to_socket();
    let id = engine
        .start_stream(
            &spec(
                now_ns(),
                StreamRate::PacketsPerSecond(1_000.0),
                StreamLength::Unbounded,
                StreamHeader::Iperf2,
                100,
            ),
            None,
        )
        .unwrap();
    let first = receive(&sink, 5);
    for (i, p) in first.iter().enumerate() {
        let h = Iperf2Header::decode(p).unwrap();
        assert_eq!((h.sequence, h.last), (i as u64 + 1, false));
        assert!(h.departure_ns > 0);
    }
    assert!(engine.stop_stream(id));
    let stats = wait_for_end(&engine, id);
    assert_eq!(stats.end, StreamEnd::Stopped);
    // Everything it sent arrives, the last one negative: iperf 2 then reports sent + 0 lost.
    let rest = receive(&sink, stats.sent as usize - 5);
    let last = Iperf2Header::decode(rest.last().unwrap()).unwrap();
    assert!(last.last, "the final datagram is negative");
    assert_eq!(last.sequence, stats.sent);
    engine.close().unwrap();
}

#[test]
fn stopping_the_instance_ends_its_streams_and_bad_streams_are_coded_errors() {
    let (mut engine, _sink) = sender_to_socket();
    let id = engine
        .start_stream(
            &spec(
                now_ns() + 3_600_000_000_000,
                StreamRate::PeriodNs(1_000),
                StreamLength::Unbounded,
                StreamHeader::None,
                8,
            ),
            None,
        )
        .unwrap();
    let bad = engine.start_stream(
        &spec(
            now_ns(),
            StreamRate::PeriodNs(1_000),
            StreamLength::Unbounded,
            StreamHeader::Udpcom,
            20,
        ),
        None,
    );
    assert_eq!(bad.unwrap_err().code, "ERR_OUT_OF_RANGE");
    let too_big = engine.start_stream(
        &spec(
            now_ns(),
            StreamRate::PeriodNs(1_000),
            StreamLength::Count(1),
            StreamHeader::None,
            70_000,
        ),
        None,
    );
    assert_eq!(too_big.unwrap_err().code, "ERR_OUT_OF_RANGE");
    let started = Instant::now();
    engine.stop();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(engine.stream_stats(id).unwrap().end, StreamEnd::InstanceStopped);
    assert!(engine.take_streams_ended());
    assert_eq!(
        engine
            .start_stream(
                &spec(
                    now_ns(),
                    StreamRate::PeriodNs(1_000),
                    StreamLength::Count(1),
                    StreamHeader::None,
                    8
                ),
                None
            )
            .unwrap_err()
            .code,
        "ERR_UDPCOM_STATE"
    );
    engine.close().unwrap();
}
