//! Control messages (ancillary data) the kernel attaches to received messages.

/// What the kernel attached to one received datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ancillary {
    /// `SO_RXQ_OVFL`: datagrams dropped on this socket since the option was enabled.
    pub(crate) dropped_total: Option<u32>,
    /// `SCM_TIMESTAMPING` software stamp, CLOCK_REALTIME ns.
    pub(crate) software_ns: Option<u64>,
    /// `SCM_TIMESTAMPING` raw hardware stamp, ns of the NIC's clock.
    pub(crate) hardware_ns: Option<u64>,
}

fn timespec_ns(ts: &libc::timespec) -> Option<u64> {
    let ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    (ns != 0).then_some(ns)
}

/// One transmit timestamp read from the socket's error queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TxStamp {
    /// `SOF_TIMESTAMPING_OPT_ID` key: the index of the datagram among those sent on the
    /// socket since timestamping was turned on.
    pub(crate) key: u32,
    /// Software stamp, CLOCK_REALTIME ns.
    pub(crate) software_ns: Option<u64>,
    /// Raw hardware stamp.
    pub(crate) hardware_ns: Option<u64>,
}

pub(crate) fn parse_tx_stamp(header: &libc::msghdr) -> Option<TxStamp> {
    let (mut stamp, mut is_timestamp) = (TxStamp::default(), false);
    // SAFETY: as in `parse_control`: the kernel wrote the control data of `header`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            let (level, kind) = ((*cmsg).cmsg_level, (*cmsg).cmsg_type);
            if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPING {
                let stamps = libc::CMSG_DATA(cmsg).cast::<[libc::timespec; 3]>().read_unaligned();
                stamp.software_ns = timespec_ns(&stamps[0]);
                stamp.hardware_ns = timespec_ns(&stamps[2]);
            } else if (level == libc::SOL_IP && kind == libc::IP_RECVERR)
                || (level == libc::SOL_IPV6 && kind == libc::IPV6_RECVERR)
            {
                let error = libc::CMSG_DATA(cmsg).cast::<libc::sock_extended_err>().read_unaligned();
                if error.ee_errno == libc::ENOMSG as u32 && error.ee_origin == libc::SO_EE_ORIGIN_TIMESTAMPING {
                    is_timestamp = true;
                    stamp.key = error.ee_data;
                }
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    is_timestamp.then_some(stamp)
}

pub(crate) fn parse_control(header: &libc::msghdr) -> Ancillary {
    let mut ancillary = Ancillary::default();
    // SAFETY: `header` was filled by recvmmsg, so its control pointer and length describe the
    // ancillary data the kernel wrote into our buffer; CMSG_* walk only inside it, and each
    // payload is read unaligned with its documented type.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            let (level, kind) = ((*cmsg).cmsg_level, (*cmsg).cmsg_type);
            if level == libc::SOL_SOCKET && kind == libc::SO_RXQ_OVFL {
                ancillary.dropped_total = Some(libc::CMSG_DATA(cmsg).cast::<u32>().read_unaligned());
            } else if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPING {
                let stamps = libc::CMSG_DATA(cmsg).cast::<[libc::timespec; 3]>().read_unaligned();
                ancillary.software_ns = timespec_ns(&stamps[0]);
                ancillary.hardware_ns = timespec_ns(&stamps[2]);
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    ancillary
}
