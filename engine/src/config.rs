//! Constructor arguments and options, validated once into a [`Config`].
//!
//! JavaScript hands numbers over as `f64`; the binding checks JavaScript types
//! (`ERR_INVALID_ARG_TYPE`) and this module checks values (`ERR_OUT_OF_RANGE`,
//! `ERR_INVALID_ARG_VALUE`), so that every rule lives in one place and is unit-tested.

use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::addr::parse_ip_with_scope;
use crate::analysis::AnalyzeMode;
use crate::clock::SpinPolicy;
use crate::error::{Error, Result};
use crate::network::NetworkOptions;

/// Which worker threads an instance runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// 0: only the sender thread.
    Send,
    /// 1: only the receiver thread.
    Receive,
    /// 2: both.
    Both,
}

impl Direction {
    /// True when this direction has a sender thread.
    pub fn sends(self) -> bool {
        matches!(self, Direction::Send | Direction::Both)
    }

    /// True when this direction has a receiver thread.
    pub fn receives(self) -> bool {
        matches!(self, Direction::Receive | Direction::Both)
    }
}

/// Which timestamps the kernel (or the NIC) attaches to packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampMode {
    /// Only user-space clock reads by the worker threads.
    None,
    /// Kernel software stamps: RX on arrival in the network stack, TX when the driver takes
    /// the packet (SO_TIMESTAMPING, software).
    Software,
    /// NIC hardware stamps (SO_TIMESTAMPING with SIOCSHWTSTAMP), plus kernel software stamps.
    Hardware,
}

impl TimestampMode {
    /// The JavaScript name: 'none', 'software' or 'hardware'.
    pub fn name(self) -> &'static str {
        match self {
            TimestampMode::None => "none",
            TimestampMode::Software => "software",
            TimestampMode::Hardware => "hardware",
        }
    }

    fn parse(what: &str, text: &str, allowed: &[TimestampMode]) -> Result<TimestampMode> {
        allowed.iter().copied().find(|m| m.name() == text).ok_or_else(|| {
            let names: Vec<String> = allowed.iter().map(|m| format!("'{}'", m.name())).collect();
            Error::invalid_arg_value(
                what,
                &format!("must be one of {}", names.join(", ")),
                format!("'{text}'"),
            )
        })
    }
}

/// What to lock into RAM at start, so that the packet path takes no page faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMemory {
    /// Nothing (the rings are still faulted in when allocated).
    None,
    /// The rings and receive buffers (`mlock`).
    Rings,
    /// The whole process, now and in the future (`mlockall(MCL_CURRENT | MCL_FUTURE)`).
    All,
}

/// Default of the `timestamping` option: 'software' where it costs little, else 'none'.
///
/// Kernel receive stamps cost nothing measurable (the stack stamps every packet once any
/// socket asks). Transmit stamps do not: each sent datagram puts a stamp on the socket's error
/// queue that a thread must read; measured on the development VM (scripts/timestamping-cost.mjs),
/// flooding 64-byte datagrams with transmit stamps cost about 20% of peak throughput and half
/// again as much CPU per packet. So a receive-only instance stamps by default and an instance
/// that sends does not.
pub(crate) fn default_timestamping(direction: Direction) -> TimestampMode {
    match direction {
        Direction::Receive => TimestampMode::Software,
        Direction::Send | Direction::Both => TimestampMode::None,
    }
}

