"""What subscribers are told and what is measured: replays apart from live latency, gaps
only where events may really be missing, queue bytes counted once.

Before: opening the chat (a history replay) put 5,000 ms into the delivery latency p50 and
p99; every user joining any room after history wrapped saw an "events could not be
delivered" gap; 5 × 200 KB queued events were reported as 2,000,767 bytes.
"""
import json
import time

from support import ADMIN_KEY, PUBLISHER_KEY, ResponseReader, ws_connect


def events_of(ws, count, timeout=5):
    out = []
    while len(out) < count:
        message = ws.receive_json(timeout)
        if message["type"] in ("event", "gap"):
            out.append(message)
    return out


def test_replays_are_counted_apart_from_live_latency(herald):
    for n in range(5):
        assert herald.publish(json.dumps({"type": "chat.message", "n": n})).status == 202
    time.sleep(1.2)  # old enough that a replay's age would dominate the histogram
    ws, _ = ws_connect(herald)
    ws.send_json({"op": "subscribe", "id": "room", "filter": {"type": ["chat.message"]}, "since": 0})
    assert [e["seq"] for e in events_of(ws, 5)] == [1, 2, 3, 4, 5]
    assert herald.metric("herald_replayed_total", transport="ws") == 5
    assert herald.metric("herald_deliveries_total", transport="ws") == 0
    assert herald.metric("herald_delivery_latency_seconds_count") == 0, "a replay is not a live delivery"
    assert herald.publish(json.dumps({"type": "chat.message", "n": 5})).status == 202
    assert events_of(ws, 1)[0]["seq"] == 6
    assert herald.metric("herald_delivery_latency_seconds_count") == 1
    assert herald.metric("herald_delivery_latency_seconds_bucket", le="0.1") == 1, "the live one was fast"
    assert herald.stats()["replayed"]["ws"] == 5
    ws.close()


def test_since_zero_after_history_wrapped_has_no_gap(make_herald):
    herald = make_herald(history={"maxEvents": 5})
    for n in range(20):
        assert herald.publish(json.dumps({"type": "chat.message", "room": "busy", "n": n})).status == 202
    ws, _ = ws_connect(herald)
    ws.send_json({"op": "subscribe", "id": "quiet", "filter": {"room": ["empty"]}, "since": 0})
    ws.send_json({"op": "subscribe", "id": "busy", "filter": {"room": ["busy"]}, "since": 0})
    ws.send_json({"op": "ping"})
    seen = []
    while True:
        message = ws.receive_json()
        if message["type"] == "pong":
            break
        seen.append(message)
    assert [m["type"] for m in seen] == ["subscribed", "subscribed"] + ["event"] * 5, seen
    assert [m["seq"] for m in seen if m["type"] == "event"] == [16, 17, 18, 19, 20]
    # A position that history no longer reaches is a gap: those events may have mattered.
    ws.send_json({"op": "subscribe", "id": "back", "filter": {"room": ["busy"]}, "since": 3})
    assert ws.receive_json()["type"] == "subscribed"
    gap = ws.receive_json()
    assert gap == {"type": "gap", "subs": ["back"], "from": 4, "to": 15, "reason": "expired", "epoch": herald.stats()["events"]["epoch"]}
    ws.close()
    sock = herald.connect()
    sock.sendall(b"GET /v1/sse?filter=%7B%7D HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 0\r\n\r\n")
    reader = ResponseReader(sock, timeout=2)
    assert reader.read(head_only=True).status == 200
    deadline = time.time() + 1
    while time.time() < deadline and reader.buffer.count(b"\n\n") < 5:
        reader.fill(deadline)
    assert b"herald.gap" not in reader.buffer and reader.buffer.count(b"\nevent: chat.message\n") == 5
    sock.close()


def test_queued_bytes_count_each_message_once(make_herald):
    herald = make_herald(delivery={"queue": {"maxMessages": 1000, "maxBytes": 32 << 20, "policy": "drop-oldest"}})
    # A subscriber that reads nothing, with a small receive buffer: once the kernel's
    # buffers are full, events pile up in its queue.
    ws, _ = ws_connect(herald, receive_buffer=4096)
    ws.send_json({"op": "subscribe", "id": "big", "filter": {"type": ["big"]}})
    assert ws.receive_json()["type"] == "subscribed"
    payload = "x" * 200_000
    for n in range(60):
        assert herald.publish(json.dumps({"type": "big", "n": n, "payload": payload})).status == 202
    time.sleep(0.3)
    clients = json.loads(herald.get("/v1/clients", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).body)["clients"]
    client = [c for c in clients if c["subscriptions"] and c["subscriptions"][0]["id"] == "big"][0]
    assert client["queue_depth"] >= 10, client
    per_event = client["queue_bytes"] / client["queue_depth"]
    assert 200_000 < per_event < 200_200, f"{per_event} bytes charged per 200 KB event"
    assert herald.metric("herald_queued_bytes") == client["queue_bytes"]
    ws.close()
