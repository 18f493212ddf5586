//! Replay of capture files on the sender's timing path, end to end on loopback: order, timing
//! from one absolute start, passes, speed, filters, destinations, and a corrupt file.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use udpcom_engine::pcap::{CaptureFormat, LinkType, PacketMeta, PcapWriter, StampSource};
use udpcom_engine::{
    now_ns, Config, Notify, Options, ReplayDestination, ReplayInput, ReplaySpec, ReplayStats, StreamEnd, UdpEngine,
};

struct Quiet;
impl Notify for Quiet {
    fn notify(&self) {}
}

fn engine(remote: Option<u16>) -> UdpEngine {
    let options = Options {
        direction: Some(0.0),
        ..Default::default()
    };
    let mut engine =
        UdpEngine::new(Config::new("127.0.0.1", 0.0, "127.0.0.1", remote.unwrap_or(0) as f64, &options).unwrap());
    engine.init_socket().unwrap();
    engine.start(Arc::new(Quiet)).unwrap();
    engine
}

fn sink() -> UdpSocket {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sink
}

/// A capture of `count` datagrams `gap_ns` apart, to `to` (payload "n <i>").
fn capture(format: CaptureFormat, count: usize, gap_ns: u64, to: SocketAddr) -> Vec<u8> {
    let mut writer = PcapWriter::new(Vec::new(), format, LinkType::Ethernet, 65_535).unwrap();
    let from: SocketAddr = "10.0.0.1:4000".parse().unwrap();
    for i in 0..count {
        let ts = 1_700_000_000_000_000_000 + i as u64 * gap_ns;
        writer
            .write_datagram(
                ts,
                from,
                to,
                format!("n {i}").as_bytes(),
                PacketMeta::received(StampSource::Kernel),
            )
            .unwrap();
    }
    writer.finish().unwrap()
}

fn spec(bytes: Vec<u8>, destination: ReplayDestination) -> ReplaySpec {
    ReplaySpec {
        input: ReplayInput::Bytes(Arc::new(bytes)),
        speed: 1.0,
        start_ns: now_ns() + 20_000_000,
        loops: 1,
        filter_port: None,
        filter_address: None,
        destination,
    }
}

fn wait_for_end(engine: &UdpEngine, id: u32) -> ReplayStats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = engine.replay_stats(id).unwrap();
        if stats.end != StreamEnd::Running {
            return stats;
        }
        assert!(Instant::now() < deadline, "replay {id} did not end: {stats:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn receive(sink: &UdpSocket, count: usize) -> Vec<(String, Instant)> {
    let mut buffer = [0u8; 2048];
    (0..count)
        .map(|i| {
            let n = sink.recv(&mut buffer).unwrap_or_else(|e| panic!("datagram {i}: {e}"));
            (String::from_utf8_lossy(&buffer[..n]).into_owned(), Instant::now())
        })
        .collect()
}

#[test]
fn a_capture_is_replayed_in_order_with_its_gaps_and_loops_from_one_start() {
    let sink = sink();
    let port = sink.local_addr().unwrap().port();
    let mut engine = engine(Some(port));
    let bytes = capture(CaptureFormat::Pcapng, 20, 5_000_000, "10.0.0.2:5005".parse().unwrap());
    let mut replay = spec(bytes, ReplayDestination::Connected);
    replay.loops = 2;
    let id = engine.start_replay(replay).unwrap();
    let got = receive(&sink, 40);
    let names: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    let expected: Vec<String> = (0..2).flat_map(|_| (0..20).map(|i| format!("n {i}"))).collect();
    assert_eq!(names, expected);
    // 19 gaps of 5 ms, one more (the mean gap) between the passes, 19 more: 39 × 5 ms.
    let span = got[39].1 - got[0].1;
    assert!(
        span >= Duration::from_millis(190) && span < Duration::from_millis(400),
        "{span:?}"
    );
    let stats = wait_for_end(&engine, id);
    assert_eq!(
        (stats.end, stats.sent, stats.read, stats.passes, stats.errors),
        (StreamEnd::Completed, 40, 40, 2, 0)
    );
    assert_eq!(stats.lateness.count, 40);
    assert_eq!(stats.error, None);
    engine.close().unwrap();
}