/// Options as they arrive from JavaScript, before their values are checked.
/// `None` means "not given".
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// CPU the worker thread(s) are pinned to.
    pub cpu: Option<f64>,
    /// CPU of the receive worker; default: `cpu`.
    pub rx_cpu: Option<f64>,
    /// Ring capacity in packets, per direction.
    pub capacity: Option<f64>,
    /// Payload bytes each ring can hold, per direction.
    pub ring_bytes: Option<f64>,
    /// 0 send only, 1 receive only, 2 both.
    pub direction: Option<f64>,
    /// SCHED_FIFO priority 1..99; 0 means normal scheduling.
    pub priority: Option<f64>,
    /// Busy-wait window before each deadline, in ns.
    pub spin_ns: Option<f64>,
    /// Longest sleep of the sender in the last few ms before a deadline, in ns; 0: one sleep.
    pub nap_ns: Option<f64>,
    /// 'none', 'rings' or 'all' (the binding maps false and true to 'none' and 'rings').
    pub lock_memory: Option<String>,
    /// Send due packets from the calling thread when nothing is queued.
    pub inline_send: Option<bool>,
    /// How long the receiver keeps polling after a datagram before it blocks, ns.
    pub rx_spin_ns: Option<f64>,
    /// 'none', 'software' or 'hardware'.
    pub timestamping: Option<String>,
    /// 'software' or 'none': what to do when hardware stamps cannot be had.
    pub timestamping_fallback: Option<String>,
    /// 'udpcom' or 'iperf2': analyse every received datagram's stream header.
    pub analyze: Option<String>,
    /// false: count and analyse received datagrams without handing them to JavaScript.
    pub deliver: Option<bool>,
    /// Send every received datagram back to its source at once (direction 2).
    pub reflect: Option<bool>,
    /// Interface to bind the socket to (`SO_BINDTODEVICE`).
    pub interface: Option<String>,
    /// `SO_REUSEADDR`.
    pub reuse_address: Option<bool>,
    /// `SO_REUSEPORT`.
    pub reuse_port: Option<bool>,
    /// `SO_BROADCAST`.
    pub broadcast: Option<bool>,
    /// Unicast TTL / hop limit, 1..255.
    pub ttl: Option<f64>,
    /// DSCP, 0..63.
    pub dscp: Option<f64>,
    /// `SO_PRIORITY`.
    pub socket_priority: Option<f64>,
    /// Receive buffer, bytes.
    pub recv_buffer_size: Option<f64>,
    /// Send buffer, bytes.
    pub send_buffer_size: Option<f64>,
    /// `multicast.interface`: interface name or address for outgoing multicast.
    pub multicast_interface: Option<String>,
    /// `multicast.ttl`, 0..255.
    pub multicast_ttl: Option<f64>,
    /// `multicast.loopback`.
    pub multicast_loopback: Option<bool>,
    /// Received packets carry their destination address and interface.
    pub packet_info: Option<bool>,
    /// `gso`: UDP segmentation offload on send (default: on where supported).
    pub gso: Option<bool>,
    /// `gro`: UDP receive coalescing (default: on where supported).
    pub gro: Option<bool>,
}

