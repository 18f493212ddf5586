//! The objects the binding hands to the JavaScript layer. Their generated declarations
//! (`native/binding.d.ts`) are internal; the public types are `lib/types.ts`, and the
//! JavaScript layer's compilation checks that these objects match them field for field.

use napi_derive::napi;
use udpcom_engine::{format_ip, interface_name, Bucket, Error, Membership, PeerAddr, SocketInfo, Stats};
use udpcom_engine::{TimestampingInfo, TxRecord};

/// One bucket of a latency histogram.
#[napi(object, object_from_js = false)]
pub struct HistogramBucket {
    /// Upper bound of the bucket in ns (bounds double from 16 ns).
    pub up_to_ns: f64,
    /// Packets whose latency is above the previous bound and at most `upToNs`.
    pub count: f64,
}

impl From<&Bucket> for HistogramBucket {
    fn from(b: &Bucket) -> Self {
        HistogramBucket {
            up_to_ns: b.up_to_ns as f64,
            count: b.count as f64,
        }
    }
}

/// The last error a worker thread saw, e.g. `ECONNREFUSED` when the peer is not listening.
#[napi(object, object_from_js = false)]
pub struct WorkerError {
    /// Node-style code: the errno name for OS errors.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// The failing system call, for OS errors.
    pub syscall: Option<String>,
    /// Negative errno, as in Node's own errors.
    pub errno: Option<i32>,
}

impl From<Error> for WorkerError {
    fn from(e: Error) -> Self {
        WorkerError {
            code: e.code.to_string(),
            message: e.message,
            syscall: e.os.map(|os| os.syscall.to_string()),
            errno: e.os.map(|os| -os.errno),
        }
    }
}

