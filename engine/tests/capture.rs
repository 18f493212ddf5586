//! Captures end to end on loopback: what an instance receives and sends is in the file, with
//! its addresses, payloads and times; closing is exact; memory captures; stop() finishes
//! the file.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use udpcom_engine::pcap::{CaptureFormat, LinkType, PcapReader};
use udpcom_engine::{now_ns, realtime_ns, CaptureSink, CaptureSpec, Config, Notify, Options, UdpEngine};

/// A directory of this test's own, removed afterwards.
struct TempDir(std::path::PathBuf);
impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("udpcom-capture-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Quiet;
impl Notify for Quiet {
    fn notify(&self) {}
}

#[derive(Default)]
struct Counting(AtomicUsize);
impl Notify for Counting {
    fn notify(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn engine(direction: f64, remote: u16, timestamping: &str) -> UdpEngine {
    let options = Options {
        direction: Some(direction),
        timestamping: Some(timestamping.into()),
        ..Default::default()
    };
    let mut engine = UdpEngine::new(Config::new("127.0.0.1", 0.0, "127.0.0.1", remote as f64, &options).unwrap());
    engine.init_socket().unwrap();
    engine
}

fn spec(sink: CaptureSink, format: CaptureFormat, sent: bool) -> CaptureSpec {
    CaptureSpec {
        sink,
        format,
        link: LinkType::RawIp,
        snaplen: 65_535,
        sent,
    }
}

/// (time, source, destination, payload) of every datagram in a capture file's bytes.
fn read_all(bytes: &[u8]) -> Vec<(u64, SocketAddr, SocketAddr, Vec<u8>)> {
    let mut reader = PcapReader::new(bytes).unwrap();
    let mut all = Vec::new();
    while let Some(d) = reader.next_datagram().unwrap() {
        all.push((d.timestamp_ns, d.source, d.destination, d.payload.to_vec()));
    }
    assert_eq!(reader.skipped().total(), 0);
    all
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn received_datagrams_are_written_with_their_addresses_and_kernel_times() {
    let dir = TempDir::new("received");
    let path = dir.0.join("received.pcapng");
    let mut engine = engine(1.0, 0, "none");
    let local = SocketAddr::new("127.0.0.1".parse().unwrap(), engine.local_port().unwrap());
    engine.start(Arc::new(Quiet)).unwrap();
    let id = engine
        .start_capture(&spec(CaptureSink::Path(path.clone()), CaptureFormat::Pcapng, false))
        .unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let before = realtime_ns();
    for i in 0..50u32 {
        peer.send_to(format!("datagram {i}").as_bytes(), local).unwrap();
    }
    let after = realtime_ns();
    let mut delivered = 0;
    wait_until("50 datagrams", || {
        delivered += engine.receive(64, usize::MAX, |_| {});
        delivered == 50
    });
    let stats = engine.close_capture(id).unwrap().wait();
    assert_eq!(
        (stats.written, stats.dropped, stats.closed, stats.error),
        (50, 0, true, None)
    );
    let all = read_all(&std::fs::read(&path).unwrap());
    assert_eq!(all.len(), 50);
    for (i, (time, source, destination, payload)) in all.iter().enumerate() {
        assert_eq!(*source, peer.local_addr().unwrap());
        assert_eq!(*destination, local);
        assert_eq!(payload, format!("datagram {i}").as_bytes());
        // Kernel receive stamps (turned on by the capture), CLOCK_REALTIME.
        assert!(
            *time >= before && *time <= after + 1_000_000_000,
            "{time} not in {before}..{after}"
        );
    }
    // A second close finds the capture closed.
    assert!(engine.close_capture(id).unwrap().wait().closed);
    engine.close().unwrap();
}

#[test]
fn sent_datagrams_carry_their_transmit_stamps_or_departure_times() {
    for timestamping in ["software", "none"] {
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = sink.local_addr().unwrap();
        let mut engine = engine(0.0, to.port(), timestamping);
        let local = SocketAddr::new("127.0.0.1".parse().unwrap(), engine.local_port().unwrap());
        engine.start(Arc::new(Quiet)).unwrap();
        let notify = Arc::new(Counting::default());
        let id = engine
            .start_capture(&spec(CaptureSink::Memory(notify.clone()), CaptureFormat::Pcap, true))
            .unwrap();
        let start = now_ns() + 5_000_000;
        let before = realtime_ns();
        for i in 0..20u64 {
            engine.send(&i.to_le_bytes(), start + i * 1_000_000).unwrap();
        }
        let mut buffer = [0u8; 64];
        for _ in 0..20 {
            sink.recv(&mut buffer).unwrap();
        }
        let stats = engine.close_capture(id).unwrap().wait();
        assert_eq!((stats.written, stats.dropped), (20, 0), "{timestamping}");
        assert!(notify.0.load(Ordering::SeqCst) > 0);
        let bytes = engine.take_capture_bytes(id).unwrap();
        let all = read_all(&bytes);
        let mut previous = 0;
        for (i, (time, source, destination, payload)) in all.iter().enumerate() {
            assert_eq!((*source, *destination), (local, to));
            assert_eq!(payload, &(i as u64).to_le_bytes());
            // Datagrams that left in one batch share a departure time.
            assert!(*time > before && *time >= previous, "{timestamping}: times in order");
            previous = *time;
        }
        // 1 ms apart on the wire, give or take a loaded machine.
        let span = all[19].0 - all[0].0;
        assert!((15_000_000..200_000_000).contains(&span), "{timestamping}: span {span}");
        engine.close().unwrap();
    }
}

#[test]
fn closing_is_exact_under_load_and_stop_finishes_the_file() {
    let dir = TempDir::new("load");
    let path = dir.0.join("load.pcap");
    let mut engine = engine(1.0, 0, "none");
    let local = SocketAddr::new("127.0.0.1".parse().unwrap(), engine.local_port().unwrap());
    engine.start(Arc::new(Quiet)).unwrap();
    engine
        .start_capture(&spec(CaptureSink::Path(path.clone()), CaptureFormat::Pcap, false))
        .unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let payload = [7u8; 1000];
    for _ in 0..20_000 {
        let _ = peer.send_to(&payload, local);
    }
    let mut received = 0;
    wait_until("the receiver to go quiet", || {
        let before = engine.stats().unwrap().packets_received;
        std::thread::sleep(Duration::from_millis(50));
        received += engine.receive(usize::MAX, usize::MAX, |_| {});
        engine.stats().unwrap().packets_received == before
    });
    let received_by_instance = engine.stats().unwrap().packets_received;
    // stop() finishes the capture: the file is complete, and every received datagram is
    // either in it or counted as dropped.
    engine.stop();
    let stats = engine.capture_stats(1).unwrap();
    assert!(stats.closed);
    assert_eq!(stats.written + stats.dropped, received_by_instance);
    assert_eq!(read_all(&std::fs::read(&path).unwrap()).len() as u64, stats.written);
    assert!(received > 0);
    engine.close().unwrap();
}

#[test]
fn a_capture_that_cannot_open_its_file_fails_with_the_errno() {
    let mut engine = engine(1.0, 0, "none");
    let error = engine
        .start_capture(&spec(
            CaptureSink::Path("/nonexistent-dir/x.pcap".into()),
            CaptureFormat::Pcap,
            false,
        ))
        .unwrap_err();
    assert_eq!(error.code, "ENOENT");
    let mut bad = spec(CaptureSink::Memory(Arc::new(Quiet)), CaptureFormat::Pcap, false);
    bad.snaplen = 0;
    assert_eq!(engine.start_capture(&bad).unwrap_err().code, "ERR_OUT_OF_RANGE");
}
