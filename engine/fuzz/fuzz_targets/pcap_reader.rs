//! The pcap/pcapng reader on arbitrary input: it must end (a datagram, the end or an error on
//! every call, within one call per 12 bytes of input), never panic, and never allocate much
//! (scripts/fuzz-pcap.sh sets libFuzzer's -malloc_limit_mb).
#![no_main]

use libfuzzer_sys::fuzz_target;
use udpcom_engine::pcap::PcapReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = PcapReader::new(data) else {
        return;
    };
    // Every call that returns consumes at least one 12-byte block or 16-byte record.
    let max_calls = data.len() / 12 + 2;
    for _ in 0..max_calls {
        match reader.next_datagram() {
            Ok(Some(datagram)) => assert!(datagram.payload.len() <= data.len()),
            Ok(None) | Err(_) => return,
        }
    }
    panic!("no end after {max_calls} calls on {} bytes", data.len());
});
