//! The pcap module against real tools: captures made by tcpdump and dumpcap on the loopback
//! interface are read back exactly, and files the writer makes are read by tshark and tcpdump
//! with the right addresses, ports, payloads, checksums and nanosecond times.
//!
//! Needs root (to capture) and the Debian packages tcpdump and tshark (which brings dumpcap);
//! each test says which is missing and returns when it is.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use udpcom_engine::pcap::{CaptureFormat, LinkType, PacketMeta, PcapReader, PcapWriter, StampSource};

/// The longest a capture tool may take to start or to record a datagram.
const TOOL_DEADLINE: Duration = Duration::from_secs(20);

fn tool(name: &str) -> Option<PathBuf> {
    let output = Command::new("which").arg(name).output().ok()?;
    output
        .status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
}

/// The tool, or `None` after saying why the test does not run.
fn require(name: &str, package: &str, test: &str) -> Option<PathBuf> {
    let found = tool(name);
    if found.is_none() {
        eprintln!("skipping {test}: `{name}` is missing (Debian package {package})");
    }
    found
}

fn is_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipping {test}: capturing on lo needs root");
    }
    root
}

/// A directory for one test's files, removed when the test passes (kept for a look when it
/// fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("udpcom-pcap-tools-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A capture tool that drops privileges must be able to write here.
        let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777));
        Scratch(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn realtime_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// An owned datagram read from a file.
#[derive(Debug, Clone)]
struct Read {
    timestamp_ns: u64,
    source: SocketAddr,
    destination: SocketAddr,
    payload: Vec<u8>,
}

/// What the reader finds in `path` now (a file still being written may end mid-block: what
/// came before is kept).
fn read_file(path: &Path) -> Vec<Read> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let Ok(mut reader) = PcapReader::new(file) else {
        return Vec::new();
    };
    let mut got = Vec::new();
    while let Ok(Some(datagram)) = reader.next_datagram() {
        got.push(Read {
            timestamp_ns: datagram.timestamp_ns,
            source: datagram.source,
            destination: datagram.destination,
            payload: datagram.payload.to_vec(),
        });
    }
    got
}

