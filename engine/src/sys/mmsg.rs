//! Batches of messages: `sendmmsg` of datagrams, `recvmmsg` of datagrams and of the error
//! queue's transmit timestamps, and the message headers they are made of.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::check;
use super::cmsg::{parse_control, parse_tx_stamp, Ancillary, TxStamp};

/// Most datagrams sent with one `sendmmsg`.
pub(crate) const SEND_BATCH: usize = 64;
/// Most datagrams read with one `recvmmsg`.
pub(crate) const RECV_BATCH: usize = 16;
/// Receive buffer per datagram: the largest UDP payload fits, so nothing is truncated.
pub(crate) const RECV_BUFFER: usize = 65_536;
/// Ancillary-data space per datagram (as u64 words, for alignment).
const CONTROL_WORDS: usize = 32;

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

/// Sends each payload as one datagram on a connected socket with a single `sendmmsg`
/// (`flags`: `MSG_DONTWAIT` never to block, else 0).
///
/// Returns how many were sent, from the first; like `sendmmsg`, an error means the first
/// payload failed, and a short count means the one after the last sent failed or would
/// block (its error, if any, is reported by the next call).
pub(crate) fn send_many(fd: BorrowedFd<'_>, payloads: &[&[u8]], flags: libc::c_int) -> io::Result<usize> {
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

/// Most transmit timestamps read with one `recvmmsg(MSG_ERRQUEUE)`.
pub(crate) const TX_STAMP_BATCH: usize = 64;

/// Reusable buffers for reading transmit timestamps from the error queue.
pub(crate) struct ErrQueueBatch {
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
    pub(crate) fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<&[TxStamp]> {
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

/// Reusable buffers for `recvmmsg`.
pub(crate) struct RecvBatch {
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
    pub(crate) fn new() -> Self {
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
    pub(crate) fn regions(&self) -> [(*const u8, usize); 1] {
        [(self.buffers.as_ptr(), self.buffers.len())]
    }

    /// Reads up to [`RECV_BATCH`] datagrams without blocking (`MSG_DONTWAIT`); returns how
    /// many. `WouldBlock` when none is waiting.
    pub(crate) fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
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
    pub(crate) fn datagram(&self, index: usize) -> (&[u8], bool, Ancillary) {
        assert!(index < self.count, "datagram index out of range");
        let start = index * RECV_BUFFER;
        (
            &self.buffers[start..start + self.lengths[index]],
            self.truncated[index],
            self.ancillary[index],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{enable_rxq_ovfl, set_timestamping, socket_drops};
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
        let before = crate::time::realtime_ns();
        let payloads: Vec<&[u8]> = vec![b"one", b"two", b"three"];
        assert_eq!(send_many(a.as_fd(), &payloads, 0).unwrap(), 3);
        let after = crate::time::realtime_ns();

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
}
