"""The durable log (storage.path): kill -9 at random points while clients publish, then
check that every acknowledged event is in the log with its seq and body, that nothing
else is, and that resuming subscribers get exactly what they missed; then damaged tails."""
import http.client
import json
import os
import random
import signal
import socket
import threading
import time

from support import PUBLISHER_KEY, Herald, default_config, ws_connect

ROUNDS = 20


def read_log(herald, expected, timeout=30.0):
    """Every event the gateway holds, from `Last-Event-ID: 0`, as {seq: (epoch, event)}."""
    sock = socket.create_connection(("127.0.0.1", herald.port), timeout=timeout)
    sock.sendall(b"GET /v1/sse?filter=%7B%7D HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 0\r\n\r\n")
    buffer = bytearray()
    deadline = time.time() + timeout
    events = {}
    while time.time() < deadline:
        while b"\n\n" in buffer:
            block, _, rest = bytes(buffer).partition(b"\n\n")
            buffer = bytearray(rest)
            fields = dict(line.split(": ", 1) for line in block.decode().split("\n") if ": " in line and not line.startswith(":"))
            if "id" in fields:
                epoch, seq = fields["id"].split(":")
                events[int(seq)] = (epoch, json.loads(fields["data"]))
            if len(events) >= expected:
                sock.close()
                return events
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        buffer += chunk
        if buffer.startswith(b"HTTP/1.1 200"):
            buffer = bytearray(bytes(buffer).partition(b"\r\n\r\n")[2])
    sock.close()
    return events


class Publisher(threading.Thread):
    """POSTs batches of `size` numbered events over one keep-alive connection until the
    gateway dies; records what each 202 acknowledged."""

    def __init__(self, port, name, size, limit):
        super().__init__(daemon=True)
        self.port, self.name, self.size, self.limit = port, name, size, limit
        self.sent, self.acked, self.epochs = [], {}, set()

    def run(self):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            while len(self.sent) < self.limit:
                batch = [{"type": "durable", "by": self.name, "n": len(self.sent) + i} for i in range(self.size)]
                self.sent += batch
                connection.request("POST", "/v1/events", json.dumps(batch),
                                   {"Authorization": f"Bearer {PUBLISHER_KEY}", "Content-Type": "application/json"})
                response = connection.getresponse()
                body = json.loads(response.read())
                assert response.status == 202, body
                self.epochs.add(body["epoch"])
                for event, accepted in zip(batch, body["accepted"]):
                    self.acked[accepted["seq"]] = event
        except (OSError, http.client.HTTPException):
            pass  # killed mid-request: that batch was not acknowledged


def test_kill_9_at_random_points_loses_nothing_acknowledged(tmp_path):
    rng = random.Random(20261203)
    config = default_config(storage={"path": str(tmp_path / "log"), "fsync": "batch"},
                            history={"maxEvents": 1000})
    sent, acked, epochs = {}, {}, set()
    subscriber_last = 0
    missed_checked = 0
    for round_number in range(ROUNDS):
        herald = Herald(config)
        try:
            # A subscriber that resumes from where the last round's one stopped.
            ws, _ = ws_connect(herald)
            ws.send_json({"op": "subscribe", "id": "s", "filter": {"type": ["durable"]}, "since": subscriber_last,
                          **({"epoch": next(iter(epochs))} if epochs else {})})
            subscribed = ws.receive_json()
            assert subscribed["type"] == "subscribed", subscribed
            epochs.add(subscribed["epoch"])
            # Exactly the events after its position that the log holds: all that were acknowledged
            # and the few that were stored but not yet acknowledged when the gateway died.
            position = subscribed["position"]
            replayed = [ws.receive_json() for _ in range(position - subscriber_last)]
            assert [m["type"] for m in replayed] == ["event"] * len(replayed), replayed[:3]
            assert [m["seq"] for m in replayed] == list(range(subscriber_last + 1, position + 1))
            for message in replayed:
                if message["seq"] in acked:
                    assert message["event"] == acked[message["seq"]], message
            missed_checked += len(replayed)
            subscriber_last = position

            publishers = [Publisher(herald.port, f"r{round_number}-one", 1, 400),
                          Publisher(herald.port, f"r{round_number}-hundred", 100, 4000)]
            for publisher in publishers:
                publisher.start()
            time.sleep(rng.uniform(0.05, 0.5))
            herald.process.send_signal(signal.SIGKILL)
            herald.process.wait(timeout=5)
            for publisher in publishers:
                publisher.join(timeout=10)
                for seq, event in publisher.acked.items():
                    assert seq not in acked, f"seq {seq} acknowledged twice"
                    acked[seq] = event
                for event in publisher.sent:
                    sent[(event["by"], event["n"])] = event
                epochs |= publisher.epochs
            ws.sock.close()
        finally:
            herald.close()
    assert len(epochs) == 1, f"one epoch across restarts: {epochs}"
    assert len(acked) > 1000, f"the rounds acknowledged too little to prove anything: {len(acked)}"

    herald = Herald(config)
    try:
        stats = herald.stats()["events"]
        logged = read_log(herald, stats["last_seq"])
        assert sorted(logged) == list(range(1, stats["last_seq"] + 1)), "the log holds one unbroken sequence"
        assert {epoch for epoch, _ in logged.values()} == epochs
        for seq, event in acked.items():
            assert logged.get(seq, (None, None))[1] == event, f"acknowledged seq {seq} lost or changed"
        unacknowledged = [event for seq, (_, event) in logged.items() if seq not in acked]
        for event in unacknowledged:
            assert sent.get((event["by"], event["n"])) == event, f"the log holds an event nobody sent: {event}"
        # Stored but not acknowledged: only what was in flight when the gateway died
        # (at most one batch of each publisher per round).
        assert len(unacknowledged) <= ROUNDS * 101, len(unacknowledged)
        print(f"\n{ROUNDS} kills: {len(acked)} events acknowledged, all in the log; "
              f"{len(unacknowledged)} stored but unacknowledged (in flight at the kill); "
              f"{missed_checked} replayed to a resuming subscriber")
        herald.assert_serving_and_idle()
        assert herald.terminate() == 0
    finally:
        herald.close()


