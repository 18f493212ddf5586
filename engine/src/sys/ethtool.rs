//! Network interfaces: which one carries an address (`getifaddrs`), what it can timestamp
//! (`SIOCETHTOOL` / `ETHTOOL_GET_TS_INFO`), and turning its hardware timestamping on
//! (`SIOCSHWTSTAMP`).

use std::ffi::CStr;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::check;

/// The name of the network interface that has `ip` as one of its addresses.
pub(crate) fn interface_with_address(ip: std::net::IpAddr) -> io::Result<Option<String>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we own until freeifaddrs.
    check(unsafe { libc::getifaddrs(&mut list) })?;
    let mut found = None;
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs returned, which is alive. Its
        // address, when not null, is a sockaddr of the family it names, stored in room for at
        // least a sockaddr_in6 (glibc keeps each in a union that includes one).
        unsafe {
            let addr = (*entry).ifa_addr;
            let has_ip = !addr.is_null()
                && super::peer_from_sockaddr(addr, size_of::<libc::sockaddr_in6>())
                    .to_socket_addr()
                    .is_some_and(|a| a.ip() == ip);
            if has_ip {
                found = Some(CStr::from_ptr((*entry).ifa_name).to_string_lossy().into_owned());
                break;
            }
            entry = (*entry).ifa_next;
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once; nothing borrowed from it lives on.
    unsafe { libc::freeifaddrs(list) };
    Ok(found)
}

/// `struct ethtool_ts_info` from <linux/ethtool.h>.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct EthtoolTsInfo {
    /// ETHTOOL_GET_TS_INFO.
    pub(crate) cmd: u32,
    /// `SOF_TIMESTAMPING_*` flags the interface supports.
    pub(crate) so_timestamping: u32,
    /// PTP hardware clock index, -1 for none.
    pub(crate) phc_index: i32,
    /// Bit set of supported `HWTSTAMP_TX_*` types.
    pub(crate) tx_types: u32,
    /// Reserved by the kernel.
    pub(crate) tx_reserved: [u32; 3],
    /// Bit set of supported `HWTSTAMP_FILTER_*` filters.
    pub(crate) rx_filters: u32,
    /// Reserved by the kernel.
    pub(crate) rx_reserved: [u32; 3],
}

const ETHTOOL_GET_TS_INFO: u32 = 0x41;

/// An `ifreq` naming `interface`, with `ifr_data` pointing at `data`.
fn ifreq_with_data<T>(interface: &str, data: &mut T) -> io::Result<libc::ifreq> {
    // SAFETY: an all-zero ifreq is valid.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = interface.as_bytes();
    if name.len() >= request.ifr_name.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (slot, &byte) in request.ifr_name.iter_mut().zip(name) {
        *slot = byte as libc::c_char;
    }
    request.ifr_ifru.ifru_data = (data as *mut T).cast();
    Ok(request)
}

/// What `interface` can timestamp (`SIOCETHTOOL` / `ETHTOOL_GET_TS_INFO`).
pub(crate) fn ethtool_ts_info(fd: BorrowedFd<'_>, interface: &str) -> io::Result<EthtoolTsInfo> {
    let mut info = EthtoolTsInfo {
        cmd: ETHTOOL_GET_TS_INFO,
        ..Default::default()
    };
    let mut request = ifreq_with_data(interface, &mut info)?;
    // SAFETY: `request` names the interface and points at `info`, a correctly laid out
    // ethtool_ts_info that outlives the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCETHTOOL, &mut request) })?;
    Ok(info)
}

/// Turns on hardware timestamping of all transmitted and received packets on `interface`
/// (`SIOCSHWTSTAMP`; needs CAP_NET_ADMIN and a driver that supports it).
pub(crate) fn enable_hardware_timestamping(fd: BorrowedFd<'_>, interface: &str) -> io::Result<()> {
    let mut config = libc::hwtstamp_config {
        flags: 0,
        tx_type: libc::HWTSTAMP_TX_ON as libc::c_int,
        rx_filter: libc::HWTSTAMP_FILTER_ALL as libc::c_int,
    };
    let mut request = ifreq_with_data(interface, &mut config)?;
    // SAFETY: `request` names the interface and points at `config`, which outlives the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCSHWTSTAMP, &mut request) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn loopback_supports_software_stamps_only() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let interface = interface_with_address("127.0.0.1".parse().unwrap()).unwrap().unwrap();
        assert_eq!(interface, "lo");
        let info = ethtool_ts_info(a.as_fd(), &interface).unwrap();
        assert_ne!(info.so_timestamping & libc::SOF_TIMESTAMPING_RX_SOFTWARE, 0);
        assert_eq!(info.so_timestamping & libc::SOF_TIMESTAMPING_RAW_HARDWARE, 0);
        assert_eq!(info.phc_index, -1);
        let err = enable_hardware_timestamping(a.as_fd(), &interface).unwrap_err();
        assert!(
            matches!(err.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL | libc::EPERM)),
            "{err}"
        );
        assert_eq!(interface_with_address("192.0.2.77".parse().unwrap()).unwrap(), None);
    }
}
