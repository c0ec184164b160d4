"""Limits on connections and rates (`limits.maxConnections`, `.maxConnectionsPerAddress`,
`.ingestEventsPerSecondPerKey`, `.ingestEventsPerSecondPerAddress`,
`.webSocketMessagesPerSecond`): past each, a clear answer with when to come back, counted
in /metrics, and the gateway serving everyone else. Every test ends with the gateway
serving and exiting cleanly."""
import json
import time

from support import PUBLISHER_KEY, ResponseReader, frame, ws_connect


def test_past_the_per_address_limit_a_connection_gets_503_with_retry_after(make_herald):
    herald = make_herald(limits={"maxConnectionsPerAddress": 3})
    held = [ws_connect(herald)[0] for _ in range(3)]
    ws, response = ws_connect(herald)  # the fourth from 127.0.0.1
    assert response.status == 503 and response.error_code == "too_many_connections", response
    assert 1 <= int(response.header("retry-after")) <= 5
    assert "127.0.0.1" in response.json()["error"]["message"]
    assert response.json()["error"]["retryAfterMs"] == 1000 * int(response.header("retry-after"))
    ws.close()
    plain = herald.connect()
    plain.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    reader = ResponseReader(plain)
    assert reader.read().status == 503, "pipelined: the first answer refuses"
    assert reader.closed_after(2), "and the connection closes"
    plain.close()
    for sock in held:
        sock.close()
    deadline = time.time() + 5
    while herald.get("/healthz").status != 200:  # until the gateway has counted the closes out
        assert time.time() < deadline, "closed connections must be counted out"
        time.sleep(0.05)
    assert herald.metric("herald_connections_refused_total", reason="address") >= 2
    # Closed connections are counted out: three may come in again.
    again = [ws_connect(herald) for _ in range(2)]
    assert all(response.status == 101 for _, response in again)
    for sock, _ in again:
        sock.close()


def test_past_the_total_limit_every_address_waits(make_herald):
    herald = make_herald(limits={"maxConnections": 2})
    first, second = herald.connect(), herald.connect()
    time.sleep(0.2)
    assert herald.get("/healthz").status == 503
    first.close()
    second.close()
    deadline = time.time() + 5
    while herald.get("/healthz").status != 200:
        assert time.time() < deadline, "closed connections must be counted out"
        time.sleep(0.05)
    assert herald.metric("herald_connections_refused_total", reason="total") >= 1


def test_a_publisher_past_its_event_rate_gets_429_and_nothing_of_the_batch_is_kept(make_herald):
    herald = make_herald(limits={"ingestEventsPerSecondPerKey": 20})
    batch = json.dumps([{"type": "x", "n": n} for n in range(15)])
    assert herald.publish(batch).status == 202
    refused = herald.publish(batch)  # 15 more within the same second: past 20/s
    assert refused.status == 429 and refused.error_code == "rate_limited", refused
    wait_ms = refused.json()["error"]["retryAfterMs"]
    assert 0 < wait_ms <= 1000 and int(refused.header("retry-after")) == 1
    assert herald.stats()["events"]["accepted"] == 15, "nothing of the refused batch is kept"
    too_big = herald.publish(json.dumps([{"type": "x"}] * 21))
    assert too_big.status == 429, "a batch larger than the burst never passes"
    time.sleep(wait_ms / 1000 + 0.1)
    assert herald.publish(batch).status == 202, "after the wait it may go on"
    assert herald.metric("herald_rate_limited_total", limit="ingest_key") == 2


def test_the_per_address_rate_applies_to_every_key_and_token_from_it(make_herald):
    herald = make_herald(limits={"ingestEventsPerSecondPerAddress": 10})
    assert herald.publish(json.dumps([{"type": "x"}] * 10)).status == 202
    ws, _ = ws_connect(herald, headers={"Authorization": f"Bearer {PUBLISHER_KEY}"})
    ws.send_json({"op": "publish", "event": {"type": "x"}})
    reply = ws.receive_json()
    assert reply["type"] == "error" and reply["code"] == "rate_limited" and reply["retryAfterMs"] > 0, reply
    ws.close()
    assert herald.metric("herald_rate_limited_total", limit="ingest_address") == 1


