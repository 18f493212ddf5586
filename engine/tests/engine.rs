//! The engine end to end on loopback, without Node.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use udpcom_engine::{code, format_ip, now_ns, Config, ErrorClass, Notify, Options, PeerAddr, State, UdpEngine};

/// Counts notifications and lets a test wait for the next one.
#[derive(Default)]
struct TestNotify {
    count: Mutex<u64>,
    changed: Condvar,
}

impl Notify for TestNotify {
    fn notify(&self) {
        *self.count.lock().unwrap() += 1;
        self.changed.notify_all();
    }
}

impl TestNotify {
    fn wait_beyond(&self, seen: u64, timeout: Duration) -> u64 {
        let guard = self.count.lock().unwrap();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |count| *count <= seen)
            .unwrap();
        *guard
    }
}

fn engine(remote_port: u16, options: Options) -> UdpEngine {
    let config = Config::new("127.0.0.1", 0.0, "127.0.0.1", remote_port as f64, &options).unwrap();
    let mut engine = UdpEngine::new(config);
    engine.init_socket().unwrap();
    engine
}

/// A receiver and a sender connected to each other, both started.
fn pair(options: Options) -> (UdpEngine, Arc<TestNotify>, UdpEngine, Arc<TestNotify>) {
    // Bind the receiver first, unconnected, to learn its port; then connect the sender to it,
    // and give the receiver its own connected socket to the sender.
    let probe = engine(0, Options::default());
    let rx_port = probe.local_port().unwrap();
    drop(probe);
    let mut sender = {
        let config = Config::new("127.0.0.1", 0.0, "127.0.0.1", rx_port as f64, &options).unwrap();
        let mut e = UdpEngine::new(config);
        e.init_socket().unwrap();
        e
    };
    let tx_port = sender.local_port().unwrap();
    let mut receiver = {
        let config = Config::new("127.0.0.1", rx_port as f64, "127.0.0.1", tx_port as f64, &options).unwrap();
        let mut e = UdpEngine::new(config);
        e.init_socket().unwrap();
        e
    };
    let tx_notify = Arc::new(TestNotify::default());
    let rx_notify = Arc::new(TestNotify::default());
    receiver.start(rx_notify.clone()).unwrap();
    sender.start(tx_notify.clone()).unwrap();
    (sender, tx_notify, receiver, rx_notify)
}

/// Waits until `count` packets are in the receive ring (notification-driven, with a timeout).
fn await_received(receiver: &mut UdpEngine, notify: &TestNotify, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        receiver.begin_notification();
        let seen = *notify.count.lock().unwrap();
        receiver.wait_for_receive(None);
        if receiver.received_count() >= count {
            receiver.stop_waiting_for_receive();
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {count} packets arrived",
            receiver.received_count()
        );
        notify.wait_beyond(seen, Duration::from_millis(100));
    }
}

/// Waits until everything queued on `sender` has left (what drain() does for JavaScript).
fn drain(sender: &UdpEngine, notify: &TestNotify) {
    let target = sender.queued_total();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sender.completed_total() < target {
        sender.begin_notification();
        let seen = *notify.count.lock().unwrap();
        sender.set_drain_target(target);
        if sender.completed_total() >= target {
            break;
        }
        assert!(Instant::now() < deadline, "drain timed out");
        notify.wait_beyond(seen, Duration::from_millis(100));
    }
    sender.set_drain_target(u64::MAX);
}

