//! Lab networks: the socket options that put an instance on a real network (an interface,
//! shared ports, broadcast, TTL, DSCP, socket priority, buffer sizes, outgoing multicast, packet
//! information), checked from the constructor's options ([`NetworkOptions`]), applied when the
//! socket is created ([`apply`]) and read back from the kernel ([`SocketInfo`]); and multicast
//! memberships ([`Membership`]), joined and left before or while the workers run.
//!
//! Each option is set with socket2 or rustix where they wrap it, else in `sys::sockopt`. A
//! refusal is the errno with syscall `setsockopt` and the option in the message
//! (`setsockopt EPERM SO_PRIORITY 7: ...`), with how to get the permission where one is
//! missing. No option is left at another value than the one asked for without an error: a
//! buffer size past `net.core.rmem_max`/`wmem_max` is forced (`SO_RCVBUFFORCE`), or fails.
//!
//! One default differs from a plain socket: `IP_MULTICAST_ALL` / `IPV6_MULTICAST_ALL` are off,
//! so that an instance hears only the groups it joined itself, on the interfaces it joined
//! them on, and not every group some other socket of the host joined on its port.

use std::fmt::Display;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;

use socket2::{InterfaceIndexOrAddress, Socket};

use crate::addr::{interface_index, interface_name, parse_ip_with_scope};
use crate::config::{integer, Options};
use crate::error::{Error, Result};
use crate::sys::{self, MembershipChange};

/// Longest interface name (`IFNAMSIZ` - 1). The kernel would cut a longer one short and could
/// then find another interface.
const MAX_INTERFACE_NAME: usize = 15;
/// Largest socket priority: the kernel takes an `int`. Any process may set 0..=6
/// (`TC_PRIO_INTERACTIVE`); higher ones need CAP_NET_ADMIN (or CAP_NET_RAW).
const MAX_SOCKET_PRIORITY: u64 = i32::MAX as u64;
/// Largest buffer size: the kernel doubles the value (for its bookkeeping) into an `int`.
const MAX_BUFFER_BYTES: u64 = i32::MAX as u64 / 2;

/// An interface as options and methods name it: by name (`eth1`), or by one of its addresses
/// (`10.0.0.2`; for IPv6 also `::%eth1` or `fe80::1%eth1`, whose scope names it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InterfaceRef {
    /// An interface name.
    Name(String),
    /// An address of the interface, with an IPv6 scope id (0: none).
    Address(IpAddr, u32),
}

impl InterfaceRef {
    /// Parses `text`; `what` names the argument in errors (`The argument 'multicastInterface'`
    /// style comes from the caller). Interface names never contain ':' and are not dotted
    /// quads, so anything that does or is one is an address.
    pub(crate) fn parse(what: &str, text: &str) -> Result<InterfaceRef> {
        if text.contains(':') || text.parse::<Ipv4Addr>().is_ok() {
            let (ip, scope) = parse_ip_with_scope(what, text)?;
            return Ok(InterfaceRef::Address(ip, scope));
        }
        check_interface_name(what, text)?;
        Ok(InterfaceRef::Name(text.to_string()))
    }

    /// The interface's index on a socket of the given family; 0 for the unspecified address
    /// (`0.0.0.0`, `::`: the kernel chooses by route). An unknown name is ENODEV
    /// (`if_nametoindex`); an address of the other family, or that no interface has, is
    /// ERR_INVALID_ARG_VALUE.
    pub(crate) fn index(&self, what: &str, ipv4: bool) -> Result<u32> {
        match *self {
            InterfaceRef::Name(ref name) => interface_index(name),
            InterfaceRef::Address(ip, scope) => {
                check_family(what, ip, ipv4)?;
                if scope != 0 {
                    return Ok(scope);
                }
                if ip.is_unspecified() {
                    return Ok(0);
                }
                let name = sys::interface_with_address(ip)
                    .map_err(|e| Error::from_io("getifaddrs", &e, ""))?
                    .ok_or_else(|| {
                        Error::invalid_arg_value(
                            &format!("The argument '{what}'"),
                            "must be the name of an interface or one of its addresses; no interface has this address",
                            format!("'{ip}'"),
                        )
                    })?;
                interface_index(&name)
            }
        }
    }
}

/// A name the kernel can look up as given: 1 to 15 bytes, no NUL.
fn check_interface_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_INTERFACE_NAME || name.contains('\0') {
        return Err(Error::invalid_arg_value(
            &format!("The argument '{what}'"),
            "must be an interface name of 1 to 15 bytes without NUL, or an address",
            format!("'{}'", name.escape_debug()),
        ));
    }
    Ok(())
}

fn check_family(what: &str, ip: IpAddr, ipv4: bool) -> Result<()> {
    if ip.is_ipv4() == ipv4 {
        return Ok(());
    }
    let family = if ipv4 { "an IPv4" } else { "an IPv6" };
    Err(Error::invalid_arg_value(
        &format!("The argument '{what}'"),
        &format!("must be {family} address, as the socket is"),
        format!("'{ip}'"),
    ))
}

