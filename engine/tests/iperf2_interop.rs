//! iperf 2 as a real peer of the header and analysis modules: `iperf -s -u` measures
//! datagrams carrying [`Iperf2Header`], and the [`Analyzer`] measures an `iperf -c -u` stream.
//! Skipped, with a message, where `iperf` (Debian package `iperf`, iperf 2) is not installed.

use std::io::Read;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use udpcom_engine::analysis::{AnalyzeMode, Analyzer};
use udpcom_engine::header::Iperf2Header;
use udpcom_engine::{now_ns, realtime_ns};

fn iperf_installed() -> bool {
    match Command::new("iperf").arg("-v").output() {
        Ok(_) => true,
        Err(err) => {
            eprintln!("skipped: iperf (iperf 2, Debian package `iperf`) cannot be run: {err}");
            false
        }
    }
}

/// Waits for `child` to exit (killing it after `timeout`) and returns its stdout and stderr.
fn finish(mut child: Child, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("iperf did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut output = String::new();
    child.stdout.take().unwrap().read_to_string(&mut output).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut output).unwrap();
    output
}

/// Whether a UDP socket is bound to 127.0.0.1:`port` (from /proc/net/udp).
fn udp_port_bound(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    let local = format!("0100007F:{port:04X} ");
    table
        .lines()
        .any(|line| line.split_whitespace().nth(1).is_some_and(|l| format!("{l} ") == local))
}

/// The `lost/total` pair of an iperf 2 server report line (`... 0/2000 (0%) ...`).
fn lost_and_total(report: &str) -> Option<(u64, u64)> {
    let words: Vec<&str> = report.split_whitespace().collect();
    words.windows(2).find_map(|pair| {
        let (lost, total) = pair[0].split_once('/')?;
        pair[1].starts_with('(').then_some(())?;
        Some((lost.parse().ok()?, total.parse().ok()?))
    })
}

#[test]
fn iperf2_server_measures_a_stream_with_our_header() {
    if !iperf_installed() {
        return;
    }
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // -P 1: exit after one test; -w 4M: a receive buffer that holds the whole test, so that
    // a server kept off the CPU by a loaded machine loses nothing.
    let server = Command::new("iperf")
        .args([
            "-s",
            "-u",
            "-e",
            "-P",
            "1",
            "-w",
            "4M",
            "-B",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !udp_port_bound(port) {
        assert!(Instant::now() < deadline, "iperf -s did not bind port {port}");
        std::thread::sleep(Duration::from_millis(10));
    }

    // 2000 datagrams of 200 bytes, 1..=2000, the last one negative: iperf counts 2000.
    const COUNT: u64 = 2000;
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", port)).unwrap();
    let mut packet = [0xA5u8; 200];
    for sequence in 1..=COUNT {
        Iperf2Header {
            sequence,
            last: sequence == COUNT,
            departure_ns: 0,
        }
        .encode(&mut packet)
        .unwrap();
        Iperf2Header::write_departure(&mut packet, realtime_ns()).unwrap();
        socket.send(&packet).unwrap();
        std::thread::sleep(Duration::from_micros(100));
    }
    let output = finish(server, Duration::from_secs(10));
    let report = output
        .lines()
        .rev()
        .find_map(lost_and_total)
        .unwrap_or_else(|| panic!("no Lost/Total in iperf's report:\n{output}"));
    assert_eq!(report, (0, COUNT), "iperf -s reported lost/total {report:?}:\n{output}");
}

#[test]
fn an_iperf2_client_stream_is_analysed() {
    if !iperf_installed() {
        return;
    }
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let port = socket.local_addr().unwrap().port();
    // 1000 datagrams of 200 bytes at 2 Mbit/s. Nobody answers its end datagram, so the
    // client repeats it for 2 s, then gives up with a warning.
    let mut client = Command::new("iperf")
        .args(["-c", "127.0.0.1", "-u", "-p", &port.to_string()])
        .args(["-l", "200", "-n", "200000", "-b", "2M"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let mut analyzer = Analyzer::new(AnalyzeMode::Iperf2);
    let mut buffer = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut exited = false;
    loop {
        match socket.recv_from(&mut buffer) {
            Ok((len, source)) => {
                analyzer.analyze(now_ns(), realtime_ns(), source, &buffer[..len]);
            }
            Err(_) if exited => break, // exited and drained
            Err(_) => {}
        }
        exited = exited || client.try_wait().unwrap().is_some();
        assert!(Instant::now() < deadline, "iperf -c did not finish");
    }
    let output = finish(client, Duration::from_secs(1));
    let sent: u64 = output
        .lines()
        .find_map(|line| line.split_once("] Sent ")?.1.strip_suffix(" datagrams")?.parse().ok())
        .unwrap_or_else(|| panic!("no 'Sent N datagrams' in iperf's output:\n{output}"));

    let streams = analyzer.streams();
    assert_eq!(streams.len(), 1, "{streams:#?}");
    let s = &streams[0];
    // iperf 2.1.8 writes data datagrams 1..=1000 and then the end datagram −1001, which
    // counts as datagram 1001 (as iperf -s counts it); its "Sent N datagrams" says 1002.
    assert_eq!((s.received, s.expected, s.lost), (1001, 1001, 0), "{s:#?}");
    assert_eq!(sent, s.received + 1, "iperf's count of what it sent:\n{output}");
    assert_eq!((s.duplicates, s.reordered, s.too_old), (0, 0, 0));
    assert!(s.ended && s.end_repeats >= 1, "{s:#?}");
    assert_eq!(s.timed, s.received);
    assert!(
        (0..1_000_000_000).contains(&s.one_way_latency_max_ns),
        "one host, one clock: {s:#?}"
    );
    let totals = analyzer.totals();
    assert_eq!((totals.unrecognized, totals.analysed), (0, totals.datagrams));
}
