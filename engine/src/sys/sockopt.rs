//! Socket options the safe crates do not wrap: `SO_RXQ_OVFL`, `SO_TIMESTAMPING`, and the
//! kernel's drop counter read with `SO_MEMINFO`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::check;

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
