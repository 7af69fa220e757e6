#!/usr/bin/env bash
# SMPP comparison: Kannel (bearerbox + smsbox, Debian's package) and AMI with carrier=smpp,
# each in turn against the same local SMSC simulator, with a submit window of 10 and of 50.
# Load goes in over each system's HTTP interface (smsbox's /cgi-bin/sendsms, AMI's
# /v1/agent/sms/send) from 8 concurrent clients for N seconds; what is counted is the
# submit_sm that reached the simulator, over the time from the first request until the
# system had handed everything it accepted to the SMSC. One JSON line per system and window;
# for AMI also the time from the API's 201 to the hand-off (p50/p99), and, as `ratio`, the
# send path's send/health benchmark with carrier = smpp.
#
# Usage: bash bench/smpp/run.sh [seconds] [windows] [systems]
#   defaults: 10, "10 50", "kannel ami ratio"
# SMSC_RTT_MS (default 0) holds each submit_sm_resp back that long at the simulator, as a
# network's round trip would: what makes the window matter.
# SMSC_SIM overrides the simulator command (it must print its port or address as its first
# line and a JSON line with a submit count on exit); by default ami-smsc-sim when this
# workspace builds it, else the npm SMSC of the tests (crates/server/tests/peers).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
WINDOWS=${2:-"10 50"}
SYSTEMS=${3:-"kannel ami ratio"}
CLIENTS=8
DRAIN_SECS=180
KEY=bench-admin-key
TARGET=${CARGO_TARGET_DIR:-target}
source bench/smpp/kannel.conf.sh

if [[ " $SYSTEMS " == *" kannel "* ]] && ! command -v bearerbox >/dev/null; then
    echo "# installing Debian's kannel" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kannel >&2
fi
if [[ " $SYSTEMS " == *" ami "* ]]; then
    cargo build --release --quiet --bin ami --bin ami-bench
else
    cargo build --release --quiet --bin ami-bench
fi
if [ -z "${SMSC_SIM:-}" ]; then
    if cargo build --release --quiet --bin ami-smsc-sim 2>/dev/null; then
        SMSC_SIM="$TARGET/release/ami-smsc-sim --system-id ami --password secret --response-delay-ms ${SMSC_RTT_MS:-0}"
    else
        [ -d crates/server/tests/peers/node_modules ] || npm ci --prefix crates/server/tests/peers --no-audit --no-fund >&2
        SMSC_SIM="node crates/server/tests/peers/smsc.js --quiet"
    fi
