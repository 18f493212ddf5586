//! Batches of messages: `sendmmsg` of datagrams (to the connected peer, or to an address per
//! datagram), `recvmmsg` of datagrams with their senders' addresses and control data, and
//! `recvmmsg(MSG_ERRQUEUE)` of transmit timestamps.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cmsg::{Ancillary, ControlBuffer, TxStamp, CONTROL_BYTES};
use super::{check, peer_from_storage, RawSockAddr};
use crate::addr::PeerAddr;

/// Most datagrams sent with one `sendmmsg`.
pub(crate) const SEND_BATCH: usize = 64;
/// Most datagrams read with one `recvmmsg`.
pub(crate) const RECV_BATCH: usize = 16;
/// Receive buffer per datagram: the largest UDP payload fits, so nothing is truncated.
pub(crate) const RECV_BUFFER: usize = 65_536;
/// Most transmit timestamps read with one `recvmmsg(MSG_ERRQUEUE)`.
pub(crate) const TX_STAMP_BATCH: usize = 64;

/// A message header for one buffer, without address or control data.
fn message_header(iov: &mut libc::iovec) -> libc::mmsghdr {
    // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
    let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
    header.msg_hdr.msg_iov = iov;
    header.msg_hdr.msg_iovlen = 1;
    header
}

/// Writes `destination` (none, or the empty address: no address in the message) into `name`
/// and points `header` at it.
pub(super) fn address_to(
    header: &mut libc::mmsghdr,
    name: &mut MaybeUninit<RawSockAddr>,
    destination: Option<&PeerAddr>,
) {
    if let Some(raw) = destination.and_then(RawSockAddr::from_peer) {
        let name = name.write(raw);
        header.msg_hdr.msg_name = name.as_ptr();
        header.msg_hdr.msg_namelen = name.len;
    }
}

/// Points `header` at `control` for the kernel to write control data into.
fn with_control(header: &mut libc::mmsghdr, control: &mut ControlBuffer) {
    header.msg_hdr.msg_control = control.as_mut_ptr();
    header.msg_hdr.msg_controllen = CONTROL_BYTES;
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

/// Sends each payload as one datagram with a single `sendmmsg` (`flags`: `MSG_DONTWAIT` never
/// to block, else 0).
///
/// `destinations`: `None` on a connected socket, which sends every datagram to its peer with
/// no address in the message (the fast path: no per-datagram address work); otherwise one
/// address per payload, which may differ from one datagram to the next. An empty address sends
/// without one, which an unconnected socket refuses (`EDESTADDRREQ`).
///
/// Returns how many were sent, from the first; like `sendmmsg`, an error means the first
/// payload failed, and a short count means the one after the last sent failed or would
/// block (its error, if any, is reported by the next call).
pub(crate) fn send_many(
    fd: BorrowedFd<'_>,
    payloads: &[&[u8]],
    destinations: Option<&[PeerAddr]>,
    flags: libc::c_int,
) -> io::Result<usize> {
    let count = payloads.len().min(SEND_BATCH);
    debug_assert!(destinations.is_none_or(|d| d.len() >= count), "an address per payload");
    let mut iovecs = [const { MaybeUninit::<libc::iovec>::uninit() }; SEND_BATCH];
    let mut names = [const { MaybeUninit::<RawSockAddr>::uninit() }; SEND_BATCH];
    let mut headers = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; SEND_BATCH];
    for i in 0..count {
        let iov = iovecs[i].write(libc::iovec {
            iov_base: payloads[i].as_ptr() as *mut _,
            iov_len: payloads[i].len(),
        });
        let mut header = message_header(iov);
        address_to(&mut header, &mut names[i], destinations.and_then(|d| d.get(i)));
        headers[i].write(header);
    }
    // SAFETY: the first `count` headers are initialized and point at iovecs that point into
    // `payloads`, and at addresses in `names`; all of them live until the call returns. The
    // kernel only reads payloads and addresses.
    let sent = check(unsafe { libc::sendmmsg(fd.as_raw_fd(), headers.as_mut_ptr().cast(), count as u32, flags) })?;
    Ok(sent as usize)
}

/// Reusable buffers for reading transmit timestamps from the error queue.
pub(crate) struct ErrQueueBatch {
    control: Box<[ControlBuffer]>,
    stamps: [TxStamp; TX_STAMP_BATCH],
    count: usize,
}

impl Default for ErrQueueBatch {
    fn default() -> Self {
        ErrQueueBatch {
            control: vec![ControlBuffer::default(); TX_STAMP_BATCH].into_boxed_slice(),
            stamps: [TxStamp::default(); TX_STAMP_BATCH],
            count: 0,
        }
    }
}

