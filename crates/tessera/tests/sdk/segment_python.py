"""Drives the real `segment-analytics-python` SDK against a running `tessera serve`.

Run by the `sdk_python` integration test (crates/tessera/tests/it/sdk_python.rs) inside a
throwaway virtual environment:

    python segment_python.py HOST WRITE_KEY [cross-device]

HOST is a base URL such as http://127.0.0.1:8080 (the SDK appends /v1/batch). HOST and
WRITE_KEY may also come from TESSERA_HOST and TESSERA_WRITE_KEY.

Two clients are used, to cover both of the SDK's upload paths:

* the module-level API (`segment.analytics.identify(...)`), which queues messages and uploads
  them from a background consumer thread in gzip-compressed batches; it sends identify, track,
  page, screen, group and alias;
* a `Client(..., sync_mode=True)` without gzip, which posts each message at once in a batch of
  one; it sends a track with an explicit historical timestamp.

With `cross-device`, it plays one person on two devices instead, each a synchronous client:
anonymous page views on a phone, where they sign up to a newsletter (an anonymous identify
with their e-mail), then on a laptop a login (identify with userId and the same e-mail). The
test then expects one profile holding both devices' events.

Every message the SDK reports as sent (with the messageId it generated) is printed to stdout as
one JSON document. Any SDK error -- reported through `on_error` by the consumer thread or raised
by the synchronous client -- makes the script exit with status 1; the test relies on that.
"""

import json
import os
import sys
from datetime import datetime, timezone

import segment.analytics as analytics
from segment.analytics import Client

# Values the Rust test asserts on; keep the two files in step.
USER_ID = "py-user-1"
ANONYMOUS_ID = "py-anon-1"
UNICODE_NAME = "Zoë Ångström — 東京 🚀"
EMAIL = "zoe@example.com"
GROUP_ID = "py-group-7"
TRACK_MESSAGE_ID = "py-track-0001"
HISTORICAL = datetime(2021, 3, 4, 5, 6, 7, 890000, tzinfo=timezone.utc)

errors = []


def on_error(error, batch):
    """Called by the SDK's consumer thread when a batch could not be uploaded."""
    errors.append("%s: %s (batch of %d)" % (type(error).__name__, error, len(batch)))


# Values of the cross-device scenario.
CROSS_USER_ID = "py-cross-user"
CROSS_EMAIL = "Cross.Device@Example.com"
PHONE_ANON = "py-phone-anon"
LAPTOP_ANON = "py-laptop-anon"


def cross_device(host, write_key):
    """One person, two devices; prints the messages sent as JSON."""
    sent = []

    def device():
        return Client(write_key, host=host, sync_mode=True, max_retries=0, timeout=10, on_error=on_error)

    phone, laptop = device(), device()
    for path in ["/", "/pricing", "/newsletter"]:
        sent.append(phone.page(anonymous_id=PHONE_ANON, name=path, properties={"path": path})[1])
    sent.append(phone.identify(anonymous_id=PHONE_ANON, traits={"email": CROSS_EMAIL})[1])
    sent.append(laptop.page(anonymous_id=LAPTOP_ANON, name="/login", properties={"path": "/login"})[1])
    sent.append(
        laptop.identify(CROSS_USER_ID, {"email": CROSS_EMAIL, "name": UNICODE_NAME}, anonymous_id=LAPTOP_ANON)[1]
    )
    print(json.dumps({"errors": errors, "sent": sent}, default=str))
    return 1 if errors else 0


def main():
    args = sys.argv[1:]
    if len(args) > 2 and args[2] == "cross-device":
        return cross_device(args[0], args[1])
    host = args[0] if len(args) > 0 else os.environ.get("TESSERA_HOST")
    write_key = args[1] if len(args) > 1 else os.environ.get("TESSERA_WRITE_KEY")
    if not host or not write_key:
        print("usage: segment_python.py HOST WRITE_KEY", file=sys.stderr)
        return 2

    sent = []

    def record(result):
        ok, msg = result
        if not ok:
            errors.append("the SDK refused to queue a %s message" % msg.get("type"))
        sent.append(msg)

    # --- Module-level API: background consumer, gzip, batched. ---------------------------
    analytics.write_key = write_key
    analytics.host = host
    analytics.on_error = on_error
    analytics.gzip = True
    # No silent retries: a failed upload is reported at once and fails the test (a retry of a
    # batch the server did store would also hide duplicate handling behind the count check).
    analytics.max_retries = 0
    analytics.timeout = 10

    record(
        analytics.identify(
            USER_ID,
            {
                "email": EMAIL,
                "name": UNICODE_NAME,
                "plan": "pro",
                "logins": 3,
                "verified": True,
                "createdAt": datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
            },
            context={"campaign": {"name": "spring-launch", "source": "newsletter"}},
        )
    )
    record(
        analytics.track(
            USER_ID,
            "Order Completed",
            {
                "order_id": "o-1001",
                "revenue": 42.5,
                "currency": "EUR",
                "coupon": None,
                "products": [
                    {"sku": "sku-1", "name": UNICODE_NAME, "price": 19.99, "quantity": 2},
                    {"sku": "sku-2", "price": 2.52, "quantity": 1},
                ],
            },
            message_id=TRACK_MESSAGE_ID,
        )
    )
    record(
        analytics.page(
            anonymous_id=ANONYMOUS_ID,
            category="Docs",
            name="Getting Started",
            properties={
                "url": "https://docs.example.com/start?ref=py",
                "path": "/start",
                "title": UNICODE_NAME,
            },
        )
    )
    record(analytics.screen(USER_ID, name="Settings", properties={"tab": "privacy", "depth": 2}))
    record(
        analytics.group(
            USER_ID,
            GROUP_ID,
            {"name": "Acme GmbH — Zürich", "employees": 120, "industry": "Manufacturing"},
        )
    )
    record(analytics.alias(ANONYMOUS_ID, USER_ID))

    # Blocks until the consumer has uploaded (or given up on) everything queued, then stops it.
    analytics.flush()
    analytics.shutdown()

    # --- Client in sync mode: posts at once, no gzip, explicit historical timestamp. -------
    client = Client(write_key, host=host, sync_mode=True, max_retries=0, timeout=10, on_error=on_error)
    try:
        record(
            client.track(
                USER_ID,
                "Legacy Order Imported",
                {"source": "sync-client", "note": UNICODE_NAME},
                timestamp=HISTORICAL,
            )
        )
    except Exception as e:  # APIError on a non-2xx answer, requests' errors on I/O failure
        errors.append("sync client: %s: %s" % (type(e).__name__, e))

    print(
        json.dumps(
            {
                "sdk_version": analytics.VERSION,
                "python": sys.version.split()[0],
                "errors": errors,
                "sent": sent,
            },
            default=str,
        )
    )
    if errors:
        for e in errors:
            print("SDK error: " + e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
