#!/usr/bin/env bash
# npm run test:valgrind: builds the engine's test binaries (its unit tests and the end-to-end
# engine tests, which start real sender and receiver threads on loopback sockets) and runs
# each under valgrind's memcheck. Any invalid read or write, use of uninitialised memory, bad
# free or definite leak fails the run (--error-exitcode=1).
#
# Valgrind runs a program some 20-50 times slower and one thread at a time, so:
# - the ring stress test runs 200,000 operations instead of its default 2,000,000
#   (UDPCOM_RING_STRESS_OPS; npm run test:stress runs 10,000,000 natively);
# - --fair-sched=yes keeps the spinning producer/consumer threads of the ring tests from
#   starving each other;
# - tests run one at a time (--test-threads=1). The timing-sensitive tests (deadline
#   lateness, stop() within 100 ms, the RT budget) have bounds generous enough to pass under
#   valgrind as they are, so none is skipped.
# Leaks: only definite ones count; the test harness keeps a 48-byte thread handle that valgrind
# calls 'possibly lost'.
# rustix is built with 'use-libc' (engine/Cargo.toml): its raw-syscall backend reads the vDSO in
# a way valgrind cannot follow.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
  echo "valgrind is not installed (Debian: apt-get install valgrind)" >&2
  exit 1
fi

# The test executables cargo builds for the engine crate, one path a line.
mapfile -t binaries < <(
  cargo test -p udpcom-engine --release --no-run --message-format=json 2>/dev/null |
    node -e '
      let input = ""
      process.stdin.on("data", (d) => { input += d })
      process.stdin.on("end", () => {
        for (const line of input.split("\n")) {
          if (!line.startsWith("{")) continue
          const m = JSON.parse(line)
          if (m.reason === "compiler-artifact" && m.profile?.test && m.executable) console.log(m.executable)
        }
      })'
)
if [ "${#binaries[@]}" -eq 0 ]; then
  echo "no test binaries were built" >&2
  exit 1
fi

export UDPCOM_RING_STRESS_OPS="${UDPCOM_RING_STRESS_OPS:-200000}"
status=0
for binary in "${binaries[@]}"; do
  echo "== valgrind memcheck: $(basename "$binary")"
  if ! valgrind --tool=memcheck --error-exitcode=1 --leak-check=full --show-leak-kinds=definite \
    --errors-for-leak-kinds=definite --fair-sched=yes --quiet "$binary" --test-threads=1; then
    status=1
  fi
done
if [ "$status" -eq 0 ]; then
  echo "valgrind memcheck: no errors in ${#binaries[@]} test binaries"
else
  echo "valgrind memcheck: errors found (see above)" >&2
fi
exit "$status"
