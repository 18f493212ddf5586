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

/// Puts the calling thread under SCHED_FIFO at `priority`.
pub fn set_fifo_priority(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is the calling thread.
    check(unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) }).map(drop)
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

/// Sends each payload as one datagram on a connected socket with a single `sendmmsg`.
///
/// Returns how many were sent, from the first; like `sendmmsg`, an error means the first
/// payload failed, and a short count means the one after the last sent failed or would
/// block (its error, if any, is reported by the next call).
pub fn send_many(fd: BorrowedFd<'_>, payloads: &[&[u8]]) -> io::Result<usize> {
    let count = payloads.len().min(SEND_BATCH);
    let mut iovecs = [const { MaybeUninit::<libc::iovec>::uninit() }; SEND_BATCH];
    let mut headers = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; SEND_BATCH];
    for i in 0..count {
        let iov = iovecs[i].write(libc::iovec {
            iov_base: payloads[i].as_ptr() as *mut _,
            iov_len: payloads[i].len(),
        });
        // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
        let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
        header.msg_hdr.msg_iov = iov;
        header.msg_hdr.msg_iovlen = 1;
        headers[i].write(header);
    }
    // SAFETY: the first `count` headers are initialized and point at iovecs that point into
    // `payloads`; all of them live until the call returns. The kernel only reads payloads.
    let sent = check(unsafe { libc::sendmmsg(fd.as_raw_fd(), headers.as_mut_ptr().cast(), count as u32, 0) })?;
    Ok(sent as usize)
}

/// What the kernel attached to one received datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ancillary {
    /// `SO_RXQ_OVFL`: datagrams dropped on this socket since the option was enabled.
    pub dropped_total: Option<u32>,
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
        for (i, chunk) in self.buffers.chunks_exact_mut(RECV_BUFFER).enumerate() {
            let iov = iovecs[i].write(libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: RECV_BUFFER,
            });
            // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
            let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = self.control[i].as_mut_ptr().cast();
            header.msg_hdr.msg_controllen = std::mem::size_of_val(&self.control[i]);
            headers[i].write(header);
        }
        // SAFETY: all RECV_BATCH headers are initialized and point into `self.buffers` and
        // `self.control`, which are borrowed mutably for the whole call; a null timeout is
        // allowed.
        let received = check(unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                headers.as_mut_ptr().cast(),
                RECV_BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        })? as usize;
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
        assert_eq!(send_many(a.as_fd(), &refs).unwrap(), 20);
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
        assert_eq!(send_many(a.as_fd(), &[&big]).unwrap(), 1);
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
            let _ = send_many(a.as_fd(), &[&payload]);
        }
        let mut batch = RecvBatch::new();
        // The datagrams that fit were queued before anything was dropped, so they carry no
        // count; drain them, and the next datagram carries the drops that happened before it.
        while batch.recv(b.as_fd()).is_ok() {}
        send_many(a.as_fd(), &[&payload]).unwrap();
        assert_eq!(batch.recv(b.as_fd()).unwrap(), 1);
        let reported = batch.datagram(0).2.dropped_total.unwrap();
        assert!(reported > 100, "{reported}");
        assert_eq!(socket_drops(b.as_fd()).unwrap(), reported);
    }

    #[test]
    fn scheduling_of_a_normal_thread() {
        assert_eq!(current_scheduling().unwrap().0, libc::SCHED_OTHER);
    }
}
