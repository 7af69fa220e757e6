# Sourced by the CI scripts that need a running server. Gives a throw-away folder ($work),
# removed on exit with the server, `fail`, `secret`, and `start_server`, which starts the
# binary on a free port with a throw-away SQLite database and waits for GET /v1/health.
# The caller sets `ci_name` (the prefix of its failures) before sourcing.

work="$(mktemp -d)"
server_pid=""

cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "$ci_name: $*" >&2
    exit 1
}

secret() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }

# start_server BIN [NAME=VALUE ...]: the extra variables go to the server's environment.
# Sets $base and $server_pid.
start_server() {
    local bin="$1"
    shift
    local port
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    base="http://127.0.0.1:$port"
    echo "+ $bin serve (AMI_LISTEN=127.0.0.1:$port, DATABASE_URL=sqlite://$work/ami.db)"
    env -u AMI_CONFIG -u AMI_DATABASE_URL \
        AMI_LISTEN="127.0.0.1:$port" DATABASE_URL="sqlite://$work/ami.db" "$@" \
        "$bin" serve >"$work/server.log" 2>&1 &
    server_pid=$!

    local deadline=$((SECONDS + 60))
    until curl -fsS --max-time 2 -o /dev/null "$base/v1/health" 2>/dev/null; do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            cat "$work/server.log" >&2
            server_pid=""
            fail "the server exited before answering GET /v1/health"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 50 "$work/server.log" >&2
            fail "the server did not answer GET /v1/health within 60 s"
        fi
        sleep 0.5
    done
}
