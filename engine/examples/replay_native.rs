//! The engine's replay driven from Rust, no Node: the native-only row of the replay benchmark.
//! Replays a capture file to HOST:PORT from one absolute start, as `udp.replay()` does, and
//! prints the replay's statistics as one JSON line.
//!
//! ```text
//! replay_native --file F --to 10.204.0.2:5555 [--from 10.204.0.1] [--cpu 1] [--priority 80]
//! ```

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use udpcom_engine::{
    now_ns, Config, Notify, Options, ReplayDestination, ReplayInput, ReplaySpec, StreamEnd, UdpEngine,
};

struct Quiet;
impl Notify for Quiet {
    fn notify(&self) {}
}

fn main() {
    let args = common::args(1);
    let file = args.get("file").expect("--file F").clone();
    let to: SocketAddr = args.get("to").expect("--to HOST:PORT").parse().expect("--to");
    let from = args.get("from").cloned().unwrap_or_else(|| "0.0.0.0".into());
    let number = |name: &str| args.get(name).map(|v| v.parse::<f64>().expect(name));
    let options = Options {
        direction: Some(0.0),
        cpu: number("cpu"),
        priority: number("priority"),
        // Each datagram its own frame: the benchmark counts frames with tcpdump on a veth,
        // which sees a GSO message (datagrams due together) as one.
        gso: Some(false),
        ..Default::default()
    };
    let config = Config::new(&from, 0.0, &to.ip().to_string(), f64::from(to.port()), &options).expect("config");
    let mut engine = UdpEngine::new(config);
    engine.init_socket().expect("socket");
    engine.start(Arc::new(Quiet)).expect("start");
    let spec = ReplaySpec {
        input: ReplayInput::Path(file.into()),
        speed: 1.0,
        start_ns: now_ns() + 50_000_000,
        loops: 1,
        filter_port: None,
        filter_address: None,
        destination: ReplayDestination::Connected,
    };
    let id = engine.start_replay(spec).expect("replay");
    let stats = loop {
        let stats = engine.replay_stats(id).expect("replay stats");
        if stats.end != StreamEnd::Running {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let l = &stats.lateness;
    println!(
        "{{\"sent\":{},\"errors\":{},\"skipped\":{},\"p50LatenessNs\":{},\"p99LatenessNs\":{},\"maxLatenessNs\":{},\"error\":{}}}",
        stats.sent,
        stats.errors,
        stats.skipped.file.total() + stats.skipped.filtered,
        l.p50_ns,
        l.p99_ns,
        l.max_ns,
        stats.error.map_or("null".into(), |e| format!("{:?}", e.message))
    );
    engine.close().expect("close");
}
