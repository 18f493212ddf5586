//! Lock-free single-producer/single-consumer rings of variable-length packets.
//!
//! A ring is two preallocated arrays: `capacity` slots (metadata, offset, length) and a byte
//! arena that holds the payloads back to back. A payload never wraps: if it does not fit
//! before the end of the arena, the producer skips the rest of the arena and starts again at
//! offset 0. So memory is `capacity × slot size + ring_bytes`, however big a datagram may be,
//! and neither side allocates, locks or makes a system call per packet.
//!
//! Positions are monotonic `u64` counters (packets pushed and popped; arena bytes reserved and
//! released). The producer publishes `head` with Release after writing a slot and its bytes;
//! the consumer publishes `tail` and `byte_tail` with Release after it is done reading. Each
//! side caches the other's counter and only reloads it when the cached value says "full" or
//! "empty", so the shared cache lines are touched rarely.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam::utils::CachePadded;

/// Why a push was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// All `capacity` slots are in use.
    Slots,
    /// The byte arena has no contiguous room for this payload.
    Bytes,
}

struct Slot<M> {
    meta: M,
    /// Offset of the payload in the arena.
    offset: u32,
    /// Payload length.
    len: u32,
    /// Monotonic arena position just past this payload (and any skipped tail before it).
    byte_end: u64,
}

struct Ring<M> {
    slots: Box<[UnsafeCell<MaybeUninit<Slot<M>>>]>,
    /// `slots.len() - 1`; the slot array is a power of two so that indexing is a mask.
    slot_mask: u64,
    /// Packets the ring may hold (may be less than `slots.len()`).
    capacity: u64,
    arena: Box<[UnsafeCell<u8>]>,
    /// Packets pushed (written by the producer).
    head: CachePadded<AtomicU64>,
    /// Packets popped (written by the consumer).
    tail: CachePadded<AtomicU64>,
    /// Arena bytes released by the consumer (monotonic).
    byte_tail: CachePadded<AtomicU64>,
}

// SAFETY: the ring is shared by exactly one `Producer` and one `Consumer` (neither is Clone).
// Slots in `tail..head` and arena bytes in `byte_tail..byte_head` belong to the consumer, the
// rest to the producer; ownership moves only through the Release stores / Acquire loads of
// `head`, `tail` and `byte_tail`, so no byte is ever accessed by both sides at once.
unsafe impl<M: Send> Sync for Ring<M> {}
// SAFETY: see above; the ring owns its memory and `M: Send` values.
unsafe impl<M: Send> Send for Ring<M> {}

/// Creates a ring for `capacity` packets and `ring_bytes` payload bytes, with every page
/// written once so that the packet path takes no page faults.
///
/// `ring_bytes` must be at least twice the largest payload that will be pushed (so that any
/// payload fits once the ring has drained) and below 4 GiB.
pub(crate) fn packet_ring<M: Copy + Send>(capacity: usize, ring_bytes: usize) -> (Producer<M>, Consumer<M>) {
    assert!(capacity > 0, "ring capacity must be positive");
    assert!(
        ring_bytes > 0 && ring_bytes <= u32::MAX as usize,
        "ring_bytes out of range"
    );
    let slot_count = capacity.next_power_of_two();
    let slots: Box<[UnsafeCell<MaybeUninit<Slot<M>>>]> = (0..slot_count)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let arena = zeroed_arena(ring_bytes);
    let ring = Arc::new(Ring {
        slot_mask: slot_count as u64 - 1,
        capacity: capacity as u64,
        slots,
        arena,
        head: CachePadded::new(AtomicU64::new(0)),
        tail: CachePadded::new(AtomicU64::new(0)),
        byte_tail: CachePadded::new(AtomicU64::new(0)),
    });
    ring.prefault();
    (
        Producer {
            ring: ring.clone(),
            head: 0,
            byte_head: 0,
            byte_pos: 0,
            cached_tail: 0,
            cached_byte_tail: 0,
        },
        Consumer {
            ring,
            tail: 0,
            cached_head: 0,
        },
    )
}

impl<M> Ring<M> {
    fn arena_ptr(&self) -> *mut u8 {
        // UnsafeCell<u8> is repr(transparent), so the slice is laid out as plain bytes, and
        // writing through a pointer obtained from an UnsafeCell is allowed.
        UnsafeCell::raw_get(self.arena.as_ptr())
    }

