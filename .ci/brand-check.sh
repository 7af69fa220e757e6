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
ci_name=brand-check
# shellcheck source=.ci/server.sh
source .ci/server.sh

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

# Start it with a throw-away database and admin key.
admin_key="$(secret)"
start_server "$bin" AMI_ADMIN_KEY="$admin_key"

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
