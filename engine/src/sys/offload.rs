//! UDP segmentation offload on send (GSO, `UDP_SEGMENT`) and receive offload (GRO, `UDP_GRO`).
//!
//! GSO: one message carries a run of datagrams of one size (the last may be shorter) for one
//! destination, with a `UDP_SEGMENT` control message giving that size; the kernel (or the
//! device) cuts it into datagrams, so the stack is crossed once per run instead of once per
//! datagram. The payloads need not be contiguous: one iovec per datagram, and the kernel cuts
//! the concatenation every `segment_size` bytes. Limits: [`GSO_MAX_SEGMENTS`] datagrams and
//! [`GSO_MAX_BYTES`] of payload per message, and the segment plus headers must fit the route's
//! MTU (else `EINVAL`); a device without checksum offload refuses with `EIO`.
//!
//! GRO: the kernel hands a run of arriving datagrams of one flow to the socket as one buffer,
//! with a `UDP_GRO` control message giving the size they were cut at (see
//! [`super::cmsg::Control::GroSegment`]); the receiver splits it again.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cmsg::{ControlBuffer, Encoder};
use super::mmsg::address_to;
use super::sockopt::{int_option, set_int_option};
use super::{check, RawSockAddr};
use crate::addr::PeerAddr;

/// Most datagrams in one GSO message. Kernels since 4.18 take 64 (`UDP_MAX_SEGMENTS`); newer
/// ones take 128, but nothing tells which without trying, so the engine stays with the limit
/// every kernel takes.
pub(crate) const GSO_MAX_SEGMENTS: usize = 64;
/// Most payload bytes in one GSO message: the largest UDP payload over IPv4 (65,535 minus the
/// IPv4 and UDP headers), which IPv6 takes too.
pub(crate) const GSO_MAX_BYTES: usize = 65_507;
/// Most datagrams one [`send_segmented`] call takes (across its messages).
pub(crate) const GSO_BATCH: usize = 256;

/// Whether the kernel knows `UDP_SEGMENT` on this socket (Linux ≥ 4.18): reading the option
/// succeeds. A device that cannot segment still refuses at send time (`EIO`).
pub(crate) fn gso_supported(fd: BorrowedFd<'_>) -> bool {
    int_option(fd, libc::SOL_UDP, libc::UDP_SEGMENT).is_ok()
}

/// Asks the kernel to coalesce arriving datagrams of one flow (`UDP_GRO`, Linux ≥ 5.0).
pub(crate) fn enable_gro(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_int_option(fd, libc::SOL_UDP, libc::UDP_GRO, 1)
}

/// Whether `UDP_GRO` is on (false where the kernel does not know it).
pub(crate) fn gro_enabled(fd: BorrowedFd<'_>) -> bool {
    int_option(fd, libc::SOL_UDP, libc::UDP_GRO).is_ok_and(|v| v != 0)
}

/// One message of a segmented batch: `count` payloads from `first`, each `segment_size` bytes
/// but the last (which may be shorter). A message of one payload is a plain datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Segmented {
    /// Index of its first payload.
    pub first: usize,
    /// Payloads in it (1..=[`GSO_MAX_SEGMENTS`]).
    pub count: usize,
    /// The size the kernel cuts at: the first payload's length.
    pub segment_size: usize,
}

/// Groups `lengths` (with their `destinations`, `None` on a connected socket) into messages:
/// consecutive payloads of one size for one destination share a message; a shorter payload
/// ends its message; limits [`GSO_MAX_SEGMENTS`] and [`GSO_MAX_BYTES`]. Empty payloads are
/// alone (a zero-length segment cannot be cut). Writes into `messages` and returns how many.
pub(crate) fn group_segments(
    lengths: &[usize],
    destinations: Option<&[PeerAddr]>,
    messages: &mut [Segmented],
) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < lengths.len() && count < messages.len() {
        let segment_size = lengths[i];
        let mut message = Segmented {
            first: i,
            count: 1,
            segment_size,
        };
        let mut bytes = segment_size;
        let same_destination = |j: usize| destinations.is_none_or(|d| d[j] == d[i]);
        while segment_size > 0 && message.count < GSO_MAX_SEGMENTS {
            let j = i + message.count;
            let Some(&length) = lengths.get(j) else { break };
            if length == 0 || length > segment_size || bytes + length > GSO_MAX_BYTES || !same_destination(j) {
                break;
            }
            message.count += 1;
            bytes += length;
            if length < segment_size {
                break;
            }
        }
        messages[count] = message;
        count += 1;
        i += message.count;
    }
    count
}