#[test]
fn packets_arrive_in_order_at_their_time() {
    let (mut sender, tx_notify, mut receiver, rx_notify) = pair(Options {
        spin_ns: Some(50_000.0),
        ..Default::default()
    });
    let start = now_ns() + 5_000_000;
    for i in 0..20u64 {
        assert!(sender.send(&i.to_le_bytes(), start + i * 1_000_000).unwrap());
    }
    await_received(&mut receiver, &rx_notify, 20);
    let mut arrivals = Vec::new();
    receiver.receive(usize::MAX, usize::MAX, |p| {
        arrivals.push((u64::from_le_bytes(p.payload.try_into().unwrap()), p.meta.arrival_ns))
    });
    for (i, &(seq, arrival)) in arrivals.iter().enumerate() {
        assert_eq!(seq, i as u64);
        let target = start + i as u64 * 1_000_000;
        assert!(arrival >= target, "packet {i} arrived before its time");
        assert!(
            arrival - target < 500_000_000,
            "packet {i} arrived {} ns late",
            arrival - target
        );
    }
    // A packet can reach a local receiver before the sender has counted it.
    drain(&sender, &tx_notify);
    let stats = sender.stats().unwrap();
    assert_eq!(stats.packets_sent, 20);
    assert_eq!(stats.bytes_sent, 160);
    assert_eq!(
        stats.latency.count, 20,
        "latencies are published when the sender goes idle"
    );
    assert!(stats.latency.max_ns < 20_000_000);
    let stats = receiver.stats().unwrap();
    assert_eq!(
        (stats.packets_received, stats.packets_delivered, stats.recv_queue_length),
        (20, 20, 0)
    );
}

#[test]
fn stop_is_quick_with_a_packet_due_in_an_hour_and_counts_discards() {
    let (mut sender, _, _receiver, _) = pair(Options::default());
    let hour = now_ns() + 3_600_000_000_000;
    for _ in 0..5 {
        assert!(sender.send(b"later", hour).unwrap());
    }
    std::thread::sleep(Duration::from_millis(30));
    let started = Instant::now();
    sender.stop();
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "stop took {:?}",
        started.elapsed()
    );
    let stats = sender.stats().unwrap();
    assert_eq!(
        (stats.packets_sent, stats.packets_discarded, stats.send_queue_length),
        (0, 5, 0)
    );
    assert_eq!(sender.state(), State::Bound);
    // And it starts again.
    sender.start(Arc::new(TestNotify::default())).unwrap();
    assert!(sender.send(b"now", 0).unwrap());
}

#[test]
fn full_ring_refuses_and_counts() {
    let options = Options {
        capacity: Some(4.0),
        ..Default::default()
    };
    let (mut sender, _, _receiver, _) = pair(options);
    let hour = now_ns() + 3_600_000_000_000;
    let results: Vec<bool> = (0..6).map(|_| sender.send(b"x", hour).unwrap()).collect();
    assert_eq!(results, [true, true, true, true, false, false]);
    assert_eq!(sender.send_batch(&[(b"a", hour), (b"b", hour)], None).unwrap(), 0);
    let stats = sender.stats().unwrap();
    assert_eq!((stats.packets_queued, stats.send_ring_full), (4, 4));
}

#[test]
fn drain_target_is_reached_and_notified() {
    let (mut sender, tx_notify, _receiver, _) = pair(Options::default());
    let soon = now_ns() + 2_000_000;
    let packets: Vec<(&[u8], u64)> = (0..100).map(|_| (&b"payload"[..], soon)).collect();
    assert_eq!(sender.send_batch(&packets, None).unwrap(), 100);
    let target = sender.queued_total();
    assert_eq!(target, 100);
    sender.begin_notification();
    let seen = *tx_notify.count.lock().unwrap();
    sender.set_drain_target(target);
    if sender.completed_total() < target {
        tx_notify.wait_beyond(seen, Duration::from_secs(5));
    }
    assert_eq!(sender.completed_total(), 100);
    assert_eq!(sender.stats().unwrap().packets_sent, 100);
}

#[test]
fn receive_timeout_wakes_the_waiter() {
    let (_sender, _, receiver, rx_notify) = pair(Options::default());
    receiver.begin_notification();
    let deadline = now_ns() + 20_000_000;
    receiver.wait_for_receive(Some(deadline));
    let seen = *rx_notify.count.lock().unwrap();
    let count = rx_notify.wait_beyond(seen, Duration::from_secs(2));
    assert!(count > seen, "no wake-up for the timeout");
    assert!(now_ns() >= deadline);
}

