//! Control messages (ancillary data): a buffer for the kernel to write them into, an iterator
//! over what it wrote, one typed decode, and an encoder for messages to send.
//!
//! Layout on Linux: each control message is a `cmsghdr` (`cmsg_len`, `cmsg_level`,
//! `cmsg_type`) followed by its data; `cmsg_len` counts the header and the data, and the next
//! message starts at `cmsg_len` rounded up to the alignment of `size_t`. When the buffer is too
//! small the kernel sets `MSG_CTRUNC` and cuts the last message short: its `cmsg_len` is then
//! less than its type needs.
//!
//! Everything here works on byte slices cut to the length the kernel reported
//! (`msg_controllen`), never on raw pointers: the walk checks every header against the bytes
//! that are really there, and [`Cmsg::read`] checks the data length against the type's size
//! and reads unaligned, so a short or malformed message is skipped, never read past. The only
//! `unsafe` are the two plain-value copies [`read_plain`] and [`write_plain`]. The parsers the
//! engine uses ([`Ancillary::parse`], [`TxStamp::parse`]) are built on one [`Cmsg::decode`]
//! and tested here on hand-built buffers.

use std::mem::{align_of, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::time::NS_PER_SEC;

/// Types that may be copied from and to any bytes of their size.
///
/// # Safety
/// Every bit pattern must be a valid value, and the type must have no padding bytes (so that
/// writing one initializes every byte it covers): integers, and `repr(C)` structs and arrays
/// of them laid out without gaps.
pub(crate) unsafe trait Plain: Copy {}

// SAFETY: integers accept every bit pattern and have no padding.
unsafe impl Plain for u32 {}
// SAFETY: as above.
unsafe impl Plain for i32 {}
// SAFETY: as above.
unsafe impl Plain for u16 {}
// SAFETY: two i64 fields on 64-bit Linux, no padding (checked below).
unsafe impl Plain for [libc::timespec; 3] {}
// SAFETY: u32, four u8, u32, u32: 16 bytes without padding (checked below).
unsafe impl Plain for libc::sock_extended_err {}
// SAFETY: size_t and two c_int without padding on 64-bit Linux (checked below).
unsafe impl Plain for libc::cmsghdr {}
// SAFETY: c_int and two in_addr (u32): 12 bytes without padding (checked below).
unsafe impl Plain for libc::in_pktinfo {}
// SAFETY: in6_addr (16 bytes) and c_uint: 20 bytes without padding (checked below).
unsafe impl Plain for libc::in6_pktinfo {}

const _: () = {
    assert!(size_of::<libc::timespec>() == 2 * size_of::<i64>());
    assert!(size_of::<libc::sock_extended_err>() == 16);
    assert!(size_of::<libc::cmsghdr>() == size_of::<usize>() + 2 * size_of::<libc::c_int>());
    assert!(size_of::<libc::in_pktinfo>() == 12);
    assert!(size_of::<libc::in6_pktinfo>() == 20);
};

/// Reads a `T` from the start of `bytes`, at any alignment; `None` if `bytes` is shorter.
fn read_plain<T: Plain>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: `bytes` holds at least size_of::<T>() initialized bytes, read unaligned; any bit
    // pattern is a valid T (`Plain`).
    Some(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// Writes `value` at the start of `bytes`, at any alignment; false if `bytes` is shorter.
fn write_plain<T: Plain>(bytes: &mut [u8], value: T) -> bool {
    if bytes.len() < size_of::<T>() {
        return false;
    }
    // SAFETY: `bytes` has room for size_of::<T>() bytes, written unaligned; T has no padding
    // (`Plain`), so every byte written is initialized.
    unsafe { bytes.as_mut_ptr().cast::<T>().write_unaligned(value) };
    true
}

/// Rounds a length up to the alignment of control messages (`CMSG_ALIGN`: `size_t`).
const fn align(len: usize) -> usize {
    (len + size_of::<usize>() - 1) & !(size_of::<usize>() - 1)
}

/// Where a control message's data starts (`CMSG_LEN(0)`).
const DATA_OFFSET: usize = align(size_of::<libc::cmsghdr>());

/// `CMSG_LEN(data_len)`: the `cmsg_len` of a message with `data_len` bytes of data.
const fn cmsg_len(data_len: usize) -> usize {
    DATA_OFFSET + data_len
}

/// `CMSG_SPACE(data_len)`: the room a message with `data_len` bytes of data takes.
const fn cmsg_space(data_len: usize) -> usize {
    DATA_OFFSET + align(data_len)
}

/// Control-data room per message. What the engine asks for takes at most 128 bytes: on a
/// datagram `SCM_TIMESTAMPING` (64), `SO_RXQ_OVFL` (24) and, with `packetInfo`, `IPV6_PKTINFO`
/// (40; `IP_PKTINFO` 32); on an error-queue entry `SCM_TIMESTAMPING` (64) and `IP(V6)_RECVERR`
/// with the offender's address (64). The rest is headroom (UDP_GRO's segment size takes 24
/// more); a message that still does not fit is counted as truncated.
pub(crate) const CONTROL_BYTES: usize = 256;

/// A control-data buffer for one message, aligned for `cmsghdr` as the `CMSG_*` layout
/// assumes.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub(crate) struct ControlBuffer([u8; CONTROL_BYTES]);

const _: () = assert!(align_of::<ControlBuffer>() >= align_of::<libc::cmsghdr>());

impl Default for ControlBuffer {
    fn default() -> Self {
        ControlBuffer([0; CONTROL_BYTES])
    }
}

impl ControlBuffer {
    /// The pointer to put in `msg_control`, for [`CONTROL_BYTES`] bytes.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.0.as_mut_ptr().cast()
    }

    /// The control data of a received message: its first `len` bytes (`msg_controllen` after
    /// the call), never more than the buffer.
    pub(crate) fn filled(&self, len: usize) -> &[u8] {
        &self.0[..len.min(CONTROL_BYTES)]
    }
}

/// One control message: its level and type, and its data as far as `cmsg_len` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cmsg<'a> {
    /// `cmsg_level`: `SOL_SOCKET`, `SOL_IP`, ...
    pub(crate) level: libc::c_int,
    /// `cmsg_type`: `SO_RXQ_OVFL`, `SCM_TIMESTAMPING`, ...
    pub(crate) kind: libc::c_int,
    /// The data (`cmsg_len - CMSG_LEN(0)` bytes).
    pub(crate) data: &'a [u8],
}

