"""The server's memory per idle streaming connection: N connections of one kind are opened
at once on a fresh gateway and its RSS is read before and after (no keepalive is due while
they are open).

Kinds:
  ws       WebSockets, open and silent
  ws-sub   WebSockets, each with one subscription of its own ({"type":["bench"],"g":[i]})
  sse      SSE streams, each with a filter of its own (an SSE stream always subscribes)
  sse-route SSE streams of one shared route (`?route=chat`)
  tcp      TCP connections that never send a byte (lws and the `Connection` alone)

Usage: .venv/bin/python scripts/bench-idle-memory.py [N] [kind ...] (default 10000, every
kind; HERALD_BIN defaults to .build/release/herald; BENCH_HEAP=1 adds malloc's count of
bytes in use, read through gdb). Loopback only; the fd limit is raised
to 20,000; every phase is bounded in time.
"""
import json
import os
import re
import subprocess
import resource
import selectors
import socket
import struct
import sys
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "e2e"))
os.environ.setdefault("HERALD_BIN", os.path.join(ROOT, ".build/release/herald"))
from support import Herald, default_config  # noqa: E402

resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
# BENCH_HEAP=1 also reads malloc's bytes in use through gdb (attaching pauses the gateway).
HEAP = os.environ.get("BENCH_HEAP") == "1"
KINDS = sys.argv[2:] or ["tcp", "ws", "ws-sub", "sse", "sse-route"]

WS_REQUEST = (b"GET /v1/ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def masked_text(payload):
    """One masked client text frame (the payloads here are short)."""
    assert len(payload) < 126
    key = os.urandom(4)
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def sse_request(i, kind):
    if kind == "sse-route":
        query = "route=chat"
    else:
        query = "filter=" + urllib.parse.quote(json.dumps({"type": ["bench"], "g": [i]}, separators=(",", ":")))
    return f"GET /v1/sse?{query} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


def open_connections(herald, kind, count, timeout=180.0):
    """Opens `count` connections of `kind` at once (non-blocking); returns their sockets
    once each is where an idle client of that kind stays."""
    selector = selectors.DefaultSelector()
    state = {}
    opened = []
    deadline = time.time() + timeout
    for i in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", herald.port))
        if kind == "tcp":
            opened.append(sock)
            continue
        selector.register(sock, selectors.EVENT_WRITE)
        state[sock] = [i, b"", "connecting"]
    while state:
        if time.time() > deadline:
            raise TimeoutError(f"{len(state)} of {count} {kind} connections did not open")
        for key, events in selector.select(timeout=1):
            sock = key.fileobj
            entry = state[sock]
            if events & selectors.EVENT_WRITE:
                sock.send(WS_REQUEST if kind.startswith("ws") else sse_request(entry[0], kind))
                entry[2] = "head"
                selector.modify(sock, selectors.EVENT_READ)
                continue
            data = sock.recv(4096)
            if not data:
                raise EOFError(f"a {kind} connection was closed: {entry[1][:200]!r}")
            entry[1] += data
            if entry[2] == "head" and b"\r\n\r\n" in entry[1]:
                status = b"HTTP/1.1 101" if kind.startswith("ws") else b"HTTP/1.1 200"
                assert entry[1].startswith(status), entry[1][:200]
                if kind == "ws-sub":
                    filt = {"type": ["bench"], "g": [entry[0]]}
                    sock.send(masked_text(json.dumps({"op": "subscribe", "id": "s", "filter": filt}).encode()))
                    entry[1] = b""
                    entry[2] = "subscribing"
                    continue
                entry[2] = "done"
            if entry[2] == "subscribing" and b"subscribed" in entry[1]:
                entry[2] = "done"
            if entry[2] == "done":
                selector.unregister(sock)
                del state[sock]
                opened.append(sock)
    selector.close()
    return opened


def heap_in_use(herald):
    """glibc's bytes in use (all arenas, chunk headers included), asked of the process
    through gdb (`malloc_stats` prints to its stderr, the gateway's log); None without gdb."""
    mark = len(herald.log_text())
    try:
        subprocess.run(["gdb", "-p", str(herald.process.pid), "-batch", "-ex", "call (void)malloc_stats()"],
                       capture_output=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    time.sleep(0.2)
    found = re.findall(r"Total \(incl. mmap\):\s*system bytes\s*=\s*\d+\s*in use bytes\s*=\s*(\d+)", herald.log_text()[mark:])
    return int(found[-1]) if found else None


def measure(kind):
    herald = Herald(default_config(limits={"keepAliveSeconds": 3600},
                                   delivery={"idleTimeoutSeconds": 3600, "pingSeconds": 1800, "heartbeatSeconds": 1800}))
    try:
        # Warm the allocator and the loop a little, as a running gateway would be.
        warm = open_connections(herald, kind, 200)
        time.sleep(1.5)
        heap_before = heap_in_use(herald) if HEAP else None
        before = herald.rss_kb()
        sockets = open_connections(herald, kind, COUNT)
        time.sleep(2.5)  # a tick or two, so per-tick work has run
        after = herald.rss_kb()
        per = (after - before) * 1024 / COUNT
        heap = ""
        if heap_before is not None:
            heap_after = heap_in_use(herald)
            if heap_after is not None:
                heap = f"; malloc'd {(heap_after - heap_before) / COUNT:.0f} B per connection"
        print(f"{kind}: {COUNT} idle connections: RSS {before} -> {after} KiB, "
              f"{per:.0f} B ({per / 1000:.2f} KB) per connection{heap}", flush=True)
        for sock in sockets + warm:
            sock.close()
        return per
    finally:
        herald.close()


for kind in KINDS:
    measure(kind)
