//! What the example programs share: their `--name value` arguments and pinning to a CPU.
//! Plain std and libc, no udpcom code, so the instruments stay independent of what they
//! measure. Each program uses part of it.
#![allow(dead_code)]

use std::collections::HashMap;

/// The `--name value` pairs after the first `skip` arguments (the program, and a mode word
/// for programs that have one). A name without a value maps to "".
pub fn args(skip: usize) -> HashMap<String, String> {
    let argv: Vec<String> = std::env::args().skip(skip).collect();
    argv.chunks(2)
        .map(|kv| {
            (
                kv[0].trim_start_matches("--").to_string(),
                kv.get(1).cloned().unwrap_or_default(),
            )
        })
        .collect()
}

/// Pins the calling thread to `cpu`; panics with the OS error if it cannot.
pub fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET stays inside it; pid 0 is this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
            panic!("sched_setaffinity({cpu}): {}", std::io::Error::last_os_error());
        }
    }
}
