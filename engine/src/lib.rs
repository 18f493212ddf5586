//! # udpcom-engine: deterministic UDP on Linux
//!
//! The engine behind the `udpcom` Node.js addon, with no Node in it. It sends UDP datagrams at
//! exact CLOCK_MONOTONIC times and receives them with low, predictable latency, by moving the
//! timing-critical work onto native threads:
//!
//! - **Sending.** The caller copies a packet, its target time and, on an unconnected
//!   instance, its destination into a lock-free ring ([`UdpEngine::send`],
//!   [`UdpEngine::send_to`], [`UdpEngine::send_batch`]) and returns at once. A sender thread,
//!   optionally pinned to a CPU and under SCHED_FIFO ([`ThreadSetup`]), sleeps on the absolute
//!   deadline with `clock_nanosleep(TIMER_ABSTIME)`, spins the last microseconds
//!   ([`DeadlineWaiter`]), and sends every packet that is due with one `sendmmsg`. Packets
//!   leave in the order they were queued, whatever call queued them.
//! - **Receiving.** A receiver thread reads with `recvmmsg` into a second ring, with each
//!   datagram's arrival stamp and sender ([`RecvMeta`], [`PeerAddr`]), and wakes the caller
//!   through a [`Notify`]; it blocks in `poll` when idle. [`UdpEngine::receive`] hands the
//!   packets over.
//! - **Statistics** ([`Stats`]): exact counters, so that every packet is accounted for (sent,
//!   refused, discarded or failed; delivered, overflowed or dropped by the kernel), and HDR
//!   histograms of send, wire and delivery latency.
//!
//! [`Config`] validates options; [`Error`] carries the Node-style `code` of every failure
//! ([`code`]).
//!
//! ## Modules (private; the public API is re-exported here)
//!
//! From the top down, each using only those below it: `engine` (one instance's life) over
//! `sender` and `receiver` (the worker threads), which share `shared` (flags, counters,
//! [`Notify`]); `timestamping` (SO_TIMESTAMPING set-up, the transmit-stamp log), `socket`
//! over `network` (the lab-network options, multicast memberships, [`SocketInfo`]),
//! `ring` (lock-free packet rings), `stats`, `config`, `addr` (addresses and their text),
//! `clock` (deadline waiting: sleep, naps, spin) over `rt` (pinning, SCHED_FIFO, the run
//! budget) over `time` (the clocks), `error`; and at the bottom `sys`, the Linux calls the
//! `socket2` and `rustix` crates do not wrap, by concern: `sys::mmsg` (sendmmsg/recvmmsg
//! batches), `sys::cmsg` (control messages, decoded and encoded), `sys::sockopt`,
//! `sys::sched`, `sys::ethtool`. `sys` holds all of the crate's `unsafe` but the ring's memory.
//!
//! [`probe_wakeups`] (module `probe`, over `clock` and `rt`) measures what the machine does to
//! a timed thread: how late its wake-ups are and how often it loses the CPU while it runs.
//!
//! Three public modules are pure and usable on their own: [`header`] (the udpcom test header and
//! the iperf 2 UDP header, on byte buffers), [`analysis`] (per-stream loss, reordering,
//! jitter, delay variation and latency of received test streams) and [`pcap`] (a streaming
//! reader and a writer of pcap and pcapng capture files).
//!
//! ## When the kernel says no
//!
//! The engine never degrades silently:
//! - If a worker cannot be pinned or made real-time, `start` fails with the errno (EINVAL,
//!   EPERM) and a hint on how to grant it.
//! - Under SCHED_FIFO, a worker that has run for 9 ms of 10 without sleeping leaves SCHED_FIFO
//!   for normal scheduling until its next long sleep and counts it (`rt_demotions`,
//!   [`RunBudget`]), rather than being frozen by the kernel's RT throttling for 50 ms with
//!   nothing to show for it. Spin loops that lose the CPU for more than 200 µs are counted as
//!   stalls.
//! - If the receive buffer cannot be forced past `net.core.rmem_max` (`SO_RCVBUFFORCE` needs
//!   CAP_NET_ADMIN), the capped buffer is used and the datagrams the kernel drops are counted
//!   (`SO_RXQ_OVFL`, `SO_MEMINFO`).
//! - Hardware timestamps that the interface or the permissions cannot give fail with
//!   `ERR_UDPCOM_HWTSTAMP_UNSUPPORTED`, or fall back to software stamps (or none) when the
//!   configuration says so, with the reason in [`TimestampingInfo`]. A datagram that arrives
//!   without a kernel stamp (stamping not switched on yet) is stamped by the receiver thread
//!   and says so ([`StampSource::User`]).
//! - A socket option the kernel refuses (an interface, a socket priority above 6, a buffer past
//!   `net.core.rmem_max` that cannot be forced, a membership) fails with the errno, syscall
//!   `setsockopt` and the option in the message, with how to get a missing permission; what is
//!   in effect is read back by [`UdpEngine::socket_info`].
//! - Control data that does not fit its buffer (`MSG_CTRUNC`) is counted
//!   (`control_truncated`); the datagram is still delivered, without what was cut.
//! - A kernel without UDP GSO or GRO gets plain datagrams (`SocketInfo::gso`, `gro` false); a
//!   GSO message the kernel or device refuses (`EIO`, `EINVAL`, `EMSGSIZE`) is sent again
//!   datagram by datagram, and the socket stops using GSO (`gso_fallbacks`).
//! - An unconnected instance can only [`send_to`](UdpEngine::send_to), a connected one only
//!   [`send`](UdpEngine::send): the other call fails with a coded error, as node:dgram's do.

#![warn(unreachable_pub)]

mod addr;
pub mod analysis;
mod capture;
mod clock;
mod config;
mod engine;
mod errno;
mod error;
pub mod header;
mod memlock;
mod network;
pub mod pcap;
mod probe;
mod receiver;
mod reflect;
mod replay;
mod ring;
mod rt;
mod sender;
mod shared;
mod socket;
mod stats;
mod stream;
mod sys;
mod time;
mod timestamping;

pub use addr::{format_ip, interface_name, parse_ip_with_scope, PeerAddr};
pub use capture::{CaptureSink, CaptureSpec, CaptureStats};
pub use clock::{DeadlineWaiter, SpinPolicy, Wait};
pub use config::{format_number, integer, Config, Direction, LockMemory, Options, TimestampMode};
pub use engine::{CaptureCloser, Received, State, UdpEngine};
pub use error::{code, Error, ErrorClass, OsError, Result};
pub use network::{InterfaceRef, Membership, NetworkOptions, SocketInfo};
pub use probe::{probe_wakeups, CpuLoss, WakeLateness, WakeProbe, WakeProbeOptions};
pub use receiver::{RecvMeta, StampSource};
pub use replay::{ReplayDestination, ReplayInput, ReplaySkips, ReplaySpec, ReplayStats};
pub use rt::{RunBudget, ThreadSetup};
pub use shared::Notify;
pub use stats::{Bucket, LatencySummary, Stats};
pub use stream::{StreamEnd, StreamHeader, StreamLength, StreamRate, StreamSendStats, StreamSpec};
pub use time::{now_ns, realtime_ns};
pub use timestamping::{Capabilities, TimestampingInfo, TxRecord};
