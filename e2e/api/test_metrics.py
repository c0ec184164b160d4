"""/metrics parsed by the real Prometheus client parser; /v1/stats and /v1/clients."""
import asyncio
import json
import time

import websockets
from prometheus_client.parser import text_string_to_metric_families

from support import ADMIN_KEY


def scrape(gateway):
    status, text = gateway.request("GET", "/metrics")
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def subscribe(port, filter_, sub_id="s", route=None, read=True):
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/v1/ws", subprotocols=["herald.v1"], max_size=None)
    message = {"op": "subscribe", "id": sub_id, "filter": filter_}
    if route:
        message = {"op": "subscribe", "id": sub_id, "route": route}
    await ws.send(json.dumps(message))
    assert json.loads(await ws.recv())["type"] == "subscribed"
    return ws


def test_counters_change_by_exactly_the_scenario(make_gateway):
    gateway = make_gateway()
    before = scrape(gateway)

    async def scenario():
        readers = [await subscribe(gateway.port, None, route="chat") for _ in range(3)]
        # 20 chat messages (each read by 3 readers), 4 other events, one duplicate, two refusals.
        events = [{"type": "chat.message", "n": i, "id": f"m{i}", "source": "e2e", "pad": "x" * 200} for i in range(20)]
        assert gateway.publish(json.dumps(events))[0] == 202
        assert gateway.publish(json.dumps([{"type": "other", "n": i} for i in range(4)]))[0] == 202
        assert gateway.publish(json.dumps(events[0]))[0] == 202       # duplicate
        assert gateway.publish("{not json")[0] == 400
        assert gateway.publish("[]")[0] == 400
        for ws in readers:
            for _ in range(20):
                assert json.loads(await ws.recv())["type"] == "event"
        return readers

    loop = asyncio.new_event_loop()
    readers = loop.run_until_complete(scenario())
    time.sleep(0.3)
    after = scrape(gateway)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("herald_events_ingested_total", result="accepted") == 24
    assert delta("herald_events_ingested_total", result="duplicate") == 1
    assert delta("herald_ingest_rejected_total", reason="invalid_json") == 1
    assert delta("herald_ingest_rejected_total", reason="empty_batch") == 1
    assert delta("herald_route_matched_total", route="chat") == 20
    assert delta("herald_route_delivered_total", route="chat") == 60
    assert delta("herald_deliveries_total", transport="ws") == 60
    assert delta("herald_dropped_total", reason="overflow") == 0
    assert delta("herald_ingest_bytes_total") > 0
    assert value(after, "herald_connections", transport="ws") == 3
    assert value(after, "herald_subscriptions", transport="ws") == 3
    assert value(after, "herald_delivery_latency_seconds_count") == value(after, "herald_deliveries_total", transport="ws") + value(after, "herald_deliveries_total", transport="sse")
    assert value(after, "herald_history_events") == 24
    assert value(after, "herald_build_info", version="0.1.0", lws=value_label(after, "herald_build_info", "lws")) == 1
    async def close_all():
        for ws in readers:
            await ws.close()
    loop.run_until_complete(close_all())
    loop.close()


def value_label(samples, name, label):
    for (sample_name, labels), _ in samples.items():
        if sample_name == name:
            return dict(labels)[label]
    return None