#[test]
fn states_and_directions_are_enforced() {
    let config = Config::new("127.0.0.1", 0.0, "127.0.0.1", 9.0, &Options::default()).unwrap();
    let mut e = UdpEngine::new(config);
    assert_eq!(e.local_port().unwrap_err().code, "ERR_UDPCOM_STATE");
    assert_eq!(
        e.start(Arc::new(TestNotify::default())).unwrap_err().code,
        "ERR_UDPCOM_STATE"
    );
    e.init_socket().unwrap();
    assert_eq!(e.init_socket().unwrap_err().code, "ERR_UDPCOM_STATE");
    assert_eq!(e.send(b"x", 0).unwrap_err().code, "ERR_UDPCOM_STATE");
    e.start(Arc::new(TestNotify::default())).unwrap();
    assert_eq!(
        e.start(Arc::new(TestNotify::default())).unwrap_err().code,
        "ERR_UDPCOM_STATE"
    );
    let err = e.send(&vec![0; 65_508], 0).unwrap_err();
    assert_eq!(err.code, "ERR_OUT_OF_RANGE");
    assert!(e.send(&vec![0; 65_507], 0).unwrap());
    e.close().unwrap();
    assert_eq!(e.stats().unwrap_err().code, "ERR_UDPCOM_STATE");
    assert_eq!(e.close().unwrap_err().code, "ERR_UDPCOM_STATE");

    let mut rx_only = engine(
        9,
        Options {
            direction: Some(1.0),
            ..Default::default()
        },
    );
    rx_only.start(Arc::new(TestNotify::default())).unwrap();
    assert_eq!(rx_only.send(b"x", 0).unwrap_err().code, "ERR_UDPCOM_STATE");
    let mut unconnected = engine(0, Options::default());
    unconnected.start(Arc::new(TestNotify::default())).unwrap();
    assert_eq!(unconnected.send(b"x", 0).unwrap_err().code, "ERR_UDPCOM_STATE");
    let mut tx_only = engine(
        9,
        Options {
            direction: Some(0.0),
            ..Default::default()
        },
    );
    tx_only.start(Arc::new(TestNotify::default())).unwrap();
    assert_eq!(tx_only.check_can_receive().unwrap_err().code, "ERR_UDPCOM_STATE");
}

#[test]
fn failed_start_leaves_nothing_running_and_can_be_retried() {
    let mut e = engine(
        9,
        Options {
            cpu: Some(1000.0),
            ..Default::default()
        },
    );
    let err = e.start(Arc::new(TestNotify::default())).unwrap_err();
    assert_eq!(err.code, "EINVAL");
    assert_eq!(err.os.unwrap().syscall, "sched_setaffinity");
    assert_eq!(e.state(), State::Bound);
    let err = e.start(Arc::new(TestNotify::default())).unwrap_err();
    assert_eq!(err.code, "EINVAL");
}

#[test]
fn send_errors_are_counted_when_nobody_listens() {
    // Nobody listens on the probe's port once it is dropped: ICMP port unreachable comes back
    // and the following sends fail with ECONNREFUSED.
    let probe = engine(0, Options::default());
    let dead_port = probe.local_port().unwrap();
    drop(probe);
    let mut sender = engine(
        dead_port,
        Options {
            direction: Some(0.0),
            ..Default::default()
        },
    );
    let notify = Arc::new(TestNotify::default());
    sender.start(notify.clone()).unwrap();
    for _ in 0..50 {
        sender.send(b"anyone?", 0).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    drain(&sender, &notify);
    let stats = sender.stats().unwrap();
    assert_eq!(stats.packets_sent + stats.send_errors, 50);
    assert!(stats.send_errors > 0);
    assert_eq!(stats.last_error.unwrap().code, "ECONNREFUSED");
}

#[test]
fn memory_bytes_counts_the_rings_until_close() {
    let mut e = engine(
        9,
        Options {
            capacity: Some(100_000.0),
            direction: Some(0.0),
            ..Default::default()
        },
    );
    assert_eq!(e.memory_bytes(), 0, "nothing before the first start");
    e.start(Arc::new(TestNotify::default())).unwrap();
    // 100,000 × 512 bytes of arena plus 2^17 slots of 56 bytes (deadline, target time and
    // destination address, then offset, length and end position in the arena).
    let ring_bytes = 100_000 * 512 + (1 << 17) * 56;
    assert_eq!(e.memory_bytes(), ring_bytes);
    e.stop();
    assert_eq!(e.memory_bytes(), ring_bytes, "kept for the next start");
    e.close().unwrap();
    assert_eq!(e.memory_bytes(), 0);
}

/// A started unconnected instance (remotePort 0) bound to `ip`: it hears anyone and sends with
/// send_to.
fn unconnected(ip: &str) -> (UdpEngine, Arc<TestNotify>) {
    let config = Config::new(ip, 0.0, ip, 0.0, &Options::default()).unwrap();
    let mut engine = UdpEngine::new(config);
    engine.init_socket().unwrap();
    let notify = Arc::new(TestNotify::default());
    engine.start(notify.clone()).unwrap();
    (engine, notify)
}

fn local_addr(engine: &UdpEngine, ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), engine.local_port().unwrap())
}

