//! Socket options the safe crates do not wrap: `SO_RXQ_OVFL`, `SO_TIMESTAMPING`, packet
//! information (`IP_PKTINFO`, `IPV6_RECVPKTINFO`), source-specific multicast memberships
//! (`MCAST_JOIN_SOURCE_GROUP`, `MCAST_LEAVE_SOURCE_GROUP`), and the kernel's drop counter read
//! with `SO_MEMINFO`.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd};

use super::{check, storage_of};
use crate::addr::PeerAddr;

/// Sets a socket option to the bytes of `value`.
pub(super) fn set_option(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int, value: &[u8]) -> io::Result<()> {
    // SAFETY: `value` is valid for reads of its length, which is passed, during the call.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Sets a socket option to a C struct, all of whose bytes (padding too) are initialized.
fn set_struct_option<T>(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a whole, initialized T borrowed for the call; the kernel reads
    // size_of::<T>() bytes of it and keeps no pointer.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Sets an integer socket option the safe crates do not wrap.
pub(super) fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    set_option(fd, level, name, &value.to_ne_bytes())
}

/// Asks the kernel to attach its running count of datagrams dropped on this socket
/// (`SO_RXQ_OVFL`) to every received datagram.
pub(crate) fn enable_rxq_ovfl(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1)
}

/// Datagrams the kernel dropped on this socket since it was created (`SO_MEMINFO`, the same
/// counter `SO_RXQ_OVFL` reports), read at any time rather than with the next datagram.
pub(crate) fn socket_drops(fd: BorrowedFd<'_>) -> io::Result<u32> {
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

/// Sets `SO_TIMESTAMPING` to `flags` (`SOF_TIMESTAMPING_*`).
pub(crate) fn set_timestamping(fd: BorrowedFd<'_>, flags: u32) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPING, flags as libc::c_int)
}

/// Asks the kernel to attach to every received datagram its destination address and the
/// interface it arrived on: `IP_PKTINFO` on an IPv4 socket, `IPV6_RECVPKTINFO` on an IPv6
/// one (which reports IPv4 datagrams too, as v4-mapped addresses).
pub(crate) fn enable_packet_info(fd: BorrowedFd<'_>, ipv6: bool) -> io::Result<()> {
    if ipv6 {
        set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
    } else {
        set_int_option(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)
    }
}

/// Reads an integer socket option.
pub(super) fn int_option(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the size passed in `len`.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

/// Whether [`enable_packet_info`] is in effect.
pub(crate) fn packet_info_enabled(fd: BorrowedFd<'_>, ipv6: bool) -> io::Result<bool> {
    let value = if ipv6 {
        int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)?
    } else {
        int_option(fd, libc::IPPROTO_IP, libc::IP_PKTINFO)?
    };
    Ok(value != 0)
}

/// Joining or leaving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MembershipChange {
    /// Join (`..._JOIN_...`, `..._ADD_...`).
    Join,
    /// Leave (`..._LEAVE_...`, `..._DROP_...`).
    Leave,
}

/// Joins or leaves the source-specific group (`source`, `group`) on the interface with index
/// `interface_index` (0: the one the route to the group goes through), with the
/// protocol-independent `MCAST_JOIN_SOURCE_GROUP` / `MCAST_LEAVE_SOURCE_GROUP`: one request for
/// both families, and the interface by index for IPv4 too (`IP_ADD_SOURCE_MEMBERSHIP` names
/// it by address). `group` and `source` are of the socket's family.
pub(crate) fn change_source_membership(
    fd: BorrowedFd<'_>,
    change: MembershipChange,
    group: IpAddr,
    source: IpAddr,
    interface_index: u32,
) -> io::Result<()> {
    let storage = |ip: IpAddr| {
        storage_of(&PeerAddr::from_socket_addr(SocketAddr::new(ip, 0))).expect("an IP address is not empty")
    };
    // SAFETY: all-zero bytes are a valid group_source_req (an integer and two
    // sockaddr_storage), padding included, so every byte the kernel reads is initialized.
    let mut request: libc::group_source_req = unsafe { std::mem::zeroed() };
    request.gsr_interface = interface_index;
    request.gsr_group = storage(group);
    request.gsr_source = storage(source);
    let level = if group.is_ipv4() {
        libc::IPPROTO_IP
    } else {
        libc::IPPROTO_IPV6
    };
    let name = match change {
        MembershipChange::Join => libc::MCAST_JOIN_SOURCE_GROUP,
        MembershipChange::Leave => libc::MCAST_LEAVE_SOURCE_GROUP,
    };
    set_struct_option(fd, level, name, &request)
}
