#!/usr/bin/env bash
# The voice benchmark: a release `ami` with call_carrier = "sip" and a trunk at 127.0.0.1,
# SIPp (Debian package sip-tester) calling MIDs whose voice URL is the echo agent inside
# ami-bench. Prints one JSON line per scenario (bench/src/voice.rs).
# Usage: bash bench/voice/run.sh [counts] [window-seconds] [setup-rate] [setup-seconds]
#   counts: concurrent calls per run, comma-separated, 0 for the latency probe alone
#   defaults: "0,50,100,200" 10 100 60; setup-seconds 0 skips the set-up rate
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNTS=${1:-0,50,100,200}
WINDOW=${2:-10}
RATE=${3:-100}
SETUP_SECS=${4:-60}
command -v sipp >/dev/null || { echo "sipp is missing: apt-get install sip-tester"; exit 2; }
cargo build --release --quiet --bin ami --bin ami-bench
AMI=${CARGO_TARGET_DIR:-target}/release/ami
BENCH=${CARGO_TARGET_DIR:-target}/release/ami-bench
DIR=$(mktemp -d)
free_port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
PORT=$(free_port SOCK_STREAM)
SIP_PORT=$(free_port SOCK_DGRAM)
KEY=bench-admin-key
BASE=http://127.0.0.1:$PORT
PID=""
stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=""; }
trap 'stop; rm -rf "$DIR"' EXIT

# The trunk allows INVITEs from 127.0.0.1 (SIPp); its proxy is never called (inbound only).
# The echo agent listens on loopback, which the voice URL's SSRF guard refuses unless the
# operator allowlists it. 1 000 RTP ports: one per call leg.
SIP="{listen_udp = \"127.0.0.1:$SIP_PORT\", listen_tcp = \"\", public_host = \"\", \
rtp_port_first = 20000, rtp_port_last = 21999, codecs = [\"PCMU\", \"PCMA\"], ring_timeout_secs = 20}"
TRUNKS='[{name = "bench", proxy = "127.0.0.1:9", allowed_sources = ["127.0.0.1/32"]}]'
AMI_LISTEN=127.0.0.1:$PORT DATABASE_URL=sqlite://$DIR/ami.db AMI_ADMIN_KEY=$KEY AMI_LOG=warn \
  AMI_WEBHOOK_ALLOW_SUBNETS=127.0.0.0/8 AMI_CALL_CARRIER=sip AMI_SIP="$SIP" AMI_SIP_TRUNKS="$TRUNKS" \
  "$AMI" serve 2>>"$DIR/server.log" &
PID=$!
for _ in $(seq 1 100); do curl -fs "$BASE/v1/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$BASE/v1/health" >/dev/null || { echo "server did not start"; cat "$DIR/server.log"; exit 1; }

echo "# machine: $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1)"
"$BENCH" voice "$BASE" "$KEY" "127.0.0.1:$SIP_PORT" "$PID" bench/voice "$COUNTS" "$WINDOW" "$RATE" "$SETUP_SECS" \
  || { echo "# server log:"; tail -50 "$DIR/server.log"; exit 1; }
