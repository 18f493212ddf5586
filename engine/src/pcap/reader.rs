//! The streaming reader: framing, format state (pcap header, pcapng sections and interfaces)
//! and timestamps. Block contents are parsed by `pcap-parser`, frames by [`super::decode`].

use std::io::{self, Read};

use pcap_parser::pcapng::{Block, InterfaceDescriptionBlock, OptionCode, SHB_MAGIC};
use pcap_parser::{parse_block_be, parse_block_le, PcapError};

use super::decode::udp_in_frame;
use super::{Datagram, SkipCounts, SkipReason, MAX_BLOCK_BYTES};
use crate::error::{Error, Result};

/// The buffer's working size: it starts at [`FIRST_BUFFER_BYTES`], doubles up to this as data
/// comes, and grows beyond it only for larger blocks.
pub(crate) const INITIAL_BUFFER_BYTES: usize = 256 * 1024;
pub(crate) const FIRST_BUFFER_BYTES: usize = 4 * 1024;
/// A pcapng section may describe at most this many interfaces (each costs a few dozen bytes
/// of memory; the cap keeps a hostile file of tiny IDBs from growing the list without end).
const MAX_INTERFACES_PER_SECTION: usize = 65_536;

const PCAP_HEADER_BYTES: usize = 24;
const PCAP_RECORD_HEADER_BYTES: usize = 16;
/// Record header of the "modified" (Kuznetzov) pcap format: 8 more bytes (ifindex, protocol,
/// packet type, padding).
const PCAP_MODIFIED_RECORD_HEADER_BYTES: usize = 24;
/// Type, length and trailing length of every pcapng block.
const PCAPNG_BLOCK_OVERHEAD_BYTES: usize = 12;
/// Magic numbers as read little-endian from the first four bytes of a file.
const PCAP_MICROS_LE: u32 = 0xa1b2_c3d4;
const PCAP_NANOS_LE: u32 = 0xa1b2_3c4d;
const PCAP_MODIFIED_LE: u32 = 0xa1b2_cd34;
const PCAP_MICROS_BE: u32 = 0xd4c3_b2a1;
const PCAP_NANOS_BE: u32 = 0x4d3c_b2a1;
/// The pcapng byte-order magic as written by a little-endian writer, read little-endian.
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
/// The obsolete pcapng Packet Block, which `pcap-parser` does not decode.
const OBSOLETE_PACKET_BLOCK: u32 = 2;

const NS_PER_SECOND: u64 = 1_000_000_000;

/// Reads the UDP datagrams of a pcap or pcapng file, one at a time, in file order.
///
/// ```no_run
/// # fn main() -> udpcom_engine::Result<()> {
/// use udpcom_engine::pcap::PcapReader;
/// let file = std::fs::File::open("trace.pcapng").expect("open");
/// let mut reader = PcapReader::new(file)?;
/// while let Some(datagram) = reader.next_datagram()? {
///     println!("{} {} -> {}: {} bytes", datagram.timestamp_ns, datagram.source,
///              datagram.destination, datagram.payload.len());
/// }
/// println!("skipped: {:?}", reader.skipped());
/// # Ok(())
/// # }
/// ```
pub struct PcapReader<R: Read> {
    input: Input<R>,
    format: Format,
    skipped: SkipCounts,
    blocks_ignored: u64,
    frames_read: u64,
    /// Timestamp of the last datagram handed out, given to the next one if it has none.
    last_timestamp_ns: u64,
    /// Bytes of the block handed out last, consumed at the next call (the datagram borrows them).
    pending_consume: usize,
    /// Set once the reader has returned an error: it then returns the same again.
    finished: Option<Error>,
}

enum Format {
    Pcap(PcapFile),
    Pcapng(Section),
}

#[derive(Clone, Copy)]
struct PcapFile {
    big_endian: bool,
    nanoseconds: bool,
    record_header_bytes: usize,
    link: u32,
}

/// State of the current pcapng section.
struct Section {
    big_endian: bool,
    interfaces: Vec<Interface>,
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link: u32,
    /// 0: no limit.
    snaplen: u32,
    /// How timestamp units become ns (from `if_tsresol`).
    time_base: TimeBase,
    /// `if_tsoffset`: seconds added to every timestamp.
    offset_seconds: i64,
}

/// The unit of an interface's timestamps. A u128 division costs more than parsing a block,
/// so each resolution gets the cheapest exact way.
#[derive(Clone, Copy, Debug)]
enum TimeBase {
    /// A whole number of ns per unit: 10^-n s for n <= 9.
    NsPerUnit(u64),
    /// 2^-n s: ns = units × 10^9 >> n (rounded down).
    PowerOfTwo(u32),
    /// 10^-n s for n > 9: ns = units × 10^9 / 10^n (rounded down).
    UnitsPerSecond(u128),
}

/// What one record or block held; sizes are of the whole record or block, in bytes.
enum Step {
    /// The clean end of the file.
    End,
    /// A section header or interface description: file structure.
    Structure(usize),
    /// A block that holds no packet.
    Ignored(usize),
    /// A packet that is skipped before its frame is looked at.
    Skipped(usize, SkipReason),
    /// A packet.
    Packet(usize, Frame),
}

/// A packet's frame, without borrowing the buffer.
struct Frame {
    interface_id: u32,
    link: u32,
    /// Where the captured bytes sit in the record or block.
    data: std::ops::Range<usize>,
    cut_by_snaplen: bool,
    original_len: u32,
    /// `None` for a Simple Packet Block, which carries no timestamp.
    timestamp_ns: Option<u64>,
}

