#!/usr/bin/env bash
# Installs the system programs the tests need that this machine lacks
# (Debian packages, through sudo when not root); installs nothing present.
#
# - chromium: the status page's test drives it headless (or SERIN_CHROMIUM).
# - etcd-server: the fleet tests start their own etcd (or SERIN_ETCD).
# - protobuf-compiler: `protoc`, which building fleet mode (etcd-client's
#   gRPC code) needs; the tests build serin with `--features fleet`.
set -euo pipefail

missing=()
if [ -z "${SERIN_CHROMIUM:-}" ] && ! command -v chromium >/dev/null &&
  ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
  missing+=(chromium)
fi
if [ -z "${SERIN_ETCD:-}" ] && ! command -v etcd >/dev/null; then
  missing+=(etcd-server)
fi
if [ -z "${PROTOC:-}" ] && ! command -v protoc >/dev/null; then
  missing+=(protobuf-compiler)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "== installing ${missing[*]} (Debian) for the tests"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
# Debian's etcd-server may start a system etcd on 2379; the tests never use
# it (each starts its own on free ports), and it is left as installed.
for p in "${missing[@]}"; do
  case $p in
    chromium) command -v chromium >/dev/null ;;
    etcd-server) command -v etcd >/dev/null ;;
    protobuf-compiler) command -v protoc >/dev/null ;;
  esac || { echo "$p did not install" >&2; exit 1; }
done
