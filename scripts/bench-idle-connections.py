"""The cost of idle connections to everyone else: one keep-alive client POSTs single events
(`herald bench --batch 1 --subscribers 0 --publishers 1 --pipeline 1`) on an empty gateway and again while N idle
WebSockets are open, for each `listen.eventLibrary`, two rounds; also the server's RSS per
idle WebSocket.

Usage: .venv/bin/python scripts/bench-idle-connections.py [N [LIBRARY ...]] (default 10000,
poll libev poll libev; HERALD_BIN defaults to .build/release/herald). Loopback only; the fd
limit is raised to 20,000.
"""
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "e2e"))
os.environ.setdefault("HERALD_BIN", os.path.join(ROOT, ".build/release/herald"))
from support import PUBLISHER_KEY, Herald, default_config, open_websockets  # noqa: E402

resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 10000


def bench(herald):
    out = subprocess.run(
        [os.environ["HERALD_BIN"], "bench", "--url", herald.base, "--key", PUBLISHER_KEY, "--events", "2000", "--batch", "1",
         "--subscribers", "0", "--publishers", "1", "--pipeline", "1", "--json"], capture_output=True, text=True, timeout=300,
        check=True).stdout
    result = json.loads(out)
    return int(result["achieved_rate"]), result["ack_ms"]["p50"]


for library in sys.argv[2:] or ("poll", "libev", "poll", "libev"):
    herald = Herald(default_config(listen={"eventLibrary": library}, limits={"keepAliveSeconds": 600},
                                   delivery={"idleTimeoutSeconds": 3600, "pingSeconds": 1800}))
    try:
        empty = bench(herald)
        before = herald.rss_kb()
        sockets = open_websockets(herald, COUNT, timeout=120)
        time.sleep(1)
        per_connection = (herald.rss_kb() - before) * 1024 / COUNT / 1000
        loaded = bench(herald)
        print(f"{library}: empty {empty[0]} requests/s (ack p50 {empty[1]:.2f} ms); with {COUNT} idle WebSockets "
              f"{loaded[0]} requests/s (ack p50 {loaded[1]:.2f} ms); RSS {per_connection:.1f} KB per WebSocket", flush=True)
        for sock in sockets:
            sock.close()
    finally:
        herald.close()