/// The lab-network options of the constructor, checked. `None` or `false`: the kernel's
/// default, untouched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkOptions {
    /// `interface`: bind the socket to this interface (`SO_BINDTODEVICE`).
    pub interface: Option<String>,
    /// `reuseAddress`: `SO_REUSEADDR`.
    pub reuse_address: bool,
    /// `reusePort`: `SO_REUSEPORT`.
    pub reuse_port: bool,
    /// `broadcast`: `SO_BROADCAST` (IPv4 only).
    pub broadcast: bool,
    /// `ttl`: unicast TTL / hop limit, 1..=255.
    pub ttl: Option<u32>,
    /// `dscp`: DSCP 0..=63, the upper six bits of the TOS byte / traffic class.
    pub dscp: Option<u8>,
    /// `socketPriority`: `SO_PRIORITY`.
    pub socket_priority: Option<u32>,
    /// `recvBufferSize`, bytes (`SO_RCVBUF`, forced past `net.core.rmem_max`).
    pub recv_buffer_bytes: Option<usize>,
    /// `sendBufferSize`, bytes (`SO_SNDBUF`, forced past `net.core.wmem_max`).
    pub send_buffer_bytes: Option<usize>,
    /// `multicast.interface`: where outgoing multicast leaves.
    pub multicast_interface: Option<InterfaceRef>,
    /// `multicast.ttl`: TTL / hop limit of outgoing multicast, 0..=255.
    pub multicast_ttl: Option<u32>,
    /// `multicast.loopback`: whether this host's own sockets hear its multicast.
    pub multicast_loopback: Option<bool>,
    /// `packetInfo`: received packets carry their destination address and interface.
    pub packet_info: bool,
    /// `gso` (default true): send runs of equal-sized datagrams as one message with
    /// `UDP_SEGMENT`, where the kernel supports it.
    pub gso: bool,
    /// `gro` (default true): ask the kernel to coalesce arriving datagrams (`UDP_GRO`), where
    /// it supports it; the receiver splits them again.
    pub gro: bool,
}

impl NetworkOptions {
    /// Checks the values of the lab-network options for a socket of the given family.
    pub(crate) fn new(options: &Options, ipv4: bool) -> Result<NetworkOptions> {
        let number = |name: &str, value: Option<f64>, min: u64, max: u64| {
            value
                .map(|v| integer(&format!("\"options.{name}\""), v, min, max))
                .transpose()
        };
        if let Some(name) = &options.interface {
            check_interface_name("options.interface", name)?;
        }
        let broadcast = options.broadcast.unwrap_or(false);
        if broadcast && !ipv4 {
            return Err(Error::invalid_arg_value(
                "The property 'options.broadcast'",
                "is IPv4 only: IPv6 has no broadcast (the group ff02::1 reaches every host of a link)",
                "true",
            ));
        }
        let multicast_interface = options
            .multicast_interface
            .as_deref()
            .map(|text| InterfaceRef::parse("options.multicast.interface", text))
            .transpose()?;
        if let Some(InterfaceRef::Address(ip, _)) = multicast_interface {
            check_family("options.multicast.interface", ip, ipv4)?;
        }
        Ok(NetworkOptions {
            interface: options.interface.clone(),
            reuse_address: options.reuse_address.unwrap_or(false),
            reuse_port: options.reuse_port.unwrap_or(false),
            broadcast,
            ttl: number("ttl", options.ttl, 1, 255)?.map(|v| v as u32),
            dscp: number("dscp", options.dscp, 0, 63)?.map(|v| v as u8),
            socket_priority: number("socketPriority", options.socket_priority, 0, MAX_SOCKET_PRIORITY)?
                .map(|v| v as u32),
            recv_buffer_bytes: number("recvBufferSize", options.recv_buffer_size, 1, MAX_BUFFER_BYTES)?
                .map(|v| v as usize),
            send_buffer_bytes: number("sendBufferSize", options.send_buffer_size, 1, MAX_BUFFER_BYTES)?
                .map(|v| v as usize),
            multicast_interface,
            multicast_ttl: number("multicast.ttl", options.multicast_ttl, 0, 255)?.map(|v| v as u32),
            multicast_loopback: options.multicast_loopback,
            packet_info: options.packet_info.unwrap_or(false),
            gso: options.gso.unwrap_or(true),
            gro: options.gro.unwrap_or(true),
        })
    }
}

/// What [`apply`] resolved, for later calls and [`SocketInfo`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Index of the interface the socket is bound to (`interface`); 0: none.
    pub(crate) bound_interface_index: u32,
    /// Index of the outgoing multicast interface set (`multicast.interface`); 0: the route's.
    pub(crate) multicast_interface_index: u32,
    /// `gso` asked and the kernel knows `UDP_SEGMENT`.
    pub(crate) gso: bool,
}