/// Statistics of one instance since it was created. Counters only grow; every packet is in
/// exactly one of sent, refused (nSendRingFull), discarded or failed (nSendErrors), and every
/// datagram read off the socket is delivered, overflowed or discarded.
#[napi(object, object_from_js = false)]
pub struct PacketStats {
    /// Packets the kernel accepted for sending.
    pub n_packets_sent: f64,
    /// Payload bytes the kernel accepted for sending.
    pub n_bytes_sent: f64,
    /// Datagrams the receiver thread read off the socket.
    pub n_packets_received: f64,
    /// Payload bytes the receiver thread read off the socket.
    pub n_bytes_received: f64,
    /// Packets refused because the send ring was full (sendData returned false, or sendBatch
    /// queued fewer).
    pub n_send_ring_full: f64,
    /// Received datagrams dropped because the receive ring was full.
    pub n_recv_ring_overflow: f64,
    /// Queued packets thrown away by stop().
    pub n_packets_discarded: f64,
    /// Packets whose send system call failed (see lastError).
    pub n_send_errors: f64,
    /// Packets that left more than the spin window after their time.
    pub n_late_packets: f64,
    /// Smallest send latency (departure − target), ns.
    pub min_latency_ns: f64,
    /// Largest send latency, ns.
    pub max_latency_ns: f64,
    /// Mean send latency, ns.
    pub mean_latency_ns: f64,
    /// Median send latency, ns (HDR histogram, within 1%).
    pub p50_latency_ns: f64,
    /// 90th percentile send latency, ns.
    pub p90_latency_ns: f64,
    /// 99th percentile send latency, ns.
    pub p99_latency_ns: f64,
    /// 99.9th percentile send latency, ns.
    pub p999_latency_ns: f64,
    /// Send latency histogram: doubling buckets from 16 ns up to the maximum.
    pub latency_histogram: Vec<HistogramBucket>,
    /// Datagrams the kernel dropped on the socket because its receive buffer was full
    /// (SO_RXQ_OVFL).
    pub n_kernel_drops: f64,
    /// Packets ever queued by sendData/sendBatch.
    pub n_packets_queued: f64,
    /// Packets in the send ring now.
    pub send_queue_length: f64,
    /// Received packets handed to JavaScript.
    pub n_packets_delivered: f64,
    /// Received packets waiting in the receive ring now.
    pub recv_queue_length: f64,
    /// Received packets thrown away by stop() before JavaScript read them.
    pub n_recv_discarded: f64,
    /// Times a SCHED_FIFO worker that had no time to sleep for 9 ms of 10 continued under normal
    /// scheduling for a while, to stay clear of the kernel's RT throttling (it returns to
    /// SCHED_FIFO before its next long sleep). Non-zero means packets came faster than the
    /// spin window: the sender spun from one to the next.
    pub n_rt_demotions: f64,
    /// Sender spin loops that lost the CPU for more than 200 µs (preemption, throttling, VM).
    pub n_stalls: f64,
    /// Received datagrams (and transmit-stamp entries) whose control data did not fit its
    /// buffer (MSG_CTRUNC): their kernel stamp or drop count may be missing. The datagrams are
    /// delivered all the same.
    pub n_control_truncated: f64,
    /// GSO sends the kernel refused (EIO, EINVAL, EMSGSIZE): their datagrams were sent again one by one
    /// and the socket stopped using GSO.
    pub n_gso_fallbacks: f64,
    /// Datagrams analysed or reflected and not handed to JavaScript (`deliver: false`).
    pub n_recv_not_delivered: f64,
    /// Replies the reflector sent (`reflect`).
    pub n_reflected: f64,
    /// Replies the reflector could not send.
    pub n_reflect_errors: f64,
    /// Spin window the sender uses now, ns (spinNs, or the adaptive window).
    pub spin_window_ns: f64,
    /// Transmit timestamps read from the socket's error queue and matched to their packets
    /// (one per sent packet when timestamping is on).
    pub n_tx_timestamps: f64,
    /// Transmit stamps dropped because getTxTimestamps() did not read them in time.
    pub n_tx_timestamps_dropped: f64,
    /// Wire latency (kernel or NIC transmit stamp − target), median, ns.
    pub p50_wire_latency_ns: f64,
    /// Wire latency, 99th percentile, ns.
    pub p99_wire_latency_ns: f64,
    /// Wire latency, 99.9th percentile, ns.
    pub p999_wire_latency_ns: f64,
    /// Wire latency, maximum, ns.
    pub max_wire_latency_ns: f64,
    /// Receive-path latency (kernel arrival stamp → handed to JavaScript), median, ns.
    pub p50_delivery_latency_ns: f64,
    /// Receive-path latency, 99th percentile, ns.
    pub p99_delivery_latency_ns: f64,
    /// Receive-path latency, maximum, ns.
    pub max_delivery_latency_ns: f64,
    /// The last error a worker thread saw, if any.
    pub last_error: Option<WorkerError>,
}

impl From<Stats> for PacketStats {
    fn from(s: Stats) -> Self {
        let n = |v: u64| v as f64;
        let latency = &s.latency;
        PacketStats {
            n_packets_sent: n(s.packets_sent),
            n_bytes_sent: n(s.bytes_sent),
            n_packets_received: n(s.packets_received),
            n_bytes_received: n(s.bytes_received),
            n_send_ring_full: n(s.send_ring_full),
            n_recv_ring_overflow: n(s.recv_ring_overflow),
            n_packets_discarded: n(s.packets_discarded),
            n_send_errors: n(s.send_errors),
            n_late_packets: n(s.late_packets),
            min_latency_ns: n(latency.min_ns),
            max_latency_ns: n(latency.max_ns),
            mean_latency_ns: latency.mean_ns,
            p50_latency_ns: n(latency.p50_ns),
            p90_latency_ns: n(latency.p90_ns),
            p99_latency_ns: n(latency.p99_ns),
            p999_latency_ns: n(latency.p999_ns),
            latency_histogram: latency.buckets.iter().map(HistogramBucket::from).collect(),
            n_kernel_drops: n(s.kernel_drops),
            n_packets_queued: n(s.packets_queued),
            send_queue_length: n(s.send_queue_length),
            n_packets_delivered: n(s.packets_delivered),
            recv_queue_length: n(s.recv_queue_length),
            n_recv_discarded: n(s.recv_discarded),
            n_rt_demotions: n(s.rt_demotions),
            n_stalls: n(s.stalls),
            n_control_truncated: n(s.control_truncated),
            n_gso_fallbacks: n(s.gso_fallbacks),
            n_recv_not_delivered: n(s.recv_not_delivered),
            n_reflected: n(s.reflected),
            n_reflect_errors: n(s.reflect_errors),
            spin_window_ns: n(s.spin_window_ns),
            n_tx_timestamps: n(s.tx_timestamps),
            n_tx_timestamps_dropped: n(s.tx_records_dropped),
            p50_wire_latency_ns: n(s.wire_latency.p50_ns),
            p99_wire_latency_ns: n(s.wire_latency.p99_ns),
            p999_wire_latency_ns: n(s.wire_latency.p999_ns),
            max_wire_latency_ns: n(s.wire_latency.max_ns),
            p50_delivery_latency_ns: n(s.delivery_latency.p50_ns),
            p99_delivery_latency_ns: n(s.delivery_latency.p99_ns),
            max_delivery_latency_ns: n(s.delivery_latency.max_ns),
            last_error: s.last_error.map(WorkerError::from),
        }
    }
}

