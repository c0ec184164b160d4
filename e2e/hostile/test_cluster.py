"""Several nodes as one gateway through a Redis stream (`cluster.redis`): one order for
every subscriber on every node, resume on any node, cluster-wide dedup, and what happens
when Redis restarts or a node dies. A real `redis-server` (Debian's) runs per test."""
import json
import signal
import threading
import time

import pytest

from support import PUBLISHER_KEY, Herald, Redis, ResponseReader, default_config, ws_connect


@pytest.fixture
def redis():
    server = Redis()
    yield server
    server.close()


@pytest.fixture
def make_node(make_herald, redis):
    """A node of the test's cluster (the hostile fixture checks it serves and exits 0)."""
    def make(**overrides):
        cluster = {"redis": redis.url, **overrides.pop("cluster", {})}
        return make_herald(cluster=cluster, **overrides)
    return make


def ws_subscriber(node, since=None, epoch=None, sub_id="all", filter_=None, headers=None):
    ws, response = ws_connect(node, headers=headers)
    assert response.status == 101
    op = {"op": "subscribe", "id": sub_id, "filter": filter_ or {"type": ["chat.message"]}}
    if since is not None:
        op["since"] = since
    if epoch is not None:
        op["epoch"] = epoch
    ws.send_json(op)
    subscribed = ws.receive_json()
    assert subscribed["type"] == "subscribed", subscribed
    return ws, subscribed


