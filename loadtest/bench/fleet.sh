#!/usr/bin/env bash
# Fleet mode: how long a weight change on one replica takes to be in force
# on the others (a real etcd, three release-built serin processes, 50
# changes). Needs etcd and protoc (tests/deps.sh installs them).
#
#   loadtest/bench/fleet.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/deps.sh
cargo build --release --locked -p serin-proxy --features fleet --bin serin
cargo bench --locked -p serin-tests --bench fleet_propagation
