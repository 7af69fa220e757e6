#!/usr/bin/env bash
# Brand check: no name from .ci/brand-denylist.txt may appear on a public surface of AMI.
#
# Scans README.md, everything under docs/, and what a freshly started server publishes:
# /openapi.json, /llms.txt, /docs and a signing page. Prints every hit with its source and
# exits 1 on any hit, or when the server does not come up within 60 s. .ci/ itself (and so
# the deny-list) is not scanned.
#
# Usage, from anywhere:  bash .ci/brand-check.sh
# AMI_BIN=path/to/ami reuses that binary instead of `cargo build --release --bin ami`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
denylist=.ci/brand-denylist.txt
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
    echo "brand-check: $*" >&2
    exit 1
}

# The patterns: the deny-list without comments and blank lines.
grep -vE '^[[:space:]]*(#|$)' "$denylist" >"$work/patterns" || true
[[ -s "$work/patterns" ]] || fail "$denylist holds no pattern"

# The release binary.
bin="${AMI_BIN:-}"
if [[ -z "$bin" ]]; then
    echo "+ cargo build --release --bin ami"
    cargo build --release --bin ami
    bin=target/release/ami
fi

# Start it on a free port with a throw-away database and admin key.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
admin_key="$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
echo "+ $bin serve (AMI_LISTEN=127.0.0.1:$port, DATABASE_URL=sqlite://$work/brand.db)"
env -u AMI_CONFIG -u AMI_DATABASE_URL \
    AMI_LISTEN="127.0.0.1:$port" DATABASE_URL="sqlite://$work/brand.db" AMI_ADMIN_KEY="$admin_key" \
    "$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!

deadline=$((SECONDS + 60))
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

# Fetch the public surfaces. The signing page of an unknown contract is a 404 page, still a page.
paths=(/openapi.json /llms.txt /docs "/v1/sign/contract_00000000000000000000000000000000?t=x")
bodies=()
for i in "${!paths[@]}"; do
    path="${paths[$i]}"
    body="$work/surface$i"
    code="$(curl -sS --max-time 10 -o "$body" -w '%{http_code}' "$base$path")" || fail "GET $path failed"
    case "$path" in
        /v1/sign/*) expected='^(200|404)$' ;;
        *) expected='^200$' ;;
    esac
    [[ "$code" =~ $expected && -s "$body" ]] || fail "GET $path answered $code with $(wc -c <"$body") bytes"
    echo "fetched GET $path ($code, $(wc -c <"$body") bytes)"
    bodies+=("$body")
done

# Grep. Exit status 1 of grep means "no hit"; 2 means it could not read something.
hits="$work/hits"
: >"$hits"
files=(README.md)
[[ -d docs ]] && files+=(docs)
rc=0
grep -rIiEn -f "$work/patterns" -- "${files[@]}" >>"$hits" || rc=$?
((rc <= 1)) || fail "cannot read ${files[*]}"
for i in "${!paths[@]}"; do
    # Bodies can be one long line (JSON): print the matched text, not the whole line.
    rc=0
    grep -iEon -f "$work/patterns" -- "${bodies[$i]}" | sed "s|^|GET ${paths[$i]}:|" >>"$hits" || rc=$?
    ((rc <= 1)) || fail "cannot read the body of GET ${paths[$i]}"
done

if [[ -s "$hits" ]]; then
    echo "brand-check: denied brand names found on public surfaces (source:line:text):" >&2
    cat "$hits" >&2
    exit 1
fi
echo "brand-check: clean ($(wc -l <"$work/patterns") patterns; ${files[*]}; ${#paths[@]} server surfaces)"
