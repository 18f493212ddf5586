//! The Linux system calls that neither socket2 nor rustix wrap: `sendmmsg` and `recvmmsg` with
//! ancillary data, `sched_setscheduler`, `mlock`, and socket options such as `SO_RXQ_OVFL`.
//!
//! Every `unsafe` block of the crate that talks to the kernel is here, behind safe functions
//! whose borrows keep all pointers valid for the duration of the call.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Most datagrams sent with one `sendmmsg`.
pub const SEND_BATCH: usize = 64;
/// Most datagrams read with one `recvmmsg`.
pub const RECV_BATCH: usize = 16;
/// Receive buffer per datagram: the largest UDP payload fits, so nothing is truncated.
pub const RECV_BUFFER: usize = 65_536;
/// Ancillary-data space per datagram (as u64 words, for alignment).
const CONTROL_WORDS: usize = 32;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A message header with one iovec and, if given, a buffer for ancillary data.
fn message_header(iov: &mut libc::iovec, control: Option<&mut [u64; CONTROL_WORDS]>) -> libc::mmsghdr {
    // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
    let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
    header.msg_hdr.msg_iov = iov;
    header.msg_hdr.msg_iovlen = 1;
    if let Some(control) = control {
        header.msg_hdr.msg_controllen = std::mem::size_of_val(control);
        header.msg_hdr.msg_control = control.as_mut_ptr().cast();
    }
    header
}

/// `recvmmsg(MSG_DONTWAIT | flags)` into `headers`.
///
/// # Safety
/// Every header must be initialized, and the buffers it points at must stay valid (and not be
/// otherwise accessed) until this returns.
unsafe fn recv_messages(
    fd: BorrowedFd<'_>,
    headers: &mut [MaybeUninit<libc::mmsghdr>],
    flags: libc::c_int,
) -> io::Result<usize> {
    // SAFETY: per the contract above; a null timeout is allowed.
    let received = check(unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            headers.as_mut_ptr().cast(),
            headers.len() as u32,
            libc::MSG_DONTWAIT | flags,
            std::ptr::null_mut(),
        )
    })?;
    Ok(received as usize)
}

/// Puts the calling thread under SCHED_FIFO at `priority`.
pub fn set_fifo_priority(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is the calling thread.
    check(unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) }).map(drop)
}

/// Puts the calling thread back under normal scheduling (SCHED_OTHER), at nice -20 where
/// allowed so that other normal threads on its CPU take as little of it as possible.
pub fn set_normal_scheduling() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is the calling thread.
    check(unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) })?;
    // SAFETY: plain call on the calling thread (a thread id is a valid PRIO_PROCESS target).
    // Refused without CAP_SYS_NICE or a high RLIMIT_NICE, which only costs CPU share.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, -20) };
    Ok(())
}

/// The scheduling policy and priority of the calling thread (`libc::SCHED_FIFO`, 80).
pub fn current_scheduling() -> io::Result<(i32, i32)> {
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain call about the calling thread (pid 0), no pointers.
    let policy = check(unsafe { libc::sched_getscheduler(0) })?;
    // SAFETY: about the calling thread; `param` is a valid out-pointer for the call.
    check(unsafe { libc::sched_getparam(0, &mut param) })?;
    Ok((policy, param.sched_priority))
}

/// Locks memory regions into RAM (`mlock`), faulting them in.
pub fn lock_regions(regions: &[(*const u8, usize)]) -> io::Result<()> {
    for &(start, len) in regions {
        // SAFETY: callers pass regions of live allocations they own; mlock only changes how
        // the kernel backs the pages and never reads or writes them.
        unsafe { rustix::mm::mlock(start.cast_mut().cast(), len) }?;
    }
    Ok(())
}

/// Sets an integer socket option the safe crates do not wrap.
fn set_int_option(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int for the duration of the call, and its size is passed.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Asks the kernel to attach its running count of datagrams dropped on this socket
/// (`SO_RXQ_OVFL`) to every received datagram.
pub fn enable_rxq_ovfl(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1)
}