/// The error of a refused `setsockopt`: `setsockopt <ERRNO> <OPTION> <value>`, with a hint
/// on the permission or the name where the errno calls for one.
fn refused(option: &'static str, value: impl Display) -> impl FnOnce(io::Error) -> Error {
    move |e| {
        let error = Error::from_io("setsockopt", &e, &format!("{option} {value}"));
        let hint = match (error.code, option) {
            ("EPERM", "SO_BINDTODEVICE") => {
                "binding a socket to an interface needs CAP_NET_RAW: run as root, or grant it with \
                 `setcap cap_net_raw+ep \"$(readlink -f \"$(command -v node)\")\"`"
            }
            ("ENODEV", "SO_BINDTODEVICE") => "no interface has this name in this network namespace",
            ("EPERM", "SO_PRIORITY") => {
                "a socket priority above 6 needs CAP_NET_ADMIN (or CAP_NET_RAW): run as root, or grant it \
                 with `setcap cap_net_admin+ep \"$(readlink -f \"$(command -v node)\")\"`"
            }
            ("ENOBUFS", _) => {
                "a socket may join at most net.ipv4.igmp_max_memberships groups (default 20) and name at \
                 most net.ipv4.igmp_max_msf sources (default 10); raise them with sysctl -w"
            }
            ("EADDRINUSE", _) => "already joined on this interface",
            ("EADDRNOTAVAIL", _) => "not joined on this interface (or the address is not of this host)",
            _ => return error,
        };
        error.with_hint(hint)
    }
}

/// The error of a refused `getsockopt` (reading an option back).
fn unreadable(option: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |e| Error::from_io("getsockopt", &e, option)
}

/// Sets the lab-network options on a socket that is not bound yet (`SO_REUSEPORT` and
/// `SO_BINDTODEVICE` must come before `bind`). Also turns `IP(V6)_MULTICAST_ALL` off (see
/// the module's doc).
pub(crate) fn apply(socket: &Socket, options: &NetworkOptions, ipv4: bool) -> Result<Applied> {
    let mut applied = Applied::default();
    if options.reuse_address {
        socket.set_reuse_address(true).map_err(refused("SO_REUSEADDR", true))?;
    }
    if options.reuse_port {
        socket.set_reuse_port(true).map_err(refused("SO_REUSEPORT", true))?;
    }
    if let Some(name) = &options.interface {
        socket
            .bind_device(Some(name.as_bytes()))
            .map_err(refused("SO_BINDTODEVICE", format!("'{name}'")))?;
        applied.bound_interface_index = interface_index(name)?;
    }
    if options.broadcast {
        socket.set_broadcast(true).map_err(refused("SO_BROADCAST", true))?;
    }
    if let Some(bytes) = options.recv_buffer_bytes {
        set_buffer(socket, Buffer::Receive, bytes)?;
    }
    if let Some(bytes) = options.send_buffer_bytes {
        set_buffer(socket, Buffer::Send, bytes)?;
    }
    if let Some(ttl) = options.ttl {
        if ipv4 {
            socket.set_ttl_v4(ttl).map_err(refused("IP_TTL", ttl))?;
        } else {
            socket
                .set_unicast_hops_v6(ttl)
                .map_err(refused("IPV6_UNICAST_HOPS", ttl))?;
        }
    }
    if let Some(dscp) = options.dscp {
        set_dscp(socket, dscp, ipv4)?;
    }
    if let Some(priority) = options.socket_priority {
        socket
            .set_priority(priority)
            .map_err(refused("SO_PRIORITY", priority))?;
    }
    if let Some(interface) = &options.multicast_interface {
        let index = interface.index("options.multicast.interface", ipv4)?;
        if ipv4 {
            let any = Ipv4Addr::UNSPECIFIED;
            rustix::net::sockopt::set_ip_multicast_if_with_ifindex(socket, &any, &any, index)
                .map_err(|e| refused("IP_MULTICAST_IF", describe_interface(index))(e.into()))?;
        } else {
            socket
                .set_multicast_if_v6(index)
                .map_err(refused("IPV6_MULTICAST_IF", describe_interface(index)))?;
        }
        applied.multicast_interface_index = index;
    }
    if let Some(ttl) = options.multicast_ttl {
        if ipv4 {
            socket
                .set_multicast_ttl_v4(ttl)
                .map_err(refused("IP_MULTICAST_TTL", ttl))?;
        } else {
            socket
                .set_multicast_hops_v6(ttl)
                .map_err(refused("IPV6_MULTICAST_HOPS", ttl))?;
        }
    }
    if let Some(loopback) = options.multicast_loopback {
        if ipv4 {
            socket
                .set_multicast_loop_v4(loopback)
                .map_err(refused("IP_MULTICAST_LOOP", loopback))?;
        } else {
            socket
                .set_multicast_loop_v6(loopback)
                .map_err(refused("IPV6_MULTICAST_LOOP", loopback))?;
        }
    }
    if ipv4 {
        socket
            .set_multicast_all_v4(false)
            .map_err(refused("IP_MULTICAST_ALL", false))?;
    } else {
        socket
            .set_multicast_all_v6(false)
            .map_err(refused("IPV6_MULTICAST_ALL", false))?;
    }
    if options.packet_info {
        let option = if ipv4 { "IP_PKTINFO" } else { "IPV6_RECVPKTINFO" };
        sys::enable_packet_info(socket.as_fd(), !ipv4).map_err(refused(option, true))?;
    }
    // Offloads are asked for where the kernel has them; a kernel without them (ENOPROTOOPT)
    // leaves plain datagrams, which getSocketInfo shows.
    applied.gso = options.gso && sys::gso_supported(socket.as_fd());
    if options.gro {
        let _ = sys::enable_gro(socket.as_fd());
    }
    Ok(applied)
}