class SSESubscriber:
    """An SSE stream on a node, read on demand."""

    def __init__(self, node, last_event_id=None):
        self.sock = node.connect(timeout=10)
        extra = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id else ""
        self.sock.sendall(
            f"GET /v1/sse?filter=%7B%22type%22%3A%5B%22chat.message%22%5D%7D HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode())
        self.reader = ResponseReader(self.sock, timeout=10)
        head = self.reader.read(head_only=True)
        assert head.status == 200, head

    def blocks(self, count, timeout=15.0):
        deadline = time.time() + timeout
        while time.time() < deadline and self.reader.buffer.count(b"\n\n") < count + 1:
            self.reader.fill(deadline)
        out = []
        for text in self.reader.buffer.decode().split("\n\n"):
            block = dict(line.split(": ", 1) for line in text.split("\n") if line and not line.startswith(":") and ": " in line)
            if "id" in block:
                out.append(block)
        return out[:count]

    def close(self):
        self.sock.close()


def receive_events(ws, count, timeout=15.0):
    events = []
    deadline = time.time() + timeout
    while len(events) < count:
        message = ws.receive_json(timeout=max(0.1, deadline - time.time()))
        if message["type"] == "event":
            events.append(message)
        else:
            assert message["type"] in ("gap",), message
            events.append(message)
    return events


def post_until_accepted(node, body, deadline):
    """Posts `body` until a 202 (a 503 while Redis is away says when to retry)."""
    while True:
        response = node.publish(body)
        if response.status == 202:
            return response.json()
        assert response.status == 503 and response.header("retry-after"), response
        assert response.json()["error"]["code"] in ("storage_unavailable", "overloaded"), response
        assert time.time() < deadline, "Redis did not come back"
        time.sleep(0.05)


def test_events_posted_to_any_node_reach_every_node_in_one_order(make_node):
    a, b, c = make_node(), make_node(), make_node()
    subscribers = [ws_subscriber(node)[0] for node in (a, b, c)]
    sse = SSESubscriber(c)
    acknowledged = {}

    def publish(node, tag, count):
        for n in range(count):
            batch = [{"type": "chat.message", "from": tag, "n": n, "k": k} for k in range(1 + n % 3)]
            answer = node.publish(json.dumps(batch))
            assert answer.status == 202, answer
            for event, accepted in zip(batch, answer.json()["accepted"]):
                acknowledged[accepted["seq"]] = event

    threads = [threading.Thread(target=publish, args=(node, tag, 60)) for node, tag in ((a, "a"), (b, "b"), (c, "c"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = len(acknowledged)
    assert total == 3 * sum(1 + n % 3 for n in range(60))
    assert sorted(acknowledged) == list(range(1, total + 1)), "positions are dense and unique across nodes"
    for ws in subscribers:
        events = receive_events(ws, total)
        assert [e["seq"] for e in events] == list(range(1, total + 1))
        assert all(e["event"] == acknowledged[e["seq"]] for e in events)
        ws.close()
    blocks = sse.blocks(total)
    epoch = a.stats()["events"]["epoch"]
    assert [b["id"] for b in blocks] == [f"{epoch}:{seq}" for seq in range(1, total + 1)]
    assert all(json.loads(b["data"]) == acknowledged[seq] for seq, b in zip(range(1, total + 1), blocks))
    sse.close()
    # One epoch, one last position, on every node.
    assert {n.stats()["events"]["epoch"] for n in (a, b, c)} == {epoch}
    assert {n.stats()["events"]["last_seq"] for n in (a, b, c)} == {total}


def test_dedup_is_cluster_wide_and_a_duplicate_is_delivered_once(make_node):
    a, b = make_node(), make_node()
    ws, _ = ws_subscriber(b, headers={"Authorization": f"Bearer {PUBLISHER_KEY}"})
    event = json.dumps({"type": "chat.message", "id": "order-42", "source": "shop", "n": 1})
    first = a.publish(event).json()
    again = b.publish(event).json()
    assert first["accepted"][0] == {"id": "order-42", "seq": 1, "duplicate": False}
    assert again["accepted"][0] == {"id": "order-42", "seq": 1, "duplicate": True}
    # Within one batch and across sources.
    batch = json.dumps([{"type": "chat.message", "id": "x", "source": "s1"}, {"type": "chat.message", "id": "x", "source": "s1"},
                        {"type": "chat.message", "id": "x", "source": "s2"}])
    accepted = b.publish(batch).json()["accepted"]
    assert [(e["seq"], e["duplicate"]) for e in accepted] == [(2, False), (2, True), (3, False)]
    assert [e["seq"] for e in receive_events(ws, 3)] == [1, 2, 3]
    ws.send_json({"op": "ping"})
    assert ws.receive_json() == {"type": "pong"}, "nothing delivered twice"
    # WebSocket publish on a node of a cluster: acknowledged once the stream has it.
    ws.send_json({"op": "publish", "event": {"type": "chat.message", "id": "order-42", "source": "shop"}})
    assert ws.receive_json() == {"type": "published", "id": "order-42", "seq": 1, "epoch": a.stats()["events"]["epoch"]}
    ws.send_json({"op": "publish", "event": {"type": "chat.message", "n": 2}})
    replies = [ws.receive_json(), ws.receive_json()]
    assert {r["type"] for r in replies} == {"published", "event"} and {r["seq"] for r in replies} == {4}
    ws.close()


def test_a_client_moves_to_another_node_and_resumes_exactly(make_node):
    a = make_node()
    ws, subscribed = ws_subscriber(a)
    epoch = subscribed["epoch"]
    for n in range(0, 300, 100):
        assert a.publish(json.dumps([{"type": "chat.message", "n": i} for i in range(n, n + 100)])).status == 202
    seen = receive_events(ws, 120)
    assert [e["seq"] for e in seen] == list(range(1, 121))
    ws.close()
    # A node that joins later with a small history: what it holds in memory plus what it
    # reads from the stream for older positions.
    b = make_node(history={"maxEvents": 50})
    assert a.publish(json.dumps([{"type": "chat.message", "n": i} for i in range(300, 310)])).status == 202
    ws, subscribed = ws_subscriber(b, since=120, epoch=epoch)
    assert subscribed["epoch"] == epoch
    resumed = receive_events(ws, 190)
    assert [e["seq"] for e in resumed] == list(range(121, 311)) and [e["event"]["n"] for e in resumed] == list(range(120, 310))
    ws.close()
    # SSE with Last-Event-ID from node A's stream, on node B.
    sse = SSESubscriber(b, last_event_id=f"{epoch}:305")
    assert [blk["id"] for blk in sse.blocks(5)] == [f"{epoch}:{seq}" for seq in range(306, 311)]
    sse.close()
    # A client from a node further along than this one: nothing twice.
    ws, _ = ws_subscriber(b, since=400, epoch=epoch)
    assert a.publish(json.dumps([{"type": "chat.message", "n": i} for i in range(310, 400)])).status == 202
    assert a.publish(json.dumps({"type": "chat.message", "n": 400})).status == 202
    assert [e["seq"] for e in receive_events(ws, 1)] == [401]
    ws.close()


def test_redis_restarted_mid_stream_loses_nothing_acknowledged_and_delivers_nothing_twice(make_node, redis):
    a, b = make_node(), make_node()
    subscribers = [ws_subscriber(node)[0] for node in (a, b)]
    acknowledged = {}
    refused = []
    stop = threading.Event()

    def publish():
        n = 0
        while not stop.is_set() and n < 400:
            body = json.dumps({"type": "chat.message", "id": f"e{n}", "source": "restart-test", "n": n})
            deadline = time.time() + 30
            while True:
                response = a.publish(body)
                if response.status == 202:
                    acknowledged[response.json()["accepted"][0]["seq"]] = n
                    break
                refused.append(response)
                assert time.time() < deadline, "Redis did not come back"
                time.sleep(0.05)
            n += 1
            time.sleep(0.005)

    publisher = threading.Thread(target=publish)
    publisher.start()
    time.sleep(0.5)
    redis.stop()
    time.sleep(0.5)
    ready = b.get("/readyz")
    assert ready.status == 503 and ready.json()["error"]["code"] == "storage_unavailable", ready
    assert "Redis at 127.0.0.1" in ready.json()["error"]["message"]
    assert b.metric("herald_storage_up") == 0
    # Subscribers keep their connections while Redis is away.
    subscribers[1].send_json({"op": "ping"})
    messages = [subscribers[1].receive_json() for _ in range(len(acknowledged) + 1)]
    assert {"type": "pong"} in messages
    backlog = [m for m in messages if m["type"] == "event"]
    redis.start()
    publisher.join(timeout=60)
    stop.set()
    assert refused and all(r.status == 503 and r.header("retry-after") for r in refused)
    assert all(r.json()["error"]["code"] == "storage_unavailable" for r in refused)
    total = len(acknowledged)
    assert total == 400
    # Every acknowledged event once, in one order, on both nodes (retries deduplicated);
    # a retried request whose first try reached Redis is one event, not two.
    expected = sorted(acknowledged)
    assert expected == list(range(1, 401)) and sorted(acknowledged.values()) == list(range(400))
    for index, ws in enumerate(subscribers):
        events = (backlog if index == 1 else []) + receive_events(ws, len(expected) - (len(backlog) if index == 1 else 0), timeout=30)
        assert [e["seq"] for e in events] == expected
        assert [e["event"]["n"] for e in events] == [acknowledged[s] for s in expected]
        ws.send_json({"op": "ping"})
        assert ws.receive_json() == {"type": "pong"}, "nothing more than the acknowledged events"
        ws.close()
    assert b.get("/readyz").status == 200 and b.metric("herald_storage_up") == 1
    assert a.metric("herald_storage_failures_total") >= 1 and a.metric("herald_storage_up") == 1


def test_a_killed_node_does_not_stop_the_others_and_its_clients_resume_elsewhere(make_node, redis):
    a = Herald(default_config(cluster={"redis": redis.url}))  # killed below: not the fixture's
    try:
        killed_node_scenario(a, make_node(), make_node())
    finally:
        a.close()


def killed_node_scenario(a, b, c):
    on_a, subscribed = ws_subscriber(a)
    epoch = subscribed["epoch"]
    on_c, _ = ws_subscriber(c)
    assert b.publish(json.dumps([{"type": "chat.message", "n": i} for i in range(50)])).status == 202
    got = receive_events(on_a, 50)
    a.process.send_signal(signal.SIGKILL)
    a.process.wait(timeout=5)
    for n in range(50, 150, 10):
        assert b.publish(json.dumps([{"type": "chat.message", "n": i} for i in range(n, n + 10)])).status == 202
    assert [e["seq"] for e in receive_events(on_c, 150)] == list(range(1, 151))
    moved, _ = ws_subscriber(b, since=got[-1]["seq"], epoch=epoch)
    assert [e["event"]["n"] for e in receive_events(moved, 100)] == list(range(50, 150))
    moved.close()
    on_c.close()


def test_cluster_configuration_errors_are_clear(make_herald, redis, tmp_path):
    import subprocess
    from support import ROOT
    import os
    binary = os.environ.get("HERALD_BIN", os.path.join(ROOT, ".build/debug/herald"))
    cases = [
        ({"cluster": {"redis": "http://127.0.0.1:6379"}}, "$.cluster.redis: must be redis://host[:port]"),
        ({"cluster": {"redis": redis.url, "maxLength": 5}}, "$.cluster.maxLength"),
        ({"cluster": {"redis": redis.url, "stream": "a b"}}, "$.cluster.stream"),
        ({"cluster": {"redis": redis.url}, "storage": {"path": str(tmp_path)}}, "cannot be combined with storage.path"),
    ]
    for config, expected in cases:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(default_config(**config)))
        result = subprocess.run([binary, "check-config", str(path)], capture_output=True, text=True, timeout=20)
        assert result.returncode != 0 and expected in result.stdout + result.stderr, (config, result)
    # Redis not reachable when a node starts: it says so and exits non-zero.
    dead = f"redis://127.0.0.1:{redis.port + 1 if redis.port < 65535 else 1}"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(default_config(cluster={"redis": dead})))
    result = subprocess.run([binary, "serve", "--config", str(path), "--host", "127.0.0.1", "--port", "0"],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode != 0 and "cannot reach Redis at 127.0.0.1" in result.stdout + result.stderr, result


def test_presence_is_cluster_wide_and_a_dead_nodes_members_go(make_node, redis):
    b = make_node(cluster={"nodeTimeoutSeconds": 3})
    a = Herald(default_config(cluster={"redis": redis.url, "nodeTimeoutSeconds": 3}))  # killed below
    try:
        watcher, _ = ws_subscriber(b, filter_={"type": ["herald.presence"]})
        watcher_a, _ = ws_subscriber(a, filter_={"type": ["herald.presence"]})
        members = {}
        joins = []
        for node, nick in ((a, "ada"), (b, "bob"), (a, "cy")):
            ws, _ = ws_connect(node, path=f"/v1/ws?token={PUBLISHER_KEY}")
            ws.send_json({"op": "presence.join", "group": "room", "info": {"nick": nick}})
            assert ws.receive_json()["type"] == "presence.joined"
            members[nick] = ws
            # Counts are the cluster's as the joining node sees it: once both nodes read the
            # previous join from the stream, it is counted.
            joins.append(watcher.receive_json()["event"])
            assert watcher_a.receive_json()["event"] == joins[-1]
        assert [(j["action"], j["info"]["nick"], j["count"]) for j in joins] == [("join", "ada", 1), ("join", "bob", 2), ("join", "cy", 3)]
        assert len({j["member"] for j in joins}) == 3, "member ids are unique across nodes (<node>.<client>)"

        def listed(node):
            body = node.get("/v1/presence/room").json()
            assert body["count"] == len(body["members"])
            return sorted(m["info"]["nick"] for m in body["members"]), body

        assert listed(a)[0] == listed(b)[0] == ["ada", "bob", "cy"]
        ids = {m["info"]["nick"]: m["member"] for m in listed(b)[1]["members"]}
        assert ids == {j["info"]["nick"]: j["member"] for j in joins}
        members["bob"].send_json({"op": "presence.leave", "group": "room"})
        assert members["bob"].receive_json()["type"] == "presence.left"
        leave = watcher.receive_json()["event"]
        assert (leave["action"], leave["member"], leave["count"]) == ("leave", ids["bob"], 2)
        deadline = time.time() + 5
        while listed(a)[0] != ["ada", "cy"] and time.time() < deadline:
            time.sleep(0.05)
        assert listed(a)[0] == listed(b)[0] == ["ada", "cy"]
        # A node dies without a word: its members leave the lists once its heartbeat expires.
        a.process.send_signal(signal.SIGKILL)
        a.process.wait(timeout=5)
        deadline = time.time() + 10
        while listed(b)[0] != [] and time.time() < deadline:
            time.sleep(0.2)
        assert listed(b)[0] == []
        for ws in members.values():
            ws.close()
        watcher.close()
    finally:
        a.close()


def test_while_redis_is_away_every_write_is_refused_clearly_and_leaves_wait(make_node, redis):
    a, b = make_node(), make_node()
    watcher, _ = ws_subscriber(b, filter_={"type": ["herald.presence"]})
    member, _ = ws_connect(a, path=f"/v1/ws?token={PUBLISHER_KEY}")
    member.send_json({"op": "presence.join", "group": "room", "info": {"nick": "ada"}})
    assert member.receive_json()["type"] == "presence.joined"
    assert watcher.receive_json()["event"]["action"] == "join"
    publisher, _ = ws_connect(a, path=f"/v1/ws?token={PUBLISHER_KEY}")
    redis.stop()
    deadline = time.time() + 5
    while a.get("/readyz").status != 503 and time.time() < deadline:
        time.sleep(0.05)
    posted = a.publish(json.dumps({"type": "chat.message"}))
    assert posted.status == 503 and posted.header("retry-after") and posted.json()["error"]["code"] == "storage_unavailable"
    publisher.send_json({"op": "publish", "event": {"type": "chat.message"}})
    refused = publisher.receive_json()
    assert refused["type"] == "error" and refused["code"] == "storage_unavailable", refused
    publisher.send_json({"op": "presence.join", "group": "room", "info": {}})
    assert publisher.receive_json()["code"] == "storage_unavailable"
    member.close()  # leaves while Redis is away
    time.sleep(0.3)
    redis.start()
    try:
        leave = watcher.receive_json(timeout=15)["event"]
    except TimeoutError:
        raise AssertionError(f"no leave; A ready {a.get('/readyz').body}, B ready {b.get('/readyz').body}\n{a.log_text()[-3000:]}")
    assert (leave["action"], leave["reason"], leave["info"]) == ("leave", "disconnected", {"nick": "ada"})
    assert b.get("/v1/presence/room").json()["members"] == []
    publisher.send_json({"op": "publish", "event": {"type": "chat.message"}})
    assert publisher.receive_json()["type"] == "published"
    publisher.close()
    watcher.close()


def test_an_answer_redis_does_not_give_in_time_is_a_503_and_a_retry_is_safe(make_node, redis):
    a = make_node(limits={"storageTimeoutSeconds": 1})
    ws, _ = ws_subscriber(a)
    event = json.dumps({"type": "chat.message", "id": "slow-1", "source": "t"})
    redis.process.send_signal(signal.SIGSTOP)  # Redis hangs: it neither answers nor closes
    try:
        sock = a.connect(timeout=10)
        started = time.time()
        head = f"POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {PUBLISHER_KEY}\r\nContent-Type: application/json\r\n"
        sock.sendall((head + f"Content-Length: {len(event)}\r\n\r\n{event}" + "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").encode())
        reader = ResponseReader(sock, timeout=10)
        late = reader.read()
        assert late.status == 503 and late.header("retry-after") == "1", late
        assert "did not store the events within 1 s" in late.json()["error"]["message"]
        assert 1.0 <= time.time() - started < 4.0
        assert reader.read().status == 200, "the pipelined request after it is answered"
        sock.close()
    finally:
        redis.process.send_signal(signal.SIGCONT)
    # Redis answers after all: the event is stored once; a retry says so and nothing is twice.
    delivered = receive_events(ws, 1)
    assert delivered[0]["event"]["id"] == "slow-1"
    retry = a.publish(event).json()["accepted"][0]
    assert retry == {"id": "slow-1", "seq": delivered[0]["seq"], "duplicate": True}
    ws.send_json({"op": "ping"})
    assert ws.receive_json() == {"type": "pong"}
    ws.close()


def test_a_cluster_node_answers_hostile_pipelined_ingest_in_order_and_still_serves(make_node):
    """The cluster's held answers in a pipeline: valid, malformed, unauthenticated, oversized
    and an array where a scalar belongs, in one write — each answered once, in order."""
    a, b = make_node(limits={"maxBodyBytes": 4096}), make_node()
    ws, _ = ws_subscriber(b)
    key = f"Authorization: Bearer {PUBLISHER_KEY}\r\nContent-Type: application/json\r\n"

    def post(body, headers=key):
        return (f"POST /v1/events HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: {len(body)}\r\n\r\n" + body).encode()

    good = json.dumps({"type": "chat.message", "n": 1})
    data = (post(good) + post("{not json") + post(good, "Content-Type: application/json\r\n")
            + post(json.dumps({"type": ["chat.message", "x"]})) + post(good)
            + b"POST /v1/events HTTP/1.1\r\nHost: t\r\n" + key.encode() + b"Content-Length: 100000\r\n\r\n")
    responses, closed = a.exchange(data, 6, timeout=10)
    assert [r.status for r in responses] == [202, 400, 401, 400, 202, 413], responses
    assert [r.json()["accepted"][0]["seq"] for r in (responses[0], responses[4])] == [1, 2]
    assert [e["seq"] for e in receive_events(ws, 2)] == [1, 2]
    ws.send_json({"op": "ping"})
    assert ws.receive_json() == {"type": "pong"}, "nothing refused was delivered"
    assert a.publish(good).status == 202 and a.get("/healthz").status == 200
    ws.close()