impl ErrQueueBatch {
    /// Reads up to [`TX_STAMP_BATCH`] entries of the error queue without blocking and keeps
    /// the timestamps among them; `WouldBlock` when the queue is empty. Also returns how many
    /// entries had their control data cut short (`MSG_CTRUNC`): their stamp may be lost.
    pub(crate) fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<(&[TxStamp], usize)> {
        // With SOF_TIMESTAMPING_OPT_TSONLY the entries carry no payload, only control data.
        let mut scratch = [0u8; 1];
        let mut iovecs = [const { MaybeUninit::<libc::iovec>::uninit() }; TX_STAMP_BATCH];
        let mut headers = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; TX_STAMP_BATCH];
        for (i, control) in self.control.iter_mut().enumerate() {
            let iov = iovecs[i].write(libc::iovec {
                iov_base: scratch.as_mut_ptr().cast(),
                iov_len: 0,
            });
            let mut header = message_header(iov);
            with_control(&mut header, control);
            headers[i].write(header);
        }
        // SAFETY: every header was initialized above and points into `scratch` (length 0) and
        // `self.control`, both borrowed for the whole call.
        let received = unsafe { recv_messages(fd, &mut headers, libc::MSG_ERRQUEUE) }?;
        let mut control_truncated = 0;
        self.count = 0;
        for (header, control) in headers.iter().zip(self.control.iter()).take(received) {
            // SAFETY: initialized above and filled in by the kernel.
            let header = unsafe { header.assume_init_ref() }.msg_hdr;
            if header.msg_flags & libc::MSG_CTRUNC != 0 {
                control_truncated += 1;
            }
            if let Some(stamp) = TxStamp::parse(control.filled(header.msg_controllen)) {
                self.stamps[self.count] = stamp;
                self.count += 1;
            }
        }
        Ok((&self.stamps[..self.count], control_truncated))
    }
}

/// One datagram of a [`RecvBatch`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Datagram<'a> {
    /// The payload.
    pub(crate) payload: &'a [u8],
    /// What the kernel attached to it.
    pub(crate) ancillary: Ancillary,
    /// Who sent it (`msg_name`).
    pub(crate) peer: PeerAddr,
}

/// What `recvmmsg` reported for one datagram.
#[derive(Clone, Copy, Debug, Default)]
struct Received {
    len: usize,
    ancillary: Ancillary,
    peer: PeerAddr,
}

