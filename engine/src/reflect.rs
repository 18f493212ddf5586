//! The native reflector (`reflect: true`): the receive worker sends every datagram back to its
//! source at once, with no JavaScript in the loop. A datagram with the udpcom header is marked
//! `REFLECTED` and gets the reflector's receive time (its arrival stamp) and send time (a clock
//! read right before the send system call), TWAMP-light style, so that the sender's analysis
//! can split the round trip into its two directions. Anything else goes back as it came.

use std::os::fd::BorrowedFd;

use crate::addr::PeerAddr;
use crate::header::UdpcomHeader;
use crate::stats::bump;
use crate::sys::{self, RECV_BATCH, RECV_BUFFER};
use crate::time::realtime_ns;

/// The replies of one receive batch, sent together.
pub(crate) struct Reflector {
    /// One reply per received datagram of the batch, each in its own `RECV_BUFFER` slot.
    buffers: Box<[u8]>,
    lengths: [usize; RECV_BATCH],
    destinations: [PeerAddr; RECV_BATCH],
    /// Which replies carry the udpcom header (their send time is written before the send).
    stamped: [bool; RECV_BATCH],
    count: usize,
    /// The socket is connected: replies go to its peer, with no address.
    connected: bool,
}

/// What a flush did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flushed {
    pub(crate) sent: u64,
    pub(crate) failed: u64,
    /// The error of the first failure, if any.
    pub(crate) error: Option<i32>,
}

impl Reflector {
    pub(crate) fn new(connected: bool) -> Reflector {
        Reflector {
            buffers: vec![0; RECV_BATCH * RECV_BUFFER].into_boxed_slice(),
            lengths: [0; RECV_BATCH],
            destinations: [PeerAddr::default(); RECV_BATCH],
            stamped: [false; RECV_BATCH],
            count: 0,
            connected,
        }
    }

    /// Whether as many replies are queued as fit: flush before the next add (a GRO buffer
    /// holds many datagrams, so one receive batch may need several flushes).
    pub(crate) fn is_full(&self) -> bool {
        self.count == RECV_BATCH
    }

    /// Queues the reply to a datagram from `source` that arrived at `arrival_realtime_ns`.
    pub(crate) fn add(&mut self, payload: &[u8], source: PeerAddr, arrival_realtime_ns: u64) {
        debug_assert!(self.count < RECV_BATCH, "one reply per datagram of a batch");
        let slot = &mut self.buffers[self.count * RECV_BUFFER..][..payload.len()];
        slot.copy_from_slice(payload);
        self.stamped[self.count] = UdpcomHeader::reflect(slot, arrival_realtime_ns).is_ok();
        self.lengths[self.count] = payload.len();
        self.destinations[self.count] = source;
        self.count += 1;
    }

    /// Sends the queued replies (their send time written right before the system call) and
    /// empties the queue. `on_sent` sees each reply that left, with its destination (none: the
    /// connected peer) and the send time (CLOCK_REALTIME).
    pub(crate) fn flush(&mut self, fd: BorrowedFd<'_>, mut on_sent: impl FnMut(&[u8], PeerAddr, u64)) -> Flushed {
        let mut flushed = Flushed::default();
        let mut first = 0;
        while first < self.count {
            let send_ns = realtime_ns();
            for i in first..self.count {
                if self.stamped[i] {
                    let _ = UdpcomHeader::write_reflector_send(
                        &mut self.buffers[i * RECV_BUFFER..][..self.lengths[i]],
                        send_ns,
                    );
                }
            }
            let mut payloads: [&[u8]; RECV_BATCH] = [&[]; RECV_BATCH];
            for (i, payload) in payloads.iter_mut().enumerate().take(self.count).skip(first) {
                *payload = &self.buffers[i * RECV_BUFFER..][..self.lengths[i]];
            }
            let destinations = (!self.connected).then_some(&self.destinations[first..self.count]);
            // Never blocks the receive path: a reply that does not fit the send buffer now is
            // counted as failed, as a send error of the sender would be.
            match sys::send_many(fd, &payloads[first..self.count], destinations, libc::MSG_DONTWAIT) {
                Ok(0) => break,
                Ok(sent) => {
                    flushed.sent += sent as u64;
                    for (i, payload) in payloads.iter().enumerate().skip(first).take(sent) {
                        let destination = if self.connected {
                            PeerAddr::default()
                        } else {
                            self.destinations[i]
                        };
                        on_sent(payload, destination, send_ns);
                    }
                    first += sent;
                }
                Err(e) => {
                    flushed.failed += 1;
                    flushed.error = flushed.error.or(e.raw_os_error());
                    first += 1;
                }
            }
        }
        flushed.failed += (self.count - first) as u64;
        self.count = 0;
        flushed
    }
}

/// Adds a flush's outcome to the receiver's counters.
pub(crate) fn count(flushed: Flushed, counters: &crate::stats::ReceiverCounters) {
    bump(&counters.reflected, flushed.sent);
    bump(&counters.reflect_errors, flushed.failed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn replies_go_back_to_their_sources_with_the_reflector_times() {
        let reflector_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut reflector = Reflector::new(false);
        let mut packet = vec![0u8; 80];
        UdpcomHeader {
            stream_id: 3,
            sequence: 7,
            departure_ns: 1_000,
            ..Default::default()
        }
        .encode(&mut packet)
        .unwrap();
        reflector.add(&packet, PeerAddr::from_socket_addr(a.local_addr().unwrap()), 5_000);
        reflector.add(
            b"not a udpcom packet",
            PeerAddr::from_socket_addr(b.local_addr().unwrap()),
            6_000,
        );
        let before = realtime_ns();
        assert_eq!(
            reflector.flush(reflector_socket.as_fd(), |_, _, _| {}),
            Flushed {
                sent: 2,
                failed: 0,
                error: None
            }
        );
        let mut buffer = [0u8; 128];
        let n = a.recv(&mut buffer).unwrap();
        let header = UdpcomHeader::decode(&buffer[..n]).unwrap();
        assert!(header.is_reflected());
        assert_eq!((header.stream_id, header.sequence, header.departure_ns), (3, 7, 1_000));
        assert_eq!(header.reflector_receive_ns, 5_000);
        assert!(header.reflector_send_ns >= before);
        let n = b.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"not a udpcom packet");
    }
}