impl Cmsg<'_> {
    /// The data as a `T`, if there are at least `size_of::<T>()` bytes (a message the kernel
    /// cut short for lack of room has fewer); read unaligned.
    pub(crate) fn read<T: Plain>(&self) -> Option<T> {
        read_plain(self.data)
    }

    /// What this message says, for the kinds the engine asks for; `None` for any other kind
    /// and for a message too short for its type.
    pub(crate) fn decode(&self) -> Option<Control> {
        match (self.level, self.kind) {
            (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) => self.read::<u32>().map(Control::DroppedTotal),
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING) => {
                // [software, deprecated, raw hardware]; a zero stamp means none.
                let [software, _, hardware] = self.read::<[libc::timespec; 3]>()?;
                Some(Control::Timestamps((timespec_ns(&software), timespec_ns(&hardware))))
            }
            (libc::SOL_IP, libc::IP_RECVERR) | (libc::SOL_IPV6, libc::IPV6_RECVERR) => {
                let error = self.read::<libc::sock_extended_err>()?;
                let is_stamp =
                    error.ee_errno == libc::ENOMSG as u32 && error.ee_origin == libc::SO_EE_ORIGIN_TIMESTAMPING;
                is_stamp.then_some(Control::TxStampKey(error.ee_data))
            }
            (libc::SOL_UDP, libc::UDP_GRO) => {
                // An int; 0 would not cut anything (the buffer is then one datagram).
                let size = self.read::<i32>()?;
                u32::try_from(size).ok().filter(|&s| s > 0).map(Control::GroSegment)
            }
            (libc::SOL_IP, libc::IP_PKTINFO) => {
                // ipi_addr is the destination in the IP header (a group, a broadcast address or
                // ours); ipi_spec_dst is the local address a reply would come from.
                let info = self.read::<libc::in_pktinfo>()?;
                Some(Control::PacketInfo {
                    destination: IpAddr::V4(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr))),
                    interface_index: u32::try_from(info.ipi_ifindex).ok()?,
                })
            }
            (libc::SOL_IPV6, libc::IPV6_PKTINFO) => {
                let info = self.read::<libc::in6_pktinfo>()?;
                Some(Control::PacketInfo {
                    destination: IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)),
                    interface_index: info.ipi6_ifindex,
                })
            }
            _ => None,
        }
    }
}