/// A plain socket that gives up on a read after 10 s.
fn peer_socket(ip: &str) -> UdpSocket {
    let socket = UdpSocket::bind(SocketAddr::new(ip.parse().unwrap(), 0)).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    socket
}

/// The next datagram on `socket`, and who sent it (fails after 10 s).
fn recv_from(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buffer = [0u8; 2048];
    let (len, from) = socket.recv_from(&mut buffer).expect("a datagram within 10 s");
    (buffer[..len].to_vec(), from)
}

/// Everything in the receive ring, as (payload, sender).
fn take_all(engine: &mut UdpEngine) -> Vec<(Vec<u8>, PeerAddr)> {
    let mut packets = Vec::new();
    engine.receive(usize::MAX, usize::MAX, |p| {
        packets.push((p.payload.to_vec(), p.meta.peer))
    });
    packets
}

/// An unconnected instance hears three senders, learns who each is, and answers each with
/// send_to: each gets its own answer, from the instance's address.
fn answers_three_senders(ip: &str) {
    let (mut engine, notify) = unconnected(ip);
    let engine_addr = local_addr(&engine, ip);
    let senders: Vec<UdpSocket> = (0..3).map(|_| peer_socket(ip)).collect();
    for (i, sender) in senders.iter().enumerate() {
        sender.send_to(format!("hello {i}").as_bytes(), engine_addr).unwrap();
    }
    await_received(&mut engine, &notify, 3);
    let mut heard = take_all(&mut engine);
    heard.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (payload, from)) in heard.iter().enumerate() {
        assert_eq!(payload, format!("hello {i}").as_bytes());
        assert_eq!(from.to_socket_addr(), Some(senders[i].local_addr().unwrap()));
        assert_eq!(from.port(), senders[i].local_addr().unwrap().port());
        assert_eq!(from.is_ipv4(), ip.contains('.'));
        assert_eq!(from.scope_id(), 0);
        assert_eq!(format_ip(from), ip);
    }
    for (payload, from) in &heard {
        let reply = [b"re: ", &payload[..]].concat();
        assert!(engine.send_to(&reply, 0, from.to_socket_addr().unwrap()).unwrap());
    }
    for (i, sender) in senders.iter().enumerate() {
        assert_eq!(recv_from(sender), (format!("re: hello {i}").into_bytes(), engine_addr));
    }
    let stats = engine.stats().unwrap();
    assert_eq!((stats.packets_received, stats.packets_delivered), (3, 3));
    assert_eq!(stats.control_truncated, 0);
}

#[test]
fn an_unconnected_instance_answers_each_sender_by_its_address() {
    answers_three_senders("127.0.0.1");
}

#[test]
fn an_unconnected_ipv6_instance_answers_each_sender_by_its_address() {
    answers_three_senders("::1");
}

#[test]
fn a_connected_instance_also_names_its_peer() {
    let (mut sender, _, mut receiver, rx_notify) = pair(Options::default());
    assert!(sender.is_connected() && receiver.is_connected() && sender.is_ipv4());
    assert!(sender.send(b"hi", 0).unwrap());
    await_received(&mut receiver, &rx_notify, 1);
    let heard = take_all(&mut receiver);
    assert_eq!(heard[0].1.to_socket_addr(), Some(local_addr(&sender, "127.0.0.1")));
}

