"""Delivery deadlines (`routes.<name>.deadlineMs`, `delivery.deadlineMs`): each live
delivery is checked against its route's deadline when the kernel takes its bytes, a miss
is put down to the client when the event waited in its queue past a write that did not
include it and to the gateway otherwise, replays are not counted, and the route's latency histogram has the deadline
among its bounds, so "within the deadline" is exactly one of its buckets."""
import json
import time

import pytest

from support import ADMIN_KEY, ResponseReader, ws_connect


def deadline_figures(herald, route):
    samples = herald.metrics()
    def value(name, **labels):
        return samples.get((name, frozenset({"route": route, **labels}.items())), 0)
    return {
        "met": value("herald_deadline_deliveries_total", result="met"),
        "missed": value("herald_deadline_deliveries_total", result="missed"),
        "slow_client": value("herald_deadline_missed_total", cause="slow_client"),
        "gateway": value("herald_deadline_missed_total", cause="gateway"),
        "deadline": value("herald_route_deadline_seconds"),
        "delivered": value("herald_route_delivered_total"),
        "within": value("herald_route_delivery_latency_seconds_bucket", le="0.005"),
        "count": value("herald_route_delivery_latency_seconds_count"),
    }


@pytest.mark.parametrize("loops", [1, 2])
def test_a_stalled_client_misses_its_routes_deadline_and_is_blamed_while_a_calm_route_meets_its_own(make_herald, loops):
    herald = make_herald(
        listen={"loops": loops},
        routes={"fast": {"pattern": {"type": ["big"]}, "deadlineMs": 5},
                "calm": {"pattern": {"type": ["calm"]}, "deadlineMs": 60000}},
        delivery={"queue": {"maxMessages": 1000, "maxBytes": 64 << 20, "policy": "drop-oldest"}})
    # A subscriber that never reads, with a small receive buffer: once the kernel holds
    # what it can, every later event waits behind bytes the client has not taken.
    stalled, _ = ws_connect(herald, receive_buffer=4096)
    stalled.send_json({"op": "subscribe", "id": "s", "route": "fast"})
    reader, _ = ws_connect(herald)
    reader.send_json({"op": "subscribe", "id": "c", "route": "calm"})
    assert reader.receive_json()["type"] == "subscribed"
    time.sleep(0.2)
    payload = "x" * 100_000
    for n in range(40):
        assert herald.publish(json.dumps({"type": "big", "n": n, "payload": payload})).status == 202
        assert herald.publish(json.dumps({"type": "calm", "n": n})).status == 202
    for n in range(40):
        message = reader.receive_json()
        assert message["type"] == "event" and message["event"]["n"] == n
    # Half a second later the slow client reads at last: what waited behind its full
    # socket is written now, long past 5 ms, and put down to the client.
    time.sleep(0.5)
    assert stalled.receive_json()["type"] == "subscribed"
    for n in range(40):
        assert stalled.receive_json(timeout=10)["event"]["n"] == n
    time.sleep(0.2)
    fast, calm = deadline_figures(herald, "fast"), deadline_figures(herald, "calm")
    assert fast["deadline"] == 0.005 and calm["deadline"] == 60
    # Every live delivery is counted once, as met or missed, and "met" is exactly the
    # histogram's bucket at the deadline.
    assert fast["met"] + fast["missed"] == fast["delivered"] == fast["count"] == 40, fast
    assert fast["met"] == fast["within"], fast
    assert fast["missed"] == fast["slow_client"] + fast["gateway"]
    assert fast["slow_client"] >= 1, f"the stalled client's late events are its own: {fast}"
    assert calm["met"] == calm["delivered"] == 40 and calm["missed"] == 0, calm
    # /v1/stats says it per route, over windows, with a state from the 0.1 % budget;
    # /readyz stays 200 but says the gateway is late and where.
    stats = herald.stats()["deadlines"]
    assert stats["budget"] == 0.001
    deadlines = stats["routes"]
    assert deadlines["fast"]["deadline_ms"] == 5 and deadlines["fast"]["state"] == "red", deadlines["fast"]
    assert deadlines["fast"]["missed"] == fast["missed"] and deadlines["fast"]["missed_slow_client"] == fast["slow_client"]
    minute = deadlines["fast"]["windows"]["60s"]
    assert minute["count"] == 40 and minute["missed_ratio"] > 0.001 and minute["latency_p99_ms"] > 5, minute
    assert minute["latency_max_ms"] >= 400, f"the slowest waited for the client's half-second nap: {minute}"
    assert deadlines["calm"]["state"] == "green" and deadlines["calm"]["windows"]["60s"]["missed_ratio"] == 0
    assert deadlines["calm"]["windows"]["60s"]["latency_max_ms"] < 60000
    assert deadlines[""]["state"] == "green", "ad-hoc filters: nothing delivered, nothing late"
    assert deadlines[""]["windows"]["60s"] == {
        "count": 0, "missed": 0, "missed_slow_client": 0, "missed_ratio": None, "latency_p50_ms": None,
        "latency_p99_ms": None, "latency_max_ms": None}
    assert minute["missed"] == fast["missed"] and minute["missed_slow_client"] == fast["slow_client"]
    ingest = stats["ingest"]
    assert ingest["deadline_ms"] == 100 and ingest["met"] + ingest["missed"] == 80, ingest
    assert ingest["windows"]["60s"]["count"] == 80
    ready = herald.get("/readyz")
    assert ready.status == 200 and ready.json() == {"status": "degraded", "late_routes": ["fast"]}, ready
    # The state change is logged once, by route; the calm route has nothing to say.
    deadline = time.time() + 5
    while "route fast is red" not in herald.log_text() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)
    lines = [line for line in herald.log_text().splitlines() if "deadline" in line and "route " in line]
    assert len(lines) == 1 and "route fast is red (was green)" in lines[0], lines
    # The admin's list of clients names who is late: the stalled one first.
    clients = herald.get("/v1/clients?order=late", {"Authorization": f"Bearer {ADMIN_KEY}"}).json()["clients"]
    assert clients[0]["missed_deadlines"] == fast["missed"] and clients[0]["slowest_delivery_ms"] >= 400, clients[0]
    assert clients[1]["missed_deadlines"] == 0 and clients[1]["slowest_delivery_ms"] < 60000, clients[1]
    assert herald.get("/v1/clients?order=slow", {"Authorization": f"Bearer {ADMIN_KEY}"}).status == 400
    # A replay is not a live delivery: reading history back adds nothing to the deadline
    # figures, only to the replay counter.
    replayed_before = herald.metric("herald_replayed_total", transport="ws") or 0
    late, _ = ws_connect(herald)
    late.send_json({"op": "subscribe", "id": "r", "route": "calm", "since": 0})
    assert late.receive_json()["type"] == "subscribed"
    for n in range(40):
        assert late.receive_json()["event"]["n"] == n
    time.sleep(0.2)
    after = deadline_figures(herald, "calm")
    assert after["met"] + after["missed"] == 40, after
    assert herald.metric("herald_replayed_total", transport="ws") == replayed_before + 40
    for ws in (stalled, reader, late):
        ws.close()