/// What a control message says, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    /// `SO_RXQ_OVFL`: datagrams the kernel dropped on this socket since the option was
    /// enabled (a running count).
    DroppedTotal(u32),
    /// `SCM_TIMESTAMPING`: (software stamp in CLOCK_REALTIME ns, raw hardware stamp in ns of
    /// the NIC's clock), each `None` when zero.
    Timestamps((Option<u64>, Option<u64>)),
    /// `IP_RECVERR` / `IPV6_RECVERR` of an error-queue entry that is a transmit timestamp
    /// (`ENOMSG`, origin `SO_EE_ORIGIN_TIMESTAMPING`): its `SOF_TIMESTAMPING_OPT_ID` key.
    TxStampKey(u32),
    /// `UDP_GRO`: the buffer holds several datagrams that arrived coalesced, each this many
    /// bytes but the last (which may be shorter).
    GroSegment(u32),
    /// `IP_PKTINFO` / `IPV6_PKTINFO`: the datagram's destination address and the index of the
    /// interface it arrived on.
    PacketInfo {
        /// The destination address of the IP header.
        destination: IpAddr,
        /// The interface it arrived on.
        interface_index: u32,
    },
}

/// A timestamp in ns, `None` for zero or for a value no clock can have.
fn timespec_ns(ts: &libc::timespec) -> Option<u64> {
    let seconds = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok().filter(|&ns| ns < NS_PER_SEC)?;
    let ns = seconds.checked_mul(NS_PER_SEC)?.checked_add(nanos)?;
    (ns != 0).then_some(ns)
}

/// The control messages in the control data of one received message.
#[derive(Clone, Debug)]
pub(crate) struct Cmsgs<'a> {
    /// From the start of the next header to the end of the data.
    rest: &'a [u8],
}

impl<'a> Cmsgs<'a> {
    /// Walks `control`: the bytes the kernel wrote (see [`ControlBuffer::filled`]).
    pub(crate) fn new(control: &'a [u8]) -> Self {
        Cmsgs { rest: control }
    }
}

impl<'a> Iterator for Cmsgs<'a> {
    type Item = Cmsg<'a>;

    fn next(&mut self) -> Option<Cmsg<'a>> {
        // Fewer bytes than a header (the buffer ends mid-header): the end.
        let header: libc::cmsghdr = read_plain(self.rest)?;
        #[allow(clippy::unnecessary_cast, reason = "size_t on glibc, u32 on musl")]
        let len = header.cmsg_len as usize;
        // A length that does not cover its own header, or runs past the data, cannot be
        // followed: stop rather than guess.
        if len < DATA_OFFSET || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let data = &self.rest[DATA_OFFSET..len];
        self.rest = self.rest.get(align(len)..).unwrap_or(&[]);
        Some(Cmsg {
            level: header.cmsg_level,
            kind: header.cmsg_type,
            data,
        })
    }
}

/// Writes control messages for sending into a [`ControlBuffer`], checking room on every push.
pub(crate) struct Encoder<'a> {
    buffer: &'a mut ControlBuffer,
    /// Bytes used so far: the `msg_controllen` to send with.
    len: usize,
}

/// A control message did not fit in what is left of the buffer; nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NoSpace;

impl<'a> Encoder<'a> {
    /// An encoder writing from the start of `buffer`.
    pub(crate) fn new(buffer: &'a mut ControlBuffer) -> Self {
        Encoder { buffer, len: 0 }
    }

