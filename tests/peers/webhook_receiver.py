#!/usr/bin/env python3
"""An independent webhook receiver for the tests (and an example for integrators): checks
facegate's X-Facegate-Signature (HMAC-SHA256 over "<t>.<body>", t within 5 minutes) with the
standard library only, and appends every verified event to a JSON-lines file with the time
it arrived. Any path ending in /gone answers 410 (a receiver that refuses for good); a bad or
missing signature answers 401.

usage: webhook_receiver.py PORT SECRET_FILE OUT_FILE   (listens on 127.0.0.1 only)
"""
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT, SECRET_FILE, OUT = int(sys.argv[1]), sys.argv[2], sys.argv[3]
SECRET = open(SECRET_FILE, "rb").read().strip()
TOLERANCE_SECS = 300


def verify(header, body):
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs(time.time() - t) > TOLERANCE_SECS:
        return False
    expected = hmac.new(SECRET, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path.endswith("/gone"):
            return self.answer(410)
        if not verify(self.headers.get("X-Facegate-Signature", ""), body):
            return self.answer(401)
        doc = json.loads(body)
        record = {
            "received_ms": int(time.time() * 1000),
            "path": self.path,
            "header_id": self.headers.get("X-Facegate-Event-Id"),
            "event": doc,
        }
        with open(OUT, "a") as out:
            out.write(json.dumps(record) + "\n")
        self.answer(200)

    def do_HEAD(self):
        self.answer(405)

    def answer(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
