#!/usr/bin/env bash
# Runs the benchmarks against a release build on SQLite and prints one JSON line
# per scenario. Usage: bash bench/run.sh [seconds-per-throughput-run] [flows] [durability]
# durability: normal (the default) or full, handed to the server as AMI_DURABILITY.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
FLOWS=${2:-200}
DURABILITY=${3:-normal}
case "$DURABILITY" in
  normal|full) ;;
  *) echo "durability must be normal or full, not $DURABILITY"; exit 2 ;;
esac
cargo build --release --quiet --bin ami --bin ami-bench
AMI=${CARGO_TARGET_DIR:-target}/release/ami
BENCH=${CARGO_TARGET_DIR:-target}/release/ami-bench
DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
KEY=bench-admin-key
BASE=http://127.0.0.1:$PORT
PID=""
stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=""; }
trap 'stop; rm -rf "$DIR"' EXIT

start() {
  # The webhook scenario delivers to a receiver on loopback, which the SSRF guard refuses
  # unless the operator allowlists it.
  AMI_LISTEN=127.0.0.1:$PORT DATABASE_URL=sqlite://$DIR/ami.db AMI_ADMIN_KEY=$KEY AMI_LOG=warn \
    AMI_WEBHOOK_ALLOW_SUBNETS=127.0.0.0/8 AMI_DURABILITY=$DURABILITY \
    "$AMI" serve 2>>"$DIR/server.log" &
  PID=$!
  for _ in $(seq 1 100); do curl -fs "$BASE/v1/health" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "server did not start"; cat "$DIR/server.log"; exit 1
}

echo "# machine: $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo unknown), durability $DURABILITY"
start
sleep 2
echo "{\"scenario\": \"idle_rss\", \"rss_mb\": $(awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$PID/status)}"
"$BENCH" throughput "$BASE" "$KEY" "$SECS"
"$BENCH" flow "$BASE" "$KEY" "$FLOWS"
"$BENCH" mcp "$BASE" "$KEY" "$FLOWS"
"$BENCH" sms "$BASE" "$KEY" "$SECS" "$DIR/ami.db"
"$BENCH" webhooks "$BASE" "$KEY" "$SECS" "$DIR/ami.db"
stop

"$BENCH" seed "$DIR/ami.db" 100000 1000000 1000000
start
echo "# with 100k MIDs, 1M audit events and 1M messages already stored"
"$BENCH" throughput "$BASE" "$KEY" "$SECS"
"$BENCH" flow "$BASE" "$KEY" "$FLOWS"
"$BENCH" mcp "$BASE" "$KEY" "$FLOWS"
"$BENCH" sms "$BASE" "$KEY" "$SECS" "$DIR/ami.db"