/// Sends `messages` (from [`group_segments`]) with one `sendmmsg`: each message of several
/// payloads with a `UDP_SEGMENT` control message, each of one payload as a plain datagram.
/// `destinations`: as in [`super::send_many`], one per payload (a message goes to its first
/// payload's). Returns how many messages were sent, from the first; like `sendmmsg`, an error
/// means the first message failed.
pub(crate) fn send_segmented(
    fd: BorrowedFd<'_>,
    payloads: &[&[u8]],
    messages: &[Segmented],
    destinations: Option<&[PeerAddr]>,
    flags: libc::c_int,
) -> io::Result<usize> {
    let count = messages.len().min(GSO_BATCH);
    let mut iovecs = [const { MaybeUninit::<libc::iovec>::uninit() }; GSO_BATCH];
    let mut names = [const { MaybeUninit::<RawSockAddr>::uninit() }; GSO_BATCH];
    let mut headers = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; GSO_BATCH];
    let mut controls = vec_of_controls(count);
    let mut iov_used = 0;
    for (m, message) in messages[..count].iter().enumerate() {
        assert!(
            message.first + message.count <= payloads.len() && iov_used + message.count <= GSO_BATCH,
            "a message's payloads are in the batch"
        );
        let iov_start = iov_used;
        // Payloads that follow each other in memory (the send ring stores them back to back)
        // share one iovec: the kernel cuts the whole by segment size whatever the iovecs, and
        // walks (and copies from) a few long ones faster than many short ones.
        let mut run_end: Option<*const u8> = None;
        for payload in &payloads[message.first..message.first + message.count] {
            if run_end == Some(payload.as_ptr()) && iov_used > iov_start {
                // SAFETY: written in an earlier iteration of this loop.
                unsafe { iovecs[iov_used - 1].assume_init_mut() }.iov_len += payload.len();
            } else {
                iovecs[iov_used].write(libc::iovec {
                    iov_base: payload.as_ptr() as *mut _,
                    iov_len: payload.len(),
                });
                iov_used += 1;
            }
            run_end = Some(payload.as_ptr_range().end);
        }
        // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
        let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
        header.msg_hdr.msg_iov = iovecs[iov_start].as_mut_ptr();
        header.msg_hdr.msg_iovlen = iov_used - iov_start;
        if message.count > 1 {
            let control = &mut controls[m];
            let mut encoder = Encoder::new(control);
            // The kernel reads UDP_SEGMENT as a u16.
            encoder
                .push(libc::SOL_UDP, libc::UDP_SEGMENT, message.segment_size as u16)
                .expect("one UDP_SEGMENT fits an empty control buffer");
            let len = encoder.len();
            header.msg_hdr.msg_control = control.as_mut_ptr();
            header.msg_hdr.msg_controllen = len;
        }
        address_to(
            &mut header,
            &mut names[m],
            destinations.and_then(|d| d.get(message.first)),
        );
        headers[m].write(header);
    }
    // SAFETY: the first `count` headers are initialized and point at initialized iovecs into
    // `payloads`, at addresses in `names` and at control data in `controls`; all of them live
    // until the call returns, and the kernel only reads them.
    let sent = check(unsafe { libc::sendmmsg(fd.as_raw_fd(), headers.as_mut_ptr().cast(), count as u32, flags) })?;
    Ok(sent as usize)
}