impl<R: Read> PcapReader<R> {
    /// Opens a capture: reads the magic number (and for pcap the file header). Fails with
    /// `ERR_UDPCOM_PCAP` if `source` does not start like a pcap or pcapng file, or with the
    /// errno of a read error.
    pub fn new(source: R) -> Result<Self> {
        let mut input = Input::new(source);
        if !input.fill_to(4)? {
            return Err(Error::pcap(
                "truncated file header",
                0,
                format!("the file has {} bytes, too few for a magic number", input.available()),
            ));
        }
        let magic = input.u32_at(0, false);
        let format = match magic {
            SHB_MAGIC => Format::Pcapng(Section {
                big_endian: false,
                interfaces: Vec::new(),
            }),
            PCAP_MICROS_LE | PCAP_NANOS_LE | PCAP_MODIFIED_LE | PCAP_MICROS_BE | PCAP_NANOS_BE => {
                if !input.fill_to(PCAP_HEADER_BYTES)? {
                    return Err(Error::pcap(
                        "truncated file header",
                        0,
                        format!("a pcap header is 24 bytes, the file has {}", input.available()),
                    ));
                }
                let (_, header) = pcap_parser::parse_pcap_header(input.window(PCAP_HEADER_BYTES))
                    .map_err(|_| Error::pcap("bad file header", 0, "pcap-parser rejected the pcap header"))?;
                if header.version_major != 2 {
                    return Err(Error::pcap(
                        "unsupported pcap version",
                        4,
                        format!(
                            "version {}.{}, only 2.x is defined",
                            header.version_major, header.version_minor
                        ),
                    ));
                }
                input.consume(PCAP_HEADER_BYTES);
                Format::Pcap(PcapFile {
                    big_endian: header.is_bigendian(),
                    nanoseconds: header.is_nanosecond_precision(),
                    record_header_bytes: if header.is_modified_format() {
                        PCAP_MODIFIED_RECORD_HEADER_BYTES
                    } else {
                        PCAP_RECORD_HEADER_BYTES
                    },
                    // The upper bits of the field may carry FCS information; the link type is
                    // the low 16.
                    link: (header.network.0 as u32) & 0xffff,
                })
            }
            other => {
                return Err(Error::pcap(
                    "bad magic number",
                    0,
                    format!("{other:#010x} is neither a pcap nor a pcapng magic; not a capture file"),
                ))
            }
        };
        Ok(PcapReader {
            input,
            format,
            skipped: SkipCounts::default(),
            blocks_ignored: 0,
            frames_read: 0,
            last_timestamp_ns: 0,
            pending_consume: 0,
            finished: None,
        })
    }

    /// The next UDP datagram, `None` at the clean end of the file, or an error (`ERR_UDPCOM_PCAP`
    /// for a corrupt or truncated file, an errno code for a read error). After an error or the
    /// end, every further call returns the same.
    ///
    /// Frames that hold no replayable UDP datagram are skipped and counted ([`Self::skipped`]).
    pub fn next_datagram(&mut self) -> Result<Option<Datagram<'_>>> {
        if let Some(error) = &self.finished {
            return Err(error.clone());
        }
        loop {
            self.input.consume(std::mem::take(&mut self.pending_consume));
            let frame_offset = self.input.offset();
            let step = match &mut self.format {
                Format::Pcap(file) => next_pcap_record(&mut self.input, *file),
                Format::Pcapng(section) => next_pcapng_block(&mut self.input, section),
            };
            let (block_bytes, frame) = match step {
                Ok(Step::End) => return Ok(None),
                Ok(Step::Structure(bytes)) => {
                    self.pending_consume = bytes;
                    continue;
                }
                Ok(Step::Ignored(bytes)) => {
                    self.pending_consume = bytes;
                    self.blocks_ignored += 1;
                    continue;
                }
                Ok(Step::Skipped(bytes, reason)) => {
                    self.pending_consume = bytes;
                    self.frames_read += 1;
                    self.skipped.count(reason);
                    continue;
                }
                Ok(Step::Packet(bytes, frame)) => (bytes, frame),
                Err(error) => {
                    self.finished = Some(error.clone());
                    return Err(error);
                }
            };
            self.pending_consume = block_bytes;
            self.frames_read += 1;
            let (timestamp_ns, has_timestamp) = match frame.timestamp_ns {
                Some(stamp) => (stamp, true),
                None => (self.last_timestamp_ns, false),
            };
            let bytes = &self.input.window(block_bytes)[frame.data.clone()];
            match udp_in_frame(frame.link, bytes, frame.cut_by_snaplen) {
                Ok(udp) => {
                    self.last_timestamp_ns = timestamp_ns;
                    let start = frame.data.start + udp.payload.start;
                    let payload = &self.input.window(block_bytes)[start..start + udp.payload.len()];
                    return Ok(Some(Datagram {
                        timestamp_ns,
                        has_timestamp,
                        source: udp.source,
                        destination: udp.destination,
                        payload,
                        frame_offset,
                        original_len: frame.original_len,
                        interface_id: frame.interface_id,
                    }));
                }
                Err(reason) => self.skipped.count(reason),
            }
        }
    }

    /// Frames skipped so far, by reason.
    pub fn skipped(&self) -> &SkipCounts {
        &self.skipped
    }

    /// Packet frames read so far (delivered or skipped).
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// pcapng blocks that carry no packet and were passed over (section and interface headers
    /// are not counted; statistics, name resolution, custom and unknown blocks are).
    pub fn blocks_ignored(&self) -> u64 {
        self.blocks_ignored
    }

    /// Bytes of the file read so far, up to the end of the last datagram handed out.
    pub fn bytes_read(&self) -> u64 {
        self.input.offset() + self.pending_consume as u64
    }

    /// Bytes the reader's buffer holds now (for tests of its memory bound).
    #[cfg(test)]
    pub(crate) fn buffer_bytes(&self) -> usize {
        self.input.buf.len()
    }
}

