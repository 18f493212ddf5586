//! Socket set-up: create, bind, connect, and the options the workers rely on.

use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Type};

use crate::error::{Error, Result};
use crate::sys;

/// Receive buffer asked for (capped by `net.core.rmem_max` unless the process may override it).
pub(crate) const RECV_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// A blocked send gives up after this long and is retried, so the sender notices `stop()`.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_millis(20);

/// A bound (and maybe connected) UDP socket shared by the workers.
#[derive(Debug)]
pub(crate) struct UdpSocket {
    socket: socket2::Socket,
    local: SocketAddr,
    remote: Option<SocketAddr>,
}

impl UdpSocket {
    /// Creates a UDP socket bound to `local` and, if `remote` is given, connected to it, so
    /// that only that peer's datagrams are received.
    pub(crate) fn open(local: SocketAddr, remote: Option<SocketAddr>) -> Result<UdpSocket> {
        let socket = socket2::Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))
            .map_err(|e| Error::from_io("socket", &e, ""))?;
        // A larger receive buffer rides out bursts while the receiver is descheduled. Try the
        // privileged variant first (it ignores rmem_max), then the capped one; neither is fatal.
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&socket, RECV_BUFFER_BYTES).is_err() {
            let _ = socket.set_recv_buffer_size(RECV_BUFFER_BYTES);
        }
        socket
            .set_write_timeout(Some(SEND_TIMEOUT))
            .map_err(|e| Error::from_io("setsockopt", &e, "SO_SNDTIMEO"))?;
        sys::enable_rxq_ovfl(socket.as_fd()).map_err(|e| Error::from_io("setsockopt", &e, "SO_RXQ_OVFL"))?;
        socket
            .bind(&SockAddr::from(local))
            .map_err(|e| Error::from_io("bind", &e, &local.to_string()))?;
        if let Some(remote) = remote {
            socket
                .connect(&SockAddr::from(remote))
                .map_err(|e| Error::from_io("connect", &e, &remote.to_string()))?;
        }
        let local = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or_else(|| Error::internal("bound socket has no local address"))?;
        Ok(UdpSocket { socket, local, remote })
    }

    /// The address the socket is bound to, with the port the kernel picked for port 0.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The connected peer, if any.
    pub(crate) fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// Datagrams the kernel dropped on this socket so far (full receive buffer).
    pub(crate) fn kernel_drops(&self) -> u64 {
        sys::socket_drops(self.socket.as_fd()).map_or(0, u64::from)
    }

    #[cfg(test)]
    /// The receive buffer the kernel actually granted (it reports twice the usable size).
    pub(crate) fn recv_buffer_size(&self) -> usize {
        self.socket.recv_buffer_size().unwrap_or(0)
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_to_port_zero_and_reports_the_port() {
        let s = UdpSocket::open("127.0.0.1:0".parse().unwrap(), None).unwrap();
        assert_ne!(s.local_addr().port(), 0);
        assert_eq!(s.remote_addr(), None);
        assert!(s.recv_buffer_size() > 0);
    }

    #[test]
    fn address_in_use_is_eaddrinuse_with_syscall() {
        let a = UdpSocket::open("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let err = UdpSocket::open(a.local_addr(), None).unwrap_err();
        assert_eq!(err.code, "EADDRINUSE");
        assert_eq!(err.os.unwrap().syscall, "bind");
        assert!(err.message.starts_with("bind EADDRINUSE 127.0.0.1:"), "{}", err.message);
    }

    #[test]
    fn foreign_address_is_eaddrnotavail() {
        let err = UdpSocket::open("192.0.2.1:0".parse().unwrap(), None).unwrap_err();
        assert_eq!(err.code, "EADDRNOTAVAIL");
    }

    #[test]
    fn connects_over_ipv6() {
        let peer = UdpSocket::open("[::1]:0".parse().unwrap(), None).unwrap();
        let s = UdpSocket::open("[::1]:0".parse().unwrap(), Some(peer.local_addr())).unwrap();
        assert_eq!(s.remote_addr(), Some(peer.local_addr()));
    }
}