    fn slot_ptr(&self, seq: u64) -> *mut MaybeUninit<Slot<M>> {
        self.slots[(seq & self.slot_mask) as usize].get()
    }

    /// Writes one byte per page of both arrays, so the kernel backs them with memory now.
    fn prefault(&self) {
        const PAGE: usize = 4096;
        for offset in (0..self.arena.len()).step_by(PAGE) {
            // SAFETY: in bounds, and no other thread has access to the ring yet.
            unsafe { self.arena_ptr().add(offset).write_volatile(0) };
        }
        let slot_bytes = self.slots.len() * std::mem::size_of::<Slot<M>>();
        let slots_base = UnsafeCell::raw_get(self.slots.as_ptr()).cast::<u8>();
        for offset in (0..slot_bytes).step_by(PAGE) {
            // SAFETY: in bounds of the slot array; writing a byte into MaybeUninit storage is
            // allowed, and no other thread has access to the ring yet.
            unsafe { slots_base.add(offset).write_volatile(0) };
        }
    }

    /// Bytes the ring owns.
    fn memory_bytes(&self) -> usize {
        self.arena.len() + self.slots.len() * std::mem::size_of::<Slot<M>>()
    }

    /// Start and length of the memory the ring owns, for `mlock`.
    fn regions(&self) -> [(*const u8, usize); 2] {
        [
            (self.arena_ptr().cast_const(), self.arena.len()),
            (
                UnsafeCell::raw_get(self.slots.as_ptr()).cast::<u8>().cast_const(),
                self.slots.len() * std::mem::size_of::<Slot<M>>(),
            ),
        ]
    }
}

/// The writing half of a packet ring.
pub(crate) struct Producer<M> {
    ring: Arc<Ring<M>>,
    /// Packets staged (published up to `ring.head`).
    head: u64,
    /// Monotonic arena position of the next payload.
    byte_head: u64,
    /// `byte_head % arena.len()`, kept to avoid a division per push.
    byte_pos: usize,
    cached_tail: u64,
    cached_byte_tail: u64,
}

impl<M: Copy> Producer<M> {
    /// Copies a packet into the ring and publishes it. On `Err` nothing was queued.
    pub(crate) fn push(&mut self, meta: M, payload: &[u8]) -> Result<(), Full> {
        self.stage(meta, payload)?;
        self.publish();
        Ok(())
    }

    /// Copies a packet into the ring without making it visible to the consumer yet; call
    /// [`publish`](Self::publish) once after staging a batch.
    pub(crate) fn stage(&mut self, meta: M, payload: &[u8]) -> Result<(), Full> {
        let ring = &*self.ring;
        if self.head - self.cached_tail >= ring.capacity {
            self.cached_tail = ring.tail.load(Ordering::Acquire);
            if self.head - self.cached_tail >= ring.capacity {
                return Err(Full::Slots);
            }
        }
        let arena_len = ring.arena.len();
        let len = payload.len();
        // A payload that would run past the end of the arena starts again at offset 0; the
        // skipped tail counts as used until the consumer releases this packet.
        let (start, skipped) = if self.byte_pos + len > arena_len {
            (0, arena_len - self.byte_pos)
        } else {
            (self.byte_pos, 0)
        };
        let byte_end = self.byte_head + (skipped + len) as u64;
        if byte_end - self.cached_byte_tail > arena_len as u64 {
            self.cached_byte_tail = ring.byte_tail.load(Ordering::Acquire);
            if byte_end - self.cached_byte_tail > arena_len as u64 {
                return Err(Full::Bytes);
            }
        }
        // SAFETY: `start..start + len` lies inside the arena (checked above) and outside the
        // consumer's unreleased bytes, because `byte_end - byte_tail <= arena_len`; the slot at
        // `head` is free because `head - tail < capacity <= slots.len()`. Both belong to the
        // producer until `publish`.
        unsafe {
            std::ptr::copy_nonoverlapping(payload.as_ptr(), ring.arena_ptr().add(start), len);
            (*ring.slot_ptr(self.head)).write(Slot {
                meta,
                offset: start as u32,
                len: len as u32,
                byte_end,
            });
        }
        self.head += 1;
        self.byte_head = byte_end;
        self.byte_pos = start + len;
        Ok(())
    }

