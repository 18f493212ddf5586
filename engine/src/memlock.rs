//! What `lockMemory: 'all'` locks: everything the packet path touches that the engine or the
//! process's files own — the rings and receive buffers, the worker threads' stacks, and every
//! readable file-backed mapping (the code and data of Node, its libraries and the addon).
//!
//! Not `mlockall(MCL_CURRENT | MCL_FUTURE)`: it would lock V8's JavaScript heap too, and V8 gives
//! free heap pages back to the kernel with `madvise(MADV_DONTNEED)`, which fails on locked
//! memory; V8 treats that as a fatal error. Measured with Node 20: a process under mlockall
//! aborted ("Check failed: 0 == ret" in `MemoryChunk::DiscardUnusedMemory`) within seconds of
//! garbage collection, and at every exit. The JavaScript heap can page; the packet path does not
//! run in it.

/// The readable, file-backed mappings listed in `/proc/self/maps` text, as (start, length).
/// Pseudo-files (`[stack]`, `[vdso]`, ...) and anonymous memory are left out; so are mappings
/// that cannot be read (guard pages), which locking would fail on.
pub(crate) fn file_mappings(maps: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let range = fields.next()?;
            let permissions = fields.next()?;
            let path = fields.nth(3)?;
            if !path.starts_with('/') || !permissions.starts_with('r') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (end > start).then_some((start, end - start))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_readable_file_mappings_only() {
        let maps = "\
55d0c0a00000-55d0c0a2c000 r--p 00000000 fd:01 1234   /usr/bin/node
55d0c0a2c000-55d0c2000000 r-xp 0002c000 fd:01 1234   /usr/bin/node
7f0000000000-7f0000021000 rw-p 00000000 00:00 0
7f1000000000-7f1000001000 ---p 00000000 fd:01 99     /usr/lib/x86_64-linux-gnu/libc.so.6
7f1000001000-7f1000100000 r-xp 00001000 fd:01 99     /usr/lib/x86_64-linux-gnu/libc.so.6
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0      [stack]
7ffd00100000-7ffd00102000 r-xp 00000000 00:00 0      [vdso]
7f2000000000-7f2000001000 rw-p 00000000 fd:01 7      /tmp/a file (deleted)
garbage line
";
        assert_eq!(
            file_mappings(maps),
            [
                (0x55d0c0a00000, 0x2c000),
                (0x55d0c0a2c000, 0x55d0c2000000 - 0x55d0c0a2c000),
                (0x7f1000001000, 0xff000),
                (0x7f2000000000, 0x1000),
            ]
        );
    }

    #[test]
    fn reads_this_process() {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let mappings = file_mappings(&maps);
        assert!(!mappings.is_empty(), "the test binary itself is a file mapping");
        assert!(mappings.iter().all(|&(_, len)| len > 0 && len % 4096 == 0));
    }
}