def test_a_websocket_sending_too_fast_gets_rate_limited_errors_then_is_closed(make_herald):
    herald = make_herald(limits={"webSocketMessagesPerSecond": 5})
    ws, _ = ws_connect(herald)
    for n in range(10):  # the burst: two seconds' worth
        ws.send_json({"op": "ping"})
    for _ in range(10):
        assert ws.receive_json()["type"] == "pong"
    ws.send_json({"op": "subscribe", "id": "s1", "filter": {}})
    reply = ws.receive_json()
    assert reply["type"] == "error" and reply["code"] == "rate_limited" and reply["id"] == "s1", reply
    assert 0 < reply["retryAfterMs"] <= 200
    time.sleep(0.5)
    ws.send_json({"op": "ping"})
    assert ws.receive_json()["type"] == "pong", "after the wait it may go on"
    # A client that ignores the errors is closed. The messages go in one write: a client
    # still writing after the close would have its socket reset, and the close frame lost.
    ws.send_raw(b"".join(frame(1, json.dumps({"op": "ping"}).encode()) for _ in range(150)))
    code = ws.expect_close(timeout=5)
    assert code == 1008, code
    assert herald.metric("herald_rate_limited_total", limit="websocket_messages") >= 100


def test_a_subject_past_its_stream_limit_is_told_to_come_back_later(make_herald):
    from support import jwt
    herald = make_herald(limits={"maxConnectionsPerSubject": 2})
    token = jwt({"sub": "ada", "exp": int(time.time()) + 600})
    held = [ws_connect(herald, path=f"/v1/ws?token={token}")[0] for _ in range(2)]
    third, response = ws_connect(herald, path=f"/v1/ws?token={token}")
    assert response.status == 101, "upgraded, only to say so"
    opcode, payload = third.receive()
    assert opcode == 8 and int.from_bytes(payload[:2], "big") == 1013, (opcode, payload)
    wait = int(payload[2:].decode().rsplit("retryAfterMs=", 1)[1])
    assert 1000 <= wait <= 5000
    third.close()
    sse = herald.get(f"/v1/sse?filter=%7B%7D&token={token}")
    assert sse.status == 503 and sse.error_code == "too_many_connections" and sse.header("retry-after")
    other = jwt({"sub": "bob", "exp": int(time.time()) + 600})
    bob, response = ws_connect(herald, path=f"/v1/ws?token={other}")
    assert response.status == 101, "another subject is not concerned"
    bob.send_json({"op": "ping"})
    assert bob.receive_json()["type"] == "pong"
    bob.close()
    held[0].close()
    deadline = time.time() + 5
    while True:  # the closed stream is counted out
        again, response = ws_connect(herald, path=f"/v1/ws?token={token}")
        again.send_json({"op": "ping"})
        try:
            if again.receive_json(timeout=2)["type"] == "pong":
                break
        except EOFError:
            assert time.time() < deadline, "a closed stream must be counted out"
            time.sleep(0.1)
        finally:
            again.close()
    assert herald.metric("herald_connections_refused_total", reason="subject") >= 2
    held[1].close()


def test_sse_streams_advise_a_jittered_reconnection_delay(herald):
    advised = set()
    for _ in range(8):
        sock = herald.connect()
        sock.sendall(b"GET /v1/sse?filter=%7B%7D HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received or b"\n\n" not in received.split(b"\r\n\r\n", 1)[1]:
            chunk = sock.recv(4096)
            assert chunk, "the stream ended before its first block"
            received += chunk
        body = received.split(b"\r\n\r\n", 1)[1]
        assert body.startswith(b"retry: "), body[:40]
        wait = int(body.split(b"\n", 1)[0][len(b"retry: "):])
        assert 1000 <= wait <= 5000
        advised.add(wait)
        sock.close()
    assert len(advised) > 1, "each stream gets its own delay, so a restart does not bring them back together"
