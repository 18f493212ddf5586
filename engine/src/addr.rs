//! Socket addresses: a compact form that travels through the rings with each packet
//! ([`PeerAddr`]), and the text form JavaScript sees (`"fe80::1%eth0"`).
//!
//! A received packet carries its sender's address and a queued packet its destination, so the
//! address must be `Copy` and fit in a ring slot without touching the heap: [`PeerAddr`] is 24
//! bytes (family, port, 16 address bytes, IPv6 scope id). Text goes through
//! [`parse_ip_with_scope`] and [`format_ip`], which accept and print an IPv6 scope by interface
//! name or number, as node:dgram's addresses do. Interface names are looked up in the network
//! namespace of the calling thread.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use rustix::net::{netdevice, AddressFamily, SocketType};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
enum Family {
    #[default]
    None,
    V4,
    V6,
}

/// A socket address in a compact, Copy form that fits in a ring slot (no heap): family, port,
/// 16 address bytes, IPv6 scope id. `PeerAddr::default()` (family none) means "no address".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    family: Family,
    port: u16,
    /// IPv4: the address in the first four bytes, network order (the rest zero); IPv6: all 16.
    octets: [u8; 16],
    /// IPv6 scope id (interface index of a link-local address); 0 for none and for IPv4.
    scope_id: u32,
}

impl PeerAddr {
    /// An IPv4 address, from its 32 bits in host order.
    pub(crate) fn v4(ip_bits: u32, port: u16) -> PeerAddr {
        let mut octets = [0; 16];
        octets[..4].copy_from_slice(&ip_bits.to_be_bytes());
        PeerAddr {
            family: Family::V4,
            port,
            octets,
            scope_id: 0,
        }
    }

    /// An IPv6 address with its scope id (0: none).
    pub(crate) fn v6(octets: [u8; 16], port: u16, scope_id: u32) -> PeerAddr {
        PeerAddr {
            family: Family::V6,
            port,
            octets,
            scope_id,
        }
    }

    /// The compact form of `addr` (an IPv6 flow label is not kept).
    pub fn from_socket_addr(addr: SocketAddr) -> PeerAddr {
        match addr {
            SocketAddr::V4(v4) => PeerAddr::v4(u32::from(*v4.ip()), v4.port()),
            SocketAddr::V6(v6) => PeerAddr::v6(v6.ip().octets(), v6.port(), v6.scope_id()),
        }
    }

    /// The address as std knows it; `None` for the empty one.
    pub fn to_socket_addr(&self) -> Option<SocketAddr> {
        match self.family {
            Family::None => None,
            Family::V4 => Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(self.ipv4_bits()),
                self.port,
            ))),
            Family::V6 => Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(self.octets),
                self.port,
                0,
                self.scope_id,
            ))),
        }
    }

    /// True for the empty address ("no address").
    pub fn is_none(&self) -> bool {
        self.family == Family::None
    }

    /// True for an IPv4 address (false for IPv6 and for the empty address).
    pub fn is_ipv4(&self) -> bool {
        self.family == Family::V4
    }

    /// The port; 0 for the empty address.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The IPv4 address as 32 bits in host order (`0x7f000001` for 127.0.0.1); 0 for IPv6.
    pub fn ipv4_bits(&self) -> u32 {
        match self.family {
            Family::V4 => u32::from_be_bytes([self.octets[0], self.octets[1], self.octets[2], self.octets[3]]),
            _ => 0,
        }
    }

    /// The 16 bytes of an IPv6 address; zeros for IPv4.
    pub fn ipv6_octets(&self) -> [u8; 16] {
        match self.family {
            Family::V6 => self.octets,
            _ => [0; 16],
        }
    }

    /// The IPv6 scope id (an interface index); 0 when there is none.
    pub fn scope_id(&self) -> u32 {
        self.scope_id
    }
}