/// Default ring capacity in packets.
pub(crate) const DEFAULT_CAPACITY: usize = 4096;
/// Largest ring capacity in packets.
pub(crate) const MAX_CAPACITY: usize = 1 << 24;
/// Default payload bytes per queued packet, used to size the byte ring from `capacity`.
pub(crate) const DEFAULT_BYTES_PER_PACKET: usize = 512;
/// Smallest byte ring: twice the largest datagram, so that any datagram fits once the ring
/// has drained, wherever the write position happens to be.
pub(crate) const MIN_RING_BYTES: usize = 128 * 1024;
/// Largest default byte ring (a larger one can be asked for with `ringBytes`).
pub(crate) const MAX_DEFAULT_RING_BYTES: usize = 64 * 1024 * 1024;
/// Largest byte ring (offsets are stored as u32).
pub(crate) const MAX_RING_BYTES: usize = 1 << 31;
/// Largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header).
pub(crate) const MAX_PAYLOAD_V4: usize = 65_507;
/// Largest UDP payload over IPv6: 65535 - 8 (UDP header); the IPv6 header is not counted.
pub(crate) const MAX_PAYLOAD_V6: usize = 65_527;
/// Largest fixed spin window: 100 ms.
pub(crate) const MAX_SPIN_NS: u64 = 100_000_000;
/// Default `napNs`: inside the time a KVM host keeps polling a halted virtual CPU before it
/// schedules it out (`halt_poll_ns`, 200 µs by default), so that the sender's last sleeps
/// before a deadline end with a fast wake-up (see [`crate::clock`]).
pub(crate) const DEFAULT_NAP_NS: u64 = 150_000;
/// Largest `napNs`: the longest sleep the sender takes anyway.
pub(crate) const MAX_NAP_NS: u64 = crate::time::MAX_SLEEP_CHUNK_NS;
/// Highest SCHED_FIFO priority on Linux.
pub(crate) const MAX_PRIORITY: i32 = 99;
/// Highest CPU number a Linux `cpu_set_t` can hold.
pub(crate) const MAX_CPU: usize = libc::CPU_SETSIZE as usize - 1;

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Address the socket binds to (port 0: the kernel picks one).
    pub local: SocketAddr,
    /// Peer the socket connects to; `None` when `remotePort` is 0 (unconnected).
    pub remote: Option<SocketAddr>,
    /// Which threads run.
    pub direction: Direction,
    /// CPU of the sender (and of the receiver unless `rx_cpu` is set).
    pub cpu: Option<usize>,
    /// CPU of the receiver.
    pub rx_cpu: Option<usize>,
    /// Packets per ring.
    pub capacity: usize,
    /// Payload bytes per ring.
    pub ring_bytes: usize,
    /// SCHED_FIFO priority, or `None` for normal scheduling.
    pub priority: Option<i32>,
    /// Spin window policy of the sender.
    pub spin: SpinPolicy,
    /// Longest sleep of the sender close to a deadline, ns (`napNs`; 0: no naps).
    pub nap_ns: u64,
    /// What to lock into RAM at start.
    pub lock_memory: LockMemory,
    /// Send due packets from the calling thread when nothing is queued (`inlineSend`).
    pub inline_send: bool,
    /// How long the receiver keeps polling after a datagram before it blocks, ns (`rxSpinNs`).
    pub rx_spin_ns: u64,
    /// Timestamps asked for.
    pub timestamping: TimestampMode,
    /// What to use instead when hardware stamps cannot be had; `None`: fail.
    pub timestamping_fallback: Option<TimestampMode>,
    /// The stream header the receiver analyses, if any (`analyze`).
    pub analyze: Option<AnalyzeMode>,
    /// Received datagrams go to JavaScript (`deliver`, default true).
    pub deliver: bool,
    /// The receiver sends every datagram back to its source (`reflect`).
    pub reflect: bool,
    /// Interface, ports, broadcast, TTL, DSCP, priority, buffers, multicast, packet info.
    pub network: NetworkOptions,
}