/// Control buffers for `count` messages (on the heap: 256 of them are 64 KiB).
fn vec_of_controls(count: usize) -> Vec<ControlBuffer> {
    vec![ControlBuffer::default(); count]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::RecvBatch;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    /// Reads `count` datagrams (10 s at most), splitting GRO buffers as the receiver does;
    /// returns them and how many buffers carried them.
    fn receive_split(socket: &UdpSocket, count: usize) -> (Vec<Vec<u8>>, usize) {
        let mut batch = RecvBatch::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut seen, mut buffers) = (Vec::new(), 0);
        while seen.len() < count {
            match batch.recv(socket.as_fd()) {
                Ok(n) => {
                    for i in 0..n {
                        let d = batch.datagram(i);
                        buffers += 1;
                        match d.ancillary.gro_segment {
                            Some(size) => seen.extend(d.payload.chunks(size as usize).map(<[u8]>::to_vec)),
                            None => seen.push(d.payload.to_vec()),
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "only {} of {count} datagrams", seen.len());
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        (seen, buffers)
    }

    /// Sends `payloads` from a socket connected to `to`, grouped; returns datagrams sent.
    fn send_grouped(from: &UdpSocket, payloads: &[Vec<u8>]) -> usize {
        let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
        let lengths: Vec<usize> = payloads.iter().map(Vec::len).collect();
        let mut messages = [Segmented::default(); GSO_BATCH];
        let (mut done, mut sent_messages) = (0, 0);
        let count = group_segments(&lengths, None, &mut messages);
        while sent_messages < count {
            let m = &messages[sent_messages..count];
            let first = m[0].first;
            let shifted: Vec<Segmented> = m
                .iter()
                .map(|s| Segmented {
                    first: s.first - first,
                    ..*s
                })
                .collect();
            let sent = send_segmented(from.as_fd(), &refs[first..], &shifted, None, 0).unwrap();
            done += m[..sent].iter().map(|s| s.count).sum::<usize>();
            sent_messages += sent;
        }
        done
    }

    fn connected_pair(ip: &str, gro: bool) -> (UdpSocket, UdpSocket) {
        let rx = UdpSocket::bind((ip, 0)).unwrap();
        let tx = UdpSocket::bind((ip, 0)).unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        socket2::SockRef::from(&rx).set_recv_buffer_size(4 << 20).unwrap();
        if gro {
            enable_gro(rx.as_fd()).unwrap();
            assert!(gro_enabled(rx.as_fd()));
        } else {
            assert!(!gro_enabled(rx.as_fd()));
        }
        (tx, rx)
    }

    #[test]
    fn every_datagram_arrives_once_in_order_with_its_bytes_to_plain_and_gro_receivers() {
        // Equal runs, mixed sizes, a shorter last segment, 1-byte, 1472-byte and the largest
        // datagrams; numbered so that order and content are checked.
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        let mut add = |len: usize, n: usize| {
            for _ in 0..n {
                let seq = payloads.len() as u32;
                let mut p = vec![(seq % 251) as u8; len];
                p[..len.min(4)].copy_from_slice(&seq.to_le_bytes()[..len.min(4)]);
                payloads.push(p);
            }
        };
        add(64, 100);
        add(20, 1);
        add(1, 70);
        add(1472, 50);
        add(1000, 3);
        add(65_507, 2);
        add(300, 7);
        for ip in ["127.0.0.1", "::1"] {
            for gro in [false, true] {
                let (tx, rx) = connected_pair(ip, gro);
                assert!(gso_supported(tx.as_fd()));
                assert_eq!(send_grouped(&tx, &payloads), payloads.len());
                let (seen, buffers) = receive_split(&rx, payloads.len());
                assert_eq!(seen.len(), payloads.len(), "{ip} gro {gro}");
                assert!(seen == payloads, "{ip} gro {gro}: payloads differ");
                // Without GRO the receiving socket segments (one buffer per datagram); with it
                // runs arrive coalesced.
                if gro {
                    assert!(buffers < payloads.len(), "{ip}: {buffers} buffers");
                } else {
                    assert_eq!(buffers, payloads.len(), "{ip}");
                }
            }
        }
    }

    #[test]
    fn payloads_back_to_back_in_memory_share_iovecs_and_arrive_the_same() {
        // As the send ring stores them: one buffer, cut into 64-byte payloads, with a gap (a
        // payload from elsewhere) in the middle of a run.
        let arena: Vec<u8> = (0..64 * 150).map(|i| (i / 64 % 251) as u8 ^ (i % 7) as u8).collect();
        let elsewhere = vec![0xeeu8; 64];
        let mut refs: Vec<&[u8]> = arena.chunks(64).collect();
        refs[70] = &elsewhere;
        let lengths: Vec<usize> = refs.iter().map(|p| p.len()).collect();
        let mut messages = [Segmented::default(); GSO_BATCH];
        let count = group_segments(&lengths, None, &mut messages);
        for gro in [false, true] {
            let (tx, rx) = connected_pair("127.0.0.1", gro);
            assert_eq!(
                send_segmented(tx.as_fd(), &refs, &messages[..count], None, 0).unwrap(),
                count
            );
            let (seen, _) = receive_split(&rx, refs.len());
            assert!(seen.iter().zip(&refs).all(|(a, b)| a[..] == b[..]), "gro {gro}");
        }
    }

    #[test]
    fn a_message_over_64_kib_is_refused() {
        // lo's MTU is 65,536: a 65,507-byte segment fits, yet two of them exceed what one
        // message may carry (group_segments never makes that; here it is made by hand).
        let (tx, _rx) = connected_pair("127.0.0.1", false);
        let big = vec![0u8; 40_000];
        let message = Segmented {
            first: 0,
            count: 2,
            segment_size: big.len(),
        };
        let err = send_segmented(tx.as_fd(), &[&big, &big], &[message], None, 0).unwrap_err();
        assert!(
            matches!(err.raw_os_error(), Some(libc::EMSGSIZE | libc::EINVAL)),
            "{err}"
        );
    }

    fn groups(lengths: &[usize], destinations: Option<&[PeerAddr]>) -> Vec<(usize, usize, usize)> {
        let mut messages = [Segmented::default(); GSO_BATCH];
        let n = group_segments(lengths, destinations, &mut messages);
        messages[..n]
            .iter()
            .map(|m| (m.first, m.count, m.segment_size))
            .collect()
    }

    #[test]
    fn runs_of_one_size_share_a_message_and_a_shorter_one_ends_it() {
        assert_eq!(groups(&[100; 5], None), [(0, 5, 100)]);
        assert_eq!(groups(&[100, 100, 40, 100, 100], None), [(0, 3, 100), (3, 2, 100)]);
        // A longer one starts a new message.
        assert_eq!(groups(&[40, 100, 100], None), [(0, 1, 40), (1, 2, 100)]);
        assert_eq!(groups(&[1, 1, 1], None), [(0, 3, 1)]);
        assert_eq!(groups(&[0, 0, 5], None), [(0, 1, 0), (1, 1, 0), (2, 1, 5)]);
        assert_eq!(groups(&[5, 0], None), [(0, 1, 5), (1, 1, 0)]);
        assert_eq!(groups(&[], None), []);
    }

    #[test]
    fn limits_of_segments_bytes_and_destination() {
        let lengths = [10; 150];
        assert_eq!(groups(&lengths, None), [(0, 64, 10), (64, 64, 10), (128, 22, 10)]);
        // 44 × 1472 = 64,768 ≤ 65,507 < 45 × 1472.
        assert_eq!(groups(&[1472; 50], None), [(0, 44, 1472), (44, 6, 1472)]);
        assert_eq!(groups(&[65_507, 65_507], None), [(0, 1, 65_507), (1, 1, 65_507)]);
        let a = PeerAddr::from_socket_addr("127.0.0.1:1".parse().unwrap());
        let b = PeerAddr::from_socket_addr("127.0.0.1:2".parse().unwrap());
        assert_eq!(
            groups(&[8; 5], Some(&[a, a, b, b, a])),
            [(0, 2, 8), (2, 2, 8), (4, 1, 8)]
        );
    }
}
