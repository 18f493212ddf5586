#!/usr/bin/env bash
# Fuzzes the pcap/pcapng reader (engine/fuzz, target pcap_reader) for SECONDS (default 600),
# starting from the seed files of the hostile-input tests. A crash, hang (10 s) or allocation
# over 64 MiB stops it and leaves the input in engine/fuzz/artifacts/pcap_reader/; add it to
# engine/src/pcap/hostile_tests.rs as a regression test.
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail

seconds="${1:-600}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz-pcap: cargo-fuzz or the nightly toolchain is missing (cargo install cargo-fuzz)" >&2
    exit 1
fi

corpus="$root/engine/fuzz/corpus/pcap_reader"
mkdir -p "$corpus"
(cd "$root" && UDPCOM_PCAP_SEED_DIR="$corpus" cargo test -q -p udpcom-engine --lib \
    pcap::hostile_tests::write_fuzz_seeds -- --ignored --exact >/dev/null)

cd "$root/engine"
exec cargo +nightly fuzz run pcap_reader "$corpus" -- \
    -max_total_time="$seconds" -timeout=10 -malloc_limit_mb=64 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1