impl Config {
    /// Checks the constructor's arguments; names in messages are the JavaScript ones.
    pub fn new(
        local_ip: &str,
        local_port: f64,
        remote_ip: &str,
        remote_port: f64,
        options: &Options,
    ) -> Result<Config> {
        let (local_ip, local_scope) = parse_ip_with_scope("localIp", local_ip)?;
        let (remote_ip, remote_scope) = parse_ip_with_scope("remoteIp", remote_ip)?;
        if local_ip.is_ipv4() != remote_ip.is_ipv4() {
            return Err(Error::invalid_arg_value(
                "The argument 'remoteIp'",
                "must be of the same IP family as localIp",
                format!("'{remote_ip}' with localIp '{local_ip}'"),
            ));
        }
        let local_port = integer("\"localPort\"", local_port, 0, 65_535)? as u16;
        let remote_port = integer("\"remotePort\"", remote_port, 0, 65_535)? as u16;

        let opt = |name: &str, value: Option<f64>, min: u64, max: u64| {
            value
                .map(|v| integer(&format!("\"options.{name}\""), v, min, max))
                .transpose()
        };
        let direction = match opt("direction", options.direction, 0, 2)? {
            Some(0) => Direction::Send,
            Some(1) => Direction::Receive,
            _ => Direction::Both,
        };
        let cpu = opt("cpu", options.cpu, 0, MAX_CPU as u64)?.map(|c| c as usize);
        let rx_cpu = opt("rxCpu", options.rx_cpu, 0, MAX_CPU as u64)?.map(|c| c as usize);
        let capacity =
            opt("capacity", options.capacity, 1, MAX_CAPACITY as u64)?.map_or(DEFAULT_CAPACITY, |c| c as usize);
        let ring_bytes = opt(
            "ringBytes",
            options.ring_bytes,
            MIN_RING_BYTES as u64,
            MAX_RING_BYTES as u64,
        )?
        .map_or_else(|| default_ring_bytes(capacity), |b| b as usize);
        let priority = match opt("priority", options.priority, 0, MAX_PRIORITY as u64)? {
            None | Some(0) => None,
            Some(p) => Some(p as i32),
        };
        let spin = opt("spinNs", options.spin_ns, 0, MAX_SPIN_NS)?.map_or(SpinPolicy::Adaptive, SpinPolicy::Fixed);

        let timestamping = match &options.timestamping {
            None => default_timestamping(direction),
            Some(text) => TimestampMode::parse(
                "The property 'options.timestamping'",
                text,
                &[TimestampMode::None, TimestampMode::Software, TimestampMode::Hardware],
            )?,
        };
        let timestamping_fallback = options
            .timestamping_fallback
            .as_deref()
            .map(|text| {
                TimestampMode::parse(
                    "The property 'options.timestampingFallback'",
                    text,
                    &[TimestampMode::Software, TimestampMode::None],
                )
            })
            .transpose()?;

        let lock_memory = match options.lock_memory.as_deref() {
            None | Some("none") => LockMemory::None,
            Some("rings") => LockMemory::Rings,
            Some("all") => LockMemory::All,
            Some(other) => {
                return Err(Error::invalid_arg_value(
                    "The property 'options.lockMemory'",
                    "must be a boolean, 'rings' or 'all'",
                    format!("'{other}'"),
                ))
            }
        };

        let analyze = match options.analyze.as_deref() {
            None => None,
            Some("udpcom") => Some(AnalyzeMode::Udpcom),
            Some("iperf2") => Some(AnalyzeMode::Iperf2),
            Some(other) => {
                return Err(Error::invalid_arg_value(
                    "The property 'options.analyze'",
                    "must be one of 'udpcom', 'iperf2'",
                    format!("'{other}'"),
                ))
            }
        };
        if (analyze.is_some() || options.deliver == Some(false)) && !direction.receives() {
            return Err(Error::invalid_arg_value(
                "The property 'options.analyze'",
                "needs an instance that receives (direction 1 or 2)",
                "a send-only instance",
            ));
        }
        let reflect = options.reflect.unwrap_or(false);
        if reflect && direction != Direction::Both {
            return Err(Error::invalid_arg_value(
                "The property 'options.reflect'",
                "needs an instance that receives and sends (direction 2)",
                format!("direction {}", if direction.sends() { 0 } else { 1 }),
            ));
        }
        if reflect && timestamping != TimestampMode::None {
            // Transmit stamps are matched to packets by the kernel's count of sent datagrams,
            // which the reflector's replies (sent from another thread) would throw off.
            return Err(Error::invalid_arg_value(
                "The property 'options.reflect'",
                "cannot be combined with timestamping (transmit stamps); the reflector stamps with its own clock",
                format!("timestamping '{}'", timestamping.name()),
            ));
        }
        Ok(Config {
            local: socket_addr(local_ip, local_port, local_scope),
            remote: (remote_port != 0).then_some(socket_addr(remote_ip, remote_port, remote_scope)),
            direction,
            cpu,
            rx_cpu,
            capacity,
            ring_bytes,
            priority,
            spin,
            nap_ns: opt("napNs", options.nap_ns, 0, MAX_NAP_NS)?.unwrap_or(DEFAULT_NAP_NS),
            lock_memory,
            inline_send: options.inline_send.unwrap_or(false),
            rx_spin_ns: opt("rxSpinNs", options.rx_spin_ns, 0, MAX_SPIN_NS)?.unwrap_or(0),
            timestamping,
            timestamping_fallback,
            analyze,
            deliver: options.deliver.unwrap_or(true),
            reflect,
            network: NetworkOptions::new(options, local_ip.is_ipv4())?,
        })
    }

