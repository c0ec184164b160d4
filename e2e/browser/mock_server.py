"""A stand-in for `herald serve` while working on the dashboard: serves public/ and a fake
/v1/stats (and /v1/clients) whose figures move over time. Not used by the tests, which run
against the real gateway.

    python3 e2e/browser/mock_server.py [--port 18556] [--admin-key admin-test-key]

then open http://127.0.0.1:18556/dashboard.html. GET /mock/down?seconds=5 makes /v1/stats
fail for a while, to see the disconnected state.
"""

import argparse
import json
import math
import random
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

PUBLIC = Path(__file__).resolve().parents[2] / "public"
STARTED = time.monotonic()
STATE = {"accepted": 0, "ws": 0, "sse": 0, "overflow": 0, "last": time.monotonic(), "down_until": 0.0}


def rates(t, scale):
    events = max(0.0, 40 + 30 * math.sin(t / 9) + random.uniform(-5, 5)) * scale
    return {
        "events_in": round(events, 1),
        "deliveries": round(events * 3.2, 1),
        "drops": round(max(0.0, 4 * math.sin(t / 23)) * scale, 1),
        "latency_p50_ms": round(0.3 + 0.1 * math.sin(t / 5), 3),
        "latency_p99_ms": round(2 + 1.5 * math.sin(t / 7) + random.uniform(0, 0.5), 3),
    }


def stats():
    now = time.monotonic()
    t = now - STARTED
    r1 = rates(t, 1.0)
    elapsed = now - STATE["last"]
    STATE["last"] = now
    STATE["accepted"] += int(r1["events_in"] * elapsed)
    STATE["ws"] += int(r1["deliveries"] * 0.8 * elapsed)
    STATE["sse"] += int(r1["deliveries"] * 0.2 * elapsed)
    STATE["overflow"] += int(r1["drops"] * elapsed)
    return {
        "uptime_s": round(t, 1),
        "events": {"accepted": STATE["accepted"], "duplicate": 2, "rejected": 1},
        "deliveries": {"ws": STATE["ws"], "sse": STATE["sse"]},
        "dropped": {"overflow": STATE["overflow"], "coalesced": 0, "disconnect": 0},
        "connections": {"ws": 3 + int(2 * math.sin(t / 15)), "sse": 1},
        "subscriptions": 7,
        "history": {"events": STATE["accepted"], "bytes": STATE["accepted"] * 750},
        "queued_bytes": 2048,
        "queue_depth": {"p50": 0, "p99": 3 + int(3 * math.sin(t / 11)), "max": 12 + int(8 * math.sin(t / 13))},
        "rates": {"1s": r1, "10s": rates(t, 0.95), "60s": rates(t, 0.9)},
        "routes": {
            "chat": {"matched": STATE["accepted"] // 2, "delivered": STATE["ws"] // 2, "dropped": 0},
            "alerts": {"matched": STATE["accepted"] // 5, "delivered": STATE["sse"], "dropped": 0},
            "": {"matched": STATE["accepted"] // 4, "delivered": STATE["ws"] // 3, "dropped": STATE["overflow"]},
        },
    }


def clients():
    t = time.monotonic() - STARTED
    rows = []
    for i in range(1, 26):
        rows.append({
            "id": i, "transport": "ws" if i % 4 else "sse", "remote": f"10.0.0.{i}",
            "user": None if i % 3 else f"user-{i}",
            "subscriptions": [{"id": "s1", "route": "chat"}] if i % 2 else
                             [{"id": "s1", "filter": {"type": ["chat.message"], "room": ["lobby"]}},
                              {"id": "s2", "route": "alerts"}],
            "queue_depth": (i * 7) % 11, "queue_bytes": ((i * 7) % 11) * 300,
            "sent": int(t * i), "dropped": 0 if i % 5 else i, "connected_s": round(t + i, 1),
        })
    return {"total": len(rows), "clients": rows}


class Handler(SimpleHTTPRequestHandler):
    admin_key = "admin-test-key"

    def log_message(self, *args):
        pass

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("cache-control", "no-store")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/v1/stats":
            if time.monotonic() < STATE["down_until"]:
                return self.send_json(503, {"error": {"code": "shutting_down", "message": "mock outage"}})
            return self.send_json(200, stats())
        if url.path == "/v1/clients":
            if self.headers.get("authorization") != f"Bearer {self.admin_key}":
                return self.send_json(401, {"error": {"code": "unauthorized", "message": "an admin key is required"}})
            return self.send_json(200, clients())
        if url.path == "/mock/down":
            seconds = float(parse_qs(url.query).get("seconds", ["5"])[0])
            STATE["down_until"] = time.monotonic() + seconds
            return self.send_json(200, {"down_for": seconds})
        return super().do_GET()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18556)
    parser.add_argument("--admin-key", default="admin-test-key")
    args = parser.parse_args()
    Handler.admin_key = args.admin_key
    server = ThreadingHTTPServer(("127.0.0.1", args.port), partial(Handler, directory=str(PUBLIC)))
    print(f"mock gateway on http://127.0.0.1:{server.server_address[1]}/dashboard.html", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