    /// Makes every staged packet visible to the consumer.
    pub(crate) fn publish(&self) {
        self.ring.head.store(self.head, Ordering::Release);
    }

    /// Packets pushed so far (monotonic).
    pub(crate) fn pushed(&self) -> u64 {
        self.head
    }

    /// Memory regions of the ring (for `mlock`).
    pub(crate) fn regions(&self) -> [(*const u8, usize); 2] {
        self.ring.regions()
    }

    /// Bytes the ring owns (slots and payload arena).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.ring.memory_bytes()
    }
}

/// A packet borrowed from the ring until the consumer releases it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Packet<'a, M> {
    /// Metadata stored with the packet.
    pub meta: M,
    /// The payload bytes.
    pub payload: &'a [u8],
}

/// The reading half of a packet ring.
pub(crate) struct Consumer<M> {
    ring: Arc<Ring<M>>,
    /// Packets released.
    tail: u64,
    /// Last loaded value of `ring.head`.
    cached_head: u64,
}

/// `len` zeroed bytes from the allocator's zeroed memory (calloc): building them one cell at a
/// time took 100 ms for a 4 MiB ring in a debug build, on the caller's thread.
fn zeroed_arena(len: usize) -> Box<[UnsafeCell<u8>]> {
    let bytes: Box<[u8]> = vec![0u8; len].into_boxed_slice();
    // SAFETY: `UnsafeCell<u8>` is `repr(transparent)` over `u8`, so the slice has the same
    // layout and the box frees it with the same layout it was allocated with.
    unsafe { Box::from_raw(Box::into_raw(bytes) as *mut [UnsafeCell<u8>]) }
}

impl<M: Copy> Consumer<M> {
    /// Number of packets ready to read; loads the producer's position.
    pub(crate) fn available(&mut self) -> usize {
        self.cached_head = self.ring.head.load(Ordering::Acquire);
        (self.cached_head - self.tail) as usize
    }

    /// Number of packets known to be ready without touching the producer's cache line.
    pub(crate) fn cached_available(&self) -> usize {
        (self.cached_head - self.tail) as usize
    }

