//! UDP GSO and GRO through the engine's public API, on loopback, checked from outside by a
//! plain socket with `UDP_GRO` on: the kernel hands it a GSO message as one coalesced buffer
//! (with its segment size), so what it reads shows how the engine really sent — runs of due
//! packets as GSO messages, a stream's bursts too, and nothing coalesced with `gso: false` or
//! with transmit timestamps on. And the engine's own GRO receiver counts datagrams, never
//! buffers.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use udpcom_engine::{now_ns, Config, Notify, Options, StreamHeader, StreamLength, StreamRate, StreamSpec, UdpEngine};

struct Quiet;
impl Notify for Quiet {
    fn notify(&self) {}
}

/// A plain socket with UDP_GRO on and an 8 MiB receive buffer.
fn gro_sink() -> UdpSocket {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size_force(&sink, 8 << 20);
    let on: libc::c_int = 1;
    // SAFETY: `on` lives for the call and its size is passed.
    let ret = unsafe {
        libc::setsockopt(
            sink.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(ret, 0, "UDP_GRO: {}", std::io::Error::last_os_error());
    sink
}

/// Reads `count` datagrams off `sink` (10 s at most): (payloads, segment count of each buffer).
fn read_split(sink: &UdpSocket, count: usize) -> (Vec<Vec<u8>>, Vec<usize>) {
    let mut buffer = vec![0u8; 65_536];
    let mut control = [0u64; 16];
    let (mut payloads, mut buffers) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    while payloads.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} datagrams",
            payloads.len()
        );
        let mut iov = libc::iovec {
            iov_base: buffer.as_mut_ptr().cast(),
            iov_len: buffer.len(),
        };
        // SAFETY: an all-zero msghdr is valid; it points at `iov` and `control`, which outlive
        // the call; CMSG_* walk only the control bytes the kernel reported.
        let (len, segment) = unsafe {
            let mut header: libc::msghdr = std::mem::zeroed();
            header.msg_iov = &mut iov;
            header.msg_iovlen = 1;
            header.msg_control = control.as_mut_ptr().cast();
            header.msg_controllen = size_of_val(&control);
            let len = libc::recvmsg(sink.as_raw_fd(), &mut header, libc::MSG_DONTWAIT);
            let mut segment = None;
            if len >= 0 {
                let mut cmsg = libc::CMSG_FIRSTHDR(&header);
                while !cmsg.is_null() {
                    if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == libc::UDP_GRO {
                        segment = Some(libc::CMSG_DATA(cmsg).cast::<libc::c_int>().read_unaligned() as usize);
                    }
                    cmsg = libc::CMSG_NXTHDR(&header, cmsg);
                }
            }
            (len, segment)
        };
        if len < 0 {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let data = &buffer[..len as usize];
        let size = segment.unwrap_or(data.len()).max(1);
        let before = payloads.len();
        payloads.extend(data.chunks(size).map(<[u8]>::to_vec));
        if data.is_empty() {
            payloads.push(Vec::new());
        }
        buffers.push(payloads.len() - before);
    }
    (payloads, buffers)
}

fn sender(port: u16, options: Options) -> UdpEngine {
    let options = Options {
        direction: Some(0.0),
        capacity: Some(65_536.0),
        ..options
    };
    let mut engine = UdpEngine::new(Config::new("127.0.0.1", 0.0, "127.0.0.1", port as f64, &options).unwrap());
    engine.init_socket().unwrap();
    engine.start(Arc::new(Quiet)).unwrap();
    engine
}

fn numbered(seq: u32, len: usize) -> Vec<u8> {
    let mut p = vec![(seq % 251) as u8; len];
    p[..len.min(4)].copy_from_slice(&seq.to_le_bytes()[..len.min(4)]);
    p
}

