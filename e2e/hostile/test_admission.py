"""Limits on connections and rates (`limits.maxConnections`, `.maxConnectionsPerAddress`,
`.newConnectionsPerSecond`, `.resumesPerSecond`, `.ingestEventsPerSecondPerKey`,
`.ingestEventsPerSecondPerAddress`, `.webSocketMessagesPerSecond`,
`.webSocketSubscribesPerSecond`, `.webSocketPublishesPerSecond`): past each, a clear answer
with when to come back, counted in /metrics, and the gateway serving everyone else. Every
test ends with the gateway serving and exiting cleanly."""
import json
import re
import socket
import time
import urllib.parse

from support import PUBLISHER_KEY, ResponseReader, close_code, frame, ws_connect


def close_wait(payload):
    """The close code and the `retryAfterMs=<n>` of a close frame's reason."""
    match = re.search(r"retryAfterMs=(\d+)", payload[2:].decode())
    return close_code(payload), int(match.group(1)) if match else None


def test_past_the_per_address_limit_a_connection_gets_503_with_retry_after(make_herald):
    herald = make_herald(limits={"maxConnectionsPerAddress": 3})
    held = [ws_connect(herald)[0] for _ in range(3)]
    refused = herald.get("/healthz")  # the fourth from 127.0.0.1
    assert refused.status == 503 and refused.error_code == "too_many_connections", refused
    assert 1 <= int(refused.header("retry-after")) <= 5
    assert "127.0.0.1" in refused.json()["error"]["message"]
    assert refused.json()["error"]["retryAfterMs"] == 1000 * int(refused.header("retry-after"))
    # A WebSocket is told with a close its script can read: 1013 and the wait.
    ws, response = ws_connect(herald)
    assert response.status == 101, response
    opcode, payload = ws.receive()
    assert opcode == 8 and close_wait(payload)[0] == 1013, payload
    assert close_wait(payload)[1] in range(1000, 5001, 1000), payload
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


def test_a_request_refused_by_its_address_rate_takes_nothing_from_its_keys_rate(make_herald):
    herald = make_herald(limits={"ingestEventsPerSecondPerKey": 10, "ingestEventsPerSecondPerAddress": 5})
    for _ in range(5):  # each refused by the address's 5/s: the key's 10 stay whole
        assert herald.publish(json.dumps([{"type": "x"}] * 6)).status == 429
    time.sleep(1.05)
    assert herald.publish(json.dumps([{"type": "x"}] * 5)).status == 202
    assert herald.metric("herald_rate_limited_total", limit="ingest_key") == 0


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
    code, wait = close_wait(payload)
    assert code == 1013 and 1000 <= wait <= 5000, payload
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


def test_an_auth_op_moves_the_stream_to_its_new_subjects_count(make_herald):
    from support import jwt
    herald = make_herald(limits={"maxConnectionsPerSubject": 1})
    ada = jwt({"sub": "ada", "exp": int(time.time()) + 600})
    bob = jwt({"sub": "bob", "exp": int(time.time()) + 600})
    first, _ = ws_connect(herald, path=f"/v1/ws?token={ada}")
    first.send_json({"op": "auth", "token": bob})  # the stream now counts for bob, not ada
    assert first.receive_json()["type"] == "authenticated"
    second, _ = ws_connect(herald, path=f"/v1/ws?token={ada}")
    second.send_json({"op": "ping"})
    assert second.receive_json()["type"] == "pong", "ada holds no stream any more"
    third, _ = ws_connect(herald, path=f"/v1/ws?token={ada}")
    code, wait = close_wait(third.receive()[1])
    assert code == 1013 and wait, "ada's one stream is the second"
    second.send_json({"op": "auth", "token": bob})  # bob already holds his one
    opcode, payload = second.receive()
    assert opcode == 8 and close_wait(payload)[0] == 1013, payload
    for sock in (first, second, third):
        sock.close()


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