/// Sets the DSCP bits of the TOS byte (IPv4) or traffic class (IPv6), leaving the two ECN bits
/// as they are.
fn set_dscp(socket: &Socket, dscp: u8, ipv4: bool) -> Result<()> {
    const ECN_BITS: u32 = 0b11;
    if ipv4 {
        let tos = socket.tos_v4().map_err(unreadable("IP_TOS"))?;
        let tos = u32::from(dscp) << 2 | tos & ECN_BITS;
        socket.set_tos_v4(tos).map_err(refused("IP_TOS", tos))
    } else {
        let class = socket.tclass_v6().map_err(unreadable("IPV6_TCLASS"))?;
        let class = u32::from(dscp) << 2 | class & ECN_BITS;
        socket.set_tclass_v6(class).map_err(refused("IPV6_TCLASS", class))
    }
}

#[derive(Clone, Copy)]
enum Buffer {
    Receive,
    Send,
}

/// Sets a socket buffer to `bytes`. The kernel caps the plain option at `net.core.rmem_max`
/// (`wmem_max`) without saying so; if the size read back shows the cap, the privileged
/// variant (`SO_RCVBUFFORCE`, `SO_SNDBUFFORCE`: CAP_NET_ADMIN) sets it past the cap, and if
/// that is refused too the error says what limits it and how to lift the limit.
fn set_buffer(socket: &Socket, buffer: Buffer, bytes: usize) -> Result<()> {
    let (option, force_option, sysctl, name) = match buffer {
        Buffer::Receive => ("SO_RCVBUF", "SO_RCVBUFFORCE", "net.core.rmem_max", "recvBufferSize"),
        Buffer::Send => ("SO_SNDBUF", "SO_SNDBUFFORCE", "net.core.wmem_max", "sendBufferSize"),
    };
    let result = match buffer {
        Buffer::Receive => socket.set_recv_buffer_size(bytes),
        Buffer::Send => socket.set_send_buffer_size(bytes),
    };
    result.map_err(refused(option, bytes))?;
    let reported = match buffer {
        Buffer::Receive => socket.recv_buffer_size(),
        Buffer::Send => socket.send_buffer_size(),
    }
    .map_err(unreadable(option))?;
    // The kernel reports twice what it granted (it counts its bookkeeping in the buffer).
    let granted = reported / 2;
    if granted >= bytes {
        return Ok(());
    }
    let forced = match buffer {
        Buffer::Receive => rustix::net::sockopt::set_socket_recv_buffer_size_force(socket, bytes),
        Buffer::Send => rustix::net::sockopt::set_socket_send_buffer_size_force(socket, bytes),
    };
    forced.map_err(|e| {
        Error::from_io("setsockopt", &e.into(), &format!("{force_option} {bytes}")).with_hint(&format!(
            "{name} {bytes} is more than {sysctl} ({granted} bytes) allows, and going past it needs \
             CAP_NET_ADMIN: run as root, grant it, or raise the limit with `sysctl -w {sysctl}={bytes}`"
        ))
    })
}

/// An interface index as messages show it: its name and index, or "the route's interface".
fn describe_interface(index: u32) -> String {
    match (index, interface_name(index)) {
        (0, _) => "on the route's interface".into(),
        (_, Some(name)) => format!("on {name} (index {index})"),
        (_, None) => format!("on interface index {index}"),
    }
}

/// One multicast membership of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The group.
    pub group: IpAddr,
    /// For a source-specific membership, the only sender heard.
    pub source: Option<IpAddr>,
    /// The interface it was joined on; 0: the one the route to the group goes through, as the
    /// kernel chose.
    pub interface_index: u32,
}

