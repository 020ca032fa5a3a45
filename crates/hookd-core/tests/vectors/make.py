#!/usr/bin/env python3
"""Makes senders.json: requests signed (or, for the robot site manager, checked) by the senders'
own libraries, for hookd's source verification tests.

    python3 -m venv /tmp/vec && /tmp/vec/bin/pip install stripe==16.1.0 slack_sdk==3.48.0 \
        standardwebhooks==1.1.0 bosdyn-orbit==5.2.0 cryptography==50.0.2
    /tmp/vec/bin/python crates/hookd-core/tests/vectors/make.py > crates/hookd-core/tests/vectors/senders.json

Each vector: the scheme, the secret, the body as sent, the headers, and the time (ms) at which
it was made (the tests verify "now" = that time).
"""
import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone

import stripe
import standardwebhooks
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from bosdyn.orbit.utils import validate_webhook_payload
from slack_sdk.signature import SignatureVerifier

now = int(time.time())
vectors = []

# Stripe: the library's own test-header helper, checked by its verifier.
stripe_secret = "whsec_test_5f3c0c1b2a9e4d7f8a6b"
stripe_body = json.dumps({"id": "evt_1Nq", "object": "event", "type": "invoice.paid",
                          "data": {"object": {"id": "in_1Nq", "amount_paid": 4200, "currency": "eur"}}})
stripe_header = stripe.WebhookSignature.generate_signature_header(stripe_body, stripe_secret, timestamp=now)
stripe.WebhookSignature.verify_header(stripe_body, stripe_header, stripe_secret, tolerance=300)
vectors.append({"scheme": "stripe", "secret": stripe_secret, "body": stripe_body,
                "headers": {"Stripe-Signature": stripe_header}, "now_ms": now * 1000})

# Slack: the SDK's signature verifier.
slack_secret = "8f742231b10e8888abcd99yyyzzz85a5"
slack_body = json.dumps({"token": "z26uFbvR1xHJEdHE1OQiO6t8", "team_id": "T061EG9RZ",
                         "event": {"type": "app_mention", "text": "<@U0LAN0Z89> is it everything?"},
                         "type": "event_callback"})
slack = SignatureVerifier(slack_secret)
slack_sig = slack.generate_signature(timestamp=str(now), body=slack_body)
assert slack.is_valid(body=slack_body, timestamp=str(now), signature=slack_sig)
vectors.append({"scheme": "slack", "secret": slack_secret, "body": slack_body,
                "headers": {"X-Slack-Signature": slack_sig, "X-Slack-Request-Timestamp": str(now)},
                "now_ms": now * 1000})

# Standard Webhooks: the reference library signs, and verifies.
sw_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
sw_body = json.dumps({"type": "device.updated", "data": {"device_id": "dev-124", "status": "online"}})
sw_id = "msg_2b8cN1KQ7f"
sw = standardwebhooks.Webhook(sw_secret)
sw_sig = sw.sign(sw_id, datetime.fromtimestamp(now, tz=timezone.utc), sw_body)
sw_headers = {"webhook-id": sw_id, "webhook-timestamp": str(now), "webhook-signature": sw_sig}
sw.verify(sw_body, sw_headers)
vectors.append({"scheme": "standard_webhooks", "secret": sw_secret, "body": sw_body,
                "headers": sw_headers, "now_ms": now * 1000})

# Standard Webhooks v1a (ed25519; the reference library has no v1a, so `cryptography` signs
# the specification's signed content, `{id}.{timestamp}.{body}`, and checks it).
sw_private = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
sw_public = sw_private.public_key()
sw_v1a = base64.b64encode(sw_private.sign(f"{sw_id}.{now}.{sw_body}".encode())).decode()
sw_public.verify(base64.b64decode(sw_v1a), f"{sw_id}.{now}.{sw_body}".encode())
sw_public_key = "whpk_" + base64.b64encode(sw_public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
vectors.append({"scheme": "standard_webhooks", "secret": sw_public_key, "body": sw_body,
                "headers": {"webhook-id": sw_id, "webhook-timestamp": str(now), "webhook-signature": f"v1,bm9wZQ== v1a,{sw_v1a}"},
                "now_ms": now * 1000})

# The robot site manager (bosdyn-orbit): its published validator accepts the signature.
orbit_secret = "5a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
orbit_payload = {"type": "ACTION_COMPLETED", "data": {"runUuid": "c0b1f7b2-4f1e-4b59-9a7e-0f2d8b1c9d3e",
                 "missionName": "Plant 3 gauge round", "actionName": "Read pressure gauge 7",
                 "robotNickname": "spot-07", "results": [{"key": "pressure_bar", "value": 4.2}]}}
orbit_ms = now * 1000
orbit_body = json.dumps(orbit_payload, separators=(",", ":"))
orbit_sig = hmac.new(bytes.fromhex(orbit_secret), f"{orbit_ms}.{orbit_body}".encode(), hashlib.sha256).hexdigest()
orbit_header = f"t={orbit_ms},v1={orbit_sig}"
validate_webhook_payload(orbit_payload, orbit_header, orbit_secret)
vectors.append({"scheme": "orbit", "secret": orbit_secret, "body": orbit_body,
                "headers": {"Orbit-Signature": orbit_header}, "now_ms": orbit_ms})
# The same payload sent with spaces: the validator signs its compact form, so must hookd.
spaced_body = json.dumps(orbit_payload)
validate_webhook_payload(json.loads(spaced_body), orbit_header, orbit_secret)
vectors.append({"scheme": "orbit", "secret": orbit_secret, "body": spaced_body,
                "headers": {"Orbit-Signature": orbit_header}, "now_ms": orbit_ms})

# GitHub: the example in GitHub's documentation ("Validating webhook deliveries").
vectors.append({"scheme": "github", "secret": "It's a Secret to Everybody", "body": "Hello, World!",
                "headers": {"X-Hub-Signature-256":
                            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                            "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
                "now_ms": now * 1000})

# Shopify: base64 HMAC-SHA256 of the raw body, as its documentation computes it.
shopify_secret = "shpss_6f1d2c3b4a5e"
shopify_body = json.dumps({"id": 820982911946154508, "email": "jon@example.com", "total_price": "403.00"})
shopify_sig = base64.b64encode(hmac.new(shopify_secret.encode(), shopify_body.encode(), hashlib.sha256).digest()).decode()
vectors.append({"scheme": "shopify", "secret": shopify_secret, "body": shopify_body,
                "headers": {"X-Shopify-Hmac-Sha256": shopify_sig, "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"},
                "now_ms": now * 1000})

print(json.dumps(vectors, indent=2, ensure_ascii=False))