    /// Appends one message with `value` as its data, or refuses, writing nothing, when it
    /// does not fit in the room left.
    pub(crate) fn push<T: Plain>(&mut self, level: libc::c_int, kind: libc::c_int, value: T) -> Result<(), NoSpace> {
        let space = cmsg_space(size_of::<T>());
        let slot = self.buffer.0.get_mut(self.len..self.len + space).ok_or(NoSpace)?;
        // Zero the padding too: the bytes sent are then all defined by what was pushed.
        slot.fill(0);
        let header = libc::cmsghdr {
            cmsg_len: cmsg_len(size_of::<T>()) as _,
            cmsg_level: level,
            cmsg_type: kind,
        };
        let written = write_plain(slot, header) && write_plain(&mut slot[DATA_OFFSET..], value);
        debug_assert!(written, "cmsg_space covers the header and the data");
        self.len += space;
        Ok(())
    }

    /// Bytes written: the `msg_controllen` to send with (0 for none).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// What was written, to walk it again.
    #[cfg(test)]
    pub(crate) fn written(&self) -> &[u8] {
        &self.buffer.0[..self.len]
    }
}

/// What the kernel attached to one received datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ancillary {
    /// `SO_RXQ_OVFL`: datagrams dropped on this socket since the option was enabled.
    pub(crate) dropped_total: Option<u32>,
    /// `SCM_TIMESTAMPING` software stamp, CLOCK_REALTIME ns.
    pub(crate) software_ns: Option<u64>,
    /// `SCM_TIMESTAMPING` raw hardware stamp, ns of the NIC's clock.
    pub(crate) hardware_ns: Option<u64>,
    /// `IP_PKTINFO` / `IPV6_PKTINFO`: (destination address, arrival interface index).
    pub(crate) packet_info: Option<(IpAddr, u32)>,
    /// `UDP_GRO`: the buffer is several datagrams of this size (the last may be shorter).
    pub(crate) gro_segment: Option<u32>,
    /// The control data did not fit (`MSG_CTRUNC`): something above may be missing.
    pub(crate) control_truncated: bool,
}

impl Ancillary {
    /// Decodes the control data of a received datagram; `msg_flags` tells truncation.
    pub(crate) fn parse(control: &[u8], msg_flags: libc::c_int) -> Ancillary {
        let mut ancillary = Ancillary {
            control_truncated: msg_flags & libc::MSG_CTRUNC != 0,
            ..Ancillary::default()
        };
        for cmsg in Cmsgs::new(control) {
            match cmsg.decode() {
                Some(Control::DroppedTotal(total)) => ancillary.dropped_total = Some(total),
                Some(Control::Timestamps(stamps)) => (ancillary.software_ns, ancillary.hardware_ns) = stamps,
                Some(Control::PacketInfo {
                    destination,
                    interface_index,
                }) => ancillary.packet_info = Some((destination, interface_index)),
                Some(Control::GroSegment(size)) => ancillary.gro_segment = Some(size),
                Some(Control::TxStampKey(_)) | None => {}
            }
        }
        ancillary
    }
}

/// One transmit timestamp read from the socket's error queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TxStamp {
    /// `SOF_TIMESTAMPING_OPT_ID` key: the index of the datagram among those sent on the
    /// socket since timestamping was turned on.
    pub(crate) key: u32,
    /// Software stamp, CLOCK_REALTIME ns.
    pub(crate) software_ns: Option<u64>,
    /// Raw hardware stamp.
    pub(crate) hardware_ns: Option<u64>,
}