    /// Largest payload one datagram can carry on this socket's IP family.
    pub fn max_payload(&self) -> usize {
        if self.local.is_ipv4() {
            MAX_PAYLOAD_V4
        } else {
            MAX_PAYLOAD_V6
        }
    }

    /// CPU of the receiver thread: `rxCpu`, else `cpu`.
    pub fn receiver_cpu(&self) -> Option<usize> {
        self.rx_cpu.or(self.cpu)
    }
}

/// Byte ring size when `ringBytes` is not given: [`DEFAULT_BYTES_PER_PACKET`] per packet of
/// capacity, at least [`MIN_RING_BYTES`] and at most [`MAX_DEFAULT_RING_BYTES`].
pub(crate) fn default_ring_bytes(capacity: usize) -> usize {
    capacity
        .saturating_mul(DEFAULT_BYTES_PER_PACKET)
        .clamp(MIN_RING_BYTES, MAX_DEFAULT_RING_BYTES)
}

/// A socket address with the IPv6 scope id of a link-local address (`fe80::1%eth0`).
fn socket_addr(ip: IpAddr, port: u16, scope_id: u32) -> SocketAddr {
    match ip {
        IpAddr::V4(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
        IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope_id)),
    }
}

/// Checks that a JavaScript number is an integer in `min..=max`, with Node's wording.
pub fn integer(what: &str, value: f64, min: u64, max: u64) -> Result<u64> {
    if value.fract() != 0.0 || !value.is_finite() {
        return Err(Error::out_of_range(what, "an integer", format_number(value)));
    }
    if value < min as f64 || value > max as f64 {
        return Err(Error::out_of_range(
            what,
            &format!(">= {min} && <= {max}"),
            format_number(value),
        ));
    }
    Ok(value as u64)
}