/// When one sent packet left, from its transmit timestamp.
#[napi(object, object_from_js = false)]
pub struct TxTimestamp {
    /// The packet's queue order: 0 for the first packet queued on this instance, counting
    /// every packet sendData/sendBatch queued.
    pub id: f64,
    /// When it left per the kernel's software transmit stamp, on CLOCK_MONOTONIC.
    pub tx_timestamp_ns: u64,
    /// The NIC's raw hardware transmit stamp, with hardware timestamping.
    pub hw_tx_timestamp_ns: Option<u64>,
}

impl From<TxRecord> for TxTimestamp {
    fn from(record: TxRecord) -> Self {
        TxTimestamp {
            id: record.queue_id as f64,
            tx_timestamp_ns: record.tx_ns,
            hw_tx_timestamp_ns: (record.hardware_ns != 0).then_some(record.hardware_ns),
        }
    }
}

/// What an interface can timestamp (ETHTOOL_GET_TS_INFO).
#[napi(object, object_from_js = false)]
pub struct TimestampingCapabilities {
    /// SOF_TIMESTAMPING_* modes, e.g. 'rx_software', 'tx_hardware', 'raw_hardware'.
    pub modes: Vec<&'static str>,
    /// Index of the PTP hardware clock (/dev/ptpN), -1 for none.
    pub phc_index: i32,
    /// Hardware transmit stamping types, e.g. 'off', 'on'.
    pub tx_types: Vec<&'static str>,
    /// Hardware receive filters, e.g. 'none', 'all', 'ptp_v2_event'.
    pub rx_filters: Vec<&'static str>,
    /// True when the interface can stamp in hardware in both directions.
    pub hardware: bool,
}

/// Timestamping of this instance's socket: asked for, possible, in use.
#[napi(object, object_from_js = false)]
pub struct TimestampingStatus {
    /// The interface carrying the socket's traffic (absent for a wildcard address).
    pub interface: Option<String>,
    /// The timestamping option.
    pub requested: &'static str,
    /// What the socket uses.
    pub in_use: &'static str,
    /// Why inUse differs from requested (timestampingFallback took over).
    pub fallback_reason: Option<String>,
    /// What the interface supports (absent if it could not be asked).
    pub supported: Option<TimestampingCapabilities>,
}

impl From<TimestampingInfo> for TimestampingStatus {
    fn from(info: TimestampingInfo) -> Self {
        TimestampingStatus {
            interface: info.interface,
            requested: info.requested.name(),
            in_use: info.in_use.name(),
            fallback_reason: info.fallback_reason,
            supported: info.capabilities.map(|c| TimestampingCapabilities {
                modes: c.modes(),
                phc_index: c.phc_index(),
                tx_types: c.tx_types(),
                rx_filters: c.rx_filters(),
                hardware: c.hardware(),
            }),
        }
    }
}

/// Outgoing multicast as in effect.
#[napi(object, object_from_js = false)]
pub struct MulticastStatus {
    /// The interface multicast leaves by (absent: the route's).
    pub interface: Option<String>,
    /// Its index; 0: the route's.
    pub interface_index: u32,
    /// TTL / hop limit of multicast datagrams.
    pub ttl: u32,
    /// Whether this host's own sockets hear them.
    pub loopback: bool,
}