/// Polls `path` until a datagram with `payload` is in it, sending `probe` before each look.
fn wait_for_payload(path: &Path, payload: &[u8], mut probe: impl FnMut()) {
    let started = Instant::now();
    loop {
        probe();
        if read_file(path).iter().any(|datagram| datagram.payload == payload) {
            return;
        }
        assert!(
            started.elapsed() < TOOL_DEADLINE,
            "{} never showed {:?} in {}s",
            path.display(),
            String::from_utf8_lossy(payload),
            TOOL_DEADLINE.as_secs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Capture {
    child: Child,
}

impl Capture {
    fn stop(mut self) {
        // SIGINT: the tool finishes the file and exits.
        // SAFETY: kill has no memory preconditions; the pid is our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(started.elapsed() < TOOL_DEADLINE, "the capture tool did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends datagrams on lo while `start_tool` records them into `path`; checks that the reader
/// returns exactly those, in order, with the send gaps.
fn record_and_read_back(
    family_any: &str,
    path: &Path,
    start_tool: impl FnOnce(u16) -> Capture,
    expect_nanoseconds: bool,
) {
    let Ok(receiver) = UdpSocket::bind(format!("{family_any}:0")) else {
        eprintln!("skipping {family_any}: cannot bind on it (IPv6 off on lo?)");
        return;
    };
    let sender = UdpSocket::bind(format!("{family_any}:0")).unwrap();
    let destination = receiver.local_addr().unwrap();
    let source = sender.local_addr().unwrap();
    let capture = start_tool(destination.port());
    wait_for_payload(path, b"probe", || {
        sender.send_to(b"probe", destination).unwrap();
    });

    // Gaps long enough that a loaded machine's scheduling noise stays well below them.
    let gaps_ms = [0u64, 40, 5, 120, 15, 60, 0, 80];
    let mut sent = Vec::new();
    for (index, gap_ms) in gaps_ms.iter().enumerate() {
        std::thread::sleep(Duration::from_millis(*gap_ms));
        let payload = format!("datagram {index} {}", "x".repeat(index * 100)).into_bytes();
        let sent_ns = realtime_ns();
        sender.send_to(&payload, destination).unwrap();
        sent.push((sent_ns, payload));
    }
    wait_for_payload(path, b"end", || {
        sender.send_to(b"end", destination).unwrap();
    });
    capture.stop();

    let got: Vec<Read> = read_file(path)
        .into_iter()
        .filter(|datagram| datagram.payload != b"probe" && datagram.payload != b"end")
        .collect();
    let payloads: Vec<&[u8]> = got.iter().map(|datagram| datagram.payload.as_slice()).collect();
    let expected: Vec<&[u8]> = sent.iter().map(|(_, payload)| payload.as_slice()).collect();
    assert_eq!(payloads, expected, "{}", path.display());
    for datagram in &got {
        assert_eq!(datagram.source, source);
        assert_eq!(datagram.destination, destination);
    }
    for pair in 0..got.len() - 1 {
        let captured_gap = got[pair + 1].timestamp_ns as i64 - got[pair].timestamp_ns as i64;
        let sent_gap = sent[pair + 1].0 as i64 - sent[pair].0 as i64;
        assert!(
            (captured_gap - sent_gap).abs() < 30_000_000,
            "gap {pair}: captured {captured_gap} ns, sent {sent_gap} ns"
        );
    }
    let first_offset = got[0].timestamp_ns as i64 - sent[0].0 as i64;
    assert!(
        first_offset.abs() < 5_000_000_000,
        "capture time {first_offset} ns from the send time"
    );
    if expect_nanoseconds {
        assert!(
            got.iter().any(|datagram| datagram.timestamp_ns % 1_000 != 0),
            "nanosecond stamps read as microseconds"
        );
    }
}

/// A capture tool and how to start it on lo for one UDP port.
struct Tool {
    name: &'static str,
    package: &'static str,
    file_extension: &'static str,
    /// Arguments; `{port}` and `{file}` are replaced.
    args: &'static [&'static str],
    /// Does the tool write nanosecond stamps that the reader must keep?
    nanoseconds: bool,
    magic: [u8; 4],
}

const TCPDUMP: Tool = Tool {
    name: "tcpdump",
    package: "tcpdump",
    file_extension: "pcap",
    // -U: write each packet as it comes, so that polling the file sees it.
    args: &[
        "-i",
        "lo",
        "-n",
        "-U",
        "--time-stamp-precision=nano",
        "-Z",
        "root",
        "-w",
        "{file}",
        "udp port {port}",
    ],
    nanoseconds: true,
    magic: [0x4d, 0x3c, 0xb2, 0xa1],
};

const DUMPCAP: Tool = Tool {
    name: "dumpcap",
    package: "tshark (it brings wireshark-common's dumpcap)",
    file_extension: "pcapng",
    // dumpcap writes pcapng unless -P.
    args: &["-i", "lo", "-q", "-f", "udp port {port}", "-w", "{file}"],
    nanoseconds: false,
    magic: [0x0a, 0x0d, 0x0d, 0x0a],
};

/// Records datagrams sent on lo over IPv4 and IPv6 with `tool` and reads them back.
fn tool_captures_are_read_exactly(tool: &Tool, test: &str) {
    let Some(program) = require(tool.name, tool.package, test) else {
        return;
    };
    if !is_root(test) {
        return;
    }
    let scratch = Scratch::new(test);
    for family in ["127.0.0.1", "[::1]"] {
        let path = scratch.file(&format!("{}-{}.{}", tool.name, family.len(), tool.file_extension));
        let start = |port: u16| {
            let args = tool.args.iter().map(|arg| {
                arg.replace("{port}", &port.to_string())
                    .replace("{file}", &path.display().to_string())
            });
            let child = Command::new(&program)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|error| panic!("start {}: {error}", tool.name));
            Capture { child }
        };
        record_and_read_back(family, &path, start, tool.nanoseconds);
        assert_eq!(
            std::fs::read(&path).unwrap()[..4],
            tool.magic,
            "{} wrote its format",
            tool.name
        );
    }
}

#[test]
fn tcpdump_captures_on_lo_are_read_exactly() {
    tool_captures_are_read_exactly(&TCPDUMP, "tcpdump_captures_on_lo_are_read_exactly");
}

#[test]
fn dumpcap_pcapng_captures_on_lo_are_read_exactly() {
    tool_captures_are_read_exactly(&DUMPCAP, "dumpcap_pcapng_captures_on_lo_are_read_exactly");
}

/// One datagram the writer writes and the tools must show.
struct Written {
    timestamp_ns: u64,
    source: SocketAddr,
    destination: SocketAddr,
    payload: Vec<u8>,
    meta: PacketMeta,
}

fn datagrams_to_write() -> Vec<Written> {
    let pairs: [(&str, &str); 2] = [
        ("192.0.2.10:40000", "198.51.100.7:5005"),
        ("[2001:db8::10]:40001", "[2001:db8:1::7]:5006"),
    ];
    let metas = [
        PacketMeta::received(StampSource::Kernel),
        PacketMeta::sent(StampSource::Departure),
        PacketMeta::received(StampSource::User),
        PacketMeta::sent(StampSource::Hardware),
    ];
    let mut written = Vec::new();
    let mut timestamp_ns = 1_700_000_000_123_456_789u64;
    for (source, destination) in pairs {
        for (index, size) in [0usize, 1, 1472, 65507].into_iter().enumerate() {
            written.push(Written {
                timestamp_ns,
                source: source.parse().unwrap(),
                destination: destination.parse().unwrap(),
                payload: (0..size).map(|byte| (byte * 13 + size) as u8).collect(),
                meta: metas[index],
            });
            timestamp_ns += 1_234_567_891;
        }
    }
    written
}

fn write_file(path: &Path, format: CaptureFormat, link: LinkType, datagrams: &[Written]) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = PcapWriter::new(file, format, link, 262_144).unwrap();
    for datagram in datagrams {
        writer
            .write_datagram(
                datagram.timestamp_ns,
                datagram.source,
                datagram.destination,
                &datagram.payload,
                datagram.meta,
            )
            .unwrap();
    }
    writer.finish().unwrap();
}

/// `datagrams` written in every format and link type, into files in `scratch`.
fn written_files(scratch: &Scratch, datagrams: &[Written]) -> Vec<(CaptureFormat, LinkType, PathBuf)> {
    let mut files = Vec::new();
    for format in [CaptureFormat::Pcap, CaptureFormat::Pcapng] {
        for link in [LinkType::RawIp, LinkType::Ethernet] {
            let path = scratch.file(&format!("{format:?}-{link:?}.cap"));
            write_file(&path, format, link, datagrams);
            files.push((format, link, path));
        }
    }
    files
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// "1700000000.123456789" as ns.
fn epoch_ns(text: &str) -> u64 {
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, "0"));
    assert_eq!(fraction.len(), 9, "nine decimals in {text}");
    seconds.parse::<u64>().unwrap() * 1_000_000_000 + fraction.parse::<u64>().unwrap()
}

fn run_tool(command: &mut Command) -> String {
    let output = command.output().expect("run the tool");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn tshark_reads_what_the_writer_writes() {
    let Some(tshark) = require("tshark", "tshark", "tshark_reads_what_the_writer_writes") else {
        return;
    };
    let datagrams = datagrams_to_write();
    let scratch = Scratch::new("tshark_reads");
    for (format, link, path) in written_files(&scratch, &datagrams) {
        let fields = [
            "frame.time_epoch",
            "ip.src",
            "ipv6.src",
            "ip.dst",
            "ipv6.dst",
            "udp.srcport",
            "udp.dstport",
            "udp.payload",
            "ip.checksum.status",
            "udp.checksum.status",
            "frame.comment",
            "frame.packet_flags_direction",
            "_ws.malformed",
            "_ws.expert.severity",
        ];
        let mut command = Command::new(&tshark);
        command
            .args(["-n", "-r"])
            .arg(&path)
            .args(["-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"])
            .args([
                "-T",
                "fields",
                "-E",
                "separator=|",
                "-E",
                "occurrence=a",
                "-E",
                "aggregator=,",
            ]);
        for field in fields {
            command.args(["-e", field]);
        }
        let output = run_tool(&mut command);
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), datagrams.len(), "{format:?} {link:?}: {output}");
        for (line, datagram) in lines.iter().zip(&datagrams) {
            let columns: Vec<&str> = line.split('|').collect();
            let what = format!("{format:?} {link:?} {}", datagram.source);
            assert_eq!(epoch_ns(columns[0]), datagram.timestamp_ns, "{what}");
            let (source_ip, destination_ip) = if datagram.source.is_ipv4() {
                (columns[1], columns[3])
            } else {
                (columns[2], columns[4])
            };
            assert_eq!(source_ip, datagram.source.ip().to_string(), "{what}");
            assert_eq!(destination_ip, datagram.destination.ip().to_string(), "{what}");
            assert_eq!(columns[5], datagram.source.port().to_string(), "{what}");
            assert_eq!(columns[6], datagram.destination.port().to_string(), "{what}");
            assert_eq!(columns[7], hex(&datagram.payload), "{what}: payload");
            if datagram.source.is_ipv4() {
                assert_eq!(columns[8], "1", "{what}: IPv4 header checksum status (1 = good)");
            }
            assert_eq!(columns[9], "1", "{what}: UDP checksum status (1 = good)");
            if format == CaptureFormat::Pcapng {
                let source = match datagram.meta.stamp_source {
                    StampSource::Kernel => "kernel",
                    StampSource::Hardware => "hardware",
                    StampSource::User => "user",
                    StampSource::Departure => "departure",
                };
                assert_eq!(columns[10], format!("timestamp: {source}"), "{what}");
                let direction = match datagram.meta.direction {
                    udpcom_engine::pcap::Direction::Inbound => "0x00000001",
                    udpcom_engine::pcap::Direction::Outbound => "0x00000002",
                };
                assert_eq!(columns[11], direction, "{what}: epb_flags direction");
            }
            assert_eq!(columns[12], "", "{what}: tshark calls the packet malformed");
            // Expert info: pcapng comments come as "comment" (PI_COMMENT, 0x00100000);
            // nothing may be a warning (PI_WARN, 0x00600000) or an error.
            for severity in columns[13].split(',').filter(|text| !text.is_empty()) {
                let value: u32 = severity.parse().unwrap();
                assert!(value < 0x0060_0000, "{what}: expert info of severity {severity}");
            }
        }
    }
}

