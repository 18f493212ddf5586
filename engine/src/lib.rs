//! # udpcom-engine: deterministic UDP on Linux
//!
//! The engine behind the `udpcom` Node.js addon, with no Node in it. It sends UDP datagrams at
//! exact CLOCK_MONOTONIC times and receives them with low, predictable latency, by moving the
//! timing-critical work onto native threads:
//!
//! - **Sending.** The caller copies a packet and its target time into a lock-free ring
//!   ([`ring`]) and returns at once. A sender thread ([`sender`]), optionally pinned to a CPU
//!   and under SCHED_FIFO ([`rt`]), sleeps on the absolute deadline with
//!   `clock_nanosleep(TIMER_ABSTIME)`, spins the last microseconds ([`clock`]), and sends every
//!   packet that is due with one `sendmmsg`. Packets leave in the order they were queued.
//! - **Receiving.** A receiver thread ([`receiver`]) reads with `recvmmsg` into a second ring
//!   and wakes the caller through a [`Notify`]; it blocks in `poll` when idle.
//! - **Statistics** ([`stats`]): exact counters, so that every packet is accounted for (sent,
//!   refused, discarded or failed; delivered, overflowed or dropped by the kernel), and HDR
//!   histograms of send latency (departure − target).
//!
//! [`UdpEngine`] ties these together; [`Config`] validates options; [`Error`] carries the
//! Node-style `code` of every failure.
//!
//! ## When the kernel says no
//!
//! The engine never degrades silently. If a worker cannot be pinned or made real-time,
//! `start` fails with the errno (EINVAL, EPERM) and a hint on how to grant it. Under SCHED_FIFO,
//! a worker that would run for more than 90% of any 10 ms pauses for 1 ms and counts the pause
//! ([`rt::RunBudget`]), rather than being frozen by the kernel's RT throttling for 50 ms with
//! nothing to show for it. Spin loops that lose the CPU for more than 200 µs are counted as
//! stalls. If the receive buffer cannot be enlarged past `net.core.rmem_max`, the smaller
//! buffer is used and the datagrams the kernel drops are counted (`SO_RXQ_OVFL`).
//!
//! Platform code (system calls that the `socket2` and `rustix` crates do not wrap) lives in
//! [`sys`]; it holds nearly all of the crate's `unsafe`, the rest being the ring's memory.

pub mod clock;
pub mod config;
pub mod engine;
mod errno;
pub mod error;
pub mod pcap;
pub mod receiver;
pub mod ring;
pub mod rt;
pub mod sender;
pub mod socket;
pub mod stats;
pub mod sys;
pub mod timestamping;

pub use config::{Config, Direction, Options, SpinPolicy};
pub use engine::{Notify, Received, State, UdpEngine};
pub use error::{Error, ErrorClass, OsError, Result};
pub use stats::{Bucket, LatencySummary, Stats};