/// One multicast membership.
#[napi(object, object_from_js = false)]
pub struct MembershipStatus {
    /// The group address.
    pub group: String,
    /// The only sender heard, for a source-specific membership.
    pub source: Option<String>,
    /// The interface it was joined on (absent: the route's, as the kernel chose).
    pub interface: Option<String>,
    /// Its index; 0: the route's.
    pub interface_index: u32,
}

/// What is in effect on the socket (getSocketInfo).
#[napi(object, object_from_js = false)]
pub struct SocketStatus {
    /// The bound address (a group address when bound to one).
    pub local_address: String,
    /// The bound port.
    pub local_port: u32,
    /// 'IPv4' or 'IPv6'.
    pub family: &'static str,
    /// The connected peer's address (absent when unconnected).
    pub remote_address: Option<String>,
    /// The connected peer's port.
    pub remote_port: Option<u32>,
    /// The interface the socket is bound to (SO_BINDTODEVICE; absent: any).
    pub interface: Option<String>,
    /// SO_RCVBUF as the kernel reports it (twice the size granted).
    pub recv_buffer_size: f64,
    /// SO_SNDBUF as the kernel reports it (twice the size granted).
    pub send_buffer_size: f64,
    /// Unicast TTL / hop limit.
    pub ttl: u32,
    /// DSCP of sent datagrams.
    pub dscp: u32,
    /// SO_PRIORITY.
    pub socket_priority: u32,
    /// SO_BROADCAST.
    pub broadcast: bool,
    /// SO_REUSEADDR.
    pub reuse_address: bool,
    /// SO_REUSEPORT.
    pub reuse_port: bool,
    /// Outgoing multicast.
    pub multicast: MulticastStatus,
    /// Whether received packets carry localAddress and interface.
    pub packet_info: bool,
    /// Groups joined, in the order they were joined.
    pub memberships: Vec<MembershipStatus>,
    /// Whether runs of equal-sized datagrams leave as GSO messages now.
    pub gso: bool,
    /// Most datagrams per GSO message.
    pub gso_max_segments: u32,
    /// Whether UDP_GRO is on.
    pub gro: bool,
}

/// An interface by index: its name, absent for 0 (the route's) or an index without a name.
fn name_of(index: u32) -> Option<String> {
    (index != 0).then(|| interface_name(index)).flatten()
}

impl From<SocketInfo> for SocketStatus {
    fn from(info: SocketInfo) -> Self {
        let text = |addr| format_ip(&PeerAddr::from_socket_addr(addr));
        SocketStatus {
            local_address: text(info.local),
            local_port: u32::from(info.local.port()),
            family: if info.local.is_ipv4() { "IPv4" } else { "IPv6" },
            remote_address: info.remote.map(text),
            remote_port: info.remote.map(|r| u32::from(r.port())),
            interface: info.interface,
            recv_buffer_size: info.recv_buffer_bytes as f64,
            send_buffer_size: info.send_buffer_bytes as f64,
            ttl: info.ttl,
            dscp: u32::from(info.dscp),
            socket_priority: info.socket_priority,
            broadcast: info.broadcast,
            reuse_address: info.reuse_address,
            reuse_port: info.reuse_port,
            multicast: MulticastStatus {
                interface: name_of(info.multicast_interface_index),
                interface_index: info.multicast_interface_index,
                ttl: info.multicast_ttl,
                loopback: info.multicast_loopback,
            },
            packet_info: info.packet_info,
            memberships: info.memberships.iter().map(MembershipStatus::from).collect(),
            gso: info.gso,
            gso_max_segments: info.gso_max_segments,
            gro: info.gro,
        }
    }
}

impl From<&Membership> for MembershipStatus {
    fn from(m: &Membership) -> Self {
        MembershipStatus {
            group: m.group.to_string(),
            source: m.source.map(|s| s.to_string()),
            interface: name_of(m.interface_index),
            interface_index: m.interface_index,
        }
    }
}