/// Reusable buffers for `recvmmsg`.
pub(crate) struct RecvBatch {
    buffers: Box<[u8]>,
    control: Box<[ControlBuffer]>,
    names: Box<[libc::sockaddr_storage]>,
    received: [Received; RECV_BATCH],
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
        // SAFETY: all-zero bytes are a valid sockaddr_storage (integers and arrays).
        let empty_name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        RecvBatch {
            buffers: vec![0; RECV_BATCH * RECV_BUFFER].into_boxed_slice(),
            control: vec![ControlBuffer::default(); RECV_BATCH].into_boxed_slice(),
            names: vec![empty_name; RECV_BATCH].into_boxed_slice(),
            received: [Received::default(); RECV_BATCH],
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
        let slots = self.buffers.chunks_exact_mut(RECV_BUFFER).zip(self.control.iter_mut());
        for (i, ((chunk, control), name)) in slots.zip(self.names.iter_mut()).enumerate() {
            let iov = iovecs[i].write(libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: RECV_BUFFER,
            });
            let mut header = message_header(iov);
            with_control(&mut header, control);
            header.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            headers[i].write(header);
        }
        // SAFETY: every header was initialized above and points into `self.buffers`,
        // `self.control` and `self.names`, borrowed mutably for the whole call.
        let count = unsafe { recv_messages(fd, &mut headers, 0) }?;
        for (i, header) in headers.iter().take(count).enumerate() {
            // SAFETY: initialized in the loop above; the kernel filled in lengths and flags.
            let header = unsafe { header.assume_init_ref() };
            let flags = header.msg_hdr.msg_flags;
            // Every buffer holds the largest UDP payload, so no datagram is cut short.
            debug_assert_eq!(flags & libc::MSG_TRUNC, 0, "a datagram longer than RECV_BUFFER");
            self.received[i] = Received {
                len: header.msg_len as usize,
                ancillary: Ancillary::parse(self.control[i].filled(header.msg_hdr.msg_controllen), flags),
                peer: peer_from_storage(&self.names[i], header.msg_hdr.msg_namelen),
            };
        }
        self.count = count;
        Ok(count)
    }

    /// Datagram `index` of the last [`recv`](Self::recv).
    pub(crate) fn datagram(&self, index: usize) -> Datagram<'_> {
        assert!(index < self.count, "datagram index out of range");
        let received = &self.received[index];
        let start = index * RECV_BUFFER;
        Datagram {
            payload: &self.buffers[start..start + received.len.min(RECV_BUFFER)],
            ancillary: received.ancillary,
            peer: received.peer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{enable_rxq_ovfl, set_timestamping, socket_drops};
    use std::net::UdpSocket;
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        (a, b)
    }

    fn peer_of(socket: &UdpSocket) -> PeerAddr {
        PeerAddr::from_socket_addr(socket.local_addr().unwrap())
    }

    /// Reads until `count` datagrams have arrived (10 s at most), as (payload, sender, control).
    fn receive(batch: &mut RecvBatch, socket: &UdpSocket, count: usize) -> Vec<(Vec<u8>, PeerAddr, Ancillary)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while seen.len() < count {
            match batch.recv(socket.as_fd()) {
                Ok(n) => {
                    for i in 0..n {
                        let datagram = batch.datagram(i);
                        assert!(!datagram.ancillary.control_truncated);
                        seen.push((datagram.payload.to_vec(), datagram.peer, datagram.ancillary));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "only {} of {count} datagrams", seen.len());
                    std::thread::yield_now()
                }
                Err(e) => panic!("{e}"),
            }
        }
        seen
    }

    #[test]
    fn send_many_and_recv_batch_round_trip() {
        let (a, b) = pair();
        enable_rxq_ovfl(b.as_fd()).unwrap();
        let payloads: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; i as usize * 100]).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
        assert_eq!(send_many(a.as_fd(), &refs, None, 0).unwrap(), 20);
        let mut batch = RecvBatch::new();
        let seen = receive(&mut batch, &b, 20);
        assert_eq!(seen.iter().map(|(p, ..)| p.clone()).collect::<Vec<_>>(), payloads);
        // Each datagram names its sender, on a connected socket too; the kernel attaches the
        // drop count only once something was dropped.
        for (_, from, ancillary) in &seen {
            assert_eq!(*from, peer_of(&a));
            assert_eq!(ancillary.dropped_total, None);
        }
    }

    #[test]
    fn one_batch_to_several_destinations() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let receivers: Vec<UdpSocket> = (0..3).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        let payloads: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 10]).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
        // Datagram i goes to receiver i % 3, in one sendmmsg.
        let destinations: Vec<PeerAddr> = (0..6).map(|i| peer_of(&receivers[i % 3])).collect();
        assert_eq!(send_many(sender.as_fd(), &refs, Some(&destinations), 0).unwrap(), 6);
        for (r, receiver) in receivers.iter().enumerate() {
            let seen: Vec<(Vec<u8>, PeerAddr)> = receive(&mut RecvBatch::new(), receiver, 2)
                .into_iter()
                .map(|(p, from, _)| (p, from))
                .collect();
            assert_eq!(
                seen,
                [
                    (vec![r as u8; 10], peer_of(&sender)),
                    (vec![r as u8 + 3; 10], peer_of(&sender))
                ]
            );
        }
        // Without an address an unconnected socket cannot send.
        let err = send_many(sender.as_fd(), &refs[..1], Some(&[PeerAddr::default()]), 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EDESTADDRREQ));
    }

    #[test]
    fn ipv6_senders_are_named() {
        let a = UdpSocket::bind("[::1]:0").unwrap();
        let b = UdpSocket::bind("[::1]:0").unwrap();
        assert_eq!(send_many(a.as_fd(), &[b"six"], Some(&[peer_of(&b)]), 0).unwrap(), 1);
        let seen = receive(&mut RecvBatch::new(), &b, 1);
        let from = seen[0].1;
        assert_eq!(from, peer_of(&a));
        assert!(!from.is_ipv4());
        assert_eq!(from.scope_id(), 0);
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
        assert_eq!(send_many(a.as_fd(), &[&big], None, 0).unwrap(), 1);
        let mut batch = RecvBatch::new();
        receive(&mut batch, &b, 1);
        assert_eq!(batch.datagram(0).payload, &big[..]);
    }

    #[test]
    fn rxq_ovfl_counts_kernel_drops() {
        let (a, b) = pair();
        socket2::SockRef::from(&b).set_recv_buffer_size(4096).unwrap();
        enable_rxq_ovfl(b.as_fd()).unwrap();
        let payload = [0u8; 1000];
        for _ in 0..200 {
            let _ = send_many(a.as_fd(), &[&payload], None, 0);
        }
        let mut batch = RecvBatch::new();
        // The datagrams that fit were queued before anything was dropped, so they carry no
        // count; drain them, and the next datagram carries the drops that happened before it.
        while batch.recv(b.as_fd()).is_ok() {}
        send_many(a.as_fd(), &[&payload], None, 0).unwrap();
        assert_eq!(batch.recv(b.as_fd()).unwrap(), 1);
        let reported = batch.datagram(0).ancillary.dropped_total.unwrap();
        assert!(reported > 100, "{reported}");
        assert_eq!(socket_drops(b.as_fd()).unwrap(), reported);
    }

    const SOFTWARE_STAMPS: u32 = libc::SOF_TIMESTAMPING_RX_SOFTWARE
        | libc::SOF_TIMESTAMPING_TX_SOFTWARE
        | libc::SOF_TIMESTAMPING_SOFTWARE
        | libc::SOF_TIMESTAMPING_OPT_ID
        | libc::SOF_TIMESTAMPING_OPT_TSONLY;

    /// The kernel turns on receive stamping for the whole stack from a work queue, a moment
    /// after the first socket asks for it; until then datagrams arrive unstamped. Waits (10 s
    /// at most) until a probe pair of its own sees stamped datagrams.
    fn await_receive_stamping() {
        let (probe_tx, probe_rx) = pair();
        set_timestamping(probe_rx.as_fd(), SOFTWARE_STAMPS).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut batch = RecvBatch::new();
        loop {
            send_many(probe_tx.as_fd(), &[b"probe"], None, 0).unwrap();
            if receive(&mut batch, &probe_rx, 1)[0].2.software_ns.is_some() {
                return;
            }
            assert!(Instant::now() < deadline, "receive stamping never switched on");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn software_rx_and_tx_timestamps_on_loopback() {
        let (a, b) = pair();
        set_timestamping(a.as_fd(), SOFTWARE_STAMPS).unwrap();
        set_timestamping(b.as_fd(), SOFTWARE_STAMPS).unwrap();
        await_receive_stamping();
        let before = crate::time::realtime_ns();
        let payloads: Vec<&[u8]> = vec![b"one", b"two", b"three"];
        assert_eq!(send_many(a.as_fd(), &payloads, None, 0).unwrap(), 3);
        let after = crate::time::realtime_ns();

        let mut errqueue = ErrQueueBatch::default();
        let (stamps, truncated) = errqueue.recv(a.as_fd()).unwrap();
        let stamps = stamps.to_vec();
        assert_eq!(truncated, 0);
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
            let rx = batch.datagram(i).ancillary.software_ns.unwrap();
            assert!(rx >= tx.software_ns.unwrap(), "RX stamp before TX stamp");
        }
    }

    #[test]
    fn truncated_control_data_is_flagged_and_the_datagram_still_delivered() {
        use crate::sys::sockopt::{set_int_option, set_option};
        let (a, b) = pair();
        // Ask for more control data per datagram than a ControlBuffer holds: a software
        // stamp (64 bytes), packet info (32), TTL (24), TOS (24), original destination (32),
        // and the IP options of a sender that records the route (56 + 56).
        set_timestamping(b.as_fd(), SOFTWARE_STAMPS).unwrap();
        for option in [
            libc::IP_PKTINFO,
            libc::IP_RECVTTL,
            libc::IP_RECVTOS,
            libc::IP_RECVORIGDSTADDR,
            libc::IP_RECVOPTS,
            libc::IP_RETOPTS,
        ] {
            set_int_option(b.as_fd(), libc::SOL_IP, option, 1).unwrap();
        }
        // Record route: type 7, length 39, pointer 4, room for nine addresses; then the end.
        let mut record_route = [0u8; 40];
        record_route[..3].copy_from_slice(&[7, 39, 4]);
        set_option(a.as_fd(), libc::SOL_IP, libc::IP_OPTIONS, &record_route).unwrap();
        assert_eq!(send_many(a.as_fd(), &[b"still here"], None, 0).unwrap(), 1);
        let mut batch = RecvBatch::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while batch.recv(b.as_fd()).is_err() {
            assert!(Instant::now() < deadline, "no datagram");
            std::thread::yield_now();
        }
        let datagram = batch.datagram(0);
        assert_eq!(datagram.payload, b"still here");
        assert!(datagram.ancillary.control_truncated);
        assert_eq!(datagram.peer, peer_of(&a));
    }
}