/// Parses `"1.2.3.4"`, `"::1"`, `"fe80::1%eth0"` or `"fe80::1%3"` (an IPv6 scope by interface
/// name or number; 0 when there is none). Bad text is `ERR_INVALID_ARG_VALUE` (`"The argument
/// '<what>' must be an IPv4 or IPv6 address..."`), an unknown interface name `ENODEV` (syscall
/// `"if_nametoindex"`).
pub fn parse_ip_with_scope(what: &str, text: &str) -> Result<(IpAddr, u32)> {
    let invalid = |reason: &str| {
        Error::invalid_arg_value(
            &format!("The argument '{what}'"),
            &format!("must be an IPv4 or IPv6 address{reason}"),
            format!("'{text}'"),
        )
    };
    let (ip_text, scope) = match text.split_once('%') {
        Some((ip_text, scope)) => (ip_text, Some(scope)),
        None => (text, None),
    };
    let ip: IpAddr = ip_text.parse().map_err(|_| invalid(""))?;
    let Some(scope) = scope else { return Ok((ip, 0)) };
    if ip.is_ipv4() {
        return Err(invalid(" (only an IPv6 address takes a %scope)"));
    }
    if scope.is_empty() {
        return Err(invalid(" (an interface name or number follows %)"));
    }
    let scope_id = if scope.bytes().all(|b| b.is_ascii_digit()) {
        scope.parse().map_err(|_| invalid(" (the scope number is too large)"))?
    } else {
        interface_index(scope)?
    };
    Ok((ip, scope_id))
}

/// The address as RFC 5952 text, with `"%<interface name>"` (or `"%<number>"` if the index has
/// no name) for a non-zero IPv6 scope: what node:dgram's `rinfo.address` shows. `""` for the
/// empty address.
pub fn format_ip(addr: &PeerAddr) -> String {
    match addr.family {
        Family::None => String::new(),
        Family::V4 => Ipv4Addr::from(addr.ipv4_bits()).to_string(),
        Family::V6 => {
            let ip = Ipv6Addr::from(addr.octets);
            match addr.scope_id {
                0 => ip.to_string(),
                scope_id => match interface_name(scope_id) {
                    Some(name) => format!("{ip}%{name}"),
                    None => format!("{ip}%{scope_id}"),
                },
            }
        }
    }
}

/// A socket to ask interface questions through (the ioctls need one; any family will do).
fn query_socket() -> std::io::Result<rustix::fd::OwnedFd> {
    Ok(rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None)?)
}

/// The index of the interface called `name` in this thread's network namespace; ENODEV
/// (`if_nametoindex`) if there is none.
pub(crate) fn interface_index(name: &str) -> Result<u32> {
    let os_error = |e: std::io::Error| Error::from_io("if_nametoindex", &e, name);
    // A name with a NUL byte would be cut short by the kernel and find another interface.
    if name.contains('\0') {
        return Err(Error::os("if_nametoindex", libc::ENODEV, name));
    }
    let socket = query_socket().map_err(os_error)?;
    netdevice::name_to_index(&socket, name).map_err(|e| os_error(e.into()))
}