def test_drops_are_counted_for_a_stalled_client_and_shown_in_clients(make_gateway):
    gateway = make_gateway(delivery={"queue": {"maxMessages": 50, "maxBytes": 1048576}})
    loop = asyncio.new_event_loop()
    stalled = loop.run_until_complete(subscribe(gateway.port, {"k": ["big"]}, sub_id="stalled"))
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    depths = []
    pad = "p" * 10000
    for _ in range(30):  # 30 MB: more than the socket buffers and the client's own queue hold
        assert gateway.publish(json.dumps([{"k": "big", "pad": pad} for _ in range(100)]))[0] == 202
        status, body = gateway.request("GET", "/v1/clients", headers=headers)
        assert status == 200
        client = json.loads(body)["clients"][0]
        assert client["subscriptions"][0]["id"] == "stalled"
        assert client["subscriptions"][0]["filter"] == {"k": ["big"]}
        depths.append(client["queue_depth"])
    assert all(depth <= 50 for depth in depths), depths
    growing = [d for d in depths if d > 0]
    assert growing and growing[0] < 50 and depths[-1] == 50, f"the stalled queue grows to its bound: {depths}"
    samples = scrape(gateway)
    assert value(samples, "herald_dropped_total", reason="overflow") > 0
    assert value(samples, "herald_route_dropped_total", route="") == value(samples, "herald_dropped_total", reason="overflow")
    assert value(samples, "herald_route_matched_total", route="") == 3000, "every event matched, dropped or not"
    stats = json.loads(gateway.request("GET", "/v1/stats")[1])
    assert stats["queue_depth"]["max"] == 50 and stats["queue_depth"]["p50"] == 50
    assert gateway.request("GET", "/v1/clients")[0] == 401
    client_id = json.loads(gateway.request("GET", "/v1/clients", headers=headers)[1])["clients"][0]["id"]
    assert gateway.request("DELETE", f"/v1/clients/{client_id}", headers=headers)[0] == 204
    assert gateway.request("DELETE", "/v1/clients/999999", headers=headers)[0] == 404
    loop.run_until_complete(stalled.close())
    loop.close()


def test_stats_reports_totals_and_rates(make_gateway):
    gateway = make_gateway()
    for _ in range(5):
        assert gateway.publish(json.dumps([{"type": "chat.message", "n": i} for i in range(10)]))[0] == 202
    status, body = gateway.request("GET", "/v1/stats")
    assert status == 200
    stats = json.loads(body)
    assert stats["events"]["accepted"] == 50
    assert stats["events"]["last_seq"] == 50
    assert set(stats["rates"]) == {"1s", "10s", "60s"}
    assert stats["rates"]["10s"]["events_in"] > 0
    assert set(stats["routes"]) == {"chat", ""}
    assert stats["history"]["events"] == 50


def test_process_metrics_are_what_the_kernel_says_and_the_exposition_lints_clean(make_gateway):
    """process_* as every Prometheus exporter has them, checked against /proc; and the whole
    exposition passes `promtool check metrics` (names, types, help, units)."""
    import os
    import resource
    import socket
    import subprocess

    started = time.time()
    gateway = make_gateway()
    before = scrape(gateway)
    pid = gateway.process.pid
    assert abs(value(before, "process_start_time_seconds") - started) < 5
    assert value(before, "process_max_fds") == resource.prlimit(pid, resource.RLIMIT_NOFILE)[0]
    rss = value(before, "process_resident_memory_bytes")
    assert 0.7 < rss / (gateway.rss_kb() * 1024) < 1.3, (rss, gateway.rss_kb())
    assert value(before, "process_virtual_memory_bytes") > rss
    # Open descriptors: what /proc lists (the scrape's own socket included), and ten
    # more connections are ten more.
    assert abs(value(before, "process_open_fds") - len(os.listdir(f"/proc/{pid}/fd"))) <= 1
    socks = [socket.create_connection(("127.0.0.1", gateway.port)) for _ in range(10)]
    time.sleep(0.3)
    after = scrape(gateway)
    assert value(after, "process_open_fds") - value(before, "process_open_fds") == 10
    for sock in socks:
        sock.close()
    # CPU: counted, and growing with work.
    for n in range(200):
        gateway.publish(json.dumps({"type": "cpu", "n": n}))
    assert value(scrape(gateway), "process_cpu_seconds_total") > value(before, "process_cpu_seconds_total") > 0
    status, text = gateway.request("GET", "/metrics")
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    gateway.assert_serving_and_idle()