fn wait_sent(engine: &UdpEngine, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.stats().unwrap().packets_sent < count {
        assert!(Instant::now() < deadline, "{:?}", engine.stats().unwrap());
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn due_runs_leave_as_gso_messages_with_every_byte_in_order() {
    let sink = gro_sink();
    let mut engine = sender(sink.local_addr().unwrap().port(), Options::default());
    let info = engine.socket_info().unwrap();
    assert!(info.gso);
    assert_eq!(info.gso_max_segments, 64);
    // 200 of 100 bytes, a 30-byte one (a shorter last segment), 130 of 1472, all due at once.
    let lengths: Vec<usize> = (0..331)
        .map(|i| {
            if i < 200 {
                100
            } else if i == 200 {
                30
            } else {
                1472
            }
        })
        .collect();
    let payloads: Vec<Vec<u8>> = lengths
        .iter()
        .enumerate()
        .map(|(i, &l)| numbered(i as u32, l))
        .collect();
    let batch: Vec<(&[u8], u64)> = payloads.iter().map(|p| (&p[..], 0)).collect();
    assert_eq!(engine.send_batch(&batch, None).unwrap(), payloads.len());
    let (got, buffers) = read_split(&sink, payloads.len());
    assert!(got == payloads, "payloads differ");
    // GSO messages of up to 64 datagrams arrived as coalesced buffers.
    assert!(buffers.iter().any(|&n| n > 1), "{buffers:?}");
    assert!(buffers.iter().all(|&n| n <= 64), "{buffers:?}");
    wait_sent(&engine, payloads.len() as u64);
    let stats = engine.stats().unwrap();
    assert_eq!(
        (stats.packets_sent, stats.send_errors, stats.gso_fallbacks),
        (331, 0, 0)
    );
    assert_eq!(stats.bytes_sent, lengths.iter().sum::<usize>() as u64);
    engine.stop();
}

#[test]
fn a_stream_with_bursts_leaves_in_gso_messages_too() {
    let sink = gro_sink();
    let mut engine = sender(sink.local_addr().unwrap().port(), Options::default());
    let spec = StreamSpec {
        start_ns: now_ns() + 2_000_000,
        rate: StreamRate::PacketsPerSecond(32_000.0),
        length: StreamLength::Count(640),
        burst: 32,
        size: 64,
        payload: Vec::new(),
        header: StreamHeader::Udpcom,
        destination: None,
    };
    engine.start_stream(&spec, None).unwrap();
    let (got, buffers) = read_split(&sink, 640);
    assert_eq!(got.len(), 640);
    // Each tick's 32 packets are due together: one message each (the host may split one).
    assert!(buffers.iter().filter(|&&n| n == 32).count() >= 10, "{buffers:?}");
    engine.stop();
}

#[test]
fn without_gso_or_with_transmit_stamps_every_datagram_is_its_own_message() {
    for options in [
        Options {
            gso: Some(false),
            ..Default::default()
        },
        Options {
            timestamping: Some("software".into()),
            ..Default::default()
        },
    ] {
        let sink = gro_sink();
        let mut engine = sender(sink.local_addr().unwrap().port(), options.clone());
        assert_eq!(engine.socket_info().unwrap().gso, options.gso.is_none());
        let payloads: Vec<Vec<u8>> = (0..300).map(|i| numbered(i, 64)).collect();
        let batch: Vec<(&[u8], u64)> = payloads.iter().map(|p| (&p[..], 0)).collect();
        assert_eq!(engine.send_batch(&batch, None).unwrap(), 300);
        let (got, buffers) = read_split(&sink, 300);
        assert!(got == payloads);
        assert!(buffers.iter().all(|&n| n == 1), "{options:?}: {buffers:?}");
        engine.stop();
    }
}

#[test]
fn the_engine_receiver_splits_gro_buffers_and_counts_datagrams() {
    let options = Options {
        direction: Some(1.0),
        capacity: Some(65_536.0),
        ..Default::default()
    };
    let mut receiver = UdpEngine::new(Config::new("127.0.0.1", 0.0, "127.0.0.1", 0.0, &options).unwrap());
    receiver.init_socket().unwrap();
    assert!(receiver.socket_info().unwrap().gro);
    receiver.start(Arc::new(Quiet)).unwrap();
    let mut engine = sender(receiver.local_port().unwrap(), Options::default());
    let payloads: Vec<Vec<u8>> = (0..5000).map(|i| numbered(i, 1 + (i as usize / 1000) * 300)).collect();
    let batch: Vec<(&[u8], u64)> = payloads.iter().map(|p| (&p[..], 0)).collect();
    let mut queued = 0;
    while queued < batch.len() {
        queued += engine.send_batch(&batch[queued..], None).unwrap();
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < payloads.len() {
        assert!(Instant::now() < deadline, "only {} of {}", got.len(), payloads.len());
        receiver.receive(usize::MAX, usize::MAX, |p| got.push(p.payload.to_vec()));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(got == payloads, "payloads differ");
    let stats = receiver.stats().unwrap();
    assert_eq!(
        (stats.packets_received, stats.packets_delivered, stats.kernel_drops),
        (5000, 5000, 0)
    );
    assert_eq!(
        stats.bytes_received,
        payloads.iter().map(|p| p.len() as u64).sum::<u64>()
    );
    engine.stop();
    receiver.stop();
}