/// Datagrams the kernel dropped on this socket since it was created (`SO_MEMINFO`, the same
/// counter `SO_RXQ_OVFL` reports), read at any time rather than with the next datagram.
pub fn socket_drops(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut info = [0u32; libc::SK_MEMINFO_DROPS as usize + 1];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` and `len` are valid for writes of the size passed in `len`.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    })?;
    Ok(info[libc::SK_MEMINFO_DROPS as usize])
}

/// Sends each payload as one datagram on a connected socket with a single `sendmmsg`
/// (`flags`: `MSG_DONTWAIT` never to block, else 0).
///
/// Returns how many were sent, from the first; like `sendmmsg`, an error means the first
/// payload failed, and a short count means the one after the last sent failed or would
/// block (its error, if any, is reported by the next call).
pub fn send_many(fd: BorrowedFd<'_>, payloads: &[&[u8]], flags: libc::c_int) -> io::Result<usize> {
    let count = payloads.len().min(SEND_BATCH);
    let mut iovecs = [const { MaybeUninit::<libc::iovec>::uninit() }; SEND_BATCH];
    let mut headers = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; SEND_BATCH];
    for i in 0..count {
        let iov = iovecs[i].write(libc::iovec {
            iov_base: payloads[i].as_ptr() as *mut _,
            iov_len: payloads[i].len(),
        });
        headers[i].write(message_header(iov, None));
    }
    // SAFETY: the first `count` headers are initialized and point at iovecs that point into
    // `payloads`; all of them live until the call returns. The kernel only reads payloads.
    let sent = check(unsafe { libc::sendmmsg(fd.as_raw_fd(), headers.as_mut_ptr().cast(), count as u32, flags) })?;
    Ok(sent as usize)
}

/// What the kernel attached to one received datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ancillary {
    /// `SO_RXQ_OVFL`: datagrams dropped on this socket since the option was enabled.
    pub dropped_total: Option<u32>,
    /// `SCM_TIMESTAMPING` software stamp, CLOCK_REALTIME ns.
    pub software_ns: Option<u64>,
    /// `SCM_TIMESTAMPING` raw hardware stamp, ns of the NIC's clock.
    pub hardware_ns: Option<u64>,
}

/// Sets `SO_TIMESTAMPING` to `flags` (`SOF_TIMESTAMPING_*`).
pub fn set_timestamping(fd: BorrowedFd<'_>, flags: u32) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPING, flags as libc::c_int)
}

/// The name of the network interface that has `ip` as one of its addresses.
pub fn interface_with_address(ip: std::net::IpAddr) -> io::Result<Option<String>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we own until freeifaddrs.
    check(unsafe { libc::getifaddrs(&mut list) })?;
    let mut found = None;
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs returned, which is alive; its
        // address, when not null, points at a sockaddr of the family it names.
        unsafe {
            let addr = (*entry).ifa_addr;
            let matches = !addr.is_null()
                && match (i32::from((*addr).sa_family), ip) {
                    (libc::AF_INET, std::net::IpAddr::V4(v4)) => {
                        let sin = &*addr.cast::<libc::sockaddr_in>();
                        u32::from_be(sin.sin_addr.s_addr) == u32::from(v4)
                    }
                    (libc::AF_INET6, std::net::IpAddr::V6(v6)) => {
                        let sin6 = &*addr.cast::<libc::sockaddr_in6>();
                        sin6.sin6_addr.s6_addr == v6.octets()
                    }
                    _ => false,
                };
            if matches {
                found = Some(
                    std::ffi::CStr::from_ptr((*entry).ifa_name)
                        .to_string_lossy()
                        .into_owned(),
                );
                break;
            }
            entry = (*entry).ifa_next;
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once; nothing borrowed from it lives on.
    unsafe { libc::freeifaddrs(list) };
    Ok(found)
}

/// `struct ethtool_ts_info` from <linux/ethtool.h>.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EthtoolTsInfo {
    /// ETHTOOL_GET_TS_INFO.
    pub cmd: u32,
    /// `SOF_TIMESTAMPING_*` flags the interface supports.
    pub so_timestamping: u32,
    /// PTP hardware clock index, -1 for none.
    pub phc_index: i32,
    /// Bit set of supported `HWTSTAMP_TX_*` types.
    pub tx_types: u32,
    /// Reserved by the kernel.
    pub tx_reserved: [u32; 3],
    /// Bit set of supported `HWTSTAMP_FILTER_*` filters.
    pub rx_filters: u32,
    /// Reserved by the kernel.
    pub rx_reserved: [u32; 3],
}

const ETHTOOL_GET_TS_INFO: u32 = 0x41;

/// An `ifreq` naming `interface`, with `ifr_data` pointing at `data`.
fn ifreq_with_data<T>(interface: &str, data: &mut T) -> io::Result<libc::ifreq> {
    // SAFETY: an all-zero ifreq is valid.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = interface.as_bytes();
    if name.len() >= request.ifr_name.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (slot, &byte) in request.ifr_name.iter_mut().zip(name) {
        *slot = byte as libc::c_char;
    }
    request.ifr_ifru.ifru_data = (data as *mut T).cast();
    Ok(request)
}

/// What `interface` can timestamp (`SIOCETHTOOL` / `ETHTOOL_GET_TS_INFO`).
pub fn ethtool_ts_info(fd: BorrowedFd<'_>, interface: &str) -> io::Result<EthtoolTsInfo> {
    let mut info = EthtoolTsInfo {
        cmd: ETHTOOL_GET_TS_INFO,
        ..Default::default()
    };
    let mut request = ifreq_with_data(interface, &mut info)?;
    // SAFETY: `request` names the interface and points at `info`, a correctly laid out
    // ethtool_ts_info that outlives the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCETHTOOL, &mut request) })?;
    Ok(info)
}

/// Turns on hardware timestamping of all transmitted and received packets on `interface`
/// (`SIOCSHWTSTAMP`; needs CAP_NET_ADMIN and a driver that supports it).
pub fn enable_hardware_timestamping(fd: BorrowedFd<'_>, interface: &str) -> io::Result<()> {
    let mut config = libc::hwtstamp_config {
        flags: 0,
        tx_type: libc::HWTSTAMP_TX_ON as libc::c_int,
        rx_filter: libc::HWTSTAMP_FILTER_ALL as libc::c_int,
    };
    let mut request = ifreq_with_data(interface, &mut config)?;
    // SAFETY: `request` names the interface and points at `config`, which outlives the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCSHWTSTAMP, &mut request) }).map(drop)
}

fn timespec_ns(ts: &libc::timespec) -> Option<u64> {
    let ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    (ns != 0).then_some(ns)
}

/// One transmit timestamp read from the socket's error queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxStamp {
    /// `SOF_TIMESTAMPING_OPT_ID` key: the index of the datagram among those sent on the
    /// socket since timestamping was turned on.
    pub key: u32,
    /// Software stamp, CLOCK_REALTIME ns.
    pub software_ns: Option<u64>,
    /// Raw hardware stamp.
    pub hardware_ns: Option<u64>,
}

/// Most transmit timestamps read with one `recvmmsg(MSG_ERRQUEUE)`.
pub const TX_STAMP_BATCH: usize = 64;

/// Reusable buffers for reading transmit timestamps from the error queue.
pub struct ErrQueueBatch {
    control: Box<[[u64; CONTROL_WORDS]]>,
    stamps: [TxStamp; TX_STAMP_BATCH],
    count: usize,
}

impl Default for ErrQueueBatch {
    fn default() -> Self {
        ErrQueueBatch {
            control: vec![[0; CONTROL_WORDS]; TX_STAMP_BATCH].into_boxed_slice(),
            stamps: [TxStamp::default(); TX_STAMP_BATCH],
            count: 0,
        }
    }
}

impl ErrQueueBatch {
    /// Reads up to [`TX_STAMP_BATCH`] entries of the error queue without blocking and keeps
    /// the timestamps among them; `WouldBlock` when the queue is empty.
    pub fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<&[TxStamp]> {
        // With SOF_TIMESTAMPING_OPT_TSONLY the entries carry no payload, only control data.
        let mut scratch = [0u8; 1];
        let mut iovecs = [const { MaybeUninit::<libc::iovec>::uninit() }; TX_STAMP_BATCH];
        let mut headers = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; TX_STAMP_BATCH];
        for (i, control) in self.control.iter_mut().enumerate() {
            let iov = iovecs[i].write(libc::iovec {
                iov_base: scratch.as_mut_ptr().cast(),
                iov_len: 0,
            });
            headers[i].write(message_header(iov, Some(control)));
        }
        // SAFETY: every header was initialized above and points into `scratch` (length 0) and
        // `self.control`, both borrowed for the whole call.
        let received = unsafe { recv_messages(fd, &mut headers, libc::MSG_ERRQUEUE) }?;
        self.count = 0;
        for header in headers.iter().take(received) {
            // SAFETY: initialized above and filled in by the kernel.
            let header = unsafe { header.assume_init_ref() };
            if let Some(stamp) = parse_tx_stamp(&header.msg_hdr) {
                self.stamps[self.count] = stamp;
                self.count += 1;
            }
        }
        Ok(&self.stamps[..self.count])
    }
}

fn parse_tx_stamp(header: &libc::msghdr) -> Option<TxStamp> {
    let (mut stamp, mut is_timestamp) = (TxStamp::default(), false);
    // SAFETY: as in `parse_control`: the kernel wrote the control data of `header`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            let (level, kind) = ((*cmsg).cmsg_level, (*cmsg).cmsg_type);
            if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPING {
                let stamps = libc::CMSG_DATA(cmsg).cast::<[libc::timespec; 3]>().read_unaligned();
                stamp.software_ns = timespec_ns(&stamps[0]);
                stamp.hardware_ns = timespec_ns(&stamps[2]);
            } else if (level == libc::SOL_IP && kind == libc::IP_RECVERR)
                || (level == libc::SOL_IPV6 && kind == libc::IPV6_RECVERR)
            {
                let error = libc::CMSG_DATA(cmsg).cast::<libc::sock_extended_err>().read_unaligned();
                if error.ee_errno == libc::ENOMSG as u32 && error.ee_origin == libc::SO_EE_ORIGIN_TIMESTAMPING {
                    is_timestamp = true;
                    stamp.key = error.ee_data;
                }
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    is_timestamp.then_some(stamp)
}

/// Reusable buffers for `recvmmsg`.
pub struct RecvBatch {
    buffers: Box<[u8]>,
    control: Box<[[u64; CONTROL_WORDS]]>,
    lengths: [usize; RECV_BATCH],
    truncated: [bool; RECV_BATCH],
    ancillary: [Ancillary; RECV_BATCH],
    count: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    /// Allocates the buffers once ([`RECV_BATCH`] × 64 KiB).
    pub fn new() -> Self {
        RecvBatch {
            buffers: vec![0; RECV_BATCH * RECV_BUFFER].into_boxed_slice(),
            control: vec![[0; CONTROL_WORDS]; RECV_BATCH].into_boxed_slice(),
            lengths: [0; RECV_BATCH],
            truncated: [false; RECV_BATCH],
            ancillary: [Ancillary::default(); RECV_BATCH],
            count: 0,
        }
    }

    /// Memory regions of the buffers (for `mlock`).
    pub fn regions(&self) -> [(*const u8, usize); 1] {
        [(self.buffers.as_ptr(), self.buffers.len())]
    }

    /// Reads up to [`RECV_BATCH`] datagrams without blocking (`MSG_DONTWAIT`); returns how
    /// many. `WouldBlock` when none is waiting.
    pub fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        let mut iovecs = [const { MaybeUninit::<libc::iovec>::uninit() }; RECV_BATCH];
        let mut headers = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; RECV_BATCH];
        let chunks = self.buffers.chunks_exact_mut(RECV_BUFFER);
        for (i, (chunk, control)) in chunks.zip(self.control.iter_mut()).enumerate() {
            let iov = iovecs[i].write(libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: RECV_BUFFER,
            });
            headers[i].write(message_header(iov, Some(control)));
        }
        // SAFETY: every header was initialized above and points into `self.buffers` and
        // `self.control`, borrowed mutably for the whole call.
        let received = unsafe { recv_messages(fd, &mut headers, 0) }?;
        for (i, header) in headers.iter().take(received).enumerate() {
            // SAFETY: initialized in the loop above; the kernel filled in lengths and flags.
            let header = unsafe { header.assume_init_ref() };
            self.lengths[i] = header.msg_len as usize;
            self.truncated[i] = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.ancillary[i] = parse_control(&header.msg_hdr);
        }
        self.count = received;
        Ok(received)
    }

    /// Datagram `index` of the last [`recv`](Self::recv): payload, whether it was cut short,
    /// and its ancillary data.
    pub fn datagram(&self, index: usize) -> (&[u8], bool, Ancillary) {
        assert!(index < self.count, "datagram index out of range");
        let start = index * RECV_BUFFER;
        (
            &self.buffers[start..start + self.lengths[index]],
            self.truncated[index],
            self.ancillary[index],
        )
    }
}

fn parse_control(header: &libc::msghdr) -> Ancillary {
    let mut ancillary = Ancillary::default();
    // SAFETY: `header` was filled by recvmmsg, so its control pointer and length describe the
    // ancillary data the kernel wrote into our buffer; CMSG_* walk only inside it, and each
    // payload is read unaligned with its documented type.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            let (level, kind) = ((*cmsg).cmsg_level, (*cmsg).cmsg_type);
            if level == libc::SOL_SOCKET && kind == libc::SO_RXQ_OVFL {
                ancillary.dropped_total = Some(libc::CMSG_DATA(cmsg).cast::<u32>().read_unaligned());
            } else if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPING {
                let stamps = libc::CMSG_DATA(cmsg).cast::<[libc::timespec; 3]>().read_unaligned();
                ancillary.software_ns = timespec_ns(&stamps[0]);
                ancillary.hardware_ns = timespec_ns(&stamps[2]);
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    ancillary
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        (a, b)
    }

    #[test]
    fn send_many_and_recv_batch_round_trip() {
        let (a, b) = pair();
        enable_rxq_ovfl(b.as_fd()).unwrap();
        let payloads: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; i as usize * 100]).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
        assert_eq!(send_many(a.as_fd(), &refs, 0).unwrap(), 20);
        let mut batch = RecvBatch::new();
        let mut seen = Vec::new();
        while seen.len() < 20 {
            match batch.recv(b.as_fd()) {
                Ok(n) => {
                    for i in 0..n {
                        let (payload, truncated, ancillary) = batch.datagram(i);
                        assert!(!truncated);
                        // The kernel attaches the count only once something was dropped.
                        assert_eq!(ancillary.dropped_total, None);
                        seen.push(payload.to_vec());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(seen, payloads);
    }

    #[test]
    fn recv_on_empty_socket_would_block() {
        let (_a, b) = pair();
        let err = RecvBatch::new().recv(b.as_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn largest_ipv4_datagram_fits() {
        let (a, b) = pair();
        let big = vec![7u8; 65_507];
        assert_eq!(send_many(a.as_fd(), &[&big], 0).unwrap(), 1);
        let mut batch = RecvBatch::new();
        loop {
            match batch.recv(b.as_fd()) {
                Ok(_) => break,
                Err(_) => std::thread::yield_now(),
            }
        }
        assert_eq!(batch.datagram(0).0, &big[..]);
    }

    #[test]
    fn rxq_ovfl_counts_kernel_drops() {
        let (a, b) = pair();
        socket2::SockRef::from(&b).set_recv_buffer_size(4096).unwrap();
        enable_rxq_ovfl(b.as_fd()).unwrap();
        let payload = [0u8; 1000];
        for _ in 0..200 {
            let _ = send_many(a.as_fd(), &[&payload], 0);
        }
        let mut batch = RecvBatch::new();
        // The datagrams that fit were queued before anything was dropped, so they carry no
        // count; drain them, and the next datagram carries the drops that happened before it.
        while batch.recv(b.as_fd()).is_ok() {}
        send_many(a.as_fd(), &[&payload], 0).unwrap();
        assert_eq!(batch.recv(b.as_fd()).unwrap(), 1);
        let reported = batch.datagram(0).2.dropped_total.unwrap();
        assert!(reported > 100, "{reported}");
        assert_eq!(socket_drops(b.as_fd()).unwrap(), reported);
    }

    const SOFTWARE_STAMPS: u32 = libc::SOF_TIMESTAMPING_RX_SOFTWARE
        | libc::SOF_TIMESTAMPING_TX_SOFTWARE
        | libc::SOF_TIMESTAMPING_SOFTWARE
        | libc::SOF_TIMESTAMPING_OPT_ID
        | libc::SOF_TIMESTAMPING_OPT_TSONLY;

    #[test]
    fn software_rx_and_tx_timestamps_on_loopback() {
        let (a, b) = pair();
        set_timestamping(a.as_fd(), SOFTWARE_STAMPS).unwrap();
        set_timestamping(b.as_fd(), SOFTWARE_STAMPS).unwrap();
        // The kernel turns on receive stamping for the whole stack from a work queue, a moment
        // after the first socket asks for it; until then datagrams arrive unstamped.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let before = crate::clock::realtime_ns();
        let payloads: Vec<&[u8]> = vec![b"one", b"two", b"three"];
        assert_eq!(send_many(a.as_fd(), &payloads, 0).unwrap(), 3);
        let after = crate::clock::realtime_ns();

        let mut errqueue = ErrQueueBatch::default();
        let stamps = errqueue.recv(a.as_fd()).unwrap().to_vec();
        assert_eq!(stamps.iter().map(|s| s.key).collect::<Vec<_>>(), [0, 1, 2]);
        for stamp in &stamps {
            let ns = stamp.software_ns.unwrap();
            assert!(ns >= before && ns <= after, "{before} <= {ns} <= {after}");
            assert_eq!(stamp.hardware_ns, None);
        }
        assert_eq!(errqueue.recv(a.as_fd()).unwrap_err().kind(), io::ErrorKind::WouldBlock);

        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(b.as_fd()).unwrap(), 3);
        for (i, tx) in stamps.iter().enumerate() {
            let rx = batch.datagram(i).2.software_ns.unwrap();
            assert!(rx >= tx.software_ns.unwrap(), "RX stamp before TX stamp");
        }
    }

    #[test]
    fn loopback_supports_software_stamps_only() {
        let (a, _b) = pair();
        let interface = interface_with_address("127.0.0.1".parse().unwrap()).unwrap().unwrap();
        assert_eq!(interface, "lo");
        let info = ethtool_ts_info(a.as_fd(), &interface).unwrap();
        assert_ne!(info.so_timestamping & libc::SOF_TIMESTAMPING_RX_SOFTWARE, 0);
        assert_eq!(info.so_timestamping & libc::SOF_TIMESTAMPING_RAW_HARDWARE, 0);
        assert_eq!(info.phc_index, -1);
        let err = enable_hardware_timestamping(a.as_fd(), &interface).unwrap_err();
        assert!(
            matches!(err.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL | libc::EPERM)),
            "{err}"
        );
        assert_eq!(interface_with_address("192.0.2.77".parse().unwrap()).unwrap(), None);
    }

    #[test]
    fn scheduling_of_a_normal_thread() {
        assert_eq!(current_scheduling().unwrap().0, libc::SCHED_OTHER);
    }
}
