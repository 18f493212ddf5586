//! The Linux system calls that neither socket2 nor rustix wrap, by concern:
//!
//! - [`mmsg`]: `sendmmsg` and `recvmmsg` batches (datagrams, and the error queue's transmit
//!   stamps), with their message headers;
//! - [`offload`]: UDP segmentation on send (GSO) and coalescing on receive (GRO);
//! - [`cmsg`]: control messages (ancillary data) of received messages, decoded;
//! - [`sockopt`]: socket options (`SO_RXQ_OVFL`, `SO_TIMESTAMPING`, `IP_PKTINFO`,
//!   `MCAST_JOIN_SOURCE_GROUP`, ...) and `SO_MEMINFO`;
//! - [`sched`]: scheduling policy (`sched_setscheduler`) and `mlock`;
//! - [`ethtool`]: interfaces: which one has an address, what it can timestamp, hardware
//!   timestamping on.
//!
//! Every `unsafe` block of the crate that talks to the kernel is here, behind safe functions
//! whose borrows keep all pointers valid for the duration of the call. The only other `unsafe`
//! of the crate is the packet ring's memory ([`crate::ring`]).

use std::io;
use std::mem::size_of;

use crate::addr::PeerAddr;

mod cmsg;
mod ethtool;
mod mmsg;
mod offload;
mod sched;
mod sockopt;

pub(crate) use ethtool::{enable_hardware_timestamping, ethtool_ts_info, interface_with_address, EthtoolTsInfo};
pub(crate) use mmsg::{send_many, Datagram, ErrQueueBatch, RecvBatch, RECV_BATCH, RECV_BUFFER, SEND_BATCH};
pub(crate) use offload::{
    enable_gro, gro_enabled, group_segments, gso_supported, send_segmented, Segmented, GSO_BATCH, GSO_MAX_SEGMENTS,
};
#[cfg(test)]
pub(crate) use sched::current_scheduling;
pub(crate) use sched::{lock_current_stack, lock_regions, set_fifo_priority, set_normal_scheduling};
pub(crate) use sockopt::{
    change_source_membership, enable_packet_info, enable_rxq_ovfl, packet_info_enabled, set_timestamping, socket_drops,
    MembershipChange,
};

/// A C return value as a `Result`: negative means failure, with the reason in `errno`.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A socket address as the kernel reads it from `msg_name`: a `sockaddr_in` or a
/// `sockaddr_in6`, with its length.
#[derive(Clone, Copy)]
struct RawSockAddr {
    storage: RawSockAddrStorage,
    len: libc::socklen_t,
}

#[derive(Clone, Copy)]
#[repr(C)]
union RawSockAddrStorage {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

impl RawSockAddr {
    /// The kernel form of `peer`; `None` for the empty address.
    fn from_peer(peer: &PeerAddr) -> Option<RawSockAddr> {
        let addr = peer.to_socket_addr()?;
        Some(match addr {
            std::net::SocketAddr::V4(v4) => RawSockAddr {
                storage: RawSockAddrStorage {
                    v4: libc::sockaddr_in {
                        sin_family: libc::AF_INET as libc::sa_family_t,
                        sin_port: v4.port().to_be(),
                        sin_addr: libc::in_addr {
                            s_addr: u32::from(*v4.ip()).to_be(),
                        },
                        sin_zero: [0; 8],
                    },
                },
                len: size_of::<libc::sockaddr_in>() as libc::socklen_t,
            },
            std::net::SocketAddr::V6(v6) => RawSockAddr {
                storage: RawSockAddrStorage {
                    v6: libc::sockaddr_in6 {
                        sin6_family: libc::AF_INET6 as libc::sa_family_t,
                        sin6_port: v6.port().to_be(),
                        sin6_flowinfo: 0,
                        sin6_addr: libc::in6_addr {
                            s6_addr: v6.ip().octets(),
                        },
                        sin6_scope_id: v6.scope_id(),
                    },
                },
                len: size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            },
        })
    }