fi
AMI=$TARGET/release/ami
BENCH=$TARGET/release/ami-bench
DIR=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() { # url what
    for _ in $(seq 300); do curl -fs -o /dev/null "$1" && return; sleep 0.1; done
    echo "$2 did not start; logs in $DIR" >&2
    tail -20 "$DIR"/*.log >&2 || true
    exit 1
}

# The simulator, its stdin held open on a fifo (the npm SMSC ends with its stdin).
sim_start() {
    rm -f "$DIR/sim.in" "$DIR/sim.out"
    mkfifo "$DIR/sim.in"
    $SMSC_SIM <"$DIR/sim.in" >"$DIR/sim.out" 2>"$DIR/sim.log" &
    SIM_PID=$!
    PIDS+=("$SIM_PID")
    exec {SIM_IN}>"$DIR/sim.in"
    for _ in $(seq 300); do [ -s "$DIR/sim.out" ] && break; sleep 0.1; done
    # {"port": N} or an address such as 127.0.0.1:N
    SIM_PORT=$(head -1 "$DIR/sim.out" | python3 -c '
import json, re, sys
line = sys.stdin.read()
try:
    print(json.loads(line)["port"])
except Exception:
    print(re.findall(r":(\d+)", line)[-1])')
}

# Stops the simulator; SIM_COUNTERS: its last counters line (JSON).
sim_stop() {
    kill -TERM "$SIM_PID"
    wait "$SIM_PID" || true
    exec {SIM_IN}>&-
    SIM_COUNTERS=$(python3 - "$DIR/sim.out" <<'EOF'
import json, sys
last = None
for line in open(sys.argv[1]):
    try:
        v = json.loads(line)
    except ValueError:
        continue
    if isinstance(v, dict) and any(k in v for k in ("submits", "submit_sm")):
        last = v
print(json.dumps(last))
EOF
    )
}

stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# A JSON line from the load generator's report and the simulator's counters.
report() { # system window load-json smsc-counters-json
    python3 - "$@" <<'EOF'
import json, sys
system, window, load, smsc = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
at_smsc = None if smsc is None else smsc.get("submits", smsc.get("submit_sm"))
elapsed = load["handed_off_after_s"]
print(json.dumps({
    "system": system, "window": window, "clients": load["clients"], "seconds": load["seconds"],
    "http_accepted": load["accepted"], "submit_sm_at_smsc": at_smsc,
    "until_all_handed_off_s": elapsed,
    "smsc_msgs_per_sec": None if at_smsc is None else round(at_smsc / elapsed),
    "load": load, "smsc": smsc,
}))
EOF
}

run_kannel() { # window
    local window=$1 admin smsbox sendsms bb sb out
    sim_start
    admin=$(free_port) smsbox=$(free_port) sendsms=$(free_port)
    rm -rf "$DIR/kannel" && mkdir -p "$DIR/kannel"
    kannel_conf "$DIR/kannel" "$SIM_PORT" "$window" "$admin" "$smsbox" "$sendsms" >"$DIR/kannel/kannel.conf"
    bearerbox -v 4 "$DIR/kannel/kannel.conf" >"$DIR/bearerbox.log" 2>&1 &
    bb=$!
    PIDS+=("$bb")
    wait_http "http://127.0.0.1:$admin/status.txt?password=bench" bearerbox
    smsbox -v 4 "$DIR/kannel/kannel.conf" >"$DIR/smsbox.log" 2>&1 &
    sb=$!
    PIDS+=("$sb")
    for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$sendsms/" && break; sleep 0.1; done
    out=$("$BENCH" sendsms \
        "http://127.0.0.1:$sendsms/cgi-bin/sendsms?username=bench&password=bench&from=34600000001&text=benchmark+message&dlr-mask=1&to=" \
        "$SECS" "$CLIENTS" "http://127.0.0.1:$admin/status.txt?password=bench" "$DRAIN_SECS")
    stop_pid "$sb"
    stop_pid "$bb"
    sim_stop
    report "kannel $(dpkg-query -W -f '${Version}' kannel 2>/dev/null || echo '?')" "$window" "$out" "$SIM_COUNTERS"
}

# A fresh simulator and `ami serve` on a fresh SQLite file sending to it over SMPP with
# the given window; AMI_BASE and AMI_PID name the server.
ami_start() { # window
    local port
    sim_start
    port=$(free_port)
    rm -f "$DIR"/ami.db*
    AMI_LISTEN=127.0.0.1:$port DATABASE_URL=sqlite://$DIR/ami.db AMI_ADMIN_KEY=$KEY AMI_LOG=warn \
        AMI_CARRIER=smpp \
        AMI_SMPP="[{name = \"sim\", host = \"127.0.0.1\", port = $SIM_PORT, system_id = \"ami\", password = \"secret\", window = $1}]" \
        "$AMI" serve 2>>"$DIR/ami.log" &
    AMI_PID=$!
    PIDS+=("$AMI_PID")
    AMI_BASE=http://127.0.0.1:$port
    wait_http "$AMI_BASE/v1/health" ami
}

# From the database of a finished run: how long accepted messages took from the API's 201 to
# the hand-off's commit, which follows their submit_sm_resp.
ami_latency() { # database
    python3 - "$1" <<'EOF'
import json, sqlite3, sys
rows = [r[0] for r in sqlite3.connect(sys.argv[1]).execute(
    "SELECT handed_at - created_at FROM messages"
    " WHERE direction = 'outbound' AND handed_at IS NOT NULL ORDER BY 1")]
pick = lambda q: rows[min(len(rows) - 1, int(q * len(rows)))] if rows else None
print(json.dumps({"handed_off": len(rows), "p50_ms": pick(0.50), "p99_ms": pick(0.99)}))
EOF
}

# The send path's own benchmark (`ami-bench sms`: sends against /v1/health, taking turns)
# with the SMS going over SMPP to the simulator, for the send/health ratio.
run_ratio() { # window
    local window=$1
    ami_start "$window"
    echo "# send/health with carrier = smpp, window $window"
    "$BENCH" sms "$AMI_BASE" "$KEY" "$SECS" "$DIR/ami.db"
    stop_pid "$AMI_PID"
    sim_stop
}

run_ami() { # window
    local window=$1 out
    ami_start "$window"
    out=$("$BENCH" sms-steady "$AMI_BASE" "$KEY" "$SECS" "$DIR/ami.db" "$DRAIN_SECS")
    stop_pid "$AMI_PID"
    sim_stop
    report "ami $(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$window" "$out" "$SIM_COUNTERS"
    echo "{\"system\": \"ami\", \"window\": $window, \"api_201_to_hand_off\": $(ami_latency "$DIR/ami.db")}"
}

echo "# machine: $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo unknown), simulator: $SMSC_SIM, $SECS s per run"
for window in $WINDOWS; do
    for system in $SYSTEMS; do
        "run_$system" "$window"
    done
done