/// The name of the interface with `index` in this thread's network namespace, if it has one.
pub fn interface_name(index: u32) -> Option<String> {
    netdevice::index_to_name(&query_socket().ok()?, index).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code;

    #[test]
    fn fits_in_a_ring_slot() {
        assert_eq!(std::mem::size_of::<PeerAddr>(), 24);
    }

    #[test]
    fn socket_addresses_round_trip() {
        for text in [
            "127.0.0.1:5000",
            "0.0.0.0:0",
            "[::1]:9",
            "[fe80::1%7]:65535",
            "[::ffff:1.2.3.4]:80",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            let peer = PeerAddr::from_socket_addr(addr);
            assert_eq!(peer.to_socket_addr(), Some(addr), "{text}");
            assert_eq!(peer.port(), addr.port());
            assert_eq!(peer.is_ipv4(), addr.is_ipv4());
            assert!(!peer.is_none());
        }
        let v4 = PeerAddr::from_socket_addr("10.1.2.3:4".parse().unwrap());
        assert_eq!(v4.ipv4_bits(), 0x0a01_0203);
        assert_eq!(v4.ipv6_octets(), [0; 16]);
        assert_eq!(v4, PeerAddr::v4(0x0a01_0203, 4));
        let v6 = PeerAddr::from_socket_addr("[fe80::1%3]:4".parse().unwrap());
        assert_eq!((v6.ipv4_bits(), v6.scope_id()), (0, 3));
        assert_eq!(v6.ipv6_octets()[..2], [0xfe, 0x80]);
    }

    #[test]
    fn the_empty_address_is_none() {
        let none = PeerAddr::default();
        assert!(none.is_none() && !none.is_ipv4());
        assert_eq!(none.to_socket_addr(), None);
        assert_eq!((none.port(), none.ipv4_bits(), none.scope_id()), (0, 0, 0));
        assert_eq!(format_ip(&none), "");
    }

    #[test]
    fn text_is_rfc_5952_like_node() {
        let text = |addr: &str| format_ip(&PeerAddr::from_socket_addr(addr.parse().unwrap()));
        assert_eq!(text("1.2.3.4:1"), "1.2.3.4");
        assert_eq!(text("[2001:0DB8:0:0:0:0:0:0001]:1"), "2001:db8::1");
        assert_eq!(
            text("[2001:db8:0:1:1:1:1:1]:1"),
            "2001:db8:0:1:1:1:1:1",
            "one zero group stays"
        );
        assert_eq!(text("[::ffff:127.0.0.1]:1"), "::ffff:127.0.0.1");
        assert_eq!(text("[::]:1"), "::");
    }

    #[test]
    fn scopes_by_name_and_by_number() {
        assert_eq!(
            parse_ip_with_scope("address", "::1").unwrap(),
            ("::1".parse().unwrap(), 0)
        );
        assert_eq!(
            parse_ip_with_scope("address", "10.0.0.1").unwrap(),
            ("10.0.0.1".parse().unwrap(), 0)
        );
        assert_eq!(parse_ip_with_scope("address", "fe80::1%3").unwrap().1, 3);
        // Every Linux network namespace has a loopback interface.
        let (ip, lo) = parse_ip_with_scope("address", "fe80::1%lo").unwrap();
        assert_ne!(lo, 0);
        let peer = PeerAddr::from_socket_addr(SocketAddr::new(ip, 9));
        let scoped = PeerAddr::v6(peer.ipv6_octets(), 9, lo);
        assert_eq!(format_ip(&scoped), "fe80::1%lo");
        assert_eq!(parse_ip_with_scope("address", &format_ip(&scoped)).unwrap(), (ip, lo));
        // An index without an interface prints as a number.
        let nameless = PeerAddr::v6(peer.ipv6_octets(), 9, 999_999);
        assert_eq!(format_ip(&nameless), "fe80::1%999999");
    }

    #[test]
    fn bad_text_is_invalid_arg_value_and_unknown_interfaces_enodev() {
        for bad in [
            "",
            "not-an-ip",
            "1.2.3",
            "[::1]",
            "::1%",
            "1.2.3.4%lo",
            "fe80::1%99999999999",
            "::1 ",
        ] {
            let err = parse_ip_with_scope("address", bad).unwrap_err();
            assert_eq!(err.code, code::INVALID_ARG_VALUE, "{bad}");
            assert!(
                err.message
                    .starts_with("The argument 'address' must be an IPv4 or IPv6 address"),
                "{}",
                err.message
            );
            assert!(err.message.ends_with(&format!("Received '{bad}'")), "{}", err.message);
        }
        for unknown in ["udpcom-none0", "this-name-is-far-too-long", "lo\0"] {
            let err = parse_ip_with_scope("address", &format!("fe80::1%{unknown}")).unwrap_err();
            assert_eq!(err.code, "ENODEV", "{unknown:?}");
            assert_eq!(err.os.unwrap().syscall, "if_nametoindex");
        }
    }
}
