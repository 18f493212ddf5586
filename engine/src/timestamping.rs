//! Kernel and hardware timestamps (Linux `SO_TIMESTAMPING`): when packets really left and
//! arrived, as opposed to when a worker thread acted.
//!
//! - **Set-up** ([`setup`]): finds the socket's interface, asks it what it can stamp
//!   (`ETHTOOL_GET_TS_INFO`), turns on hardware stamping if asked (`SIOCSHWTSTAMP`, needs
//!   CAP_NET_ADMIN and a capable NIC), and sets `SO_TIMESTAMPING` on the socket. When hardware
//!   stamps cannot be had, it fails with `ERR_UDPCOM_HWTSTAMP_UNSUPPORTED` naming the interface
//!   and the reason, or falls back as the configuration says.
//! - **Receive stamps** arrive with each datagram (`SCM_TIMESTAMPING`); the receiver converts
//!   the software stamp (CLOCK_REALTIME) to CLOCK_MONOTONIC.
//! - **Transmit stamps** are queued by the kernel on the socket's error queue, one per sent
//!   datagram, each carrying an `SOF_TIMESTAMPING_OPT_ID` key: the datagram's index among all
//!   datagrams sent on the socket. The sender writes, *before* each send, which packet will
//!   get which key into a [`SentLog`]; the receiver thread, which reads the error queue, looks
//!   the key up to learn the packet's target time and queue position.

use std::sync::atomic::{fence, AtomicU64, Ordering};

use crate::config::TimestampMode;
use crate::error::{Error, Result};
use crate::socket::UdpSocket;
use crate::sys::{self, EthtoolTsInfo};

/// Flags for kernel software stamps on both paths. OPT_ID numbers transmitted datagrams;
/// OPT_TSONLY keeps the kernel from looping a copy of each payload back with its stamp.
pub(crate) const SOFTWARE_FLAGS: u32 = libc::SOF_TIMESTAMPING_RX_SOFTWARE
    | libc::SOF_TIMESTAMPING_TX_SOFTWARE
    | libc::SOF_TIMESTAMPING_SOFTWARE
    | libc::SOF_TIMESTAMPING_OPT_ID
    | libc::SOF_TIMESTAMPING_OPT_TSONLY;
/// Flags for hardware stamps (raw NIC clock), with software receive stamps beside them.
pub(crate) const HARDWARE_FLAGS: u32 = SOFTWARE_FLAGS
    | libc::SOF_TIMESTAMPING_RX_HARDWARE
    | libc::SOF_TIMESTAMPING_TX_HARDWARE
    | libc::SOF_TIMESTAMPING_RAW_HARDWARE;

const HARDWARE_CAPABILITIES: u32 =
    libc::SOF_TIMESTAMPING_RX_HARDWARE | libc::SOF_TIMESTAMPING_TX_HARDWARE | libc::SOF_TIMESTAMPING_RAW_HARDWARE;

/// Names of the `SOF_TIMESTAMPING_*` capability bits, in bit order.
const SOF_NAMES: [&str; 18] = [
    "tx_hardware",
    "tx_software",
    "rx_hardware",
    "rx_software",
    "software",
    "sys_hardware",
    "raw_hardware",
    "opt_id",
    "tx_sched",
    "tx_ack",
    "opt_cmsg",
    "opt_tsonly",
    "opt_stats",
    "opt_pktinfo",
    "opt_tx_swhw",
    "bind_phc",
    "opt_id_tcp",
    "opt_rx_filter",
];
/// Names of `HWTSTAMP_TX_*` types, by value.
const TX_TYPE_NAMES: [&str; 4] = ["off", "on", "onestep_sync", "onestep_p2p"];
/// Names of `HWTSTAMP_FILTER_*` filters, by value.
const RX_FILTER_NAMES: [&str; 16] = [
    "none",
    "all",
    "some",
    "ptp_v1_l4_event",
    "ptp_v1_l4_sync",
    "ptp_v1_l4_delay_req",
    "ptp_v2_l4_event",
    "ptp_v2_l4_sync",
    "ptp_v2_l4_delay_req",
    "ptp_v2_l2_event",
    "ptp_v2_l2_sync",
    "ptp_v2_l2_delay_req",
    "ptp_v2_event",
    "ptp_v2_sync",
    "ptp_v2_delay_req",
    "ntp_all",
];

fn bit_names(bits: u32, names: &[&'static str]) -> Vec<&'static str> {
    names
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// What an interface can timestamp, as its driver reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities(EthtoolTsInfo);

impl Capabilities {
    /// Supported `SOF_TIMESTAMPING_*` modes, by name (`rx_software`, `raw_hardware`, ...).
    pub fn modes(&self) -> Vec<&'static str> {
        bit_names(self.0.so_timestamping, &SOF_NAMES)
    }

    /// Index of the PTP hardware clock (`/dev/ptpN`), or -1 for none.
    pub fn phc_index(&self) -> i32 {
        self.0.phc_index
    }

    /// Supported hardware transmit stamping types (`off`, `on`, ...).
    pub fn tx_types(&self) -> Vec<&'static str> {
        bit_names(self.0.tx_types, &TX_TYPE_NAMES)
    }

    /// Supported hardware receive filters (`none`, `all`, `ptp_v2_event`, ...).
    pub fn rx_filters(&self) -> Vec<&'static str> {
        bit_names(self.0.rx_filters, &RX_FILTER_NAMES)
    }

    /// True when the driver can stamp in hardware in both directions.
    pub fn hardware(&self) -> bool {
        self.0.so_timestamping & HARDWARE_CAPABILITIES == HARDWARE_CAPABILITIES
    }
}

