#!/usr/bin/env python3
"""Independent check of one captured AMI webhook delivery.

usage: verify_delivery.py SECRET HEADERS.json BODY.bin [--now UNIX]

Standard Webhooks scheme: checked by the `standardwebhooks` package (PyPI).
Compatible scheme: re-implemented here with Python's `hmac`, key = the secret string's
UTF-8 bytes, message = timestamp + "." + body, two-sided 300 s window.
Exit 0 when both verify, 1 otherwise; 3 when `standardwebhooks` is not installed.
"""
import hashlib
import hmac
import json
import sys
import time

try:
    from standardwebhooks import Webhook, WebhookVerificationError
except ImportError:
    print("standardwebhooks is not installed", file=sys.stderr)
    sys.exit(3)

secret, headers_path, body_path = sys.argv[1:4]
now = int(sys.argv[sys.argv.index("--now") + 1]) if "--now" in sys.argv else int(time.time())
with open(headers_path) as f:
    h = {k.lower(): v for k, v in json.load(f).items()}
with open(body_path, "rb") as f:
    body = f.read()
ok = True

if "--now" in sys.argv:
    # The library reads the clock itself; only the compatible check takes --now.
    print("standard-webhooks: skipped (--now)")
else:
    try:
        Webhook(secret).verify(
            body, {k: h[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        )
        print("standard-webhooks: OK")
    except (WebhookVerificationError, KeyError) as e:
        ok = False
        print("standard-webhooks: FAIL", e)

ts = h.get("x-ami-timestamp", "")
if not ts.isdigit() or abs(now - int(ts)) > 300:
    ok = False
    print("compat: FAIL timestamp missing, malformed or outside +-300 s")
else:
    want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    if hmac.compare_digest(want, h.get("x-ami-signature", "")):
        print("compat: OK")
    else:
        ok = False
        print("compat: FAIL signature mismatch")
sys.exit(0 if ok else 1)
