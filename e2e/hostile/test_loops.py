"""Several loops in one process (`listen.loops`): each loop accepts on its own socket of
the shared port (SO_REUSEPORT), owns its connections and its Hub; one sequencer gives
positions. A client must not be able to tell which loop it reached: every subscriber gets
every event in one order, and /metrics, /v1/stats, /v1/clients, DELETE /v1/clients/{id},
/v1/routes/explain and presence answer for the whole gateway from any loop."""
import json
import os
import socket
import subprocess
import time

import pytest

from support import ADMIN_KEY, PUBLISHER_KEY, ROOT, Herald, default_config, free_port, ws_connect

LOOPS = 3
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def herald_binary():
    return os.environ.get("HERALD_BIN", f"{ROOT}/.build/debug/herald")


def subscribers(herald, count, filter_=None):
    opened = []
    for _ in range(count):
        ws, response = ws_connect(herald)
        assert response.status == 101
        ws.send_json({"op": "subscribe", "id": "s", "filter": filter_ or {"type": ["chat.message"]}})
        assert ws.receive_json()["type"] == "subscribed"
        opened.append(ws)
    return opened


def client_ids(herald):
    body = herald.get("/v1/clients?limit=10000", headers=ADMIN).json()
    return sorted(row["id"] for row in body["clients"])


def loops_of(ids):
    return {(client - 1) % LOOPS for client in ids}


@pytest.fixture
def gateway(make_herald):
    return make_herald(listen={"loops": LOOPS})


def test_every_subscriber_on_every_loop_gets_every_event_once_in_one_order(gateway):
    wss = subscribers(gateway, 24)
    ids = client_ids(gateway)
    assert len(ids) == 24 and len(loops_of(ids)) >= 2, f"24 connections landed on one loop: {ids}"
    for batch in range(5):  # each POST on a new connection, so on any loop
        events = [{"type": "chat.message", "room": "r", "n": batch * 10 + i} for i in range(10)]
        assert gateway.publish(json.dumps(events)).status == 202
    for ws in wss:
        got = [ws.receive_json() for _ in range(50)]
        assert [m["seq"] for m in got] == list(range(1, 51))
        assert [m["event"]["n"] for m in got] == list(range(50))
    # Every loop answers for the whole gateway, whichever one a scrape reaches.
    assert gateway.metric("herald_loops") == LOOPS
    for _ in range(6):
        assert gateway.metric("herald_connections", transport="ws") == 24
        assert gateway.metric("herald_deliveries_total", transport="ws") == 24 * 50
        assert gateway.metric("herald_events_ingested_total", result="accepted") == 50
        assert gateway.metric("herald_route_matched_total", route="") == 50, "an event counts once, not once per loop"
        stats = gateway.stats()
        assert stats["connections"]["ws"] == 24 and stats["events"]["last_seq"] == 50
    for ws in wss:
        ws.close()


def test_a_duplicate_is_recognised_whichever_loop_it_reaches(gateway):
    (ws,) = subscribers(gateway, 1)
    answers = [gateway.publish(json.dumps({"type": "chat.message", "id": "same", "source": "s"})).json() for _ in range(6)]
    assert [a["accepted"][0]["seq"] for a in answers] == [1] * 6
    assert [a["accepted"][0]["duplicate"] for a in answers] == [False] + [True] * 5
    assert ws.receive_json()["seq"] == 1
    with pytest.raises(TimeoutError):
        ws.receive_json(timeout=0.5)
    ws.close()


def test_admin_endpoints_reach_clients_on_every_loop(gateway):
    wss = subscribers(gateway, 12)
    ids = client_ids(gateway)
    assert len(loops_of(ids)) >= 2
    event = {"type": "chat.message", "room": "r"}
    for client in ids:
        explained = gateway.post("/v1/routes/explain", json.dumps({"event": event, "client": client}), ADMIN).json()
        assert explained["clients"] == 12 and explained["client"]["id"] == client
        assert explained["client"]["subscriptions"] == [{"id": "s", "match": True}]
    assert gateway.post("/v1/routes/explain", json.dumps({"event": event, "client": 999}), ADMIN).status == 404
    by_id = dict(zip(ids, wss))  # ids ascend in connection order, one per socket
    for client in ids:
        deleted = gateway.exchange(f"DELETE /v1/clients/{client} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\r\n".encode(), 1, close_wait=0)[0][0]
        assert deleted.status == 204, deleted
    for client in ids:
        assert by_id[client].expect_close() == 1008
    missing = gateway.exchange(f"DELETE /v1/clients/{ids[0]} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\r\n".encode(), 1, close_wait=0)[0][0]
    assert missing.status == 404 and missing.error_code == "not_found"
    assert client_ids(gateway) == []


def test_presence_lists_members_of_every_loop(gateway):
    members = []
    for nick in ("ada", "bob", "cy", "dee", "eve", "fay"):
        ws, _ = ws_connect(gateway, path=f"/v1/ws?token={PUBLISHER_KEY}")
        ws.send_json({"op": "presence.join", "group": "room", "info": {"nick": nick}})
        assert ws.receive_json()["type"] == "presence.joined"
        members.append(ws)
    assert len(loops_of(client_ids(gateway))) >= 2
    for _ in range(4):
        body = gateway.get("/v1/presence/room").json()
        assert sorted(m["info"]["nick"] for m in body["members"]) == ["ada", "bob", "cy", "dee", "eve", "fay"]
        assert body["count"] == 6
    members[0].send_json({"op": "presence.leave", "group": "room"})
    assert members[0].receive_json()["type"] == "presence.left"
    assert sorted(m["info"]["nick"] for m in gateway.get("/v1/presence/room").json()["members"]) == ["bob", "cy", "dee", "eve", "fay"]
    for ws in members:
        ws.close()