/// Formats a number the way JavaScript prints it (`70000`, not `70000.0`).
pub fn format_number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if value.fract() == 0.0 && value.abs() < 1e21 {
        format!("{}", value as i128)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code;

    fn config(options: Options) -> Result<Config> {
        Config::new("127.0.0.1", 0.0, "127.0.0.1", 9.0, &options)
    }

    #[test]
    fn defaults() {
        let c = config(Options::default()).unwrap();
        assert_eq!(c.direction, Direction::Both);
        assert_eq!(c.capacity, DEFAULT_CAPACITY);
        assert_eq!(c.ring_bytes, DEFAULT_CAPACITY * DEFAULT_BYTES_PER_PACKET);
        assert_eq!(c.priority, None);
        assert_eq!(c.spin, SpinPolicy::Adaptive);
        assert_eq!(c.cpu, None);
        assert_eq!(c.remote, Some("127.0.0.1:9".parse().unwrap()));
        assert_eq!(c.max_payload(), MAX_PAYLOAD_V4);
    }

    #[test]
    fn ipv6_scopes_are_kept() {
        let c = Config::new("fe80::1%lo", 0.0, "fe80::2%7", 9.0, &Options::default()).unwrap();
        let SocketAddr::V6(local) = c.local else {
            panic!("{:?}", c.local)
        };
        assert_ne!(local.scope_id(), 0);
        assert_eq!(c.remote, Some("[fe80::2%7]:9".parse().unwrap()));
        let err = Config::new("fe80::1%udpcom-none0", 0.0, "::1", 9.0, &Options::default()).unwrap_err();
        assert_eq!(err.code, "ENODEV");
    }

    #[test]
    fn remote_port_zero_means_unconnected() {
        let c = Config::new("::1", 0.0, "::1", 0.0, &Options::default()).unwrap();
        assert_eq!(c.remote, None);
        assert_eq!(c.max_payload(), MAX_PAYLOAD_V6);
    }

    #[test]
    fn ports_and_ips_are_checked() {
        let err = Config::new("127.0.0.1", 70_000.0, "127.0.0.1", 1.0, &Options::default()).unwrap_err();
        assert_eq!(err.code, code::OUT_OF_RANGE);
        assert!(err.message.contains("\"localPort\""), "{}", err.message);
        assert!(err.message.contains("Received 70000"), "{}", err.message);
        let err = Config::new("not-an-ip", 0.0, "127.0.0.1", 1.0, &Options::default()).unwrap_err();
        assert_eq!(err.code, code::INVALID_ARG_VALUE);
        let err = Config::new("127.0.0.1", 0.0, "::1", 1.0, &Options::default()).unwrap_err();
        assert_eq!(err.code, code::INVALID_ARG_VALUE);
        let err = Config::new("127.0.0.1", 1.5, "127.0.0.1", 1.0, &Options::default()).unwrap_err();
        assert_eq!(err.code, code::OUT_OF_RANGE);
        let err = Config::new("127.0.0.1", f64::NAN, "127.0.0.1", 1.0, &Options::default()).unwrap_err();
        assert!(err.message.contains("NaN"));
    }

    #[test]
    fn option_ranges() {
        let bad = [
            Options {
                capacity: Some(0.0),
                ..Default::default()
            },
            Options {
                capacity: Some((MAX_CAPACITY + 1) as f64),
                ..Default::default()
            },
            Options {
                priority: Some(150.0),
                ..Default::default()
            },
            Options {
                priority: Some(-1.0),
                ..Default::default()
            },
            Options {
                direction: Some(3.0),
                ..Default::default()
            },
            Options {
                cpu: Some(-1.0),
                ..Default::default()
            },
            Options {
                cpu: Some(1024.0),
                ..Default::default()
            },
            Options {
                spin_ns: Some(f64::INFINITY),
                ..Default::default()
            },
            Options {
                ring_bytes: Some(1000.0),
                ..Default::default()
            },
        ];
        for options in bad {
            let err = config(options.clone()).unwrap_err();
            assert_eq!(err.code, code::OUT_OF_RANGE, "{options:?}");
        }
    }

    #[test]
    fn options_are_applied() {
        let c = config(Options {
            cpu: Some(1.0),
            capacity: Some(1_000_000.0),
            direction: Some(0.0),
            priority: Some(80.0),
            spin_ns: Some(20_000.0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.cpu, Some(1));
        assert_eq!(c.receiver_cpu(), Some(1));
        assert_eq!(c.direction, Direction::Send);
        assert_eq!(c.priority, Some(80));
        assert_eq!(c.spin, SpinPolicy::Fixed(20_000));
        // A million-packet ring is capped to tens of MB, not capacity x 64 KiB.
        assert_eq!(c.ring_bytes, MAX_DEFAULT_RING_BYTES);
        let c = config(Options {
            priority: Some(0.0),
            rx_cpu: Some(0.0),
            cpu: Some(1.0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.priority, None);
        assert_eq!(c.receiver_cpu(), Some(0));
    }

    #[test]
    fn timestamping_options() {
        assert_eq!(config(Options::default()).unwrap().timestamping, TimestampMode::None);
        let receive_only = config(Options {
            direction: Some(1.0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(receive_only.timestamping, TimestampMode::Software);
        let c = config(Options {
            timestamping: Some("hardware".into()),
            timestamping_fallback: Some("software".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (c.timestamping, c.timestamping_fallback),
            (TimestampMode::Hardware, Some(TimestampMode::Software))
        );
        for bad in [
            Options {
                timestamping: Some("kernel".into()),
                ..Default::default()
            },
            Options {
                timestamping_fallback: Some("hardware".into()),
                ..Default::default()
            },
        ] {
            assert_eq!(config(bad).unwrap_err().code, code::INVALID_ARG_VALUE);
        }
    }

    #[test]
    fn numbers_print_like_javascript() {
        assert_eq!(format_number(70000.0), "70000");
        assert_eq!(format_number(-1.0), "-1");
        assert_eq!(format_number(1.5), "1.5");
        assert_eq!(format_number(f64::NEG_INFINITY), "-Infinity");
    }
}
