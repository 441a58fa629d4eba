#!/usr/bin/env bash
# The README's test command: installs what the tests need and this machine
# lacks, then runs every test of the workspace (unit and end-to-end).
#
# - chromium (Debian package): the status page's test drives it headless.
#   Skipped when one is on PATH or SERIN_CHROMIUM names one.
#
# Arguments go to `cargo test` (e.g. `tests/run.sh -p serin-tests ui::`).
set -euo pipefail
cd "$(dirname "$0")/.."

have_chromium() {
  [ -n "${SERIN_CHROMIUM:-}" ] || command -v chromium >/dev/null ||
    command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null
}

if ! have_chromium; then
  echo "== installing chromium (Debian) for the status page's test"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  have_chromium || { echo "chromium did not install" >&2; exit 1; }
fi

exec cargo test --workspace --locked "$@"
