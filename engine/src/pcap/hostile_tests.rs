//! The reader against hostile input: arbitrary bytes and valid files mutated at random (bit
//! flips, truncations, length fields set to edge values, bytes inserted and removed), from a
//! fixed seed. Each file must be read to its end or to an error without a panic, within a
//! bounded number of calls (no loop on a zero-length block) and a bounded buffer.
//!
//! `cargo +nightly fuzz run pcap_reader` (engine/fuzz, `scripts/fuzz-pcap.sh`) runs the same
//! check for longer, guided by coverage; inputs it found are kept as regression tests below.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use super::reader::FIRST_BUFFER_BYTES;
use super::test_files::{self, Idb, Pcapng, Record, Vlan};
use super::{linktype, CaptureFormat, LinkType, PacketMeta, PcapReader, PcapWriter, StampSource};

/// xorshift64*: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// Reads `file` to the end or to an error and checks the bounds; returns the datagrams read.
pub(crate) fn read_hostile(file: &[u8]) -> usize {
    let Ok(mut reader) = PcapReader::new(file) else {
        return 0;
    };
    // Every call that returns consumes at least one 12-byte block or 16-byte record.
    let max_calls = file.len() / 12 + 2;
    let mut datagrams = 0;
    for _ in 0..max_calls {
        match reader.next_datagram() {
            Ok(Some(datagram)) => {
                assert!(datagram.payload.len() <= file.len());
                datagrams += 1;
            }
            Ok(None) | Err(_) => {
                // The buffer holds at most twice what was read, whatever the length fields say.
                let bound = (2 * file.len()).max(FIRST_BUFFER_BYTES);
                let buffer = reader.buffer_bytes();
                assert!(buffer <= bound, "buffer {buffer} for {} bytes", file.len());
                return datagrams;
            }
        }
    }
    panic!("no end after {max_calls} calls on a file of {} bytes", file.len());
}

/// Valid files of every kind the reader knows, to mutate.
fn seed_files() -> Vec<Vec<u8>> {
    let v4 = test_files::ip_udp(
        "10.0.0.1:1000".parse().unwrap(),
        "10.0.0.2:2000".parse().unwrap(),
        b"payload-v4",
    );
    let v6 = test_files::ip_udp(
        "[fe80::1]:1000".parse().unwrap(),
        "[fe80::2]:2000".parse().unwrap(),
        b"payload-v6",
    );
    let mut files = Vec::new();
    for big_endian in [false, true] {
        for nanoseconds in [false, true] {
            let ethernet = test_files::ethernet(&[Vlan::Service(3), Vlan::Customer(4)], &v6);
            let records = [
                Record {
                    seconds: 10,
                    fraction: 20,
                    original_len: v4.len() as u32,
                    data: &v4,
                },
                Record {
                    seconds: 11,
                    fraction: 21,
                    original_len: 200,
                    data: &v4[..20],
                },
            ];
            files.push(test_files::pcap_file(
                big_endian,
                nanoseconds,
                linktype::RAW,
                65535,
                &records,
            ));
            let eth_records = [Record {
                seconds: 1,
                fraction: 2,
                original_len: ethernet.len() as u32,
                data: &ethernet,
            }];
            files.push(test_files::pcap_file(
                big_endian,
                nanoseconds,
                linktype::ETHERNET,
                65535,
                &eth_records,
            ));
        }
        let mut file = Pcapng::new(big_endian);
        file.idb(Idb {
            tsresol: Some(9),
            tsoffset: Some(7),
            ..Idb::new(linktype::ETHERNET)
        })
        .idb(Idb {
            tsresol: Some(0x80 | 20),
            ..Idb::new(linktype::LINUX_SLL)
        })
        .idb(Idb::new(linktype::LINUX_SLL2))
        .epb(0, 5, &test_files::ethernet(&[Vlan::Customer(9)], &v4), 60)
        .epb(1, 6, &test_files::sll(&v6), 80)
        .epb(2, 7, &test_files::sll2(&v4), 80)
        .block(5, &[0; 12])
        .spb(&test_files::ethernet(&[], &v4), 60)
        .section(!big_endian)
        .idb(Idb::new(linktype::NULL))
        .epb(0, 8, &test_files::loopback(&v4, false), 60);
        files.push(file.bytes);
    }
    for format in [CaptureFormat::Pcap, CaptureFormat::Pcapng] {
        for link in [LinkType::RawIp, LinkType::Ethernet] {
            let mut writer = PcapWriter::new(Vec::new(), format, link, 128).unwrap();
            for (index, payload_len) in [0usize, 3, 200].into_iter().enumerate() {
                let (source, destination) = if index % 2 == 0 {
                    ("10.1.1.1:1", "10.1.1.2:2")
                } else {
                    ("[::1]:1", "[::2]:2")
                };
                writer
                    .write_datagram(
                        index as u64 * 1_000,
                        source.parse().unwrap(),
                        destination.parse().unwrap(),
                        &vec![index as u8; payload_len],
                        PacketMeta::received(StampSource::Kernel),
                    )
                    .unwrap();
            }
            files.push(writer.finish().unwrap());
        }
    }
    files
}