def damage_last_segment(directory, how):
    segments = sorted(name for name in os.listdir(directory) if name.endswith(".log"))
    path = os.path.join(directory, segments[-1])
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        if how == "truncated":
            f.truncate(size - 5)
        else:
            f.seek(size - 2)
            byte = f.read(1)
            f.seek(size - 2)
            f.write(bytes([byte[0] ^ 0x01]))


def test_a_torn_or_bit_flipped_tail_is_cut_logged_and_never_delivered(tmp_path):
    for how in ("truncated", "bit-flipped"):
        directory = tmp_path / how
        config = default_config(storage={"path": str(directory), "fsync": "always"},
                                log={"level": "warning", "lwsLevel": "none"})
        herald = Herald(config)
        try:
            answers = [json.loads(herald.publish(json.dumps({"type": "durable", "n": n})).body) for n in range(5)]
            epoch = answers[0]["epoch"]
            assert herald.terminate() == 0
        finally:
            herald.close()
        damage_last_segment(directory, how)

        herald = Herald(config)
        try:
            log_text = herald.log_text()
            assert "event log recovery: cut" in log_text, log_text
            stats = herald.stats()["events"]
            assert stats["last_seq"] == 4 and stats["epoch"] == epoch, stats
            logged = read_log(herald, 4)
            assert [logged[seq][1]["n"] for seq in range(1, 5)] == [0, 1, 2, 3], "the damaged record is never delivered"
            answer = json.loads(herald.publish(json.dumps({"type": "durable", "n": 99})).body)
            assert answer["accepted"][0]["seq"] == 5 and answer["epoch"] == epoch
            herald.assert_serving_and_idle()
            assert herald.terminate() == 0
        finally:
            herald.close()


def test_every_fsync_policy_acknowledges_batches_over_one_keep_alive_connection(tmp_path):
    """The writer may report a batch durable in several steps; the held 202 must still go out."""
    for fsync in ("always", "batch", "never"):
        herald = Herald(default_config(storage={"path": str(tmp_path / fsync), "fsync": fsync}))
        try:
            connection = http.client.HTTPConnection("127.0.0.1", herald.port, timeout=5)
            for batch in range(30):
                events = [{"type": "durable", "n": batch * 100 + i, "pad": "x" * 400} for i in range(100)]
                connection.request("POST", "/v1/events", json.dumps(events),
                                   {"Authorization": f"Bearer {PUBLISHER_KEY}", "Content-Type": "application/json"})
                response = connection.getresponse()
                body = json.loads(response.read())
                assert response.status == 202 and body["accepted"][-1]["seq"] == batch * 100 + 100, (fsync, batch, body)
            connection.close()
            herald.assert_serving_and_idle()
            assert herald.terminate() == 0
        finally:
            herald.close()