impl Membership {
    /// Checks the arguments of `addMembership(multicastAddress, multicastInterface?)` (no
    /// `source`) or `addSourceSpecificMembership(sourceAddress, groupAddress,
    /// multicastInterface?)`, with node:dgram's argument names. Without an interface: the
    /// group's IPv6 scope (`ff02::1%eth1`), else the interface the socket is bound to
    /// (`default_index`), else 0 (the route's).
    pub(crate) fn new(
        source: Option<&str>,
        group: &str,
        interface: Option<&str>,
        ipv4: bool,
        default_index: u32,
    ) -> Result<Membership> {
        let group_name = if source.is_some() {
            "groupAddress"
        } else {
            "multicastAddress"
        };
        let (group_ip, group_scope) = parse_ip_with_scope(group_name, group)?;
        check_family(group_name, group_ip, ipv4)?;
        if !group_ip.is_multicast() {
            return Err(Error::invalid_arg_value(
                &format!("The argument '{group_name}'"),
                "must be a multicast address (224.0.0.0/4, ff00::/8)",
                format!("'{group}'"),
            ));
        }
        let source = source
            .map(|text| {
                let (ip, _) = parse_ip_with_scope("sourceAddress", text)?;
                check_family("sourceAddress", ip, ipv4)?;
                if ip.is_multicast() || ip.is_unspecified() || ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
                    return Err(Error::invalid_arg_value(
                        "The argument 'sourceAddress'",
                        "must be a unicast address",
                        format!("'{text}'"),
                    ));
                }
                Ok(ip)
            })
            .transpose()?;
        let interface_index = match interface {
            Some(text) => InterfaceRef::parse("multicastInterface", text)?.index("multicastInterface", ipv4)?,
            None if group_scope != 0 => group_scope,
            None => default_index,
        };
        Ok(Membership {
            group: group_ip,
            source,
            interface_index,
        })
    }

    /// Joins or leaves it on `socket`.
    pub(crate) fn change(&self, socket: &Socket, change: MembershipChange) -> Result<()> {
        let join = change == MembershipChange::Join;
        let index = self.interface_index;
        let detail = match self.source {
            Some(source) => format!("{source} → {} {}", self.group, describe_interface(index)),
            None => format!("{} {}", self.group, describe_interface(index)),
        };
        match (self.group, self.source) {
            (IpAddr::V4(group), None) => {
                let interface = InterfaceIndexOrAddress::Index(index);
                let (option, result) = if join {
                    ("IP_ADD_MEMBERSHIP", socket.join_multicast_v4_n(&group, &interface))
                } else {
                    ("IP_DROP_MEMBERSHIP", socket.leave_multicast_v4_n(&group, &interface))
                };
                result.map_err(refused(option, detail))
            }
            (IpAddr::V6(group), None) => {
                let (option, result) = if join {
                    ("IPV6_ADD_MEMBERSHIP", socket.join_multicast_v6(&group, index))
                } else {
                    ("IPV6_DROP_MEMBERSHIP", socket.leave_multicast_v6(&group, index))
                };
                result.map_err(refused(option, detail))
            }
            (group, Some(source)) => {
                let option = if join {
                    "MCAST_JOIN_SOURCE_GROUP"
                } else {
                    "MCAST_LEAVE_SOURCE_GROUP"
                };
                sys::change_source_membership(socket.as_fd(), change, group, source, index)
                    .map_err(refused(option, detail))
            }
        }
    }
}

/// What is in effect on a socket, read back from the kernel (`getsockopt`) where it can say,
/// else as set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketInfo {
    /// The bound address and port.
    pub local: SocketAddr,
    /// The connected peer; `None` when unconnected.
    pub remote: Option<SocketAddr>,
    /// The interface the socket is bound to (`SO_BINDTODEVICE`); `None`: any.
    pub interface: Option<String>,
    /// `SO_RCVBUF` as the kernel reports it: twice the size granted (it counts its
    /// bookkeeping in the buffer), as node:dgram's `getRecvBufferSize()` shows it.
    pub recv_buffer_bytes: usize,
    /// `SO_SNDBUF`, reported the same way.
    pub send_buffer_bytes: usize,
    /// TTL (IPv4) or hop limit (IPv6) of unicast datagrams.
    pub ttl: u32,
    /// DSCP of sent datagrams (the upper six bits of the TOS byte / traffic class).
    pub dscp: u8,
    /// `SO_PRIORITY`.
    pub socket_priority: u32,
    /// `SO_BROADCAST`.
    pub broadcast: bool,
    /// `SO_REUSEADDR`.
    pub reuse_address: bool,
    /// `SO_REUSEPORT`.
    pub reuse_port: bool,
    /// Interface outgoing multicast leaves by; 0: the route's. IPv6 reads it back; IPv4, whose
    /// `getsockopt` names only an address, reports the one set.
    pub multicast_interface_index: u32,
    /// TTL / hop limit of outgoing multicast.
    pub multicast_ttl: u32,
    /// Whether this host's own sockets hear its multicast.
    pub multicast_loopback: bool,
    /// Whether received packets carry their destination and interface (`packetInfo`).
    pub packet_info: bool,
    /// Groups joined, in the order they were joined.
    pub memberships: Vec<Membership>,
    /// Whether runs of equal-sized datagrams leave as GSO messages now (`gso`): false when
    /// the option is off, the kernel lacks `UDP_SEGMENT`, or a refused GSO send made the
    /// sender fall back (`gso_fallbacks`).
    pub gso: bool,
    /// Most datagrams per GSO message.
    pub gso_max_segments: u32,
    /// Whether `UDP_GRO` is on (read back from the kernel).
    pub gro: bool,
}

