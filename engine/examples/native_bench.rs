//! The native-only ceiling: the udpcom engine driven from Rust, with no JavaScript in between,
//! doing what the Node benchmark does through the binding.
//!
//! ```text
//! native_bench send    --port P --seconds S [--cpu C] [--worker-cpu W] [--size 64] [--gso 0|1]
//! native_bench receive [--cpu C] [--worker-cpu W] [--gro 0|1]  (stdin: report | quit)
//! native_bench echo    --local-port L --port P [--cpu C] [--worker-cpu W] [--priority N]
//!                      [--inline-send]                        (stdin: quit)
//! native_bench cost    [--calls 100000] [--rounds 7]
//! ```
//!
//! - `send`: like the JavaScript sendData loop: queue 64-byte packets as fast as the ring takes
//!   them (sleep 1 ms when it is full) for S seconds, then wait until all have left.
//! - `receive`: a receive-only engine bound to 127.0.0.1:0 whose ring is drained by this
//!   thread, woken by the engine's Notify, as JavaScript is. `report` prints what arrived since
//!   the last report.
//! - `echo`: sends every received packet back, as the JavaScript echo does (with
//!   `--inline-send`, the engine's `inlineSend`, as the benchmark's JavaScript echoes use). At
//!   `quit` it prints the packets echoed and the CPU time used since `READY`.
//! - `cost`: nanoseconds per `UdpEngine::send` and per packet of `UdpEngine::send_batch` (64
//!   per call), the part of sendData/sendBatch below the binding.
//!
//! Each prints `READY <port>` once started and one JSON line per result; `cpuNs` in a result
//! is the CPU time of the whole process (every thread, the engine's workers included) over
//! what the result covers.

mod common;

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::thread::Thread;
use std::time::Duration;

use udpcom_engine::now_ns;
use udpcom_engine::{Config, Notify, Options, UdpEngine};

/// Wakes the consuming thread, as the binding's thread-safe function wakes JavaScript.
struct Unpark(Thread);

impl Notify for Unpark {
    fn notify(&self) {
        self.0.unpark();
    }
}

fn engine(local_port: u16, remote_port: u16, options: Options) -> UdpEngine {
    let config = Config::new(
        "127.0.0.1",
        local_port as f64,
        "127.0.0.1",
        remote_port as f64,
        &options,
    )
    .unwrap();
    let mut engine = UdpEngine::new(config);
    engine.init_socket().unwrap();
    engine.start(Arc::new(Unpark(std::thread::current()))).unwrap();
    engine
}