/// Values that make length and count fields interesting.
const EDGE_U32: [u32; 12] = [
    0,
    1,
    3,
    4,
    8,
    11,
    12,
    16,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fff0,
    0xffff_ffff,
];

fn mutate(rng: &mut Rng, file: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 => {
                let bits = file.len() * 8;
                if bits > 0 {
                    let bit = rng.below(bits);
                    file[bit / 8] ^= 1 << (bit % 8);
                }
            }
            1 => {
                let cut = rng.below(file.len() + 1);
                file.truncate(cut);
            }
            2 if file.len() >= 4 => {
                // A u32 field (aligned, as pcapng fields are) set to an edge value or one near
                // the file's length, in either byte order.
                let at = rng.below(file.len() / 4) * 4;
                let value = if rng.below(2) == 0 {
                    EDGE_U32[rng.below(EDGE_U32.len())]
                } else {
                    (file.len() as u32).wrapping_add(rng.below(16) as u32).wrapping_sub(8)
                };
                let bytes = if rng.below(2) == 0 {
                    value.to_le_bytes()
                } else {
                    value.to_be_bytes()
                };
                file[at..at + 4].copy_from_slice(&bytes);
            }
            3 => {
                let at = rng.below(file.len() + 1);
                let inserted: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                file.splice(at..at, inserted);
            }
            4 if !file.is_empty() => {
                let at = rng.below(file.len());
                let end = (at + 1 + rng.below(16)).min(file.len());
                file.drain(at..end);
            }
            _ => {
                if !file.is_empty() {
                    let at = rng.below(file.len());
                    file[at] = rng.next() as u8;
                }
            }
        }
    }
}

fn check(file: &[u8], what: &str) {
    if catch_unwind(AssertUnwindSafe(|| read_hostile(file))).is_err() {
        panic!(
            "{what}: the reader failed on this input ({} bytes): {:02x?}",
            file.len(),
            file
        );
    }
}

/// Runs `iterations` rounds, or fewer if `budget` runs out (a loaded machine); returns how
/// many ran.
fn run(iterations: usize, budget: Duration, mut round: impl FnMut(usize)) -> usize {
    let started = Instant::now();
    for iteration in 0..iterations {
        if started.elapsed() > budget {
            return iteration;
        }
        round(iteration);
    }
    iterations
}

#[test]
fn mutated_valid_files_never_panic_hang_or_overallocate() {
    let seeds = seed_files();
    for seed in &seeds {
        assert!(read_hostile(seed) > 0, "every seed file holds datagrams");
    }
    let mut rng = Rng(0x5eed_0f9c_4a17);
    let ran = run(100_000, Duration::from_secs(8), |iteration| {
        let mut file = seeds[iteration % seeds.len()].clone();
        mutate(&mut rng, &mut file);
        check(&file, &format!("mutation {iteration}"));
    });
    eprintln!("mutated files read: {ran}");
    assert!(ran >= 1_000, "only {ran} mutated files in the time budget");
}

#[test]
fn arbitrary_bytes_never_panic_hang_or_overallocate() {
    let magics: [&[u8]; 4] = [
        &[0x0a, 0x0d, 0x0d, 0x0a],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        &[0x4d, 0x3c, 0xb2, 0xa1],
        &[0xa1, 0xb2, 0xc3, 0xd4],
    ];
    let mut rng = Rng(0xa5b1_7a4e);
    let ran = run(50_000, Duration::from_secs(5), |iteration| {
        let len = rng.below(600);
        let mut file: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Most random files fail at the magic; give most of them a real one.
        if rng.below(4) != 0 && file.len() >= 4 {
            file[..4].copy_from_slice(magics[rng.below(magics.len())]);
        }
        if rng.below(2) == 0 && file.len() >= 12 {
            file[8..12].copy_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        }
        check(&file, &format!("random file {iteration}"));
    });
    eprintln!("random files read: {ran}");
    assert!(ran >= 1_000);
}

/// Writes the seed files into `$UDPCOM_PCAP_SEED_DIR`, as the fuzzer's starting corpus
/// (`scripts/fuzz-pcap.sh` runs it).
#[test]
#[ignore = "writes files; run by scripts/fuzz-pcap.sh"]
fn write_fuzz_seeds() {
    let dir = std::env::var("UDPCOM_PCAP_SEED_DIR").expect("UDPCOM_PCAP_SEED_DIR names the corpus directory");
    for (index, file) in seed_files().iter().enumerate() {
        std::fs::write(std::path::Path::new(&dir).join(format!("seed-{index:02}")), file).unwrap();
    }
}