/// Reads one pcap record.
fn next_pcap_record<R: Read>(input: &mut Input<R>, file: PcapFile) -> Result<Step> {
    let offset = input.offset();
    let header_bytes = file.record_header_bytes;
    if !input.fill_to(header_bytes)? {
        if input.available() == 0 {
            return Ok(Step::End);
        }
        return Err(Error::pcap(
            "truncated record header",
            offset,
            format!(
                "a record header is {header_bytes} bytes, the file ends after {}",
                input.available()
            ),
        ));
    }
    let caplen = input.u32_at(8, file.big_endian) as usize;
    if caplen > MAX_BLOCK_BYTES - header_bytes {
        return Err(Error::pcap(
            "record too large",
            offset,
            format!("captured length {caplen} is beyond the limit of {MAX_BLOCK_BYTES} bytes"),
        ));
    }
    let record_bytes = header_bytes + caplen;
    if !input.fill_to(record_bytes)? {
        return Err(Error::pcap(
            "truncated record",
            offset,
            format!(
                "the record is {record_bytes} bytes, the file ends after {}",
                input.available()
            ),
        ));
    }
    let record = input.window(record_bytes);
    let parsed = if header_bytes == PCAP_MODIFIED_RECORD_HEADER_BYTES {
        pcap_parser::parse_pcap_frame_modified(record)
    } else if file.big_endian {
        pcap_parser::parse_pcap_frame_be(record)
    } else {
        pcap_parser::parse_pcap_frame(record)
    };
    let (_, block) = parsed.map_err(|error| Error::pcap("bad record", offset, describe(&error)))?;
    let fraction_ns = if file.nanoseconds {
        u64::from(block.ts_usec)
    } else {
        u64::from(block.ts_usec) * 1_000
    };
    // u32 seconds and a u32 fraction cannot overflow a u64 of ns.
    let timestamp_ns = u64::from(block.ts_sec) * NS_PER_SECOND + fraction_ns;
    Ok(Step::Packet(
        record_bytes,
        Frame {
            interface_id: 0,
            link: file.link,
            data: header_bytes..record_bytes,
            cut_by_snaplen: block.caplen < block.origlen,
            original_len: block.origlen,
            timestamp_ns: Some(timestamp_ns),
        },
    ))
}

/// Reads one pcapng block.
fn next_pcapng_block<R: Read>(input: &mut Input<R>, section: &mut Section) -> Result<Step> {
    let offset = input.offset();
    if !input.fill_to(8)? {
        if input.available() == 0 {
            return Ok(Step::End);
        }
        return Err(Error::pcap(
            "truncated block header",
            offset,
            format!("a block header is 8 bytes, the file ends after {}", input.available()),
        ));
    }
    let block_type = input.u32_at(0, section.big_endian);
    if block_type == SHB_MAGIC {
        // A new section may change the byte order: its byte-order magic says which.
        if !input.fill_to(12)? {
            return Err(Error::pcap(
                "truncated section header",
                offset,
                format!("the file ends {} bytes into the block", input.available()),
            ));
        }
        section.big_endian = match input.u32_at(8, false) {
            BYTE_ORDER_MAGIC => false,
            magic if magic == BYTE_ORDER_MAGIC.swap_bytes() => true,
            magic => {
                return Err(Error::pcap(
                    "bad byte-order magic",
                    offset,
                    format!("{magic:#010x} in a section header block, expected 0x1a2b3c4d in either byte order"),
                ))
            }
        };
    }
    let block_len = input.u32_at(4, section.big_endian) as usize;
    if block_len < PCAPNG_BLOCK_OVERHEAD_BYTES || block_len % 4 != 0 {
        return Err(Error::pcap(
            "bad block length",
            offset,
            format!(
                "block of type {block_type:#x} says it is {block_len} bytes: \
                 a block is at least 12 bytes and a multiple of 4"
            ),
        ));
    }
    if block_len > MAX_BLOCK_BYTES {
        return Err(Error::pcap(
            "block too large",
            offset,
            format!(
                "block of type {block_type:#x} says it is {block_len} bytes, beyond the limit of {MAX_BLOCK_BYTES}"
            ),
        ));
    }
    if !input.fill_to(block_len)? {
        return Err(Error::pcap(
            "truncated block",
            offset,
            format!(
                "block of type {block_type:#x} is {block_len} bytes, the file ends after {}",
                input.available()
            ),
        ));
    }
    if block_type == OBSOLETE_PACKET_BLOCK {
        return Ok(Step::Skipped(block_len, SkipReason::UnsupportedBlock));
    }
    let block_bytes = input.window(block_len);
    let parsed = if section.big_endian {
        parse_block_be(block_bytes)
    } else {
        parse_block_le(block_bytes)
    };
    let block = match parsed {
        Ok((_, block)) => block,
        // The whole block is there: "incomplete" means a field inside it overruns it.
        Err(pcap_parser::nom::Err::Incomplete(_)) => {
            return Err(Error::pcap(
                "bad block",
                offset,
                format!("in the block of type {block_type:#x}, a length field (captured length, option length) runs past the block's end"),
            ))
        }
        Err(pcap_parser::nom::Err::Error(error) | pcap_parser::nom::Err::Failure(error)) => {
            return Err(Error::pcap(
                "bad block",
                offset,
                format!("block of type {block_type:#x}: {}", describe_pcap_error(&error)),
            ))
        }
    };
    let frame = match block {
        Block::SectionHeader(shb) => {
            if shb.major_version != 1 {
                return Err(Error::pcap(
                    "unsupported pcapng version",
                    offset,
                    format!(
                        "section version {}.{}, only 1.x is defined",
                        shb.major_version, shb.minor_version
                    ),
                ));
            }
            section.interfaces.clear();
            return Ok(Step::Structure(block_len));
        }
        Block::InterfaceDescription(idb) => {
            if section.interfaces.len() >= MAX_INTERFACES_PER_SECTION {
                return Err(Error::pcap(
                    "too many interfaces",
                    offset,
                    format!("a section may describe at most {MAX_INTERFACES_PER_SECTION} interfaces"),
                ));
            }
            let interface = interface_from(&idb, section.big_endian).map_err(|detail| {
                Error::pcap(
                    "bad interface description",
                    offset,
                    format!("interface {}: {detail}", section.interfaces.len()),
                )
            })?;
            section.interfaces.push(interface);
            return Ok(Step::Structure(block_len));
        }
        Block::EnhancedPacket(epb) => {
            let interface = interface_of(section, epb.if_id, offset, "an enhanced")?;
            let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
            let Some(timestamp_ns) = timestamp_ns(units, &interface) else {
                return Ok(Step::Skipped(block_len, SkipReason::TimestampOutOfRange));
            };
            let data_start = epb.data.as_ptr() as usize - block_bytes.as_ptr() as usize;
            // `data` is the captured bytes and their padding to 4 bytes; pcap-parser has
            // checked that the captured length fits in the block.
            let captured = (epb.caplen as usize).min(epb.data.len());
            Frame {
                interface_id: epb.if_id,
                link: interface.link,
                data: data_start..data_start + captured,
                cut_by_snaplen: epb.caplen < epb.origlen,
                original_len: epb.origlen,
                timestamp_ns: Some(timestamp_ns),
            }
        }
        Block::SimplePacket(spb) => {
            let interface = interface_of(section, 0, offset, "a simple")?;
            // The captured length is not stored: it is the original length, cut to the
            // interface's snaplen and to what the block holds.
            let mut captured = (spb.origlen as usize).min(spb.data.len());
            if interface.snaplen != 0 {
                captured = captured.min(interface.snaplen as usize);
            }
            let data_start = spb.data.as_ptr() as usize - block_bytes.as_ptr() as usize;
            Frame {
                interface_id: 0,
                link: interface.link,
                data: data_start..data_start + captured,
                cut_by_snaplen: captured < spb.origlen as usize,
                original_len: spb.origlen,
                timestamp_ns: None,
            }
        }
        _ => return Ok(Step::Ignored(block_len)),
    };
    Ok(Step::Packet(block_len, frame))
}

