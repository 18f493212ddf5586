//! The Linux system calls that neither socket2 nor rustix wrap, by concern:
//!
//! - [`mmsg`]: `sendmmsg` and `recvmmsg` batches (datagrams, and the error queue's transmit
//!   stamps), with their message headers;
//! - [`cmsg`]: control messages (ancillary data) of received messages, decoded;
//! - [`sockopt`]: integer socket options (`SO_RXQ_OVFL`, `SO_TIMESTAMPING`) and `SO_MEMINFO`;
//! - [`sched`]: scheduling policy (`sched_setscheduler`) and `mlock`;
//! - [`ethtool`]: interfaces: which one has an address, what it can timestamp, hardware
//!   timestamping on.
//!
//! Every `unsafe` block of the crate that talks to the kernel is here, behind safe functions
//! whose borrows keep all pointers valid for the duration of the call. The only other `unsafe`
//! of the crate is the packet ring's memory ([`crate::ring`]).

use std::io;

mod cmsg;
mod ethtool;
mod mmsg;
mod sched;
mod sockopt;

pub(crate) use cmsg::Ancillary;
pub(crate) use ethtool::{enable_hardware_timestamping, ethtool_ts_info, interface_with_address, EthtoolTsInfo};
pub(crate) use mmsg::{send_many, ErrQueueBatch, RecvBatch, RECV_BATCH, RECV_BUFFER, SEND_BATCH};
#[cfg(test)]
pub(crate) use sched::current_scheduling;
pub(crate) use sched::{lock_regions, set_fifo_priority, set_normal_scheduling};
pub(crate) use sockopt::{enable_rxq_ovfl, set_timestamping, socket_drops};

/// A C return value as a `Result`: negative means failure, with the reason in `errno`.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