/// What a socket's timestamping is: asked for, possible, and in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimestampingInfo {
    /// The interface that carries the socket's traffic, when it can be told from the bound
    /// address (None for a wildcard address on an unconnected socket).
    pub interface: Option<String>,
    /// What the interface supports; None if it could not be asked.
    pub capabilities: Option<Capabilities>,
    /// The `timestamping` option.
    pub requested: TimestampMode,
    /// What the socket uses.
    pub in_use: TimestampMode,
    /// Why `in_use` differs from `requested`, if it does.
    pub fallback_reason: Option<String>,
}

/// Turns on the timestamps `requested` for `socket`, falling back to `fallback` (or failing
/// with ERR_UDPCOM_HWTSTAMP_UNSUPPORTED) when hardware stamps cannot be had.
pub(crate) fn setup(
    socket: &UdpSocket,
    requested: TimestampMode,
    fallback: Option<TimestampMode>,
) -> Result<TimestampingInfo> {
    let fd = std::os::fd::AsFd::as_fd(socket);
    // The interface the socket is bound to carries all its traffic; else the one with its address.
    let interface = socket
        .bound_interface()
        .or_else(|| sys::interface_with_address(socket.local_addr().ip()).ok().flatten());
    let capabilities = interface
        .as_deref()
        .and_then(|name| sys::ethtool_ts_info(fd, name).ok())
        .map(Capabilities);
    let mut info = TimestampingInfo {
        interface,
        capabilities,
        requested,
        in_use: requested,
        fallback_reason: None,
    };

    if requested == TimestampMode::Hardware {
        if let Err(reason) = enable_hardware(socket, &info) {
            let interface = info.interface.clone().unwrap_or_else(|| "(unknown)".into());
            match fallback {
                None => return Err(Error::hwtstamp_unsupported(&interface, &reason)),
                Some(instead) => {
                    info.in_use = instead;
                    info.fallback_reason = Some(format!(
                        "hardware timestamping is not available on {interface}: {reason}"
                    ));
                }
            }
        }
    }
    let flags = match info.in_use {
        TimestampMode::None => 0,
        TimestampMode::Software => SOFTWARE_FLAGS,
        TimestampMode::Hardware => HARDWARE_FLAGS,
    };
    if flags != 0 {
        sys::set_timestamping(fd, flags).map_err(|e| Error::from_io("setsockopt", &e, "SO_TIMESTAMPING"))?;
    }
    Ok(info)
}

/// Turns on kernel software receive stamps alone (a capture wants them with timestamping
/// off): no transmit stamps, so the sender's accounting is untouched.
pub(crate) fn enable_receive_stamps(socket: &UdpSocket) -> Result<()> {
    let flags = libc::SOF_TIMESTAMPING_RX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE;
    sys::set_timestamping(std::os::fd::AsFd::as_fd(socket), flags)
        .map_err(|e| Error::from_io("setsockopt", &e, "SO_TIMESTAMPING"))
}

/// Turns on hardware stamping on the socket's interface, or says why it cannot be done.
fn enable_hardware(socket: &UdpSocket, info: &TimestampingInfo) -> std::result::Result<(), String> {
    let Some(interface) = &info.interface else {
        return Err(format!(
            "no interface has the address {}; bind to an interface's address to use hardware timestamps",
            socket.local_addr().ip()
        ));
    };
    match &info.capabilities {
        None => return Err("the driver does not answer ETHTOOL_GET_TS_INFO".into()),
        Some(capabilities) if !capabilities.hardware() => {
            return Err(format!(
                "the driver reports no hardware timestamping (it supports: {})",
                capabilities.modes().join(", ")
            ));
        }
        Some(_) => {}
    }
    sys::enable_hardware_timestamping(std::os::fd::AsFd::as_fd(socket), interface).map_err(|e| {
        let name = e.raw_os_error().and_then(crate::errno::errno_name).unwrap_or("error");
        match e.raw_os_error() {
            Some(libc::EPERM) => "SIOCSHWTSTAMP failed with EPERM: grant CAP_NET_ADMIN (or run as root)".to_string(),
            _ => format!("SIOCSHWTSTAMP failed with {name} ({e})"),
        }
    })
}

/// How many sent datagrams the [`SentLog`] remembers: far more than can be in flight between
/// a send and its transmit stamp.
pub(crate) const SENT_LOG_SIZE: usize = 1 << 16;

#[derive(Debug, Default)]
struct SentEntry {
    /// Key + 1 of the datagram described, 0 while being written.
    key_plus_one: AtomicU64,
    target_ns: AtomicU64,
    queue_id: AtomicU64,
}

