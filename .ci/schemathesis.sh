#!/usr/bin/env bash
# Contract fuzzing: the OpenAPI document the server publishes must tell the truth about it.
#
# Starts the server (embedded defaults, a throw-away database, a free port), provisions two
# tenants, each with an active mobile identity (.ci/provision.py), and runs Schemathesis with
# every check against GET /openapi.json. Each operation is called with the credential of its
# level (customer key, agent token, operator or telco key, picked per operation from the
# document's security schemes), as tenant one; tenant two's credentials are its peers, so an
# id tenant one made or listed is also requested as tenant two and must not be served.
# Exits non-zero on any failure Schemathesis reports, or when the server does not come up.
#
# Usage, from anywhere:  bash .ci/schemathesis.sh
#   AMI_BIN=path/to/ami   the binary to run (default: the debug build, built if missing)
#   ST_MAX_EXAMPLES=N     test cases per operation and phase (default 25)
#   ST_SEED=N             the generator's seed (default: a fixed one, so CI runs repeat)
# Needs `st` from PyPI: python3 -m pip install 'schemathesis==4.32.5' (see
# docs/contract-testing.md for the pin).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ci_name=schemathesis
# shellcheck source=.ci/server.sh
source .ci/server.sh

# Through the interpreter pip installed it for: its `st` script may not be on PATH.
st() { python3 -m schemathesis.cli "$@"; }
python3 -m schemathesis.cli --version >/dev/null 2>&1 ||
    fail "schemathesis is not installed: python3 -m pip install 'schemathesis==4.32.5'"
pinned=4.32.5
installed="$(python3 -m schemathesis.cli --version 2>&1 | awk '{print $NF}')"
[[ "$installed" == "$pinned" ]] ||
    echo "schemathesis: warning: version $installed, CI pins $pinned (docs/contract-testing.md)" >&2

bin="${AMI_BIN:-${CARGO_TARGET_DIR:-target}/debug/ami}"
if [[ ! -x "$bin" ]]; then
    echo "+ cargo build --bin ami"
    cargo build --bin ami
fi

admin_key="$(secret)"
telco_key="$(secret)"
start_server "$bin" AMI_ADMIN_KEY="$admin_key" AMI_TELCO_INBOUND_KEY="$telco_key"

# one_key, one_mid, one_agent, two_key, two_mid, two_agent
eval "$(python3 .ci/provision.py "$base" "$admin_key")"
echo "provisioned tenants: one ($one_mid), two ($two_mid)"

# The identities, in the Web Fuzzing Commons format. Schemathesis tries them in this order per
# operation and keeps the first one admitted: tenant one's customer key, then its agent token,
# then the operator's (the admin key, with the telco key beside it for /v1/_telco/*).
export AMI_ST_AUTH="$work/auth.json"
python3 - "$AMI_ST_AUTH" <<EOF
import json, sys
bearer = lambda token: [{"name": "Authorization", "value": "Bearer " + token}]
users = [
    ("one", bearer("$one_key")),
    ("one_agent", bearer("$one_agent")),
    ("operator", bearer("$admin_key") + [{"name": "X-Telco-Key", "value": "$telco_key"}]),
    ("two", bearer("$two_key")),
    ("two_agent", bearer("$two_agent")),
]
auth = [{"name": name, "fixedHeaders": headers} for name, headers in users]
json.dump({"auth": auth}, open(sys.argv[1], "w"))
EOF

export AMI_ST_ONE_MID="$one_mid"

# Two passes: the agent's routes first, while tenant one's agent token is sure to hold; then
# every other route, among them the customer's, which may rotate that token or release the
# number.
fuzz() {
    st --config-file .ci/schemathesis.toml run "$base/openapi.json" \
        --checks all \
        --max-examples "${ST_MAX_EXAMPLES:-25}" \
        --seed "${ST_SEED:-20261207}" \
        --workers 1 \
        --report junit --report-dir "${ST_REPORT_DIR:-$work/report}" \
        "$@"
}
status=0
echo "+ pass 1/2: /v1/agent/*"
fuzz --include-path-regex '^/v1/agent/' || status=$?
echo "+ pass 2/2: every other route"
fuzz --exclude-path-regex '^/v1/agent/' || status=$?

if ((status != 0)); then
    echo "schemathesis: failures above; the server's log follows" >&2
    tail -n 40 "$work/server.log" >&2
fi
exit "$status"