/// Reads back what is in effect on `socket`.
pub(crate) fn socket_info(
    socket: &Socket,
    local: SocketAddr,
    remote: Option<SocketAddr>,
    applied: Applied,
    memberships: &[Membership],
    gso_active: bool,
) -> Result<SocketInfo> {
    let ipv4 = local.is_ipv4();
    let interface = socket
        .device()
        .map_err(unreadable("SO_BINDTODEVICE"))?
        .map(|name| String::from_utf8_lossy(&name).into_owned());
    let (ttl, class, multicast_interface_index, multicast_ttl, multicast_loopback) = if ipv4 {
        (
            socket.ttl_v4().map_err(unreadable("IP_TTL"))?,
            socket.tos_v4().map_err(unreadable("IP_TOS"))?,
            applied.multicast_interface_index,
            socket.multicast_ttl_v4().map_err(unreadable("IP_MULTICAST_TTL"))?,
            socket.multicast_loop_v4().map_err(unreadable("IP_MULTICAST_LOOP"))?,
        )
    } else {
        (
            socket.unicast_hops_v6().map_err(unreadable("IPV6_UNICAST_HOPS"))?,
            socket.tclass_v6().map_err(unreadable("IPV6_TCLASS"))?,
            socket.multicast_if_v6().map_err(unreadable("IPV6_MULTICAST_IF"))?,
            socket.multicast_hops_v6().map_err(unreadable("IPV6_MULTICAST_HOPS"))?,
            socket.multicast_loop_v6().map_err(unreadable("IPV6_MULTICAST_LOOP"))?,
        )
    };
    Ok(SocketInfo {
        local,
        remote,
        interface,
        recv_buffer_bytes: socket.recv_buffer_size().map_err(unreadable("SO_RCVBUF"))?,
        send_buffer_bytes: socket.send_buffer_size().map_err(unreadable("SO_SNDBUF"))?,
        ttl,
        dscp: (class >> 2) as u8 & 0x3f,
        socket_priority: socket.priority().map_err(unreadable("SO_PRIORITY"))?,
        broadcast: socket.broadcast().map_err(unreadable("SO_BROADCAST"))?,
        reuse_address: socket.reuse_address().map_err(unreadable("SO_REUSEADDR"))?,
        reuse_port: socket.reuse_port().map_err(unreadable("SO_REUSEPORT"))?,
        multicast_interface_index,
        multicast_ttl,
        multicast_loopback,
        packet_info: sys::packet_info_enabled(socket.as_fd(), !ipv4).map_err(unreadable(if ipv4 {
            "IP_PKTINFO"
        } else {
            "IPV6_RECVPKTINFO"
        }))?,
        memberships: memberships.to_vec(),
        gso: gso_active,
        gso_max_segments: sys::GSO_MAX_SEGMENTS as u32,
        gro: sys::gro_enabled(socket.as_fd()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code;

    fn options(ipv4: bool, options: Options) -> Result<NetworkOptions> {
        NetworkOptions::new(&options, ipv4)
    }

    fn udp(local: &str) -> Socket {
        let local: SocketAddr = local.parse().unwrap();
        let socket = Socket::new(
            socket2::Domain::for_address(local),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .unwrap();
        socket.bind(&local.into()).unwrap();
        socket
    }

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    #[test]
    fn values_out_of_range_are_refused_with_their_names() {
        let cases: [(Options, &str); 8] = [
            (
                Options {
                    ttl: Some(0.0),
                    ..Default::default()
                },
                "\"options.ttl\"",
            ),
            (
                Options {
                    ttl: Some(256.0),
                    ..Default::default()
                },
                "\"options.ttl\"",
            ),
            (
                Options {
                    dscp: Some(64.0),
                    ..Default::default()
                },
                "\"options.dscp\"",
            ),
            (
                Options {
                    dscp: Some(1.5),
                    ..Default::default()
                },
                "\"options.dscp\"",
            ),
            (
                Options {
                    socket_priority: Some(-1.0),
                    ..Default::default()
                },
                "\"options.socketPriority\"",
            ),
            (
                Options {
                    recv_buffer_size: Some(0.0),
                    ..Default::default()
                },
                "\"options.recvBufferSize\"",
            ),
            (
                Options {
                    send_buffer_size: Some(2e9),
                    ..Default::default()
                },
                "\"options.sendBufferSize\"",
            ),
            (
                Options {
                    multicast_ttl: Some(256.0),
                    ..Default::default()
                },
                "\"options.multicast.ttl\"",
            ),
        ];
        for (bad, name) in cases {
            let err = options(true, bad).unwrap_err();
            assert_eq!(err.code, code::OUT_OF_RANGE, "{name}");
            assert!(err.message.contains(name), "{}", err.message);
        }
        let ok = options(
            true,
            Options {
                ttl: Some(1.0),
                dscp: Some(63.0),
                socket_priority: Some(7.0),
                multicast_ttl: Some(0.0),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (ok.ttl, ok.dscp, ok.socket_priority, ok.multicast_ttl),
            (Some(1), Some(63), Some(7), Some(0))
        );
    }

    #[test]
    fn bad_names_and_ipv6_broadcast_are_invalid_values() {
        for name in ["", "a-name-of-16-byt", "lo\0"] {
            let err = options(
                true,
                Options {
                    interface: Some(name.into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
            assert_eq!(err.code, code::INVALID_ARG_VALUE, "{name:?}");
            assert!(err.message.contains("options.interface"), "{}", err.message);
        }
        let err = options(
            false,
            Options {
                broadcast: Some(true),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.code, code::INVALID_ARG_VALUE);
        assert!(err.message.contains("ff02::1"), "{}", err.message);
        let err = options(
            true,
            Options {
                multicast_interface: Some("::1".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.code, code::INVALID_ARG_VALUE);
        assert!(err.message.contains("IPv4"), "{}", err.message);
    }

    #[test]
    fn interfaces_by_name_address_or_scope() {
        assert_eq!(
            InterfaceRef::parse("x", "eth0").unwrap(),
            InterfaceRef::Name("eth0".into())
        );
        assert_eq!(
            InterfaceRef::parse("x", "10.0.0.1").unwrap(),
            InterfaceRef::Address("10.0.0.1".parse().unwrap(), 0)
        );
        let lo = interface_index("lo").unwrap();
        let by_scope = InterfaceRef::parse("x", "::%lo").unwrap();
        assert_eq!(by_scope, InterfaceRef::Address("::".parse().unwrap(), lo));
        assert_eq!(by_scope.index("x", false).unwrap(), lo);
        // Every network namespace has lo with 127.0.0.1.
        assert_eq!(
            InterfaceRef::parse("x", "127.0.0.1").unwrap().index("x", true).unwrap(),
            lo
        );
        assert_eq!(InterfaceRef::parse("x", "lo").unwrap().index("x", true).unwrap(), lo);
        assert_eq!(
            InterfaceRef::parse("x", "0.0.0.0").unwrap().index("x", true).unwrap(),
            0
        );
        let err = InterfaceRef::parse("x", "udpcom-none0")
            .unwrap()
            .index("x", true)
            .unwrap_err();
        assert_eq!((err.code, err.os.unwrap().syscall), ("ENODEV", "if_nametoindex"));
        let err = InterfaceRef::parse("x", "fe80::1%udpcom-none0").unwrap_err();
        assert_eq!(err.code, "ENODEV");
        let err = InterfaceRef::parse("x", "192.0.2.77")
            .unwrap()
            .index("x", true)
            .unwrap_err();
        assert_eq!(err.code, code::INVALID_ARG_VALUE);
        assert!(err.message.contains("no interface has this address"), "{}", err.message);
        let err = InterfaceRef::parse("x", "127.0.0.1")
            .unwrap()
            .index("x", false)
            .unwrap_err();
        assert_eq!(err.code, code::INVALID_ARG_VALUE);
    }

    #[test]
    fn membership_arguments_are_checked_like_dgram() {
        let m = Membership::new(None, "239.1.2.3", None, true, 0).unwrap();
        assert_eq!((m.source, m.interface_index), (None, 0));
        // The bound interface is the default; an IPv6 scope beats it; an argument beats both.
        let lo = interface_index("lo").unwrap();
        assert_eq!(
            Membership::new(None, "239.1.2.3", None, true, 99)
                .unwrap()
                .interface_index,
            99
        );
        assert_eq!(
            Membership::new(None, "ff02::1%lo", None, false, 99)
                .unwrap()
                .interface_index,
            lo
        );
        assert_eq!(
            Membership::new(None, "ff02::1%99", Some("lo"), false, 99)
                .unwrap()
                .interface_index,
            lo
        );
        let ssm = Membership::new(Some("10.1.1.1"), "232.1.1.1", Some("127.0.0.1"), true, 0).unwrap();
        assert_eq!(
            (ssm.source, ssm.interface_index),
            (Some("10.1.1.1".parse().unwrap()), lo)
        );
        for (source, group, interface, ipv4, name) in [
            (None, "10.1.2.3", None, true, "multicastAddress"),
            (None, "ff02::1", None, true, "multicastAddress"),
            (None, "239.1.1.1", None, false, "multicastAddress"),
            (None, "not an address", None, true, "multicastAddress"),
            (Some("10.1.1.1"), "10.1.1.2", None, true, "groupAddress"),
            (Some("239.1.1.2"), "232.1.1.1", None, true, "sourceAddress"),
            (Some("0.0.0.0"), "232.1.1.1", None, true, "sourceAddress"),
            (Some("::1"), "232.1.1.1", None, true, "sourceAddress"),
            (None, "239.1.1.1", Some("::1"), true, "multicastInterface"),
            (None, "239.1.1.1", Some("a-name-of-16-byt"), true, "multicastInterface"),
        ] {
            let err = Membership::new(source, group, interface, ipv4, 0).unwrap_err();
            assert_eq!(err.code, code::INVALID_ARG_VALUE, "{source:?} {group} {interface:?}");
            assert!(err.message.contains(&format!("'{name}'")), "{}", err.message);
        }
        let err = Membership::new(None, "239.1.1.1", Some("udpcom-none0"), true, 0).unwrap_err();
        assert_eq!(err.code, "ENODEV");
    }

    #[test]
    fn options_are_in_effect_as_the_kernel_reads_them_back() {
        for (address, ipv4) in [("127.0.0.1:0", true), ("[::1]:0", false)] {
            let socket = udp(address);
            let wanted = options(
                ipv4,
                Options {
                    reuse_address: Some(true),
                    ttl: Some(7.0),
                    dscp: Some(46.0),
                    socket_priority: Some(5.0),
                    multicast_interface: Some("lo".into()),
                    multicast_ttl: Some(3.0),
                    multicast_loopback: Some(false),
                    packet_info: Some(true),
                    ..Default::default()
                },
            )
            .unwrap();
            // Some ECN bits the DSCP must leave alone.
            if ipv4 {
                socket.set_tos_v4(0b01).unwrap();
            } else {
                socket.set_tclass_v6(0b01).unwrap();
            }
            let applied = apply(&socket, &wanted, ipv4).unwrap();
            let local = socket.local_addr().unwrap().as_socket().unwrap();
            let info = socket_info(&socket, local, None, applied, &[], false).unwrap();
            let lo = interface_index("lo").unwrap();
            assert_eq!((info.ttl, info.dscp, info.socket_priority), (7, 46, 5), "{local}");
            let class = if ipv4 {
                socket.tos_v4().unwrap()
            } else {
                socket.tclass_v6().unwrap()
            };
            assert_eq!(class, 46 << 2 | 0b01, "ECN bits kept");
            assert!(info.reuse_address && !info.reuse_port && !info.broadcast);
            assert_eq!(
                (
                    info.multicast_interface_index,
                    info.multicast_ttl,
                    info.multicast_loopback
                ),
                (lo, 3, false)
            );
            assert!(info.packet_info);
            assert_eq!(info.interface, None);
            // Not asked for: the kernel's defaults, and packet information off.
            let plain = udp(address);
            let info = socket_info(&plain, local, None, Applied::default(), &[], false).unwrap();
            assert!(!info.packet_info);
            assert_eq!(info.dscp, 0);
            assert!(info.ttl >= 1 && info.recv_buffer_bytes > 0 && info.send_buffer_bytes > 0);
        }
    }

    #[test]
    fn refusals_name_the_syscall_and_the_option() {
        let socket = udp("127.0.0.1:0");
        let err = apply(
            &socket,
            &options(
                true,
                Options {
                    interface: Some("udpcom-none0".into()),
                    ..Default::default()
                },
            )
            .unwrap(),
            true,
        )
        .unwrap_err();
        assert_eq!((err.code, err.os.unwrap().syscall), ("ENODEV", "setsockopt"));
        assert!(
            err.message
                .starts_with("setsockopt ENODEV SO_BINDTODEVICE 'udpcom-none0'"),
            "{}",
            err.message
        );
        assert!(err.message.contains("no interface has this name"), "{}", err.message);
        // The hints a permission error gets (a process with the capability never sees them).
        let hinted = |option, errno| refused(option, 7)(io::Error::from_raw_os_error(errno));
        let err = hinted("SO_PRIORITY", libc::EPERM);
        assert_eq!(err.message.split(':').next().unwrap(), "setsockopt EPERM SO_PRIORITY 7");
        assert!(
            err.message.contains("CAP_NET_ADMIN") && err.message.contains("setcap"),
            "{}",
            err.message
        );
        let err = hinted("SO_BINDTODEVICE", libc::EPERM);
        assert!(
            err.message.contains("CAP_NET_RAW") && err.message.contains("setcap"),
            "{}",
            err.message
        );
        assert_eq!(hinted("IP_TTL", libc::EINVAL).message, "setsockopt EINVAL IP_TTL 7");
    }

    #[test]
    fn buffers_past_the_limit_are_forced_or_refused_with_the_limit() {
        let limit: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let wanted = limit + 4096;
        let socket = udp("127.0.0.1:0");
        let result = set_buffer(&socket, Buffer::Receive, wanted);
        if is_root() {
            result.unwrap();
            assert!(socket.recv_buffer_size().unwrap() / 2 >= wanted);
        } else {
            let err = result.unwrap_err();
            assert_eq!((err.code, err.os.unwrap().syscall), ("EPERM", "setsockopt"));
            assert!(err.message.contains("SO_RCVBUFFORCE") && err.message.contains("net.core.rmem_max"));
        }
        // Within the limit the plain option does.
        set_buffer(&socket, Buffer::Send, 65_536).unwrap();
        assert!(socket.send_buffer_size().unwrap() >= 2 * 65_536);
    }

    #[test]
    fn memberships_join_and_leave_on_loopback() {
        let lo = interface_index("lo").unwrap();
        for (local, group, source) in [
            ("0.0.0.0:0", "239.255.77.1", "127.0.0.1"),
            ("[::]:0", "ff12::7701", "::1"),
        ] {
            let socket = udp(local);
            let ipv4 = group.contains('.');
            let joined = Membership::new(None, group, Some("lo"), ipv4, 0).unwrap();
            assert_eq!(joined.interface_index, lo);
            joined.change(&socket, MembershipChange::Join).unwrap();
            let err = joined.change(&socket, MembershipChange::Join).unwrap_err();
            assert_eq!(
                (err.code, err.os.unwrap().syscall),
                ("EADDRINUSE", "setsockopt"),
                "{}",
                err.message
            );
            assert!(
                err.message.contains("_ADD_MEMBERSHIP") && err.message.contains("on lo"),
                "{}",
                err.message
            );
            joined.change(&socket, MembershipChange::Leave).unwrap();
            let err = joined.change(&socket, MembershipChange::Leave).unwrap_err();
            assert_eq!(err.code, "EADDRNOTAVAIL", "{}", err.message);
            // Source-specific, on the same socket once the other membership is gone.
            let ssm = Membership::new(Some(source), group, Some("lo"), ipv4, 0).unwrap();
            ssm.change(&socket, MembershipChange::Join).unwrap();
            ssm.change(&socket, MembershipChange::Leave).unwrap();
            let err = ssm.change(&socket, MembershipChange::Leave).unwrap_err();
            assert!(err.message.contains("MCAST_LEAVE_SOURCE_GROUP"), "{}", err.message);
        }
    }
}