def test_a_full_disk_refuses_ingest_and_acknowledges_nothing_it_did_not_store(tmp_path):
    """Later segments of the log are made to land on /dev/full (every write: ENOSPC)."""
    directory = tmp_path / "log"
    herald = Herald(default_config(storage={"path": str(directory), "fsync": "always", "segmentBytes": 65536}))
    try:
        ws, _ = ws_connect(herald, headers={"Authorization": f"Bearer {PUBLISHER_KEY}"})
        ws.send_json({"op": "subscribe", "id": "s", "filter": {"type": ["full"]}})
        assert ws.receive_json()["type"] == "subscribed"
        # Once the first segment is full, the next one is created where /dev/full waits.
        for seq in range(2, 400):
            os.symlink("/dev/full", directory / f"{seq:020d}.log")
        acked, refusal = [], None
        for n in range(400):
            response = herald.publish(json.dumps({"type": "full", "n": n, "pad": "x" * 1000}))
            if response.status != 202:
                refusal = response
                break
            acked.append(response.json()["accepted"][0]["seq"])
        assert refusal is not None, "the disk never filled"
        assert refusal.status == 503 and refusal.json()["error"]["code"] == "storage_unavailable", refusal
        assert refusal.header("retry-after") == "5"
        assert "No space left" in refusal.json()["error"]["message"], refusal.json()
        # Everything acknowledged reached the subscriber; nothing after it did.
        delivered = [ws.receive_json()["seq"] for _ in acked]
        assert delivered == acked
        ready = herald.get("/readyz")
        assert ready.status == 503 and ready.json()["error"]["code"] == "storage_unavailable", ready
        assert herald.metric("herald_storage_up") == 0 and herald.metric("herald_storage_failures_total") == 1
        # Later ingest is refused at once; the subscriber keeps its connection.
        again = herald.publish(json.dumps({"type": "full", "n": -1}))
        assert again.status == 503 and again.json()["error"]["code"] == "storage_unavailable"
        ws.send_json({"op": "publish", "event": {"type": "full", "n": -2}})
        error = ws.receive_json()
        assert error["type"] == "error" and error["code"] == "storage_unavailable", error
        ws.send_json({"op": "ping"})
        assert ws.receive_json() == {"type": "pong"}
        assert "the event log cannot store events" in herald.log_text()
        herald.assert_serving_and_idle()
        assert herald.terminate() == 0
    finally:
        herald.close()


def test_pipelined_and_hostile_requests_against_a_durable_log(tmp_path):
    """Answers held for the disk keep pipelined requests in order, each answered once;
    refused requests store nothing; the server still serves and exits cleanly."""
    herald = Herald(default_config(storage={"path": str(tmp_path / "log"), "fsync": "always"}))
    try:
        def post(body, key=PUBLISHER_KEY, length=None):
            data = body.encode()
            auth = f"Authorization: Bearer {key}\r\n" if key else ""
            return (f"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{auth}"
                    f"Content-Length: {len(data) if length is None else length}\r\n\r\n").encode() + data
        # Three POSTs and a GET in one write: four answers, in order, each once.
        batch = post('{"type":"p","n":1}') + post('[{"type":"p","n":2},{"type":"p","n":3}]') + \
            b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" + post('{"type":"p","n":4}')
        answers, _ = herald.exchange(batch, 4, close_wait=0.2)
        assert [a.status for a in answers] == [202, 202, 200, 202], answers
        seqs = [[e["seq"] for e in a.json()["accepted"]] for a in answers if a.status == 202]
        assert seqs == [[1], [2, 3], [4]]
        # Unauthenticated, malformed and oversized bodies are refused and store nothing.
        refused, _ = herald.exchange(post('{"type":"p"}', key=None) + post('{"type":'), 2, close_wait=0.2)
        assert [r.status for r in refused] == [401, 400], refused
        big, _ = herald.exchange(post("x", length=50 << 20), 1, close_wait=0.2)
        assert big[0].status == 413
        assert herald.stats()["events"]["last_seq"] == 4
        # A client that leaves right after its POST: the event was accepted, so it is stored
        # (its answer may have been held or sent), and the next client is not disturbed.
        sock = herald.connect()
        sock.sendall(post('{"type":"p","n":5}'))
        deadline = time.time() + 5
        while herald.stats()["events"]["last_seq"] < 5 and time.time() < deadline:
            time.sleep(0.01)
        sock.close()
        assert herald.publish(json.dumps({"type": "p", "n": 6})).json()["accepted"][0]["seq"] == 6
        logged = read_log(herald, 6)
        assert [logged[seq][1]["n"] for seq in range(1, 7)] == [1, 2, 3, 4, 5, 6]
        herald.assert_serving_and_idle()
        assert herald.terminate() == 0
    finally:
        herald.close()