    /// The pointer to put in `msg_name` (the kernel only reads through it).
    fn as_ptr(&self) -> *mut libc::c_void {
        (&self.storage as *const RawSockAddrStorage).cast_mut().cast()
    }
}

/// The kernel form of `peer` in a whole `sockaddr_storage` (the rest zero), as the
/// protocol-independent multicast requests (`group_source_req`) carry addresses; `None` for the
/// empty address.
fn storage_of(peer: &PeerAddr) -> Option<libc::sockaddr_storage> {
    let raw = RawSockAddr::from_peer(peer)?;
    // SAFETY: all-zero bytes are a valid sockaddr_storage (integers and arrays).
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // SAFETY: `raw.len` bytes of the union are initialized (the variant it was built as) and
    // fit in a sockaddr_storage, which is larger than either variant.
    unsafe {
        std::ptr::copy_nonoverlapping(
            raw.as_ptr().cast::<u8>(),
            (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(),
            raw.len as usize,
        )
    };
    Some(storage)
}

/// Decodes a socket address the kernel wrote: AF_INET or AF_INET6, checked against `len`;
/// any other family, or a length too short for the family, is the empty address.
///
/// # Safety
/// `addr` must be valid for reads of `len` bytes.
unsafe fn peer_from_sockaddr(addr: *const libc::sockaddr, len: usize) -> PeerAddr {
    if len < size_of::<libc::sa_family_t>() {
        return PeerAddr::default();
    }
    // SAFETY: the family (the first field of every sockaddr) is within the `len` readable
    // bytes; each struct is read unaligned, and only once `len` is known to cover it.
    unsafe {
        match i32::from(addr.cast::<libc::sa_family_t>().read_unaligned()) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                let sin = addr.cast::<libc::sockaddr_in>().read_unaligned();
                PeerAddr::v4(u32::from_be(sin.sin_addr.s_addr), u16::from_be(sin.sin_port))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                let sin6 = addr.cast::<libc::sockaddr_in6>().read_unaligned();
                PeerAddr::v6(sin6.sin6_addr.s6_addr, u16::from_be(sin6.sin6_port), sin6.sin6_scope_id)
            }
            _ => PeerAddr::default(),
        }
    }
}

/// Decodes the first `len` bytes of a `sockaddr_storage` the kernel filled (`msg_name`).
fn peer_from_storage(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> PeerAddr {
    let len = (len as usize).min(size_of::<libc::sockaddr_storage>());
    // SAFETY: `storage` is a whole, initialized sockaddr_storage, readable for its size.
    unsafe { peer_from_sockaddr((storage as *const libc::sockaddr_storage).cast(), len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeroed_storage() -> libc::sockaddr_storage {
        // SAFETY: all-zero bytes are a valid sockaddr_storage (integers and arrays).
        unsafe { std::mem::zeroed() }
    }

    /// Copies the kernel form of `peer` into a sockaddr_storage, as recvmmsg would.
    fn as_storage(peer: &PeerAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
        let raw = RawSockAddr::from_peer(peer).unwrap();
        (storage_of(peer).unwrap(), raw.len)
    }

    #[test]
    fn socket_addresses_survive_the_kernel_form() {
        for text in ["127.0.0.1:5000", "[::1]:9", "[fe80::1%7]:65535"] {
            let peer = PeerAddr::from_socket_addr(text.parse().unwrap());
            let (storage, len) = as_storage(&peer);
            assert_eq!(peer_from_storage(&storage, len), peer, "{text}");
        }
        assert!(RawSockAddr::from_peer(&PeerAddr::default()).is_none());
    }

    #[test]
    fn short_or_foreign_addresses_decode_as_none() {
        let v6 = PeerAddr::from_socket_addr("[::1]:9".parse().unwrap());
        let (storage, len) = as_storage(&v6);
        assert!(peer_from_storage(&storage, len - 1).is_none(), "one byte short");
        assert!(peer_from_storage(&storage, 1).is_none(), "shorter than the family");
        assert!(peer_from_storage(&storage, 0).is_none());
        let mut unix = zeroed_storage();
        unix.ss_family = libc::AF_UNIX as libc::sa_family_t;
        assert!(peer_from_storage(&unix, 110).is_none());
        // A length beyond the storage is clamped to it.
        let v4 = PeerAddr::from_socket_addr("10.0.0.1:1".parse().unwrap());
        let (storage, _) = as_storage(&v4);
        assert_eq!(peer_from_storage(&storage, u32::MAX), v4);
    }
}