impl TxStamp {
    /// Decodes the control data of an error-queue entry: a transmit stamp if the entry is one
    /// (it names its key), else `None`.
    pub(crate) fn parse(control: &[u8]) -> Option<TxStamp> {
        let (mut stamp, mut key) = (TxStamp::default(), None);
        for cmsg in Cmsgs::new(control) {
            match cmsg.decode() {
                Some(Control::Timestamps(stamps)) => (stamp.software_ns, stamp.hardware_ns) = stamps,
                Some(Control::TxStampKey(found)) => key = Some(found),
                Some(Control::DroppedTotal(_) | Control::PacketInfo { .. } | Control::GroSegment(_)) | None => {}
            }
        }
        key.map(|key| TxStamp { key, ..stamp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Control data as the kernel lays it out, built by hand: each message is (level, type,
    /// data), with `cmsg_len` = CMSG_LEN(data) unless `len` overrides it.
    fn control(messages: &[(libc::c_int, libc::c_int, &[u8], Option<usize>)]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for &(level, kind, data, len) in messages {
            let start = bytes.len();
            bytes.resize(start + cmsg_space(data.len()), 0);
            let header = libc::cmsghdr {
                cmsg_len: len.unwrap_or(cmsg_len(data.len())) as _,
                cmsg_level: level,
                cmsg_type: kind,
            };
            assert!(write_plain(&mut bytes[start..], header));
            bytes[start + DATA_OFFSET..start + DATA_OFFSET + data.len()].copy_from_slice(data);
        }
        bytes
    }

    fn bytes_of<T: Plain>(value: T) -> Vec<u8> {
        let mut bytes = vec![0; size_of::<T>()];
        assert!(write_plain(&mut bytes, value));
        bytes
    }

    fn stamps(software_ns: u64, hardware_ns: u64) -> Vec<u8> {
        let ts = |ns: u64| libc::timespec {
            tv_sec: (ns / NS_PER_SEC) as _,
            tv_nsec: (ns % NS_PER_SEC) as _,
        };
        bytes_of([ts(software_ns), ts(0), ts(hardware_ns)])
    }

    fn stamp_key(key: u32) -> Vec<u8> {
        bytes_of(libc::sock_extended_err {
            ee_errno: libc::ENOMSG as u32,
            ee_origin: libc::SO_EE_ORIGIN_TIMESTAMPING,
            ee_type: 0,
            ee_code: 0,
            ee_pad: 0,
            ee_info: 0,
            ee_data: key,
        })
    }

    #[test]
    fn layout_matches_the_c_macros() {
        for len in [0, 1, 4, 8, 12, 48] {
            // SAFETY: CMSG_LEN and CMSG_SPACE are arithmetic on their argument.
            let (c_len, c_space) = unsafe { (libc::CMSG_LEN(len as u32), libc::CMSG_SPACE(len as u32)) };
            assert_eq!(
                (cmsg_len(len), cmsg_space(len)),
                (c_len as usize, c_space as usize),
                "{len}"
            );
        }
    }

    #[test]
    fn a_received_datagram_with_stamps_and_drop_count() {
        let bytes = control(&[
            (
                libc::SOL_SOCKET,
                libc::SCM_TIMESTAMPING,
                &stamps(1_700_000_000_123_456_789, 42),
                None,
            ),
            (libc::SOL_SOCKET, libc::SO_RXQ_OVFL, &bytes_of(7u32), None),
        ]);
        assert_eq!(bytes.len(), 64 + 24);
        let ancillary = Ancillary::parse(&bytes, 0);
        assert_eq!(
            ancillary,
            Ancillary {
                dropped_total: Some(7),
                software_ns: Some(1_700_000_000_123_456_789),
                hardware_ns: Some(42),
                packet_info: None,
                gro_segment: None,
                control_truncated: false,
            }
        );
        assert!(Ancillary::parse(&bytes, libc::MSG_CTRUNC).control_truncated);
        assert_eq!(Ancillary::parse(&[], 0), Ancillary::default());
    }

    #[test]
    fn a_coalesced_buffer_names_its_segment_size() {
        // UDP_GRO is an int at SOL_UDP, beside the stamp; 0, negative or short: no segments.
        let bytes = control(&[
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamps(9_000, 0), None),
            (libc::SOL_UDP, libc::UDP_GRO, &bytes_of(1472i32), None),
        ]);
        let ancillary = Ancillary::parse(&bytes, 0);
        assert_eq!(
            (ancillary.gro_segment, ancillary.software_ns),
            (Some(1472), Some(9_000))
        );
        for data in [bytes_of(0i32), bytes_of(-5i32), bytes_of(64i32)[..2].to_vec()] {
            let bytes = control(&[(libc::SOL_UDP, libc::UDP_GRO, &data, None)]);
            assert_eq!(Ancillary::parse(&bytes, 0).gro_segment, None, "{data:?}");
        }
        // UDP_GRO is only a segment size at SOL_UDP.
        let bytes = control(&[(libc::SOL_IP, libc::UDP_GRO, &bytes_of(64i32), None)]);
        assert_eq!(Ancillary::parse(&bytes, 0).gro_segment, None);
        // What the sender writes for UDP_SEGMENT: a u16 in CMSG_LEN(2), read back as written.
        let mut buffer = ControlBuffer::default();
        let mut encoder = Encoder::new(&mut buffer);
        encoder.push(libc::SOL_UDP, libc::UDP_SEGMENT, 1472u16).unwrap();
        assert_eq!(encoder.len(), cmsg_space(2));
        let cmsg = Cmsgs::new(encoder.written()).next().unwrap();
        assert_eq!(
            (cmsg.level, cmsg.kind, cmsg.data.len()),
            (libc::SOL_UDP, libc::UDP_SEGMENT, 2)
        );
        assert_eq!(cmsg.read::<u16>(), Some(1472));
    }

    fn pktinfo_v4(ifindex: i32, destination: [u8; 4], spec_dst: [u8; 4]) -> Vec<u8> {
        let in_addr = |octets: [u8; 4]| libc::in_addr {
            s_addr: u32::from_ne_bytes(octets),
        };
        bytes_of(libc::in_pktinfo {
            ipi_ifindex: ifindex,
            ipi_spec_dst: in_addr(spec_dst),
            ipi_addr: in_addr(destination),
        })
    }

    fn pktinfo_v6(ifindex: u32, destination: Ipv6Addr) -> Vec<u8> {
        bytes_of(libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: destination.octets(),
            },
            ipi6_ifindex: ifindex,
        })
    }

    #[test]
    fn packet_info_names_the_destination_and_the_interface() {
        // A datagram to a group: the destination is the group, not the address a reply
        // would come from (ipi_spec_dst); beside a stamp, in either order.
        let bytes = control(&[
            (
                libc::SOL_IP,
                libc::IP_PKTINFO,
                &pktinfo_v4(3, [239, 1, 2, 3], [10, 0, 0, 2]),
                None,
            ),
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamps(5_000, 0), None),
        ]);
        let ancillary = Ancillary::parse(&bytes, 0);
        assert_eq!(ancillary.packet_info, Some(("239.1.2.3".parse().unwrap(), 3)));
        assert_eq!(ancillary.software_ns, Some(5_000));
        let group: Ipv6Addr = "ff3e::8000:1".parse().unwrap();
        let bytes = control(&[(libc::SOL_IPV6, libc::IPV6_PKTINFO, &pktinfo_v6(7, group), None)]);
        assert_eq!(Ancillary::parse(&bytes, 0).packet_info, Some((IpAddr::V6(group), 7)));
        assert_eq!(
            control(&[(libc::SOL_IPV6, libc::IPV6_PKTINFO, &pktinfo_v6(7, group), None)]).len(),
            40
        );
        // Cut short (MSG_CTRUNC), of the wrong level, or with a negative index: none.
        for (level, kind, data) in [
            (
                libc::SOL_IP,
                libc::IP_PKTINFO,
                pktinfo_v4(3, [239, 1, 2, 3], [0; 4])[..8].to_vec(),
            ),
            (libc::SOL_IPV6, libc::IP_PKTINFO, pktinfo_v4(3, [239, 1, 2, 3], [0; 4])),
            (libc::SOL_IP, libc::IP_PKTINFO, pktinfo_v4(-1, [239, 1, 2, 3], [0; 4])),
            (libc::SOL_IPV6, libc::IPV6_PKTINFO, pktinfo_v6(7, group)[..19].to_vec()),
        ] {
            let bytes = control(&[(level, kind, &data, None)]);
            assert_eq!(
                Ancillary::parse(&bytes, 0).packet_info,
                None,
                "{level} {kind} {}",
                data.len()
            );
        }
        // Everything the engine asks for on one datagram fits the buffer with room to spare.
        let bytes = control(&[
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamps(5_000, 0), None),
            (libc::SOL_SOCKET, libc::SO_RXQ_OVFL, &bytes_of(1u32), None),
            (libc::SOL_IPV6, libc::IPV6_PKTINFO, &pktinfo_v6(7, group), None),
        ]);
        assert_eq!(bytes.len(), 128);
        assert!(bytes.len() <= CONTROL_BYTES / 2);
    }

    #[test]
    fn an_error_queue_entry_with_a_transmit_stamp() {
        let bytes = control(&[
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamps(5_000, 0), None),
            (libc::SOL_IP, libc::IP_RECVERR, &stamp_key(3), None),
        ]);
        assert_eq!(
            TxStamp::parse(&bytes),
            Some(TxStamp {
                key: 3,
                software_ns: Some(5_000),
                hardware_ns: None
            })
        );
        // IPv6 sockets report it at SOL_IPV6, with the key first or last.
        let bytes = control(&[
            (libc::SOL_IPV6, libc::IPV6_RECVERR, &stamp_key(9), None),
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamps(6_000, 0), None),
        ]);
        assert_eq!(
            TxStamp::parse(&bytes).map(|s| (s.key, s.software_ns)),
            Some((9, Some(6_000)))
        );
    }

    #[test]
    fn an_error_that_is_not_a_stamp_is_no_stamp() {
        let mut icmp = stamp_key(1);
        icmp[4] = libc::SO_EE_ORIGIN_ICMP; // ee_origin
        let bytes = control(&[
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamps(5_000, 0), None),
            (libc::SOL_IP, libc::IP_RECVERR, &icmp, None),
        ]);
        assert_eq!(TxStamp::parse(&bytes), None);
        // A stamp without its key cannot be matched to a packet either.
        let bytes = control(&[(libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamps(5_000, 0), None)]);
        assert_eq!(TxStamp::parse(&bytes), None);
    }

    #[test]
    fn a_message_shorter_than_its_type_is_skipped_and_the_walk_goes_on() {
        // What the kernel writes when it runs out of room: the header with cmsg_len cut to the
        // bytes that were left (here 8 of the 48 bytes of data).
        let short = stamps(5_000, 0);
        let bytes = control(&[
            (libc::SOL_SOCKET, libc::SO_RXQ_OVFL, &bytes_of(3u32)[..2], None),
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &short[..8], None),
        ]);
        let cmsgs: Vec<Cmsg<'_>> = Cmsgs::new(&bytes).collect();
        assert_eq!(cmsgs.len(), 2);
        assert_eq!(cmsgs[0].data.len(), 2);
        assert_eq!(cmsgs[1].data.len(), 8);
        assert!(cmsgs.iter().all(|c| c.decode().is_none()));
        assert_eq!(Ancillary::parse(&bytes, libc::MSG_CTRUNC).software_ns, None);
        // A short drop count before a whole stamp: the stamp is still found.
        let bytes = control(&[
            (libc::SOL_SOCKET, libc::SO_RXQ_OVFL, &[1], None),
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamps(5_000, 0), None),
        ]);
        let ancillary = Ancillary::parse(&bytes, 0);
        assert_eq!((ancillary.dropped_total, ancillary.software_ns), (None, Some(5_000)));
    }

    #[test]
    fn a_buffer_ending_mid_header_or_with_a_bad_length_ends_the_walk() {
        let whole = control(&[
            (libc::SOL_SOCKET, libc::SO_RXQ_OVFL, &bytes_of(3u32), None),
            (libc::SOL_SOCKET, libc::SO_RXQ_OVFL, &bytes_of(4u32), None),
        ]);
        // Cut anywhere inside the second header: only the first message is seen.
        for cut in 24..24 + DATA_OFFSET {
            let seen: Vec<Control> = Cmsgs::new(&whole[..cut]).filter_map(|c| c.decode()).collect();
            assert_eq!(seen, [Control::DroppedTotal(3)], "cut at {cut}");
        }
        // Cut inside the first header: nothing.
        assert_eq!(Cmsgs::new(&whole[..DATA_OFFSET - 1]).count(), 0);
        // A cmsg_len shorter than a header, or longer than the buffer, cannot be followed.
        for len in [0, DATA_OFFSET - 1, whole.len() + 1, usize::MAX] {
            let bytes = control(&[(libc::SOL_SOCKET, libc::SO_RXQ_OVFL, &bytes_of(3u32), Some(len))]);
            assert_eq!(Cmsgs::new(&bytes).count(), 0, "cmsg_len {len}");
        }
        // The last message's padding may be missing (cmsg_len is exact, not aligned).
        let unpadded = &whole[..24 + cmsg_len(4)];
        assert_eq!(Cmsgs::new(unpadded).count(), 2);
    }

    #[test]
    fn hostile_stamps_do_not_overflow() {
        let ts = |tv_sec: i64, tv_nsec: i64| libc::timespec { tv_sec, tv_nsec };
        assert_eq!(timespec_ns(&ts(-1, 0)), None);
        assert_eq!(timespec_ns(&ts(i64::MAX, 0)), None);
        assert_eq!(timespec_ns(&ts(1, NS_PER_SEC as i64)), None);
        assert_eq!(timespec_ns(&ts(0, -1)), None);
        assert_eq!(timespec_ns(&ts(0, 0)), None);
        assert_eq!(timespec_ns(&ts(2, 5)), Some(2 * NS_PER_SEC + 5));
    }

    #[test]
    fn the_encoder_writes_what_the_iterator_reads_and_refuses_when_full() {
        let mut buffer = ControlBuffer::default();
        let mut encoder = Encoder::new(&mut buffer);
        assert_eq!(encoder.len(), 0);
        // UDP_SEGMENT takes a u16, but the kernel reads an int-sized cmsg for it as well.
        encoder.push(libc::SOL_UDP, libc::UDP_SEGMENT, 1200i32).unwrap();
        encoder.push(libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 5u32).unwrap();
        assert_eq!(encoder.len(), 2 * cmsg_space(4));
        let seen: Vec<(libc::c_int, libc::c_int, Option<i32>)> = Cmsgs::new(encoder.written())
            .map(|c| (c.level, c.kind, c.read::<i32>()))
            .collect();
        assert_eq!(
            seen,
            [
                (libc::SOL_UDP, libc::UDP_SEGMENT, Some(1200)),
                (libc::SOL_SOCKET, libc::SO_RXQ_OVFL, Some(5))
            ]
        );
        // Three 64-byte messages fill all but 16 bytes; a fourth message does not fit, nor
        // does a 24-byte one, and a refused push leaves the length as it was.
        let stamps = [libc::timespec { tv_sec: 1, tv_nsec: 0 }; 3];
        for _ in 0..3 {
            encoder.push(libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, stamps).unwrap();
        }
        assert_eq!(encoder.len(), CONTROL_BYTES - 16);
        assert_eq!(
            encoder.push(libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, stamps),
            Err(NoSpace)
        );
        assert_eq!(encoder.push(libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1u32), Err(NoSpace));
        assert_eq!(encoder.len(), CONTROL_BYTES - 16);
        assert_eq!(Cmsgs::new(encoder.written()).count(), 5);
    }

    #[test]
    fn buffers_and_messages_are_aligned() {
        assert_eq!(align_of::<ControlBuffer>() % align_of::<libc::cmsghdr>(), 0);
        let mut buffer = ControlBuffer::default();
        assert_eq!(buffer.as_mut_ptr() as usize % align_of::<libc::cmsghdr>(), 0);
        // Every message starts at a multiple of size_t, whatever the size of the one before.
        let mut encoder = Encoder::new(&mut buffer);
        encoder.push(libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1u32).unwrap();
        assert_eq!(encoder.len() % size_of::<usize>(), 0);
        encoder
            .push(
                libc::SOL_SOCKET,
                libc::SCM_TIMESTAMPING,
                [libc::timespec { tv_sec: 1, tv_nsec: 0 }; 3],
            )
            .unwrap();
        assert_eq!(encoder.len() % size_of::<usize>(), 0);
        let starts: Vec<usize> = {
            let written = encoder.written();
            let base = written.as_ptr() as usize;
            Cmsgs::new(written)
                .map(|c| c.data.as_ptr() as usize - base - DATA_OFFSET)
                .collect()
        };
        assert_eq!(starts, [0, cmsg_space(4)]);
        // Decoding reads unaligned: data at an odd address still decodes.
        let bytes = control(&[(libc::SOL_SOCKET, libc::SO_RXQ_OVFL, &bytes_of(9u32), None)]);
        let mut odd = vec![0u8; bytes.len() + 1];
        odd[1..].copy_from_slice(&bytes);
        let cmsg = Cmsgs::new(&odd[1..]).next().unwrap();
        assert_eq!(cmsg.decode(), Some(Control::DroppedTotal(9)));
    }
}