#[test]
fn one_send_batch_of_the_sender_reaches_several_destinations_in_order() {
    let (mut engine, notify) = unconnected("127.0.0.1");
    let receivers: Vec<UdpSocket> = (0..3).map(|_| peer_socket("127.0.0.1")).collect();
    // Nine packets due at the same moment, to receivers 0, 1, 2, 0, 1, 2, ...: the sender takes
    // them in one batch (one sendmmsg with an address per message; sys::mmsg tests that call
    // directly), and each receiver gets its own, in order.
    let due = now_ns() + 20_000_000;
    for i in 0..9u8 {
        let destination = receivers[i as usize % 3].local_addr().unwrap();
        assert!(engine.send_to(&[i], due, destination).unwrap());
    }
    for (r, receiver) in receivers.iter().enumerate() {
        let got: Vec<Vec<u8>> = (0..3).map(|_| recv_from(receiver).0).collect();
        assert_eq!(got, [[r as u8], [r as u8 + 3], [r as u8 + 6]]);
    }
    drain(&engine, &notify);
    let stats = engine.stats().unwrap();
    assert_eq!((stats.packets_queued, stats.packets_sent, stats.send_errors), (9, 9, 0));
}

#[test]
fn send_to_and_send_batch_to_share_one_ring_in_order() {
    let (mut engine, notify) = unconnected("127.0.0.1");
    let receiver = peer_socket("127.0.0.1");
    let to = receiver.local_addr().unwrap();
    let soon = now_ns() + 5_000_000;
    assert!(engine.send_to(b"a", soon, to).unwrap());
    assert_eq!(engine.send_batch(&[(b"b", soon), (b"c", 0)], Some(to)).unwrap(), 2);
    assert!(engine.send_to(b"d", 0, to).unwrap());
    // "c" and "d" are due at once, but leave after "a" and "b", queued before them.
    let got: Vec<Vec<u8>> = (0..4).map(|_| recv_from(&receiver).0).collect();
    assert_eq!(got, [b"a", b"b", b"c", b"d"]);
    drain(&engine, &notify);
    assert_eq!(engine.stats().unwrap().packets_sent, 4);
}

#[test]
fn inline_send_to_goes_out_from_the_calling_thread() {
    let config = Config::new(
        "127.0.0.1",
        0.0,
        "127.0.0.1",
        0.0,
        &Options {
            inline_send: Some(true),
            direction: Some(0.0),
            ..Default::default()
        },
    )
    .unwrap();
    let mut engine = UdpEngine::new(config);
    engine.init_socket().unwrap();
    engine.start(Arc::new(TestNotify::default())).unwrap();
    let receiver = peer_socket("127.0.0.1");
    assert!(engine.send_to(b"now", 0, receiver.local_addr().unwrap()).unwrap());
    // Sent before send_to returned: counted at once, no drain needed.
    assert_eq!(engine.stats().unwrap().packets_sent, 1);
    assert_eq!(recv_from(&receiver).0, b"now");
}

#[test]
fn receive_stops_at_the_count_or_the_byte_budget() {
    let (mut engine, notify) = unconnected("127.0.0.1");
    let sender = peer_socket("127.0.0.1");
    for i in 0..5u8 {
        sender.send_to(&[i; 100], local_addr(&engine, "127.0.0.1")).unwrap();
    }
    await_received(&mut engine, &notify, 5);
    let mut take = |max: usize, max_bytes: usize| {
        let mut firsts = Vec::new();
        engine.receive(max, max_bytes, |p| firsts.push(p.payload[0]));
        firsts
    };
    assert_eq!(take(10, 250), [0, 1], "100 + 100 fit in 250, a third does not");
    assert_eq!(take(10, 99), [] as [u8; 0], "the next packet alone is over the budget");
    assert_eq!(take(1, usize::MAX), [2]);
    assert_eq!(take(10, 200), [3, 4]);
    assert_eq!(engine.stats().unwrap().packets_delivered, 5);
}