fn ready(engine: &UdpEngine) {
    println!("READY {}", engine.local_port().unwrap());
    std::io::stdout().flush().unwrap();
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let args = common::args(2);
    let get = |k: &str, d: &str| args.get(k).cloned().unwrap_or_else(|| d.to_string());
    let num = |k: &str| args.get(k).map(|v| v.parse::<f64>().unwrap());
    if let Some(cpu) = args.get("cpu") {
        common::pin(cpu.parse().unwrap());
    }
    let options = |direction: f64, capacity: Option<f64>| Options {
        direction: Some(direction),
        cpu: num("worker-cpu"),
        priority: num("priority"),
        capacity,
        inline_send: args.contains_key("inline-send").then_some(true),
        gso: args.get("gso").map(|value| value != "0"),
        gro: args.get("gro").map(|value| value != "0"),
        ..Default::default()
    };
    match mode.as_str() {
        "send" => {
            let mut e = engine(0, get("port", "9").parse().unwrap(), options(0.0, Some(65_536.0)));
            ready(&e);
            let seconds: f64 = get("seconds", "2").parse().unwrap();
            let mut payload = vec![0u8; get("size", "64").parse().unwrap()];
            let cpu_start = common::process_cpu_ns();
            let start = now_ns();
            let end = start + (seconds * 1e9) as u64;
            let mut queued = 0u64;
            while now_ns() < end {
                payload[8..12].copy_from_slice(&(queued as u32).to_le_bytes());
                if e.send(&payload, 0).unwrap() {
                    queued += 1;
                } else {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            while e.completed_total() < queued {
                std::thread::sleep(Duration::from_millis(1));
            }
            let span = now_ns() - start;
            let cpu = common::process_cpu_ns() - cpu_start;
            let s = e.stats().unwrap();
            println!(
                "{{\"queued\":{queued},\"sent\":{},\"spanNs\":{span},\"cpuNs\":{cpu},\"sentPps\":{:.0},\"ringFull\":{},\"rtDemotions\":{}}}",
                s.packets_sent,
                s.packets_sent as f64 * 1e9 / span as f64,
                s.send_ring_full,
                s.rt_demotions
            );
        }
        "receive" => {
            let mut e = engine(0, 0, options(1.0, None));
            ready(&e);
            let inbox = commands();
            let (mut count, mut max_seq, mut base, mut cpu_base) =
                (0u64, 0u32, e.stats().unwrap(), common::process_cpu_ns());
            loop {
                e.begin_notification();
                e.wait_for_receive(None);
                if e.received_count() > 0 {
                    count += e.receive(usize::MAX, usize::MAX, |p| {
                        if p.payload.len() >= 12 {
                            max_seq = max_seq.max(u32::from_le_bytes(p.payload[8..12].try_into().unwrap()));
                        }
                    }) as u64;
                    continue;
                }
                match inbox.try_recv().ok().as_deref() {
                    Some("report") => {
                        let s = e.stats().unwrap();
                        let cpu = common::process_cpu_ns();
                        println!(
                            "{{\"count\":{count},\"maxSeq\":{max_seq},\"ringOverflow\":{},\"kernelDrops\":{},\"cpuNs\":{}}}",
                            s.recv_ring_overflow - base.recv_ring_overflow,
                            s.kernel_drops - base.kernel_drops,
                            cpu - cpu_base
                        );
                        std::io::stdout().flush().unwrap();
                        (count, max_seq, base, cpu_base) = (0, 0, s, cpu);
                    }
                    Some("quit") => break,
                    _ => std::thread::park_timeout(Duration::from_millis(5)),
                }
            }
        }
        "echo" => {
            let mut e = engine(
                get("local-port", "0").parse().unwrap(),
                get("port", "9").parse().unwrap(),
                options(2.0, None),
            );
            let cpu_start = common::process_cpu_ns();
            ready(&e);
            let inbox = commands();
            let mut packets: Vec<Vec<u8>> = Vec::new();
            let mut echoed = 0u64;
            loop {
                e.begin_notification();
                e.wait_for_receive(None);
                if e.received_count() > 0 {
                    e.receive(usize::MAX, usize::MAX, |p| packets.push(p.payload.to_vec()));
                    for p in packets.drain(..) {
                        e.send(&p, 0).unwrap();
                        echoed += 1;
                    }
                    continue;
                }
                if inbox.try_recv().ok().as_deref() == Some("quit") {
                    break;
                }
                std::thread::park_timeout(Duration::from_millis(5));
            }
            println!(
                "{{\"echoed\":{echoed},\"cpuNs\":{}}}",
                common::process_cpu_ns() - cpu_start
            );
            std::io::stdout().flush().unwrap();
        }
        "cost" => cost(
            get("calls", "100000").parse().unwrap(),
            get("rounds", "7").parse().unwrap(),
        ),
        _ => panic!("usage: native_bench send|receive|echo|cost ..."),
    }
}

/// Lines from stdin, read on a thread of their own; "quit" at the end of input.
fn commands() -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let main = std::thread::current();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line.trim().to_string());
            main.unpark();
        }
        let _ = tx.send("quit".into());
        main.unpark();
    });
    rx
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// ns per engine.send and per packet of engine.send_batch, into a ring whose packets are due
/// in an hour, so that the sender thread sleeps and only the enqueueing is measured.
fn cost(calls: usize, rounds: usize) {
    let capacity = (calls + 64).next_power_of_two() as f64;
    let mut e = engine(0, 9, {
        Options {
            direction: Some(0.0),
            capacity: Some(capacity),
            ..Default::default()
        }
    });
    let payload = [7u8; 64];
    let later = now_ns() + 3_600_000_000_000;
    let batch: Vec<(&[u8], u64)> = (0..64).map(|i| (&payload[..], later + i)).collect();
    let restart = |e: &mut UdpEngine| {
        e.stop();
        e.start(Arc::new(Unpark(std::thread::current()))).unwrap();
    };
    let (mut single, mut batched) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = now_ns();
        for i in 0..calls {
            assert!(e.send(std::hint::black_box(&payload), later + i as u64).unwrap());
        }
        single.push((now_ns() - t) as f64 / calls as f64);
        restart(&mut e);
        let t = now_ns();
        for _ in 0..calls / 64 {
            assert_eq!(e.send_batch(std::hint::black_box(&batch), None).unwrap(), 64);
        }
        batched.push((now_ns() - t) as f64 / (calls / 64 * 64) as f64);
        restart(&mut e);
    }
    println!(
        "{{\"sendNs\":{:.1},\"sendBatchPerPacketNs\":{:.1},\"rounds\":{rounds},\"calls\":{calls}}}",
        median(single),
        median(batched)
    );
}