/// The interface a packet block refers to, or the error of a reference to none.
fn interface_of(section: &Section, interface_id: u32, offset: u64, kind: &str) -> Result<Interface> {
    match section.interfaces.get(interface_id as usize) {
        Some(interface) => Ok(*interface),
        None => Err(Error::pcap(
            "unknown interface",
            offset,
            format!(
                "{kind} packet block refers to interface {interface_id}, but the section has described {} before it",
                section.interfaces.len()
            ),
        )),
    }
}

/// An interface's link type, snaplen and time base, from its description block.
///
/// `if_tsresol` (option 9) is one byte: bit 7 clear, 10^-n seconds; set, 2^-n. `if_tsoffset`
/// (option 14) is a signed 64-bit count of seconds in the section's byte order.
fn interface_from(idb: &InterfaceDescriptionBlock<'_>, big_endian: bool) -> std::result::Result<Interface, String> {
    // Microseconds when the option is absent.
    let mut time_base = TimeBase::NsPerUnit(1_000);
    let mut offset_seconds: i64 = 0;
    for option in &idb.options {
        let value = option
            .as_bytes()
            .map_err(|_| format!("option {} is longer than its value", option.code.0))?;
        if option.code == OptionCode::IfTsresol {
            let Some(&tsresol) = value.first() else {
                return Err("if_tsresol is empty".to_string());
            };
            let exponent = u32::from(tsresol & 0x7f);
            time_base = if tsresol & 0x80 != 0 {
                TimeBase::PowerOfTwo(exponent)
            } else if exponent <= 9 {
                TimeBase::NsPerUnit(10u64.pow(9 - exponent))
            } else {
                let units_per_second = 10u128
                    .checked_pow(exponent)
                    .ok_or_else(|| format!("if_tsresol 10^-{exponent} is finer than this reader can count"))?;
                TimeBase::UnitsPerSecond(units_per_second)
            };
        } else if option.code == OptionCode::IfTsoffset {
            let bytes: [u8; 8] = value
                .get(..8)
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| format!("if_tsoffset has {} bytes, expected 8", value.len()))?;
            offset_seconds = if big_endian {
                i64::from_be_bytes(bytes)
            } else {
                i64::from_le_bytes(bytes)
            };
        }
    }
    Ok(Interface {
        link: u32::from(idb.linktype.0 as u16),
        snaplen: idb.snaplen,
        time_base,
        offset_seconds,
    })
}

/// A pcapng timestamp in ns since the epoch: `units` at the interface's resolution plus its
/// offset, rounded down to the ns; `None` if it does not fit a u64 or falls before 1970.
fn timestamp_ns(units: u64, interface: &Interface) -> Option<u64> {
    // units < 2^64 and 10^9 < 2^30: every product fits a u128.
    let since_offset_ns = match interface.time_base {
        TimeBase::NsPerUnit(ns_per_unit) => u128::from(units) * u128::from(ns_per_unit),
        TimeBase::PowerOfTwo(exponent) => (u128::from(units) * u128::from(NS_PER_SECOND)) >> exponent,
        TimeBase::UnitsPerSecond(units_per_second) => u128::from(units) * u128::from(NS_PER_SECOND) / units_per_second,
    };
    let offset_ns = i128::from(interface.offset_seconds) * i128::from(NS_PER_SECOND);
    let total_ns = i128::try_from(since_offset_ns).ok()? + offset_ns;
    u64::try_from(total_ns).ok()
}

fn describe(error: &pcap_parser::nom::Err<PcapError<&[u8]>>) -> String {
    match error {
        pcap_parser::nom::Err::Incomplete(_) => "a length field runs past the record's end".to_string(),
        pcap_parser::nom::Err::Error(error) | pcap_parser::nom::Err::Failure(error) => describe_pcap_error(error),
    }
}

/// pcap-parser's error, without the input bytes its Display prints.
fn describe_pcap_error(error: &PcapError<&[u8]>) -> String {
    match error {
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("pcap-parser rejected it ({})", kind.description())
        }
        other => format!("pcap-parser rejected it ({other:?})"),
    }
}

/// The source and a buffer holding the bytes from the current offset on.
///
/// The buffer doubles from [`FIRST_BUFFER_BYTES`] to [`INITIAL_BUFFER_BYTES`] as data is read,
/// and beyond that only when it is full of data that one block still needs; so it never
/// exceeds twice the largest block really present (a length field alone makes it grow by at
/// most one doubling past what was read).
struct Input<R> {
    source: R,
    buf: Vec<u8>,
    /// Unconsumed data is `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    at_eof: bool,
}

