#!/usr/bin/env python3
"""CloudEvents over HTTP, second opinion: the official CloudEvents SDK for
Python builds events, riverlog stores them, the SDK parses them back.

Each event is built with the SDK (`cloudevents.core`, pinned below) and
published to a fresh debug server the way the SDK writes it: structured
mode (`to_structured`), binary mode (`to_binary`) and batched mode (a JSON
array of the SDK's structured bodies: the SDK has no batch writer). The
stream is then read back with `Accept: application/cloudevents-batch+json`
and every element parsed with the SDK's `from_http`; all attributes and the
data must equal what was sent, apart from the attributes the log adds
(`rlstream`, `rlsequence`, `rlposition`, `rlrecordedtime`).

What binary mode cannot carry is left out of its cases, by the binding's
design or the SDK's: header values are strings (an Integer extension comes
back as its string), and this SDK writes a `str` with a JSON content type
unquoted (`123`, the JSON number, instead of `"123"`), so the JSON string
case runs in structured mode, where the SDK writes it as the spec says.

The SDK is installed into tools/venv-cloudevents on first use (PyPI).
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SDK = "cloudevents==2.2.0"
VENV = os.path.join(ROOT, "tools", "venv-cloudevents")
LOG_ATTRIBUTES = {"rlstream", "rlsequence", "rlposition", "rlrecordedtime"}
BATCH = "application/cloudevents-batch+json"


def in_venv():
    """Re-runs this script with the pinned SDK, installing it if needed."""
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    installed = subprocess.run([python, "-m", "pip", "freeze"], capture_output=True, text=True)
    if SDK not in installed.stdout.split():
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        SDK], check=True)
    os.execv(python, [python, os.path.abspath(__file__)])


def cases():
    """(name, mode, SDK event); ids are unique across the run."""
    from cloudevents.core.v1.event import CloudEvent

    when = datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=timezone.utc)

    def event(id_, data=None, **attributes):
        return CloudEvent({"id": id_, "source": "/sdk", "type": "com.example.sdk",
                           "time": when, **attributes}, data)

    return [
        ("json string data stays a string", "structured",
         event("s1", "123", datacontenttype="application/json")),
        ("json number data", "structured", event("s2", 123, datacontenttype="application/json")),
        ("json object, no datacontenttype", "structured", event("s3", {"a": [1, "two", None]})),
        ("json list, +json type", "structured",
         event("s4", [1, {"b": True}], datacontenttype="application/vnd.example+json")),
        ("text that looks like JSON", "structured",
         event("s5", "{not json}", datacontenttype="text/plain")),
        ("binary data", "structured", event("s6", b"\x00\x01\xfe\xff", datacontenttype="image/png")),
        ("extension types and subject", "structured",
         event("s7", {"n": 1}, subject="caf\u00e9 \"au\" lait 100%", flag=True, count=-7,
               label="x", dataschema="https://example.com/schema")),
        ("no data", "structured", event("s8")),
        ("big integer keeps every digit", "structured",
         event("s9", {"big": 123456789012345678901234567890}, datacontenttype="application/json")),
        ("binary: json object", "binary", event("b1", {"a": 1}, datacontenttype="application/json")),
        ("binary: text", "binary", event("b2", "hello world", datacontenttype="text/plain")),
        ("binary: bytes", "binary",
         event("b3", b"\x00\xff", datacontenttype="application/octet-stream")),
        ("binary: percent-encoded headers", "binary",
         event("b4", "x", datacontenttype="text/plain", subject="Euro \u20ac \U0001F600",
               label="a\"b%c d")),
        ("batch: json string", "batch", event("t1", "123", datacontenttype="application/json")),
        ("batch: binary", "batch", event("t2", b"\x01\x02")),
        ("batch: text", "batch", event("t3", "plain", datacontenttype="text/plain")),
    ]


def post(url, headers, body):
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request) as response:
        if response.status != 201:
            raise SystemExit(f"publish answered {response.status}")


def main():
    in_venv()
    from cloudevents.core.bindings.http import HTTPMessage, from_http, to_binary, to_structured
    from cloudevents.core.formats.json import JSONFormat

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from check_walkthrough import start_server

    fmt = JSONFormat()
    sent = cases()
    failures = []
    with tempfile.TemporaryDirectory() as data_dir:
        server, _, http_addr = start_server(data_dir)
        url = f"http://{http_addr}/api/v1/streams/sdk/events"
        try:
            batch = []
            for _, mode, event in sent:
                if mode == "batch":
                    batch.append(json.loads(to_structured(event, fmt).body))
                    continue
                message = (to_structured if mode == "structured" else to_binary)(event, fmt)
                post(url, message.headers, message.body)
            post(url, {"content-type": BATCH}, json.dumps(batch).encode())

            request = urllib.request.Request(f"{url}?limit=1000", headers={"accept": BATCH})
            with urllib.request.urlopen(request) as response:
                content_type = response.headers["content-type"]
                if content_type != BATCH:
                    failures.append(f"read answered {content_type}, not {BATCH}")
                back = json.loads(response.read())
        finally:
            server.terminate()
            server.wait(timeout=30)

    # Events in the order published: structured and binary ones, then the batch.
    order = [c for c in sent if c[1] != "batch"] + [c for c in sent if c[1] == "batch"]
    if len(back) != len(order):
        failures.append(f"{len(back)} events read back, {len(order)} sent")
    for (name, mode, event), element in zip(order, back):
        missing = LOG_ATTRIBUTES - element.keys()
        parsed = from_http(HTTPMessage({"content-type": "application/cloudevents+json"},
                                       json.dumps(element).encode()), fmt)
        attributes = {k: v for k, v in parsed.get_attributes().items() if k not in LOG_ATTRIBUTES}
        problems = []
        if missing:
            problems.append(f"log attributes missing: {sorted(missing)}")
        if attributes != event.get_attributes():
            problems.append(f"attributes {attributes} != sent {event.get_attributes()}")
        data, expected = parsed.get_data(), event.get_data()
        if data != expected or type(data) is not type(expected):
            problems.append(f"data {data!r} != sent {expected!r}")
        if problems:
            failures.append(f"{name} ({mode}): " + "; ".join(problems) + f"\n  read: {element}")
        else:
            print(f"cloudevents sdk ok: {name} ({mode})")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        raise SystemExit(f"cloudevents sdk: {len(failures)} case(s) differ")
    print(f"cloudevents sdk: all {len(order)} events read back as the SDK sent them")


if __name__ == "__main__":
    main()