#[test]
fn speed_filters_and_destinations() {
    let a = sink();
    let b = sink();
    let (to_a, to_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    // An unconnected instance sends each datagram to its captured destination.
    let mut writer = PcapWriter::new(Vec::new(), CaptureFormat::Pcap, LinkType::RawIp, 65_535).unwrap();
    let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    for i in 0..10u64 {
        let to = if i % 2 == 0 { to_a } else { to_b };
        writer
            .write_datagram(
                1_000_000_000 + i * 100_000_000,
                from,
                to,
                &[i as u8],
                PacketMeta::received(StampSource::Kernel),
            )
            .unwrap();
    }
    let bytes = writer.finish().unwrap();
    let mut engine = engine(None);
    let mut fast = spec(bytes.clone(), ReplayDestination::Original);
    fast.speed = 0.0; // 10 datagrams 100 ms apart, at once
    let started = Instant::now();
    let id = engine.start_replay(fast).unwrap();
    let (mut to_a_got, mut to_b_got) = (Vec::new(), Vec::new());
    let mut buffer = [0u8; 16];
    for _ in 0..5 {
        a.recv(&mut buffer).unwrap();
        to_a_got.push(buffer[0]);
        b.recv(&mut buffer).unwrap();
        to_b_got.push(buffer[0]);
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "speed 0 is as fast as possible"
    );
    assert_eq!((to_a_got, to_b_got), (vec![0, 2, 4, 6, 8], vec![1, 3, 5, 7, 9]));
    assert_eq!(wait_for_end(&engine, id).sent, 10);
    // A filter on the destination port; a fixed destination.
    let mut filtered = spec(bytes.clone(), ReplayDestination::Fixed(to_b));
    filtered.speed = 0.0;
    filtered.filter_port = Some(to_a.port());
    let id = engine.start_replay(filtered).unwrap();
    for expected in [0, 2, 4, 6, 8] {
        b.recv(&mut buffer).unwrap();
        assert_eq!(buffer[0], expected);
    }
    let stats = wait_for_end(&engine, id);
    assert_eq!((stats.sent, stats.skipped.filtered), (5, 5));
    // Twice as fast: 900 ms of capture in about 450 ms.
    let mut double = spec(bytes, ReplayDestination::Fixed(to_a));
    double.speed = 2.0;
    let started = Instant::now();
    let id = engine.start_replay(double).unwrap();
    for _ in 0..10 {
        a.recv(&mut buffer).unwrap();
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(440) && took < Duration::from_millis(900),
        "{took:?}"
    );
    wait_for_end(&engine, id);
    engine.close().unwrap();
}

#[test]
fn a_corrupt_file_ends_with_err_udpcom_pcap_after_what_came_before() {
    let sink = sink();
    let mut engine = engine(Some(sink.local_addr().unwrap().port()));
    let mut bytes = capture(CaptureFormat::Pcap, 10, 1_000_000, "10.0.0.2:5005".parse().unwrap());
    // Cut the last record in half: nine datagrams are whole.
    bytes.truncate(bytes.len() - 10);
    let mut truncated = spec(bytes, ReplayDestination::Connected);
    truncated.speed = 0.0;
    let id = engine.start_replay(truncated).unwrap();
    let got = receive(&sink, 9);
    assert_eq!(got[8].0, "n 8");
    let stats = wait_for_end(&engine, id);
    assert_eq!(stats.sent, 9);
    let error = stats.error.expect("the cut-off record is an error");
    assert_eq!(error.code, "ERR_UDPCOM_PCAP");
    assert!(error.message.contains("at byte"), "{}", error.message);
    // Not a capture at all: bad from byte 0, it ends at once with the same error, nothing sent.
    let id = engine
        .start_replay(spec(
            b"hello, this is no capture".to_vec(),
            ReplayDestination::Connected,
        ))
        .unwrap();
    let stats = wait_for_end(&engine, id);
    assert_eq!((stats.sent, stats.read), (0, 0));
    let error = stats.error.expect("not a capture file");
    assert_eq!(error.code, "ERR_UDPCOM_PCAP");
    assert!(error.message.contains("at byte 0"), "{}", error.message);
    // Destinations must fit the instance.
    let err = engine
        .start_replay(spec(
            capture(CaptureFormat::Pcap, 1, 1, "10.0.0.2:5".parse().unwrap()),
            ReplayDestination::Original,
        ))
        .unwrap_err();
    assert_eq!(err.code, "ERR_SOCKET_DGRAM_IS_CONNECTED");
    let missing = ReplaySpec {
        input: ReplayInput::Path("/nonexistent/capture.pcap".into()),
        ..spec(Vec::new(), ReplayDestination::Connected)
    };
    assert_eq!(engine.start_replay(missing).unwrap_err().code, "ENOENT");
    engine.close().unwrap();
}

#[test]
fn stop_and_instance_stop_end_a_replay() {
    let sink = sink();
    let mut engine = engine(Some(sink.local_addr().unwrap().port()));
    let bytes = capture(CaptureFormat::Pcapng, 100, 50_000_000, "10.0.0.2:5005".parse().unwrap());
    let id = engine
        .start_replay(spec(bytes.clone(), ReplayDestination::Connected))
        .unwrap();
    receive(&sink, 2);
    assert!(engine.stop_replay(id));
    let stats = wait_for_end(&engine, id);
    assert_eq!(stats.end, StreamEnd::Stopped);
    assert!(stats.sent < 100);
    let id = engine.start_replay(spec(bytes, ReplayDestination::Connected)).unwrap();
    receive(&sink, 1);
    let started = Instant::now();
    engine.stop();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(engine.replay_stats(id).unwrap().end, StreamEnd::InstanceStopped);
    engine.close().unwrap();
}