impl<R: Read> Input<R> {
    fn new(source: R) -> Self {
        Input {
            source,
            buf: Vec::new(),
            start: 0,
            end: 0,
            offset: 0,
            at_eof: false,
        }
    }

    fn available(&self) -> usize {
        self.end - self.start
    }

    fn offset(&self) -> u64 {
        self.offset
    }

    /// The first `len` unconsumed bytes; `fill_to(len)` must have returned true.
    fn window(&self, len: usize) -> &[u8] {
        &self.buf[self.start..self.start + len]
    }

    /// The u32 at `at` bytes past the current offset; `fill_to(at + 4)` must have returned true.
    fn u32_at(&self, at: usize, big_endian: bool) -> u32 {
        let bytes: [u8; 4] = self.window(at + 4)[at..].try_into().unwrap_or([0; 4]);
        if big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        }
    }

    fn consume(&mut self, len: usize) {
        let len = len.min(self.available());
        self.start += len;
        self.offset += len as u64;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // After a large block, give the memory back.
            if self.buf.len() > 4 * INITIAL_BUFFER_BYTES {
                self.buf = Vec::new();
            }
        }
    }

    /// Reads until `wanted` bytes are available; false if the source ends first.
    fn fill_to(&mut self, wanted: usize) -> Result<bool> {
        while self.available() < wanted {
            if self.at_eof {
                return Ok(false);
            }
            if self.end == self.buf.len() {
                if self.start > 0 {
                    self.buf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                }
                // Grow when the buffer is full of needed data, and while it is below its
                // working size (so a small input never costs a large buffer).
                if self.end == self.buf.len() || self.buf.len() < INITIAL_BUFFER_BYTES {
                    let grown_len = (self.buf.len() * 2).clamp(FIRST_BUFFER_BYTES, MAX_BLOCK_BYTES);
                    // A zeroed allocation (calloc) rather than `resize`, which writes every byte.
                    let mut grown = vec![0; grown_len];
                    grown[..self.end].copy_from_slice(&self.buf[..self.end]);
                    self.buf = grown;
                }
                continue;
            }
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => self.at_eof = true,
                Ok(read) => self.end += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(read_error(&error, self.offset + self.available() as u64)),
            }
        }
        Ok(true)
    }
}

