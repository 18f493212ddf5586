//! Scheduling of the calling thread (`sched_setscheduler`, `setpriority`) and locking
//! memory into RAM (`mlock`).

use std::io;

use super::check;

/// Puts the calling thread under SCHED_FIFO at `priority`.
pub(crate) fn set_fifo_priority(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is the calling thread.
    check(unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) }).map(drop)
}

/// Puts the calling thread back under normal scheduling (SCHED_OTHER), at nice -20 where
/// allowed so that other normal threads on its CPU take as little of it as possible.
pub(crate) fn set_normal_scheduling() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is the calling thread.
    check(unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) })?;
    // SAFETY: plain call on the calling thread (a thread id is a valid PRIO_PROCESS target).
    // Refused without CAP_SYS_NICE or a high RLIMIT_NICE, which only costs CPU share.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, -20) };
    Ok(())
}

#[cfg(test)]
/// The scheduling policy and priority of the calling thread (`libc::SCHED_FIFO`, 80).
pub(crate) fn current_scheduling() -> io::Result<(i32, i32)> {
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain call about the calling thread (pid 0), no pointers.
    let policy = check(unsafe { libc::sched_getscheduler(0) })?;
    // SAFETY: about the calling thread; `param` is a valid out-pointer for the call.
    check(unsafe { libc::sched_getparam(0, &mut param) })?;
    Ok((policy, param.sched_priority))
}

/// Locks memory regions into RAM (`mlock`), faulting them in.
pub(crate) fn lock_regions(regions: &[(*const u8, usize)]) -> io::Result<()> {
    for &(start, len) in regions {
        // SAFETY: callers pass regions of live allocations they own; mlock only changes how
        // the kernel backs the pages and never reads or writes them.
        unsafe { rustix::mm::mlock(start.cast_mut().cast(), len) }?;
    }
    Ok(())
}

/// Locks the calling thread's whole stack into RAM (`pthread_getattr_np` gives its bounds).
pub(crate) fn lock_current_stack() -> io::Result<()> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    let (mut base, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: pthread_getattr_np initializes `attr` for the calling thread; it is read only
    // after that succeeded and destroyed once; `base` and `size` are valid out-pointers.
    unsafe {
        let ret = libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr());
        if ret != 0 {
            return Err(io::Error::from_raw_os_error(ret));
        }
        let ret = libc::pthread_attr_getstack(attr.as_ptr(), &mut base, &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        if ret != 0 {
            return Err(io::Error::from_raw_os_error(ret));
        }
    }
    lock_regions(&[(base.cast_const().cast(), size)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduling_of_a_normal_thread() {
        assert_eq!(current_scheduling().unwrap().0, libc::SCHED_OTHER);
    }
}
