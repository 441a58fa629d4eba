#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 30) with libFuzzer, on the
# stable toolchain: the sanitizer-coverage instrumentation cargo-fuzz adds
# is passed here as plain -C flags, so neither nightly nor cargo-fuzz is
# needed (no AddressSanitizer: that one needs nightly's -Zsanitizer; serin
# forbids unsafe code, so the fuzzers look for panics and hangs).
#
#   fuzz/run.sh                 # every target, 30 s each
#   SECONDS_PER_TARGET=600 fuzz/run.sh rule
#
# Corpora grow in fuzz/corpus/<target>/ (seeded from the test fixtures);
# a crash lands in fuzz/artifacts/<target>/ and the script exits 1.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${SECONDS_PER_TARGET:-30}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(routing_file rule headers)

export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros
# (they would need the coverage runtime too), as cargo-fuzz does.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --bins --target "$host"
bin="$CARGO_TARGET_DIR/$host/release"

mkdir -p corpus/routing_file corpus/rule corpus/headers artifacts
cp -n ../config/tests/fixtures/*.toml corpus/routing_file/ 2>/dev/null || true
printf 'error_rate > 5%%' > corpus/rule/seed-1
printf 'p99 > baseline * 1.5' > corpus/rule/seed-2
printf 'breaker_open' > corpus/rule/seed-3
printf 'connection: keep-alive, x-a\nx-a: 1\ntransfer-encoding: chunked\ncontent-length: 5\nx-forwarded-for: 1.2.3.4\n' > corpus/headers/seed-1

status=0
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${seconds}s"
  mkdir -p "artifacts/$t"
  if ! "$bin/$t" "corpus/$t" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1; then
    echo "!! $t found a crash: see fuzz/artifacts/$t/"
    status=1
  fi
done
exit $status