fn read_error(error: &io::Error, offset: u64) -> Error {
    match error.raw_os_error() {
        Some(_) => Error::from_io("read", error, &format!("reading a capture file at byte {offset}")),
        // An error of a Read that is not a file (no errno): keep its text.
        None => Error::pcap("read error", offset, error),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::error::code;
    use crate::pcap::linktype;
    use crate::pcap::test_files::{self, Idb, Pcapng, Record};

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    /// A datagram as the tests compare it, owned.
    #[derive(Debug, PartialEq, Eq)]
    struct Got {
        timestamp_ns: u64,
        source: SocketAddr,
        destination: SocketAddr,
        payload: Vec<u8>,
        frame_offset: u64,
        interface_id: u32,
    }

    /// Every datagram until the end or an error, and that error.
    fn read_all<R: Read>(reader: &mut PcapReader<R>) -> (Vec<Got>, Option<Error>) {
        let mut got = Vec::new();
        loop {
            match reader.next_datagram() {
                Ok(Some(datagram)) => got.push(Got {
                    timestamp_ns: datagram.timestamp_ns,
                    source: datagram.source,
                    destination: datagram.destination,
                    payload: datagram.payload.to_vec(),
                    frame_offset: datagram.frame_offset,
                    interface_id: datagram.interface_id,
                }),
                Ok(None) => return (got, None),
                Err(error) => return (got, Some(error)),
            }
        }
    }

    fn read_bytes(file: &[u8]) -> (Vec<Got>, Option<Error>) {
        match PcapReader::new(file) {
            Ok(mut reader) => read_all(&mut reader),
            Err(error) => (Vec::new(), Some(error)),
        }
    }

    fn timestamps(got: &[Got]) -> Vec<u64> {
        got.iter().map(|datagram| datagram.timestamp_ns).collect()
    }

    /// Asserts a pcap error naming `offset` and containing `reason`.
    fn assert_pcap_error(error: Option<Error>, offset: u64, reason: &str) {
        let error = error.expect("an error");
        assert_eq!(error.code, code::PCAP, "{error}");
        assert!(error.message.starts_with("pcap: "), "{}", error.message);
        assert!(
            error.message.contains(&format!(" at byte {offset}: ")),
            "{}",
            error.message
        );
        assert!(error.message.contains(reason), "{}", error.message);
    }

    fn udp_v4(payload: &[u8]) -> Vec<u8> {
        test_files::ip_udp(addr("192.0.2.1:4000"), addr("192.0.2.2:5005"), payload)
    }

    #[test]
    fn pcap_in_both_byte_orders_and_precisions() {
        let first = udp_v4(b"one");
        let second = test_files::ethernet(&[], &udp_v4(b"two"));
        for big_endian in [false, true] {
            for nanoseconds in [false, true] {
                let fraction = if nanoseconds { 123_456_789 } else { 123_456 };
                let raw = test_files::pcap_file(
                    big_endian,
                    nanoseconds,
                    linktype::RAW,
                    65535,
                    &[Record {
                        seconds: 1_700_000_000,
                        fraction,
                        original_len: first.len() as u32,
                        data: &first,
                    }],
                );
                let (got, error) = read_bytes(&raw);
                assert!(error.is_none(), "{error:?}");
                let expected_ns = 1_700_000_000 * NS_PER_SECOND + if nanoseconds { 123_456_789 } else { 123_456_000 };
                assert_eq!(
                    got,
                    [Got {
                        timestamp_ns: expected_ns,
                        source: addr("192.0.2.1:4000"),
                        destination: addr("192.0.2.2:5005"),
                        payload: b"one".to_vec(),
                        frame_offset: 24,
                        interface_id: 0,
                    }],
                    "big_endian {big_endian} nanoseconds {nanoseconds}"
                );

                let ethernet = test_files::pcap_file(
                    big_endian,
                    nanoseconds,
                    linktype::ETHERNET,
                    65535,
                    &[
                        Record {
                            seconds: 1,
                            fraction: 2,
                            original_len: second.len() as u32,
                            data: &second,
                        },
                        Record {
                            seconds: 3,
                            fraction: 4,
                            original_len: second.len() as u32,
                            data: &second,
                        },
                    ],
                );
                let (got, error) = read_bytes(&ethernet);
                assert!(error.is_none());
                let unit = if nanoseconds { 1 } else { 1_000 };
                assert_eq!(
                    timestamps(&got),
                    [NS_PER_SECOND + 2 * unit, 3 * NS_PER_SECOND + 4 * unit]
                );
                assert_eq!(got[1].frame_offset, 24 + 16 + second.len() as u64);
            }
        }
    }

    #[test]
    fn modified_pcap_has_longer_record_headers() {
        let frame = udp_v4(b"kuznetzov");
        let mut file = test_files::pcap_file(false, false, linktype::RAW, 65535, &[]);
        file[..4].copy_from_slice(&0xa1b2_cd34u32.to_le_bytes());
        for value in [5u32, 6, frame.len() as u32, frame.len() as u32, 0, 0] {
            file.extend_from_slice(&value.to_le_bytes());
        }
        file.extend_from_slice(&frame);
        let (got, error) = read_bytes(&file);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(got[0].payload, b"kuznetzov");
        assert_eq!(got[0].timestamp_ns, 5 * NS_PER_SECOND + 6_000);
    }

    #[test]
    fn pcapng_in_both_byte_orders_with_every_kind_of_resolution_and_offset() {
        let frame = udp_v4(b"ng");
        // (if_tsresol, if_tsoffset, units) -> ns
        let cases: [(Option<u8>, Option<i64>, u64, u64); 9] = [
            (None, None, 1_700_000_000_123_456, 1_700_000_000_123_456_000),
            (Some(6), None, 1_500_000, 1_500_000_000),
            (Some(9), None, 1_700_000_000_123_456_789, 1_700_000_000_123_456_789),
            (Some(3), None, 1_234, 1_234_000_000),
            (Some(0), Some(10), 5, 15 * NS_PER_SECOND),
            // Picoseconds: rounded down to the ns.
            (Some(12), None, 1_000_000_000_001_999, 1_000_000_000_001),
            // 2^-30 s: one unit is 0.931 ns; 2^30 units are one second.
            (Some(0x80 | 30), None, (3 << 30) + 1, 3 * NS_PER_SECOND),
            (
                Some(0x80 | 20),
                Some(1_000),
                1 << 19,
                1_000 * NS_PER_SECOND + 500_000_000,
            ),
            (Some(9), Some(-100), 150 * NS_PER_SECOND, 50 * NS_PER_SECOND),
        ];
        for big_endian in [false, true] {
            for (tsresol, tsoffset, units, expected_ns) in cases {
                let mut file = Pcapng::new(big_endian);
                file.idb(Idb {
                    tsresol,
                    tsoffset,
                    ..Idb::new(linktype::RAW)
                });
                let packet_offset = file.len();
                file.epb(0, units, &frame, frame.len() as u32);
                let (got, error) = read_bytes(&file.bytes);
                assert!(error.is_none(), "{error:?}");
                assert_eq!(
                    timestamps(&got),
                    [expected_ns],
                    "tsresol {tsresol:?} tsoffset {tsoffset:?} be {big_endian}"
                );
                assert_eq!(got[0].frame_offset, packet_offset);
                assert_eq!(got[0].payload, b"ng");
            }
        }
    }

    #[test]
    fn pcapng_interfaces_sections_unknown_and_simple_blocks() {
        let v4 = udp_v4(b"raw");
        let v6 = test_files::ip_udp(addr("[2001:db8::1]:1"), addr("[2001:db8::2]:2"), b"eth-v6");
        let mut file = Pcapng::new(false);
        file.idb(Idb::new(linktype::RAW)) // interface 0: µs
            .idb(Idb {
                tsresol: Some(9),
                ..Idb::new(linktype::ETHERNET)
            }) // interface 1: ns
            .idb(Idb::new(linktype::LINUX_SLL2));
        file.block(0x0bad_cafe, &[1, 2, 3, 4, 5]); // unknown
        file.block(5, &[0; 12]); // interface statistics: interface 0, time 0, no counters
        file.epb(1, 1_000_000_007, &test_files::ethernet(&[], &v6), 70)
            .epb(0, 2_000_000, &v4, v4.len() as u32)
            .epb(2, 3_000_000, &test_files::sll2(&v4), 48)
            .spb(&v4, v4.len() as u32);
        // A second section, big-endian, with its own interfaces.
        file.section(true).idb(Idb {
            tsresol: Some(3),
            ..Idb::new(linktype::LINUX_SLL)
        });
        file.epb(0, 4_000, &test_files::sll(&v4), 44);
        let mut reader = PcapReader::new(&file.bytes[..]).unwrap();
        let (got, error) = read_all(&mut reader);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(reader.blocks_ignored(), 2);
        assert_eq!(
            got.iter()
                .map(|datagram| (datagram.interface_id, datagram.payload.as_slice()))
                .collect::<Vec<_>>(),
            [(1, &b"eth-v6"[..]), (0, b"raw"), (2, b"raw"), (0, b"raw"), (0, b"raw")]
        );
        assert_eq!(got[0].source, addr("[2001:db8::1]:1"));
        // The simple packet block has no timestamp: it takes the one before it.
        assert_eq!(
            timestamps(&got),
            [
                1_000_000_007,
                2_000_000_000,
                3_000_000_000,
                3_000_000_000,
                4_000_000_000
            ]
        );
    }

    #[test]
    fn simple_packet_blocks_are_marked_and_cut_to_the_snaplen() {
        let v4 = udp_v4(&[9; 100]);
        let mut file = Pcapng::new(false);
        file.idb(Idb {
            snaplen: 60,
            ..Idb::new(linktype::RAW)
        });
        file.spb(&v4[..60], v4.len() as u32);
        file.spb(&udp_v4(b"short"), 33);
        let mut reader = PcapReader::new(&file.bytes[..]).unwrap();
        let datagram = reader.next_datagram().unwrap().unwrap();
        assert!(!datagram.has_timestamp);
        assert_eq!(datagram.payload, b"short");
        assert_eq!(reader.skipped().truncated, 1);
        assert!(reader.next_datagram().unwrap().is_none());
    }

    #[test]
    fn skipped_frames_are_counted_by_reason() {
        let good = udp_v4(b"good");
        let tcp = test_files::ipv4_tcp();
        let arp = test_files::ethernet_with_type(0x0806, &[0; 28]);
        let (fragment, _) = test_files::ipv4_udp_fragments();
        let long = udp_v4(&[1; 500]);
        let mut file = Pcapng::new(false);
        file.idb(Idb::new(linktype::RAW))
            .idb(Idb::new(linktype::ETHERNET))
            .idb(Idb::new(147)) // a user link type
            .idb(Idb {
                tsoffset: Some(-1_000_000),
                ..Idb::new(linktype::RAW)
            });
        file.epb(0, 1, &tcp, tcp.len() as u32)
            .epb(1, 2, &arp, arp.len() as u32)
            .epb(0, 3, &fragment, fragment.len() as u32)
            .epb(0, 4, &long[..100], long.len() as u32) // cut by the snaplen
            .epb(0, 5, &long[..100], 100) // says it is whole: headers disagree
            .epb(2, 6, &good, good.len() as u32)
            .epb(3, 7, &good, good.len() as u32) // before 1970
            .block(2, &[0; 20]) // obsolete packet block
            .epb(0, 8, &good, good.len() as u32);
        let mut reader = PcapReader::new(&file.bytes[..]).unwrap();
        let (got, error) = read_all(&mut reader);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(got.len(), 1);
        assert_eq!(timestamps(&got), [8_000]);
        let expected = SkipCounts {
            unsupported_link_type: 1,
            not_ip: 1,
            not_udp: 1,
            ip_fragment: 1,
            truncated: 1,
            bad_header: 1,
            timestamp_out_of_range: 1,
            unsupported_block: 1,
        };
        assert_eq!(*reader.skipped(), expected);
        assert_eq!(reader.skipped().total(), 8);
        assert_eq!(reader.frames_read(), 9);
        assert_eq!(reader.bytes_read(), file.len());
    }

    /// A file with two good datagrams and `tail` after them.
    fn pcapng_then(tail: &[u8]) -> (Vec<u8>, u64) {
        let frame = udp_v4(b"before");
        let mut file = Pcapng::new(false);
        file.idb(Idb::new(linktype::RAW))
            .epb(0, 1, &frame, frame.len() as u32)
            .epb(0, 2, &frame, frame.len() as u32);
        let offset = file.len();
        file.bytes.extend_from_slice(tail);
        (file.bytes, offset)
    }

    fn le_block_header(block_type: u32, len: u32) -> Vec<u8> {
        [block_type.to_le_bytes(), len.to_le_bytes()].concat()
    }

    #[test]
    fn every_pcapng_corruption_is_an_error_at_its_offset_after_what_came_before() {
        let frame = udp_v4(b"x");
        let mut epb_caplen_overrun = Pcapng::new(false);
        epb_caplen_overrun.epb(0, 1, &frame, frame.len() as u32);
        let epb = epb_caplen_overrun.bytes[28..].to_vec();
        let mut overrun = epb.clone();
        overrun[20..24].copy_from_slice(&1000u32.to_le_bytes());
        let mut lengths_differ = epb.clone();
        let last = lengths_differ.len() - 4;
        lengths_differ[last..].copy_from_slice(&4u32.to_le_bytes());
        let mut unknown_interface = epb.clone();
        unknown_interface[8..12].copy_from_slice(&7u32.to_le_bytes());
        let mut wrong_bom_section = Pcapng::new(false).bytes;
        wrong_bom_section[8..12].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        let mut version_2 = Pcapng::new(false).bytes;
        version_2[12..14].copy_from_slice(&2u16.to_le_bytes());

        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0x06, 0, 0], "truncated block header"),
            (le_block_header(6, 64), "truncated block"),
            ([le_block_header(6, 64), vec![0; 30]].concat(), "truncated block"),
            (le_block_header(6, 8), "bad block length"),
            (le_block_header(6, 0), "bad block length"),
            (le_block_header(0x0bad, 0), "bad block length"),
            (le_block_header(6, 33), "bad block length"),
            (le_block_header(6, 0xffff_fff0), "block too large"),
            (le_block_header(0x0a0d_0d0a, 28), "truncated section header"),
            (wrong_bom_section, "bad byte-order magic"),
            (version_2, "unsupported pcapng version"),
            (overrun, "bad block"),
            (lengths_differ, "bad block"),
            (unknown_interface, "unknown interface"),
        ];
        for (tail, reason) in cases {
            let (file, offset) = pcapng_then(&tail);
            let mut reader = PcapReader::new(&file[..]).unwrap();
            let (got, error) = read_all(&mut reader);
            assert_eq!(got.len(), 2, "{reason}: what came before is delivered");
            assert_pcap_error(error, offset, reason);
            // The same error again, not a hang or a panic.
            assert_pcap_error(reader.next_datagram().err(), offset, reason);
        }
    }

    #[test]
    fn packets_before_any_interface_are_errors() {
        let frame = udp_v4(b"x");
        let mut file = Pcapng::new(false);
        let offset = file.len();
        file.epb(0, 1, &frame, frame.len() as u32);
        let (got, error) = read_bytes(&file.bytes);
        assert!(got.is_empty());
        assert_pcap_error(error, offset, "interface 0, but the section has described 0");

        let mut file = Pcapng::new(false);
        file.spb(&frame, frame.len() as u32);
        assert_pcap_error(read_bytes(&file.bytes).1, offset, "simple packet block");

        // A new section forgets the interfaces of the one before.
        let mut file = Pcapng::new(false);
        file.idb(Idb::new(linktype::RAW)).section(false);
        let offset = file.len();
        file.epb(0, 1, &frame, frame.len() as u32);
        assert_pcap_error(read_bytes(&file.bytes).1, offset, "unknown interface");
    }

    #[test]
    fn bad_interface_descriptions_are_errors() {
        let mut tsresol_too_fine = Pcapng::new(false);
        let offset = tsresol_too_fine.len();
        tsresol_too_fine.idb(Idb {
            tsresol: Some(40),
            ..Idb::new(linktype::RAW)
        });
        assert_pcap_error(read_bytes(&tsresol_too_fine.bytes).1, offset, "if_tsresol 10^-40");

        let mut short_offset = Pcapng::new(false);
        let mut body = vec![101, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&[14, 0, 4, 0, 1, 2, 3, 4, 0, 0, 0, 0]);
        short_offset.block(1, &body);
        assert_pcap_error(read_bytes(&short_offset.bytes).1, offset, "if_tsoffset has 4 bytes");
    }

    #[test]
    fn every_pcap_corruption_is_an_error_at_its_offset_after_what_came_before() {
        let frame = udp_v4(b"before");
        let good = Record {
            seconds: 1,
            fraction: 0,
            original_len: frame.len() as u32,
            data: &frame,
        };
        let file = test_files::pcap_file(false, true, linktype::RAW, 65535, &[good]);
        let offset = file.len() as u64;
        let record_header = |caplen: u32| [1u32, 0, caplen, caplen].map(u32::to_le_bytes).concat();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![1, 2, 3, 4, 5], "truncated record header"),
            (record_header(100), "truncated record"),
            ([record_header(100), vec![0x45; 99]].concat(), "truncated record"),
            (record_header(u32::MAX), "record too large"),
        ];
        for (tail, reason) in cases {
            let (got, error) = read_bytes(&[file.clone(), tail].concat());
            assert_eq!(got.len(), 1, "{reason}");
            assert_pcap_error(error, offset, reason);
        }
    }

    #[test]
    fn bad_starts_are_errors_at_byte_0() {
        assert_pcap_error(read_bytes(b"").1, 0, "truncated file header");
        assert_pcap_error(read_bytes(b"\xd4\xc3").1, 0, "truncated file header");
        assert_pcap_error(
            read_bytes(b"\xd4\xc3\xb2\xa1\x02\x00").1,
            0,
            "a pcap header is 24 bytes",
        );
        assert_pcap_error(read_bytes(b"GET / HTTP/1.1\r\n").1, 0, "bad magic number");
        let mut version_1 = test_files::pcap_file(false, false, linktype::RAW, 65535, &[]);
        version_1[4] = 1;
        assert_pcap_error(read_bytes(&version_1).1, 4, "unsupported pcap version");
    }

    /// A source that hands out at most `chunk` bytes per read.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let len = buf.len().min(self.chunk).min(self.data.len());
            buf[..len].copy_from_slice(&self.data[..len]);
            self.data = &self.data[len..];
            Ok(len)
        }
    }

    #[test]
    fn blocks_larger_than_the_buffer_and_short_reads() {
        let big = udp_v4(&[0xab; 60_000]);
        let mut file = Pcapng::new(false);
        file.idb(Idb::new(linktype::RAW));
        file.block(0x0bad, &vec![7; 3 * INITIAL_BUFFER_BYTES]);
        for units in 0..10 {
            file.epb(0, units, &big, big.len() as u32);
        }
        let expected = read_bytes(&file.bytes);
        assert_eq!(expected.0.len(), 10);
        assert!(expected.1.is_none());
        for chunk in [1, 7, 4096, 1 << 20] {
            let mut reader = PcapReader::new(Trickle {
                data: &file.bytes,
                chunk,
            })
            .unwrap();
            let got = read_all(&mut reader);
            assert_eq!(got.0, expected.0, "chunk {chunk}");
            assert!(got.1.is_none());
            assert_eq!(reader.blocks_ignored(), 1);
            assert!(
                reader.buffer_bytes() <= 4 * INITIAL_BUFFER_BYTES,
                "the buffer shrinks back"
            );
        }
    }

    #[test]
    fn a_huge_length_field_allocates_only_what_the_file_holds() {
        let (file, offset) = pcapng_then(&[le_block_header(6, 200 << 20), vec![0; 1000]].concat());
        let mut reader = PcapReader::new(&file[..]).unwrap();
        let (got, error) = read_all(&mut reader);
        assert_eq!(got.len(), 2);
        assert_pcap_error(error, offset, "truncated block");
        assert!(
            reader.buffer_bytes() <= 2 * INITIAL_BUFFER_BYTES,
            "{}",
            reader.buffer_bytes()
        );
    }

    #[test]
    fn reads_from_a_file() {
        let frame = udp_v4(b"on disk");
        let mut file = Pcapng::new(false);
        file.idb(Idb::new(linktype::RAW)).epb(0, 42, &frame, frame.len() as u32);
        let path = std::env::temp_dir().join(format!("udpcom-pcap-reader-{}.pcapng", std::process::id()));
        std::fs::write(&path, &file.bytes).unwrap();
        let mut reader = PcapReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let (got, error) = read_all(&mut reader);
        std::fs::remove_file(&path).unwrap();
        assert!(error.is_none());
        assert_eq!(got[0].payload, b"on disk");
        assert_eq!(got[0].timestamp_ns, 42_000);
    }

    #[test]
    fn read_errors_carry_the_errno() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(libc::EIO))
            }
        }
        let error = PcapReader::new(Failing).err().unwrap();
        assert_eq!(error.code, "EIO");
        assert_eq!(error.os.unwrap().syscall, "read");
    }
}
