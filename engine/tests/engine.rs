//! The engine end to end on loopback, without Node.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use udpcom_engine::now_ns;
use udpcom_engine::{Config, Notify, Options, State, UdpEngine};

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
    receiver.receive(usize::MAX, |p| {
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
    assert_eq!(sender.send_batch(&[(b"a", hour), (b"b", hour)]).unwrap(), 0);
    let stats = sender.stats().unwrap();
    assert_eq!((stats.packets_queued, stats.send_ring_full), (4, 4));
}

#[test]
fn drain_target_is_reached_and_notified() {
    let (mut sender, tx_notify, _receiver, _) = pair(Options::default());
    let soon = now_ns() + 2_000_000;
    let packets: Vec<(&[u8], u64)> = (0..100).map(|_| (&b"payload"[..], soon)).collect();
    assert_eq!(sender.send_batch(&packets).unwrap(), 100);
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
    // 100,000 × 512 bytes of arena plus 2^17 slots of 32 bytes.
    assert_eq!(e.memory_bytes(), 100_000 * 512 + (1 << 17) * 32);
    e.stop();
    assert_eq!(
        e.memory_bytes(),
        100_000 * 512 + (1 << 17) * 32,
        "kept for the next start"
    );
    e.close().unwrap();
    assert_eq!(e.memory_bytes(), 0);
}
