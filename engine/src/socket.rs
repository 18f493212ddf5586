//! Socket set-up: create, set the lab-network options ([`crate::network`]), bind, connect, and
//! the options the workers rely on.

use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Type};

use crate::error::{Error, Result};
use crate::network::{self, Applied, Membership, NetworkOptions, SocketInfo};
use crate::sys::{self, MembershipChange};

/// Receive buffer asked for when `recvBufferSize` is not given (capped by `net.core.rmem_max`
/// unless the process may override it).
pub(crate) const RECV_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// A blocked send gives up after this long and is retried, so the sender notices `stop()`.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_millis(20);

/// A bound (and maybe connected) UDP socket shared by the workers.
#[derive(Debug)]
pub(crate) struct UdpSocket {
    socket: socket2::Socket,
    local: SocketAddr,
    remote: Option<SocketAddr>,
    /// What the lab-network options resolved to.
    applied: Applied,
    /// Whether the sender groups datagrams into GSO messages: from `gso` and the kernel's
    /// support, cleared for good when a GSO send is refused (the sender's fallback).
    gso_active: AtomicBool,
}

impl UdpSocket {
    /// Creates a UDP socket with the lab-network `options`, bound to `local` and, if `remote`
    /// is given, connected to it, so that only that peer's datagrams are received.
    pub(crate) fn open(local: SocketAddr, remote: Option<SocketAddr>, options: &NetworkOptions) -> Result<UdpSocket> {
        let socket = socket2::Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))
            .map_err(|e| Error::from_io("socket", &e, ""))?;
        // By default a larger receive buffer rides out bursts while the receiver is
        // descheduled: the privileged variant first (it ignores rmem_max), then the capped one;
        // neither is fatal (getSocketInfo shows what it got). recvBufferSize replaces this.
        if options.recv_buffer_bytes.is_none()
            && rustix::net::sockopt::set_socket_recv_buffer_size_force(&socket, RECV_BUFFER_BYTES).is_err()
        {
            let _ = socket.set_recv_buffer_size(RECV_BUFFER_BYTES);
        }
        let applied = network::apply(&socket, options, local.is_ipv4())?;
        socket
            .set_write_timeout(Some(SEND_TIMEOUT))
            .map_err(|e| Error::from_io("setsockopt", &e, "SO_SNDTIMEO"))?;
        sys::enable_rxq_ovfl(socket.as_fd()).map_err(|e| Error::from_io("setsockopt", &e, "SO_RXQ_OVFL"))?;
        socket
            .bind(&SockAddr::from(local))
            .map_err(|e| Error::from_io("bind", &e, &local.to_string()))?;
        if let Some(remote) = remote {
            socket.connect(&SockAddr::from(remote)).map_err(|e| {
                let error = Error::from_io("connect", &e, &remote.to_string());
                match e.raw_os_error() {
                    Some(libc::EACCES) if !options.broadcast => {
                        error.with_hint("a broadcast address needs the option broadcast: true")
                    }
                    _ => error,
                }
            })?;
        }
        let local = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or_else(|| Error::internal("bound socket has no local address"))?;
        Ok(UdpSocket {
            socket,
            local,
            remote,
            applied,
            gso_active: AtomicBool::new(applied.gso),
        })
    }

    /// The address the socket is bound to, with the port the kernel picked for port 0.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The connected peer, if any.
    pub(crate) fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// The interface the socket is bound to (`interface`), if any.
    pub(crate) fn bound_interface(&self) -> Option<String> {
        self.socket
            .device()
            .ok()
            .flatten()
            .map(|name| String::from_utf8_lossy(&name).into_owned())
    }

    /// Checks the arguments of a membership change and makes it (see [`Membership::new`]).
    pub(crate) fn membership(
        &self,
        change: MembershipChange,
        source: Option<&str>,
        group: &str,
        interface: Option<&str>,
    ) -> Result<Membership> {
        let membership = Membership::new(
            source,
            group,
            interface,
            self.local.is_ipv4(),
            self.applied.bound_interface_index,
        )?;
        membership.change(&self.socket, change)?;
        Ok(membership)
    }

    /// What is in effect on the socket, with the memberships the caller keeps.
    pub(crate) fn info(&self, memberships: &[Membership]) -> Result<SocketInfo> {
        network::socket_info(
            &self.socket,
            self.local,
            self.remote,
            self.applied,
            memberships,
            self.gso_active(),
        )
    }

    /// Whether sends may use GSO now.
    pub(crate) fn gso_active(&self) -> bool {
        self.gso_active.load(Ordering::Relaxed)
    }

    /// Stops GSO on this socket: a GSO send was refused (`EIO`, `EINVAL`, `EMSGSIZE`).
    pub(crate) fn stop_gso(&self) {
        self.gso_active.store(false, Ordering::Relaxed);
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
        let s = UdpSocket::open("127.0.0.1:0".parse().unwrap(), None, &NetworkOptions::default()).unwrap();
        assert_ne!(s.local_addr().port(), 0);
        assert_eq!(s.remote_addr(), None);
        assert!(s.recv_buffer_size() > 0);
    }

    #[test]
    fn address_in_use_is_eaddrinuse_with_syscall() {
        let a = UdpSocket::open("127.0.0.1:0".parse().unwrap(), None, &NetworkOptions::default()).unwrap();
        let err = UdpSocket::open(a.local_addr(), None, &NetworkOptions::default()).unwrap_err();
        assert_eq!(err.code, "EADDRINUSE");
        assert_eq!(err.os.unwrap().syscall, "bind");
        assert!(err.message.starts_with("bind EADDRINUSE 127.0.0.1:"), "{}", err.message);
    }

    #[test]
    fn foreign_address_is_eaddrnotavail() {
        let err = UdpSocket::open("192.0.2.1:0".parse().unwrap(), None, &NetworkOptions::default()).unwrap_err();
        assert_eq!(err.code, "EADDRNOTAVAIL");
    }

    #[test]
    fn connects_over_ipv6() {
        let peer = UdpSocket::open("[::1]:0".parse().unwrap(), None, &NetworkOptions::default()).unwrap();
        let s = UdpSocket::open(
            "[::1]:0".parse().unwrap(),
            Some(peer.local_addr()),
            &NetworkOptions::default(),
        )
        .unwrap();
        assert_eq!(s.remote_addr(), Some(peer.local_addr()));
    }
}