#[test]
fn destinations_are_checked_like_node_dgram() {
    // A connected instance refuses a destination, in both forms.
    let (mut connected, _, _receiver, _) = pair(Options::default());
    let anywhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let err = connected.send_to(b"x", 0, anywhere).unwrap_err();
    assert_eq!(
        (err.code, err.class),
        (code::SOCKET_DGRAM_IS_CONNECTED, ErrorClass::Error)
    );
    assert!(err.message.starts_with("Already connected"), "{}", err.message);
    let err = connected.send_batch(&[(b"x", 0)], Some(anywhere)).unwrap_err();
    assert_eq!(err.code, code::SOCKET_DGRAM_IS_CONNECTED);

    // An unconnected one needs one, of its own family, with a port.
    let (mut engine, _) = unconnected("127.0.0.1");
    assert_eq!(engine.send(b"x", 0).unwrap_err().code, code::STATE);
    assert_eq!(engine.send_batch(&[(b"x", 0)], None).unwrap_err().code, code::STATE);
    let err = engine.send_to(b"x", 0, "[::1]:9".parse().unwrap()).unwrap_err();
    assert_eq!((err.code, err.class), (code::INVALID_ARG_VALUE, ErrorClass::TypeError));
    assert!(err.message.contains("IPv4"), "{}", err.message);
    let err = engine.send_to(b"x", 0, "127.0.0.1:0".parse().unwrap()).unwrap_err();
    assert_eq!((err.code, err.class), (code::SOCKET_BAD_PORT, ErrorClass::RangeError));
    assert_eq!(err.message, "Port should be > 0 and < 65536. Received type number (0).");
    let err = engine
        .send_batch(&[(b"x", 0)], Some("127.0.0.1:0".parse().unwrap()))
        .unwrap_err();
    assert_eq!(err.code, code::SOCKET_BAD_PORT);
    // The payload limit holds as for send.
    let err = engine.send_to(&vec![0; 65_508], 0, anywhere).unwrap_err();
    assert_eq!(err.code, code::OUT_OF_RANGE);
    let (mut v6, _) = unconnected("::1");
    assert!(!v6.is_ipv4() && !v6.is_connected());
    let err = v6.send_to(b"x", 0, anywhere).unwrap_err();
    assert!(err.message.contains("IPv6"), "{}", err.message);
    // Nothing was queued by any refused call.
    assert_eq!(engine.stats().unwrap().packets_queued, 0);
}

/// Two network namespaces joined by a veth pair, deleted again on drop.
struct VethPair {
    namespaces: [String; 2],
    interfaces: [String; 2],
}

impl VethPair {
    /// Namespaces `udpcom-rs-a-<id>` and `-b-` with interfaces `ura<id>` and `urb<id>`, up,
    /// with the link-local addresses fe80::1 and fe80::2 (no duplicate detection, so that they
    /// can be bound at once).
    fn create() -> std::io::Result<VethPair> {
        let id = format!("{}{}", std::process::id() % 100_000, now_ns() % 1000);
        let pair = VethPair {
            namespaces: [format!("udpcom-rs-a-{id}"), format!("udpcom-rs-b-{id}")],
            interfaces: [format!("ura{id}"), format!("urb{id}")],
        };
        let [ns_a, ns_b] = &pair.namespaces;
        let [if_a, if_b] = &pair.interfaces;
        ip(&["netns", "add", ns_a])?;
        ip(&["netns", "add", ns_b])?;
        ip(&[
            "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b,
        ])?;
        for (ns, interface, address) in [(ns_a, if_a, "fe80::1/64"), (ns_b, if_b, "fe80::2/64")] {
            ip(&["-n", ns, "addr", "add", address, "dev", interface, "nodad"])?;
            ip(&["-n", ns, "link", "set", interface, "up"])?;
        }
        Ok(pair)
    }

    /// Runs `work` on a thread of its own inside namespace `index` (0 or 1): the sockets it
    /// opens and the interface names it looks up are that namespace's.
    fn run_in<T: Send + 'static>(&self, index: usize, work: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.namespaces[index]);
        std::thread::spawn(move || {
            let namespace = std::fs::File::open(&path).expect("the namespace exists");
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&namespace),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns into the test namespace");
            work()
        })
        .join()
        .expect("the namespace thread panicked")
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and with it the other end.
        for namespace in &self.namespaces {
            let _ = ip(&["netns", "del", namespace]);
        }
    }
}