/// Which packet got which `SOF_TIMESTAMPING_OPT_ID` key. Written by the sender before each
/// send, read by the thread that reads transmit stamps. Each entry is a small seqlock: the
/// key is cleared, the fields written, then the key published; a reader that sees the same key
/// before and after reading the fields has a consistent entry.
#[derive(Debug)]
pub(crate) struct SentLog {
    entries: Box<[SentEntry]>,
}

impl Default for SentLog {
    fn default() -> Self {
        SentLog {
            entries: (0..SENT_LOG_SIZE).map(|_| SentEntry::default()).collect(),
        }
    }
}

impl SentLog {
    fn entry(&self, key: u32) -> &SentEntry {
        &self.entries[key as usize % SENT_LOG_SIZE]
    }

    /// Notes that the datagram with `key` is the packet queued as `queue_id` (or a stream's,
    /// [`GENERATED_PACKET`]), due at
    /// `target_ns`. Called before the send: the stamp can arrive before the send returns.
    pub(crate) fn record(&self, key: u32, target_ns: u64, queue_id: u64) {
        let entry = self.entry(key);
        entry.key_plus_one.store(0, Ordering::Relaxed);
        fence(Ordering::Release);
        entry.target_ns.store(target_ns, Ordering::Relaxed);
        entry.queue_id.store(queue_id, Ordering::Relaxed);
        entry.key_plus_one.store(key as u64 + 1, Ordering::Release);
    }

    /// The target time and queue position of the datagram with `key`, if still known.
    pub(crate) fn lookup(&self, key: u32) -> Option<(u64, u64)> {
        let entry = self.entry(key);
        if entry.key_plus_one.load(Ordering::Acquire) != key as u64 + 1 {
            return None;
        }
        let found = (
            entry.target_ns.load(Ordering::Relaxed),
            entry.queue_id.load(Ordering::Relaxed),
        );
        fence(Ordering::Acquire);
        (entry.key_plus_one.load(Ordering::Relaxed) == key as u64 + 1).then_some(found)
    }
}

/// The `queue_id` of a stream's or a replay's packet in the [`SentLog`]: it was generated,
/// never queued.
pub(crate) const GENERATED_PACKET: u64 = u64::MAX;

/// The transmit stamp of one packet, as handed to JavaScript.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxRecord {
    /// The packet's position in the order packets were queued (0 for the first).
    pub queue_id: u64,
    /// When it left, per the kernel's software stamp, on CLOCK_MONOTONIC; 0 if none.
    pub tx_ns: u64,
    /// The NIC's raw hardware stamp; 0 if none.
    pub hardware_ns: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_log_finds_what_was_recorded_and_forgets_overwritten_keys() {
        let log = SentLog::default();
        log.record(5, 1_000, 7);
        assert_eq!(log.lookup(5), Some((1_000, 7)));
        assert_eq!(log.lookup(6), None);
        log.record(5 + SENT_LOG_SIZE as u32, 2_000, 8);
        assert_eq!(log.lookup(5), None, "the slot now describes a later key");
        assert_eq!(log.lookup(5 + SENT_LOG_SIZE as u32), Some((2_000, 8)));
    }

    #[test]
    fn software_setup_on_loopback_and_hardware_refused_with_a_coded_error() {
        let socket = UdpSocket::open("127.0.0.1:0".parse().unwrap(), None, &Default::default()).unwrap();
        let info = setup(&socket, TimestampMode::Software, None).unwrap();
        assert_eq!(info.interface.as_deref(), Some("lo"));
        assert_eq!(info.in_use, TimestampMode::Software);
        let capabilities = info.capabilities.unwrap();
        assert!(capabilities.modes().contains(&"rx_software"));
        assert!(!capabilities.hardware());

        let socket = UdpSocket::open("127.0.0.1:0".parse().unwrap(), None, &Default::default()).unwrap();
        let err = setup(&socket, TimestampMode::Hardware, None).unwrap_err();
        assert_eq!(err.code, "ERR_UDPCOM_HWTSTAMP_UNSUPPORTED");
        assert!(err.message.contains("interface lo"), "{}", err.message);
        assert!(err.message.contains("no hardware timestamping"), "{}", err.message);

        let info = setup(&socket, TimestampMode::Hardware, Some(TimestampMode::Software)).unwrap();
        assert_eq!(
            (info.requested, info.in_use),
            (TimestampMode::Hardware, TimestampMode::Software)
        );
        assert!(info.fallback_reason.unwrap().contains("lo"));
    }

    #[test]
    fn capability_names() {
        let caps = Capabilities(EthtoolTsInfo {
            so_timestamping: HARDWARE_CAPABILITIES,
            tx_types: 0b11,
            rx_filters: 0b10,
            phc_index: 0,
            ..Default::default()
        });
        assert!(caps.hardware());
        assert_eq!(caps.modes(), ["tx_hardware", "rx_hardware", "raw_hardware"]);
        assert_eq!(caps.tx_types(), ["off", "on"]);
        assert_eq!(caps.rx_filters(), ["all"]);
    }
}