def test_pipelined_requests_that_ask_every_loop_are_answered_in_order(gateway):
    body = b'{"type":"chat.message","n":1}'
    data = (b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /v1/stats HTTP/1.1\r\nHost: t\r\n\r\n"
            b"POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + PUBLISHER_KEY.encode() +
            b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body +
            b"GET /v1/clients HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + ADMIN_KEY.encode() + b"\r\n\r\n"
            b"GET /v1/stats HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    answers, closed = gateway.exchange(data, 7)
    assert [a.status for a in answers] == [200, 200, 202, 200, 200, 400]
    assert answers[0].text.startswith("# HELP")
    assert json.loads(answers[1].body)["events"]["accepted"] == 0 and json.loads(answers[4].body)["events"]["accepted"] == 1
    assert answers[5].error_code == "bad_request" and closed, "a gathering request with a body is refused and the connection closed"


def test_loops_refuse_a_port_another_process_listens_on(tmp_path):
    binary = herald_binary()
    path = tmp_path / "config.json"
    path.write_text(json.dumps(default_config(listen={"loops": 2})))
    port = free_port()
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))
        other.listen()
        result = subprocess.run([binary, "serve", "--config", str(path), "--host", "127.0.0.1", "--port", str(port)],
                                capture_output=True, text=True, timeout=20)
    assert result.returncode != 0 and f"could not listen on 127.0.0.1:{port} (address in use)" in result.stdout + result.stderr, result
    first = Herald(default_config(listen={"loops": 2}))
    try:
        second = subprocess.run([binary, "serve", "--config", str(path), "--host", "127.0.0.1", "--port", str(first.port)],
                                capture_output=True, text=True, timeout=20)
        assert second.returncode != 0 and "address in use" in second.stdout + second.stderr, second
        first.assert_serving_and_idle()
        assert first.terminate() == 0
    finally:
        first.close()


@pytest.mark.parametrize("loops", [1, LOOPS])
def test_out_of_descriptors_the_loops_wait_instead_of_spinning_and_serve_again(make_herald, loops):
    herald = make_herald(max_files=64, listen={"loops": loops})
    flood = []
    for _ in range(80):  # more than the gateway can accept: the rest wait in the backlog
        sock = socket.socket()
        sock.settimeout(2)
        sock.connect(("127.0.0.1", herald.port))
        flood.append(sock)
    time.sleep(1.5)
    before = herald.cpu_seconds()
    time.sleep(1)
    assert herald.cpu_seconds() - before < 0.3, "a loop that cannot accept must not spin on its readable socket"
    assert "cannot accept connections" in herald.log_text()
    for sock in flood:
        sock.close()
    deadline = time.time() + 10
    while time.time() < deadline:  # accepting resumes at the next tick
        try:
            if herald.get("/healthz", timeout=2).status == 200:
                break
        except (AssertionError, OSError):
            time.sleep(0.2)
    assert herald.get("/healthz").status == 200


@pytest.mark.parametrize("listen, message", [
    ({"loops": 0}, "$.listen.loops: must be an integer in 1...64"),
    ({"loops": 65}, "$.listen.loops: must be an integer in 1...64"),
    ({"loops": "2"}, "$.listen.loops: must be an integer in 1...64"),
    ({"loops": [2]}, "$.listen.loops: must be an integer in 1...64"),
])
def test_loops_config_errors_are_named(tmp_path, listen, message):
    binary = herald_binary()
    path = tmp_path / "config.json"
    path.write_text(json.dumps(default_config(listen=listen)))
    result = subprocess.run([binary, "check-config", str(path)], capture_output=True, text=True, timeout=20)
    assert result.returncode != 0 and message in result.stdout + result.stderr, result


def test_storage_and_cluster_need_one_loop(tmp_path):
    binary = herald_binary()
    path = tmp_path / "config.json"
    path.write_text(json.dumps(default_config(listen={"loops": 2}, storage={"path": str(tmp_path / "log")})))
    result = subprocess.run([binary, "check-config", str(path)], capture_output=True, text=True, timeout=20)
    assert result.returncode != 0 and "$.listen.loops: must be 1 (or left out) with storage.path or cluster.redis" in result.stdout + result.stderr
    path.write_text(json.dumps(default_config(storage={"path": str(tmp_path / "log")})))
    herald = Herald(json.loads(path.read_text()))
    try:
        assert herald.metric("herald_loops") == 1, "the file log is served by one loop"
        herald.assert_serving_and_idle()
        assert herald.terminate() == 0
    finally:
        herald.close()


def test_host_star_serves_ipv6_and_ipv4_on_every_loop(tmp_path):
    binary = herald_binary()
    path = tmp_path / "config.json"
    path.write_text(json.dumps(default_config(listen={"loops": 2, "host": "*", "port": 0})))
    port_file = tmp_path / "port"
    process = subprocess.Popen([binary, "serve", "--config", str(path), "--port-file", str(port_file)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None and time.time() < deadline, "the gateway did not start"
            time.sleep(0.05)
        port = int(port_file.read_text())
        for family, address in [(socket.AF_INET6, "::1"), (socket.AF_INET, "127.0.0.1")] * 4:
            with socket.socket(family) as sock:  # four connections each: both loops are likely reached
                sock.settimeout(5)
                sock.connect((address, port))
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert sock.recv(64).startswith(b"HTTP/1.1 200"), address
        process.terminate()
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