    /// The `index`-th unreleased packet, if [`available`](Self::available) has seen it.
    pub(crate) fn peek(&self, index: usize) -> Option<Packet<'_, M>> {
        let seq = self.tail + index as u64;
        if seq >= self.cached_head {
            return None;
        }
        let ring = &*self.ring;
        // SAFETY: `tail <= seq < head` (as published with Release and loaded with Acquire), so
        // the producer finished writing this slot and its bytes and will not touch them until
        // `release` moves `tail` past it. `&self` here and `&mut self` in `release` keep the
        // returned borrow from outliving the release.
        unsafe {
            let slot = (*ring.slot_ptr(seq)).assume_init_ref();
            let payload = std::slice::from_raw_parts(ring.arena_ptr().add(slot.offset as usize), slot.len as usize);
            Some(Packet {
                meta: slot.meta,
                payload,
            })
        }
    }

    /// Hands the first `count` packets back to the producer.
    pub(crate) fn release(&mut self, count: usize) {
        if count == 0 {
            return;
        }
        assert!(count <= self.cached_available(), "released more packets than available");
        let last = self.tail + count as u64 - 1;
        // SAFETY: `last` is an unreleased, published slot (asserted above).
        let byte_end = unsafe { (*self.ring.slot_ptr(last)).assume_init_ref().byte_end };
        self.tail += count as u64;
        self.ring.byte_tail.store(byte_end, Ordering::Release);
        self.ring.tail.store(self.tail, Ordering::Release);
    }

    /// Releases every packet that is ready and returns how many there were.
    pub(crate) fn discard_all(&mut self) -> usize {
        let count = self.available();
        self.release(count);
        count
    }

    /// Packets released so far (monotonic).
    pub(crate) fn released(&self) -> u64 {
        self.tail
    }

    /// Bytes the ring owns (slots and payload arena).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.ring.memory_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_and_payloads_survive() {
        let (mut tx, mut rx) = packet_ring::<u64>(8, 1024);
        for i in 0..5u64 {
            tx.push(i, &vec![i as u8; i as usize * 10]).unwrap();
        }
        assert_eq!(rx.available(), 5);
        for i in 0..5u64 {
            let p = rx.peek(i as usize).unwrap();
            assert_eq!(p.meta, i);
            assert_eq!(p.payload, &vec![i as u8; i as usize * 10][..]);
        }
        assert!(rx.peek(5).is_none());
        rx.release(5);
        assert_eq!(rx.available(), 0);
    }

    #[test]
    fn full_by_slots_and_by_bytes() {
        let (mut tx, mut rx) = packet_ring::<()>(3, 100);
        for _ in 0..3 {
            tx.push((), b"x").unwrap();
        }
        assert_eq!(tx.push((), b"x"), Err(Full::Slots));
        assert_eq!(rx.discard_all(), 3);
        tx.push((), b"x").unwrap();

        let (mut tx, mut rx) = packet_ring::<()>(100, 100);
        tx.push((), &[1; 60]).unwrap();
        assert_eq!(tx.push((), &[2; 50]), Err(Full::Bytes));
        tx.push((), &[3; 40]).unwrap();
        assert_eq!(rx.available(), 2);
        rx.release(1);
        // 40 bytes are in use at offset 60; 50 more fit only by wrapping to offset 0.
        tx.push((), &[4; 50]).unwrap();
        assert_eq!(rx.available(), 2);
        assert_eq!(rx.peek(1).unwrap().payload, &[4; 50][..]);
    }

    #[test]
    fn empty_and_zero_length_packets() {
        let (mut tx, mut rx) = packet_ring::<u8>(4, 16);
        assert_eq!(rx.available(), 0);
        assert!(rx.peek(0).is_none());
        tx.push(7, &[]).unwrap();
        assert_eq!(rx.available(), 1);
        assert_eq!(rx.peek(0).unwrap().payload.len(), 0);
        assert_eq!(rx.peek(0).unwrap().meta, 7);
    }

    #[test]
    fn any_payload_up_to_half_the_arena_fits_once_drained() {
        let arena = 1000;
        let (mut tx, mut rx) = packet_ring::<()>(16, arena);
        for first in 1..arena / 2 {
            tx.push((), &vec![0; first]).unwrap();
            rx.discard_all();
            for len in [arena / 2, 1, arena / 3] {
                tx.push((), &vec![0; len]).unwrap();
                rx.discard_all();
            }
        }
    }

    #[test]
    fn staged_packets_are_invisible_until_published() {
        let (mut tx, mut rx) = packet_ring::<u8>(4, 64);
        tx.stage(1, b"a").unwrap();
        tx.stage(2, b"b").unwrap();
        assert_eq!(rx.available(), 0);
        tx.publish();
        assert_eq!(rx.available(), 2);
        assert_eq!(tx.pushed(), 2);
    }

    /// Two threads, many wraps of both the slots and the arena: every packet arrives once, in
    /// order, with its own bytes. `UDPCOM_RING_STRESS_OPS` raises the count (issue #4 asks for
    /// 10 million; `cargo test --release` runs that many in a few seconds).
    #[test]
    fn concurrent_stress() {
        let ops: u64 = std::env::var("UDPCOM_RING_STRESS_OPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000_000);
        let (mut tx, mut rx) = packet_ring::<u64>(64, 4096);
        let producer = std::thread::spawn(move || {
            let mut payload = [0u8; 300];
            let mut seq = 0;
            while seq < ops {
                let len = (seq.wrapping_mul(2654435761) % 300) as usize;
                payload[..len].fill(seq as u8);
                if len >= 8 {
                    payload[..8].copy_from_slice(&seq.to_le_bytes());
                }
                if tx.push(seq, &payload[..len]).is_ok() {
                    seq += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
        });
        let mut expected = 0;
        while expected < ops {
            let ready = rx.available();
            for i in 0..ready {
                let p = rx.peek(i).unwrap();
                assert_eq!(p.meta, expected);
                let len = (expected.wrapping_mul(2654435761) % 300) as usize;
                assert_eq!(p.payload.len(), len);
                if len >= 8 {
                    assert_eq!(p.payload[..8], expected.to_le_bytes());
                    assert!(p.payload[8..].iter().all(|&b| b == expected as u8));
                }
                expected += 1;
            }
            rx.release(ready);
        }
        producer.join().unwrap();
    }
}