def test_a_wave_of_new_connections_is_taken_at_the_rate_and_the_rest_told_when(make_herald):
    herald = make_herald(limits={"newConnectionsPerSecond": 1})
    time.sleep(1.1)  # a full bucket (one token)
    # 12 connections at once, each with two pipelined requests: one (two if a second
    # passed meanwhile) is served, the rest get one 503 with a wait and are closed.
    request = b"GET /v1/stats HTTP/1.1\r\nHost: t\r\n\r\n"
    socks = [herald.connect() for _ in range(12)]
    for sock in socks:
        sock.sendall(request * 2)
    answers = []
    for sock in socks:
        reader = ResponseReader(sock)
        first = reader.read()
        answers.append(first)
        if first.status == 503:
            assert reader.closed_after(2), "a refused connection is closed after its answer"
        else:
            assert reader.read().status == 200, "an admitted connection serves its pipelined requests"
        sock.close()
    refused = [a for a in answers if a.status == 503]
    assert 1 <= sum(a.status == 200 for a in answers) <= 2 and len(refused) >= 10, [a.status for a in answers]
    for answer in refused:
        error = answer.json()["error"]
        assert error["code"] == "too_many_connections" and "limits.newConnectionsPerSecond" in error["message"]
        assert 1000 <= error["retryAfterMs"] <= 60000 and int(answer.header("retry-after")) == -(-error["retryAfterMs"] // 1000)
    assert len({a.json()["error"]["retryAfterMs"] for a in refused}) > 1, "the waits are jittered"
    # Health and metrics probes are not charged: an orchestrator sees the node in a storm.
    assert all(herald.get("/healthz").status == 200 for _ in range(5))
    # A connection that never sends a request costs no token.
    idle = [herald.connect() for _ in range(20)]
    # A WebSocket refused by the rate is upgraded and closed with 1013 and the wait.
    ws, response = ws_connect(herald)
    assert response.status == 101
    code, wait = close_wait(ws.receive()[1])
    assert code == 1013 and 1000 <= wait <= 60000
    ws.close()
    # Whatever else a refused connection is answered — a foreign page's upgrade gets
    # 403 — it is closed afterwards: a refusal never holds a connection open.
    foreign = herald.connect()
    foreign.sendall(
        b"GET /v1/ws HTTP/1.1\r\nHost: t\r\nOrigin: http://elsewhere.example\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: herald.v1\r\n\r\n" * 2)
    reader = ResponseReader(foreign)
    assert reader.read().status == 403
    assert reader.closed_after(2), "answered, then closed"
    foreign.close()
    for sock in idle:
        sock.close()
    time.sleep(1.1)
    assert herald.get("/v1/stats").status == 200, "the bucket refills: the gateway serves again"
    assert herald.metric("herald_connections_refused_total", reason="new_connection_rate") >= 12
    time.sleep(1.1)  # for the fixture's own checks


def test_a_wave_of_resumes_is_taken_at_the_rate_and_the_rest_told_when(make_herald):
    herald = make_herald(limits={"resumesPerSecond": 1})
    for n in range(5):
        assert herald.publish(json.dumps({"type": "r", "n": n})).status == 202
    epoch = herald.stats()["events"]["epoch"]
    filter_query = urllib.parse.quote('{"type":["r"]}')
    time.sleep(1.1)  # a full bucket (one token)
    # SSE streams with a last event id: one resumes (two if a second passed), the others
    # get 503 with the wait.
    statuses = []
    for _ in range(6):
        sock = herald.connect()
        sock.sendall(
            f"GET /v1/sse?filter={filter_query} HTTP/1.1\r\nHost: t\r\nLast-Event-ID: {epoch}:2\r\n\r\n".encode())
        response = ResponseReader(sock).read(head_only=True)
        statuses.append(response.status)
        if response.status == 503:
            assert 1 <= int(response.header("retry-after")) <= 60
        sock.close()
    assert 1 <= statuses.count(200) <= 2 and statuses.count(503) >= 4, statuses
    refused = herald.get(f"/v1/sse?filter={filter_query}&lastEventId={epoch}:2")
    assert refused.status == 503 and refused.error_code == "overloaded", refused
    assert "limits.resumesPerSecond" in refused.json()["error"]["message"]
    assert 1000 <= refused.json()["error"]["retryAfterMs"] <= 60000
    # A position with nothing after it replays nothing: not a resume, not refused.
    sock = herald.connect()
    sock.sendall(f"GET /v1/sse?filter={filter_query} HTTP/1.1\r\nHost: t\r\nLast-Event-ID: {epoch}:5\r\n\r\n".encode())
    assert ResponseReader(sock).read(head_only=True).status == 200
    sock.close()
    # A subscription without history is not a resume: not concerned.
    ws, _ = ws_connect(herald)
    ws.send_json({"op": "subscribe", "id": "live", "filter": {"type": ["r"]}})
    assert ws.receive_json()["type"] == "subscribed"
    # A subscription with `since` is one: closed 1013 with the wait.
    ws.send_json({"op": "subscribe", "id": "back", "filter": {"type": ["r"]}, "since": 2, "epoch": epoch})
    opcode, payload = ws.receive()
    assert opcode == 8, (opcode, payload)
    code, wait = close_wait(payload)
    assert code == 1013 and 1000 <= wait <= 60000, payload
    ws.close()
    before = herald.metric("herald_connections_refused_total", reason="resume_rate")
    assert before >= 6
    time.sleep(1.1)
    # After the wait: the resume is served, complete, and the subscriptions a reconnect
    # sends together share its token.
    ws, _ = ws_connect(herald)
    ws.send_json({"op": "subscribe", "id": "a", "filter": {"type": ["r"]}, "since": 2, "epoch": epoch})
    ws.send_json({"op": "subscribe", "id": "b", "filter": {"type": ["r"]}, "since": 4, "epoch": epoch})
    ws.send_json({"op": "ping"})
    events = []
    while True:
        message = ws.receive_json()
        if message["type"] == "event":
            events.append((message["seq"], tuple(message["subs"])))
        if message["type"] == "pong" and any(seq == 5 for seq, _ in events):
            break
    seqs = [seq for seq, _ in events]
    assert seqs == sorted(seqs) and {3, 4, 5} <= set(seqs), events
    assert [seq for seq, subs in events if "b" in subs] == [5], "b asked for what follows 4 only, once"
    assert [seq for seq, subs in events if "a" in subs] == [3, 4, 5], "a gets each once"
    assert herald.metric("herald_connections_refused_total", reason="resume_rate") == before
    # A `since` long after the reconnect is a resume of its own: the bucket is empty.
    time.sleep(1.2)
    ws.send_json({"op": "subscribe", "id": "c", "filter": {"type": ["r"]}, "since": 1, "epoch": epoch})
    ws.send_json({"op": "subscribe", "id": "d", "filter": {"type": ["r"]}, "since": 1, "epoch": epoch})
    opcode, payload = ws.receive()
    while opcode != 8:
        opcode, payload = ws.receive()
    assert close_wait(payload)[0] == 1013, "a second resume on one connection is charged"
    ws.close()


def test_subscribes_and_publishes_have_rates_of_their_own(make_herald):
    herald = make_herald(limits={"webSocketSubscribesPerSecond": 2, "webSocketPublishesPerSecond": 3})
    ws, _ = ws_connect(herald, headers={"Authorization": f"Bearer {PUBLISHER_KEY}"})
    # Eight subscribes in one write: the burst (two seconds' worth) is taken, the rest
    # refused by id; pings are not subscribes.
    ws.send_raw(b"".join(
        frame(1, json.dumps({"op": "subscribe", "id": f"s{n}", "filter": {"n": [n]}}).encode()) for n in range(8))
        + frame(1, b'{"op":"ping"}'))
    replies = [ws.receive_json() for _ in range(9)]
    assert [r["type"] for r in replies[:4]] == ["subscribed"] * 4, replies
    refused = replies[4:8]
    assert all(r["type"] == "error" and r["code"] == "rate_limited" for r in refused), refused
    assert [r["id"] for r in refused] == ["s4", "s5", "s6", "s7"]
    assert all("webSocketSubscribesPerSecond" in r["message"] and 0 < r["retryAfterMs"] <= 500 for r in refused)
    assert replies[8]["type"] == "pong"
    ws.send_raw(b"".join(frame(1, json.dumps({"op": "publish", "event": {"type": "p", "m": n}}).encode()) for n in range(8)))
    replies = [ws.receive_json() for _ in range(8)]
    assert sum(r["type"] == "published" for r in replies) == 6, replies
    assert sum(r.get("code") == "rate_limited" and "webSocketPublishesPerSecond" in r["message"] for r in replies) == 2
    assert herald.stats()["events"]["accepted"] == 6, "a refused publish is not kept"
    assert herald.metric("herald_rate_limited_total", limit="websocket_subscribes") == 4
    assert herald.metric("herald_rate_limited_total", limit="websocket_publishes") == 2
    time.sleep(0.6)
    ws.send_json({"op": "subscribe", "id": "later", "filter": {}})
    assert ws.receive_json()["type"] == "subscribed", "after the wait it may go on"
    ws.close()


def test_refused_publishes_are_logged_by_key_at_a_bounded_pace(make_herald, tmp_path):
    from support import sha256
    limited_key = "limited-key-0123456789"
    herald = make_herald(
        listen={"loops": 2},
        limits={"ingestEventsPerSecondPerKey": 5},
        auth={"publisherKeys": [
            {"name": "backend", "sha256": sha256(PUBLISHER_KEY)},
            {"name": "ticker", "sha256": sha256(limited_key), "publish": {"type": ["tick"]}},
        ]})
    assert herald.publish(json.dumps({"type": "other"}), key=limited_key).status == 403
    for _ in range(20):
        herald.publish(json.dumps([{"type": "tick"}] * 3), key=limited_key)
    deadline = time.time() + 5
    while "rate_limited" not in herald.log_text() and time.time() < deadline:
        time.sleep(0.05)
    lines = [line for line in herald.log_text().splitlines() if "publish refused" in line]
    assert any("key=ticker" in line and "code=forbidden" in line for line in lines), lines
    limited = [line for line in lines if "rate_limited" in line]
    assert 1 <= len(limited) <= 2, "one line per key and reason every 10 s (on each loop), not one per request"
    assert "unlogged=0" in limited[0]
    assert "127.0.0.1" in limited[0]
