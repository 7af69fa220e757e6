"""Provisions a fresh AMI server for the contract fuzzer: two tenants, each with an active
mobile identity made through the contracting flow, and prints their credentials as shell
assignments.

Usage: python3 .ci/provision.py BASE_URL ADMIN_KEY
"""

import json
import shlex
import sys
import urllib.request


def call(base, method, path, token, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.load(res)


def tenant(base, admin_key, name):
    account = call(base, "POST", "/v1/admin/customers", admin_key, {"name": name})
    key = account["api_key"]
    created = call(base, "POST", "/v1/sim-requests", key, {})
    sim_request, offer = created["sim_request"]["id"], created["offer"]["id"]
    call(base, "POST", f"/v1/offers/{offer}/accept", key)
    customer = call(
        base,
        "POST",
        f"/v1/sim-requests/{sim_request}/customer-data",
        key,
        {
            "customer": {
                "legal_name": f"{name} S.L.",
                "tax_id": "B00000000",
                "billing_email": "billing@example.com",
                "address": "1 Example Street",
                "representative_name": "Ana Example",
            }
        },
    )["customer"]["id"]
    contract = call(
        base, "POST", "/v1/contracts", key, {"offer_id": offer, "customer_id": customer}
    )["id"]
    call(base, "POST", f"/v1/contracts/{contract}/mock-sign", key)
    mid = call(base, "POST", "/v1/mobile-identities/activate", key, {"contract_id": contract})
    return key, mid["mobile_identity_id"], mid["agent_token"]


def main():
    base, admin_key = sys.argv[1], sys.argv[2]
    for label, name in (("one", "Tenant One"), ("two", "Tenant Two")):
        key, mid, token = tenant(base, admin_key, name)
        print(f"{label}_key={shlex.quote(key)}")
        print(f"{label}_mid={shlex.quote(mid)}")
        print(f"{label}_agent={shlex.quote(token)}")


if __name__ == "__main__":
    main()