/// A socket address with an IPv6 scope id.
trait WithScope {
    fn with_scope(self, scope_id: u32) -> SocketAddr;
}

impl WithScope for SocketAddr {
    fn with_scope(mut self, scope_id: u32) -> SocketAddr {
        if let SocketAddr::V6(v6) = &mut self {
            v6.set_scope_id(scope_id);
        }
        self
    }
}

fn ip(args: &[&str]) -> std::io::Result<()> {
    let output = std::process::Command::new("ip").args(args).output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Binds `address` (10 s at most: a link that is still coming up refuses it for a moment).
fn bind_when_ready(address: SocketAddr) -> UdpSocket {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match UdpSocket::bind(address) {
            Ok(socket) => return socket,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("bind {address}: {e}"),
        }
    }
}

#[test]
fn link_local_ipv6_with_scopes_across_a_veth_pair() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to create network namespaces and a veth pair");
        return;
    }
    let pair = match VethPair::create() {
        Ok(pair) => pair,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: the ip command (iproute2) is not installed");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let [if_a, if_b] = pair.interfaces.clone();

    // Host B: a plain socket on fe80::2, scoped by its interface's name.
    let b_if = if_b.clone();
    let (b_socket, b_scope) = pair.run_in(1, move || {
        let (ip, scope) = udpcom_engine::parse_ip_with_scope("address", &format!("fe80::2%{b_if}")).unwrap();
        assert_ne!(scope, 0);
        let socket = bind_when_ready(SocketAddr::new(ip, 0).with_scope(scope));
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        (socket, scope)
    });

    // Host A: an unconnected engine on fe80::1%<interface>; it hears B, names it with B's
    // address scoped by A's interface, and answers it there.
    let a_if = if_a.clone();
    let (heard_text, round_trip, numeric, answered, reply) = pair.run_in(0, move || {
        let (_, a_scope) = udpcom_engine::parse_ip_with_scope("address", &format!("fe80::1%{a_if}")).unwrap();
        // The interface's name and number denote the same scope, and print back as the name.
        let numeric = udpcom_engine::parse_ip_with_scope("address", &format!("fe80::1%{a_scope}")).unwrap();
        let round_trip = format_ip(&PeerAddr::from_socket_addr(
            format!("[fe80::1%{a_scope}]:9").parse().unwrap(),
        ));
        let local = format!("fe80::1%{a_if}");
        let config = Config::new(&local, 0.0, "::", 0.0, &Options::default()).unwrap();
        let mut engine = UdpEngine::new(config);
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(e) = engine.init_socket() {
            assert!(Instant::now() < deadline, "{e}");
            std::thread::sleep(Duration::from_millis(10));
        }
        let notify = Arc::new(TestNotify::default());
        engine.start(notify.clone()).unwrap();
        let port = engine.local_port().unwrap();
        // B sends to fe80::1 through its own interface.
        let to_a = SocketAddr::new("fe80::1".parse().unwrap(), port).with_scope(b_scope);
        b_socket.send_to(b"from b", to_a).unwrap();
        await_received(&mut engine, &notify, 1);
        let (payload, from) = take_all(&mut engine).remove(0);
        assert_eq!(payload, b"from b");
        assert_eq!(from.scope_id(), a_scope);
        assert!(engine.send_to(b"to b", 0, from.to_socket_addr().unwrap()).unwrap());
        let reply = recv_from(&b_socket);
        (
            format_ip(&from),
            round_trip,
            numeric,
            (from.port(), b_socket.local_addr().unwrap().port()),
            reply,
        )
    });
    assert_eq!(heard_text, format!("fe80::2%{if_a}"));
    assert_eq!(round_trip, format!("fe80::1%{if_a}"));
    assert_eq!(numeric.0, "fe80::1".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(answered.0, answered.1, "the sender's port");
    assert_eq!(reply.0, b"to b");
    let SocketAddr::V6(from_a) = reply.1 else {
        panic!("{}", reply.1)
    };
    assert_eq!(
        (from_a.ip().to_string(), from_a.scope_id()),
        ("fe80::1".to_string(), b_scope)
    );
}
