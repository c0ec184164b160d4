"""A restart without storage: positions carry an epoch, so a client resuming from before
the restart is told (`reset`) instead of silently skipping or dropping what is new."""
import json
import signal
import time

from support import Herald, ResponseReader, default_config, ws_connect


def publish_numbered(herald, start, count, batch=100):
    answers = []
    for first in range(start, start + count, batch):
        events = [{"type": "chat.message", "room": "r", "n": n} for n in range(first, min(first + batch, start + count))]
        response = herald.publish(json.dumps(events))
        assert response.status == 202, response
        answers.append(response.json())
    return answers


def sse_blocks(herald, headers, count, timeout=5.0):
    """Opens /v1/sse?filter={} with `headers` and reads `count` blocks (dicts of their fields),
    after the stream's first block, its `retry:` advice (checked here)."""
    sock = herald.connect()
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"GET /v1/sse?filter=%7B%7D HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode())
    reader = ResponseReader(sock, timeout=timeout)
    head = reader.read(head_only=True)
    assert head.status == 200, head
    deadline = time.time() + timeout
    while time.time() < deadline and reader.buffer.count(b"\n\n") < count + 1:
        reader.fill(deadline)
    sock.close()
    advice, _, rest = reader.buffer.decode().partition("\n\n")
    assert advice.startswith("retry: "), advice
    blocks = []
    for text in rest.split("\n\n")[:count]:
        block = {}
        for line in text.split("\n"):
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                block[name] = value
        blocks.append(block)
    return head, blocks


def test_a_restart_without_storage_gives_resuming_clients_a_reset_never_a_silent_skip(make_herald):
    # The scenario: events acknowledged, then kill -9, then new events.
    first = Herald(default_config())
    try:
        answers = publish_numbered(first, 0, 950)
        old_epoch = answers[-1]["epoch"]
        last = answers[-1]["accepted"][-1]["seq"]
        assert last == 950 and {a["epoch"] for a in answers} == {old_epoch}
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=5)
    finally:
        first.close()

    herald = make_herald()
    answers = publish_numbered(herald, 1000, 100)
    new_epoch = answers[0]["epoch"]
    assert new_epoch != old_epoch and answers[0]["accepted"][0]["seq"] == 1
    assert herald.stats()["events"]["epoch"] == new_epoch

    # WebSocket: since + epoch of before the restart.
    ws, response = ws_connect(herald)
    assert response.status == 101
    ws.send_json({"op": "subscribe", "id": "room", "filter": {"room": ["r"]}, "since": last, "epoch": old_epoch})
    assert ws.receive_json() == {"type": "subscribed", "id": "room", "position": 100, "epoch": new_epoch}
    assert ws.receive_json() == {"type": "gap", "subs": ["room"], "from": 1, "to": 0, "reason": "reset", "epoch": new_epoch}
    events = [ws.receive_json() for _ in range(100)]
    assert [e["seq"] for e in events] == list(range(1, 101)) and [e["event"]["n"] for e in events] == list(range(1000, 1100))
    # The current epoch resumes as before; a malformed epoch is an error and the connection stays.
    ws.send_json({"op": "subscribe", "id": "same", "filter": {"room": ["r"]}, "since": 98, "epoch": new_epoch})
    assert ws.receive_json()["type"] == "subscribed"
    assert [ws.receive_json()["seq"] for _ in range(2)] == [99, 100]
    for bad in (7, ["x"], "NOT-AN-EPOCH", ""):
        ws.send_json({"op": "subscribe", "id": "bad", "filter": {}, "since": 1, "epoch": bad})
        error = ws.receive_json()
        assert error["type"] == "error" and error["code"] == "invalid_message" and error["path"] == "$.epoch", error
    ws.send_json({"op": "ping"})
    assert ws.receive_json() == {"type": "pong"}
    ws.close()

    # SSE: Last-Event-ID "<old epoch>:<seq>".
    head, blocks = sse_blocks(herald, {"Last-Event-ID": f"{old_epoch}:{last}"}, 101)
    assert blocks[0] == {"event": "herald.gap", "data": json.dumps({"from": 1, "to": 0, "reason": "reset", "epoch": new_epoch}, separators=(",", ":"))}
    assert [b["id"] for b in blocks[1:]] == [f"{new_epoch}:{seq}" for seq in range(1, 101)]
    # A bare seq is the current epoch's; the stream's own ids resume exactly.
    _, bare = sse_blocks(herald, {"Last-Event-ID": "99"}, 1)
    assert bare[0]["id"] == f"{new_epoch}:100"
    _, own = sse_blocks(herald, {"Last-Event-ID": f"{new_epoch}:98"}, 2)
    assert [b["id"] for b in own] == [f"{new_epoch}:99", f"{new_epoch}:100"]
    for bad in (":1", f"{new_epoch}:", f"{new_epoch}:1:2", "EPOCH:1", f"{new_epoch}:-1", "a" * 33 + ":1"):
        refused = herald.get("/v1/sse?filter=%7B%7D", headers={"Last-Event-ID": bad})
        assert refused.status == 400 and refused.json()["error"]["code"] == "invalid_message", (bad, refused)
    assert herald.metric("herald_gaps_reset_total") == 2
