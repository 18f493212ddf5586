//! Lab-network options through the engine's public API, on loopback: memberships joined
//! before and while the receiver runs, packet information in the receive metadata (for
//! datagrams to a group and to an address), and what getSocketInfo reads back.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use udpcom_engine::{interface_name, Config, Notify, Options, UdpEngine};

struct NoNotify;

impl Notify for NoNotify {
    fn notify(&self) {}
}

fn engine(local: &str, local_port: u16, remote: &str, remote_port: u16, options: Options) -> UdpEngine {
    let config = Config::new(local, local_port as f64, remote, remote_port as f64, &options).unwrap();
    let mut engine = UdpEngine::new(config);
    engine.init_socket().unwrap();
    engine
}

/// Polls the receive ring until `count` packets are there (10 s at most); returns them as
/// (payload, destination, interface index).
fn take(receiver: &mut UdpEngine, count: usize) -> Vec<(Vec<u8>, Option<IpAddr>, u32)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.received_count() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} packets; {:?}",
            receiver.received_count(),
            receiver.stats().map(|s| (s.packets_received, s.last_error))
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut packets = Vec::new();
    receiver.receive(count, usize::MAX, |p| {
        packets.push((p.payload.to_vec(), p.meta.destination, p.meta.interface_index))
    });
    packets
}

#[test]
fn packet_info_names_the_group_or_address_and_the_interface() {
    for (any, loopback, group, late_group) in [
        ("0.0.0.0", "127.0.0.1", "239.255.78.1", "239.255.78.2"),
        ("::", "::1", "ff12::7801", "ff12::7802"),
    ] {
        let options = Options {
            direction: Some(1.0),
            packet_info: Some(true),
            ..Default::default()
        };
        let mut receiver = engine(any, 0, any, 0, options);
        let port = receiver.local_port().unwrap();
        // One group before the receiver runs, one while it runs.
        receiver.add_membership(None, group, Some("lo")).unwrap();
        receiver.start(Arc::new(NoNotify)).unwrap();
        receiver.add_membership(None, late_group, Some("lo")).unwrap();

        let sender_options = Options {
            direction: Some(0.0),
            multicast_interface: Some("lo".into()),
            ..Default::default()
        };
        let mut sender = engine(loopback, 0, loopback, 0, sender_options);
        sender.start(Arc::new(NoNotify)).unwrap();
        // lo carries IPv4 multicast; it has no IFF_MULTICAST for IPv6 (sending to a group fails
        // with ENETUNREACH), which the namespace tests of lab-networks.test.mjs cover on veths.
        let mut sent = vec![("c", loopback)];
        if any == "0.0.0.0" {
            sent.splice(0..0, [("a", group), ("b", late_group)]);
        }
        for (payload, to) in &sent {
            let destination = std::net::SocketAddr::new(to.parse().unwrap(), port);
            assert!(sender.send_to(payload.as_bytes(), 0, destination).unwrap());
        }
        let packets = take(&mut receiver, sent.len());
        let lo = packets[0].2;
        assert_eq!(interface_name(lo).as_deref(), Some("lo"));
        let expected: Vec<(Vec<u8>, Option<IpAddr>, u32)> = sent
            .iter()
            .map(|(payload, to)| (payload.as_bytes().to_vec(), Some(to.parse().unwrap()), lo))
            .collect();
        assert_eq!(packets, expected, "{any}");

        let info = receiver.socket_info().unwrap();
        assert!(info.packet_info);
        let groups: Vec<(IpAddr, u32)> = info.memberships.iter().map(|m| (m.group, m.interface_index)).collect();
        assert_eq!(
            groups,
            [(group.parse().unwrap(), lo), (late_group.parse().unwrap(), lo)]
        );
        receiver.drop_membership(None, group, Some("lo")).unwrap();
        assert_eq!(receiver.socket_info().unwrap().memberships.len(), 1);
        assert_eq!(sender.socket_info().unwrap().multicast_interface_index, lo);
        receiver.close().unwrap();
        sender.close().unwrap();
        assert_eq!(receiver.socket_info().unwrap_err().code, "ERR_UDPCOM_STATE");
    }
}

#[test]
fn without_packet_info_the_metadata_has_none() {
    let mut receiver = engine(
        "127.0.0.1",
        0,
        "127.0.0.1",
        0,
        Options {
            direction: Some(1.0),
            ..Default::default()
        },
    );
    receiver.start(Arc::new(NoNotify)).unwrap();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.send_to(b"x", ("127.0.0.1", receiver.local_port().unwrap()))
        .unwrap();
    assert_eq!(take(&mut receiver, 1), [(b"x".to_vec(), None, 0)]);
    assert!(!receiver.socket_info().unwrap().packet_info);
}

#[test]
fn memberships_need_a_socket() {
    let config = Config::new("0.0.0.0", 0.0, "0.0.0.0", 0.0, &Options::default()).unwrap();
    let mut engine = UdpEngine::new(config);
    let err = engine.add_membership(None, "239.1.2.3", None).unwrap_err();
    assert_eq!(err.code, "ERR_UDPCOM_STATE");
    assert_eq!(engine.socket_info().unwrap_err().code, "ERR_UDPCOM_STATE");
}
