#!/usr/bin/env bash
# The README's test command: installs what the tests need and this machine
# lacks (tests/deps.sh: chromium, etcd, protoc), then runs every test of
# the workspace (unit and end-to-end).
#
# Arguments go to `cargo test` (e.g. `tests/run.sh -p serin-tests ui::`).
set -euo pipefail
cd "$(dirname "$0")/.."
tests/deps.sh
exec cargo test --workspace --locked "$@"