#[test]
fn tcpdump_reads_what_the_writer_writes() {
    let Some(tcpdump) = require("tcpdump", "tcpdump", "tcpdump_reads_what_the_writer_writes") else {
        return;
    };
    let datagrams = datagrams_to_write();
    let scratch = Scratch::new("tcpdump_reads");
    for (format, link, path) in written_files(&scratch, &datagrams) {
        let output = run_tool(Command::new(&tcpdump).args(["-r"]).arg(&path).args([
            "-nn",
            "-tt",
            "-vv",
            "--time-stamp-precision=nano",
        ]));
        // -vv prints an IPv4 packet on two lines (IP header, then addresses and UDP), an
        // IPv6 one on one: a packet starts at a line that starts with its time.
        let mut packets: Vec<String> = Vec::new();
        for line in output.lines() {
            match packets.last_mut() {
                Some(packet) if line.starts_with(char::is_whitespace) => packet.push_str(line),
                _ => packets.push(line.to_string()),
            }
        }
        assert_eq!(packets.len(), datagrams.len(), "{format:?} {link:?}: {output}");
        for (packet, datagram) in packets.iter().zip(&datagrams) {
            let what = format!("{format:?} {link:?}: {packet}");
            let time = packet.split_whitespace().next().unwrap();
            assert_eq!(epoch_ns(time), datagram.timestamp_ns, "{what}");
            let endpoint = |address: SocketAddr| format!("{}.{}", address.ip(), address.port());
            let expected = format!(
                "{} > {}: [udp sum ok] UDP, length {}",
                endpoint(datagram.source),
                endpoint(datagram.destination),
                datagram.payload.len()
            );
            assert!(
                packet.ends_with(&expected),
                "{what}\nexpected it to end with: {expected}"
            );
            assert!(!packet.contains("bad"), "{what}");
        }
    }
}