def test_the_deadline_endpoints_hold_up_pipelined_unauthenticated_and_malformed(make_herald):
    """Every request that reads deadline figures — /readyz and /v1/stats gathered from two
    loops, /v1/clients?order=… — pipelined in one write, with and without the admin key,
    with an unknown, an empty, a repeated and an oversized order: each is answered, in
    order, and the gateway serves and stops cleanly afterwards."""
    herald = make_herald(listen={"loops": 2})
    admin = f"Authorization: Bearer {ADMIN_KEY}\r\n"
    requests = [
        ("GET /readyz", ""), ("GET /v1/stats", ""), ("GET /v1/clients?order=late", ""),
        ("GET /v1/clients?order=late", admin), ("GET /v1/clients?order=", admin),
        ("GET /v1/clients?order=late&order=busy", admin), ("GET /v1/clients?order=" + "x" * 3000, admin),
        ("GET /v1/clients?order[]=late", admin), ("HEAD /readyz", ""), ("GET /readyz", ""),
    ]
    data = "".join(f"{line} HTTP/1.1\r\nHost: t\r\n{headers}\r\n" for line, headers in requests).encode()
    sock = herald.connect(timeout=10)
    sock.sendall(data)
    reader = ResponseReader(sock, timeout=10)
    answers = [reader.read(head_only=line.startswith("HEAD")) for line, _ in requests]
    sock.close()
    assert [a.status for a in answers] == [200, 200, 401, 200, 400, 200, 400, 200, 200, 200], [a.status for a in answers]
    assert answers[0].json() == {"status": "ready"} and "deadlines" in answers[1].json()
    assert answers[8].body == b"" and answers[9].json() == {"status": "ready"}, "HEAD answered without a body, in order"
    assert answers[2].error_code == "unauthorized" and answers[4].error_code == "invalid_message"
    assert answers[3].json()["total"] == 0
    # The deadline watch keeps gathering both loops' windows once a second meanwhile.
    time.sleep(1.5)
    assert herald.get("/readyz").json() == {"status": "ready"}
    herald.assert_serving_and_idle()
