//! How fast the pcap module writes and reads: writes a synthetic capture of `--datagrams`
//! UDP datagrams (`--payload` bytes each, alternating IPv4 and IPv6, Ethernet link) in each
//! format to a file, then reads it back from the file with `PcapReader`, and prints one JSON
//! line per format: datagrams/s and MB/s for writing and reading, the file size, and the
//! reader's skip count (0 expected).
//!
//! ```text
//! cargo run --release -p udpcom-engine --example pcap_speed -- [--datagrams 2000000] [--payload 64] [--dir /tmp]
//! ```
//!
//! The file is read once before the timed read so that it comes from the page cache: this
//! measures the parser, not the disk.

mod common;

use std::fs::File;
use std::io::Read;
use std::time::Instant;

use udpcom_engine::pcap::{CaptureFormat, LinkType, PacketMeta, PcapReader, PcapWriter, StampSource};

fn main() {
    let args = common::args(1);
    let datagrams: u64 = args
        .get("datagrams")
        .map_or(2_000_000, |v| v.parse().expect("--datagrams <integer>"));
    let payload_len: usize = args
        .get("payload")
        .map_or(64, |v| v.parse().expect("--payload <bytes>"));
    let dir = args
        .get("dir")
        .cloned()
        .unwrap_or_else(|| std::env::temp_dir().display().to_string());
    let payload = vec![0x5a; payload_len];
    let endpoints = [
        ("10.0.0.1:40000".parse().unwrap(), "10.0.0.2:5005".parse().unwrap()),
        (
            "[2001:db8::1]:40000".parse().unwrap(),
            "[2001:db8::2]:5005".parse().unwrap(),
        ),
    ];

    for format in [CaptureFormat::Pcap, CaptureFormat::Pcapng] {
        let path = std::path::Path::new(&dir).join(format!("udpcom-pcap-speed-{}.{format:?}", std::process::id()));
        let started = Instant::now();
        let mut writer = PcapWriter::new(File::create(&path).unwrap(), format, LinkType::Ethernet, 262_144).unwrap();
        for index in 0..datagrams {
            let (source, destination) = endpoints[(index % 2) as usize];
            let timestamp_ns = 1_700_000_000_000_000_000 + index * 100_000;
            writer
                .write_datagram(
                    timestamp_ns,
                    source,
                    destination,
                    &payload,
                    PacketMeta::received(StampSource::Kernel),
                )
                .unwrap();
        }
        writer.finish().unwrap().sync_all().unwrap();
        let write_s = started.elapsed().as_secs_f64();
        let file_bytes = std::fs::metadata(&path).unwrap().len();

        // Warm the page cache.
        let mut sink = vec![0; 1 << 20];
        let mut file = File::open(&path).unwrap();
        while file.read(&mut sink).unwrap() > 0 {}

        let started = Instant::now();
        let mut reader = PcapReader::new(File::open(&path).unwrap()).unwrap();
        let mut read = 0u64;
        let mut payload_bytes = 0u64;
        while let Some(datagram) = reader.next_datagram().unwrap() {
            read += 1;
            payload_bytes += datagram.payload.len() as u64;
        }
        let read_s = started.elapsed().as_secs_f64();
        assert_eq!(read, datagrams);
        assert_eq!(payload_bytes, datagrams * payload_len as u64);
        std::fs::remove_file(&path).unwrap();
        println!(
            "{{\"format\":\"{format:?}\",\"datagrams\":{datagrams},\"payloadBytes\":{payload_len},\"fileBytes\":{file_bytes},\
             \"writeDatagramsPerSecond\":{:.0},\"writeMBPerSecond\":{:.1},\
             \"readDatagramsPerSecond\":{:.0},\"readMBPerSecond\":{:.1},\"skipped\":{}}}",
            datagrams as f64 / write_s,
            file_bytes as f64 / write_s / 1e6,
            datagrams as f64 / read_s,
            file_bytes as f64 / read_s / 1e6,
            reader.skipped().total()
        );
    }
}
