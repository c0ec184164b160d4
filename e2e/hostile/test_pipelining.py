"""Pipelined HTTP/1.1: several requests in one TCP write are each answered exactly once,
in order — with and without bodies, refused or accepted — and nothing is ingested twice.

Before the gateway read HTTP itself, the first test froze the loop at 100 % CPU (SIGTERM
ignored) and two pipelined POST /v1/events were ingested over and over (589,836 events in
10 s from one connection).
"""
import json
import random
import time

import pytest

from support import ADMIN_KEY, PUBLISHER_KEY, ResponseReader


def request(method, path, body=None, headers=None):
    head = f"{method} {path} HTTP/1.1\r\nHost: t\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    if body is not None:
        data = body.encode()
        return (head + f"Content-Length: {len(data)}\r\n\r\n").encode() + data
    return (head + "\r\n").encode()


KEY = {"Authorization": f"Bearer {PUBLISHER_KEY}", "Content-Type": "application/json"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}

# name: (bytes, expected status, a HEAD response (no body follows), events it publishes)
KINDS = {
    "get": (request("GET", "/healthz"), 200, False, 0),
    "head": (request("HEAD", "/healthz"), 200, True, 0),
    "publish": (request("POST", "/v1/events", '{"type":"pipelined"}', KEY), 202, False, 1),
    "batch": (request("POST", "/v1/events", '[{"type":"a"},{"type":"b"}]', KEY), 202, False, 2),
    "no-key": (request("POST", "/v1/events", '{"type":"x"}', {"Content-Type": "application/json"}), 401, False, 0),
    "wrong-type": (request("POST", "/v1/events", "hello", {**KEY, "Content-Type": "text/plain"}), 415, False, 0),
    "bad-json": (request("POST", "/v1/events", '{"type":', KEY), 400, False, 0),
    "pattern-test": (request("POST", "/v1/patterns/test", '{"pattern":{},"event":{}}', {"Content-Type": "application/json"}), 200, False, 0),
    "clients-with-body": (request("GET", "/v1/clients", "ignored", {}), 401, False, 0),
    "delete-with-body": (request("DELETE", "/v1/clients/7", "ignored", {}), 401, False, 0),
    "explain": (request("POST", "/v1/routes/explain", '{"event":{"type":"chat.message"}}', ADMIN), 200, False, 0),
    "not-found": (request("GET", "/v1/nothing-here"), 404, False, 0),
    "put-with-body": (request("PUT", "/healthz", "x"), 405, False, 0),
    "empty-post": (request("POST", "/v1/patterns/test", "", {"Content-Type": "application/json"}), 400, False, 0),
}


def send_pipelined(herald, names):
    """Sends the requests `names` in one write, then a sentinel request; returns the
    responses before the sentinel's. The sentinel's answer coming right after them proves
    that each request was answered exactly once (a repeat would take its place)."""
    sock = herald.connect()
    try:
        sock.sendall(b"".join(KINDS[name][0] for name in names) + request("GET", "/v1/sentinel"))
        reader = ResponseReader(sock, timeout=5)
        responses = [reader.read(head_only=KINDS[name][2]) for name in names]
        sentinel = reader.read()
        assert sentinel is not None and sentinel.status == 404 and b"/v1/sentinel" in sentinel.body, \
            f"after {names}: {responses} then {sentinel}"
        return responses
    finally:
        sock.close()


def test_the_reported_freeze_is_two_answers(herald):
    # The exact write from the issue: GET /healthz then POST /v1/patterns/test.
    data = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /v1/patterns/test HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n"
            b'{"pattern":{},"event":{}}')
    responses, closed = herald.exchange(data, 3, timeout=2)
    assert [r.status for r in responses] == [200, 200]
    assert responses[0].json() == {"status": "ok"} and responses[1].json() == {"match": True}
    assert not closed


def test_two_pipelined_posts_are_ingested_once_each(herald):
    responses = send_pipelined(herald, ["publish", "publish"])
    assert [r.status for r in responses] == [202, 202]
    assert [r.json()["accepted"][0]["seq"] for r in responses] == [1, 2]
    time.sleep(0.5)
    assert herald.stats()["events"]["accepted"] == 2


def test_every_pair_of_requests_in_one_write(herald):
    published = 0
    for first in KINDS:
        for second in KINDS:
            responses = send_pipelined(herald, [first, second])
            assert [r.status for r in responses] == [KINDS[first][1], KINDS[second][1]], f"{first} + {second}: {responses}"
            published += KINDS[first][3] + KINDS[second][3]
    assert herald.stats()["events"]["accepted"] == published


def test_a_hundred_requests_in_one_write(herald):
    rng = random.Random(1041)
    names = [rng.choice(list(KINDS)) for _ in range(100)]
    responses = send_pipelined(herald, names)
    assert [r.status for r in responses] == [KINDS[name][1] for name in names]
    seqs = [entry["seq"] for r, name in zip(responses, names) if KINDS[name][1] == 202 for entry in r.json()["accepted"]]
    expected = sum(KINDS[name][3] for name in names)
    assert seqs == list(range(1, expected + 1)), "in order, each once"
    assert herald.stats()["events"]["accepted"] == expected


def test_a_partial_second_request_waits_for_its_bytes(herald):
    post = KINDS["publish"][0]
    sock = herald.connect()
    try:
        sock.sendall(KINDS["get"][0] + post[:30])
        reader = ResponseReader(sock, timeout=2)
        assert reader.read().status == 200
        assert not reader.fill(time.time() + 0.3), "nothing is answered before the request is whole"
        sock.sendall(post[30:])
        assert reader.read().status == 202
    finally:
        sock.close()


def test_a_body_split_across_writes_with_expect_continue(herald):
    body = json.dumps({"type": "slow", "text": "x" * 5000}).encode()
    head = request("POST", "/v1/events", None, {**KEY, "Expect": "100-continue", "Content-Length": str(len(body))})
    sock = herald.connect()
    try:
        sock.sendall(head)
        reader = ResponseReader(sock, timeout=2)
        assert reader.read().status == 100
        for i in range(0, len(body), 1000):
            sock.sendall(body[i:i + 1000])
            time.sleep(0.01)
        answer = reader.read()
        assert answer.status == 202 and answer.json()["accepted"][0]["seq"] == 1
    finally:
        sock.close()


def test_smuggling_shapes_are_refused_and_close(herald):
    for data in [
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcdGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    ]:
        responses, closed = herald.exchange(data, 2, timeout=2)
        assert len(responses) == 1 and responses[0].status in (400, 501), responses
        assert closed, "nothing after a malformed request is read"
    assert herald.stats()["events"]["accepted"] == 0


def test_connection_close_in_the_middle_ends_the_pipeline(herald):
    data = KINDS["get"][0] + request("GET", "/healthz", None, {"Connection": "close"}) + KINDS["publish"][0]
    responses, closed = herald.exchange(data, 3, timeout=2)
    assert [r.status for r in responses] == [200, 200]
    assert responses[1].header("connection") == "close" and closed
    assert herald.stats()["events"]["accepted"] == 0, "the request after Connection: close is not read"


def test_a_body_over_the_limit_is_refused_before_it_is_read(herald):
    head = request("POST", "/v1/events", None, {**KEY, "Content-Length": str(50 << 20)})
    responses, closed = herald.exchange(head + b"{" * 1000, 2, timeout=2)
    assert [r.status for r in responses] == [413] and responses[0].error_code == "body_too_large" and closed


def test_answers_larger_than_a_write_keep_flowing(herald):
    # Past 64 KiB of answers (one socket write) the rest of the pipeline stalled and the
    # gateway finally answered a request it had already read with 408.
    data = request("GET", "/metrics") * 60 + request("GET", "/v1/sentinel")
    responses, _ = herald.exchange(data, 61, timeout=10, close_wait=0)
    assert [r.status for r in responses] == [200] * 60 + [404]
    assert sum(len(r.body) for r in responses) > 3 * 64 * 1024


def test_large_files_and_the_requests_behind_them(make_herald, public_dir):
    herald = make_herald(publicDirectory=public_dir)
    with open(f"{public_dir}/big.bin", "rb") as f:
        big = f.read()
    assert len(big) > 3 * 1024 * 1024
    data = request("GET", "/big.bin") + request("HEAD", "/big.bin") + request("GET", "/big.bin") + request("GET", "/index.html")
    sock = herald.connect()
    try:
        sock.sendall(data)
        reader = ResponseReader(sock, timeout=20)
        first, head, second, page = reader.read(), reader.read(head_only=True), reader.read(), reader.read()
    finally:
        sock.close()
    assert first.status == 200 and first.body == big
    assert head.status == 200 and head.header("content-length") == str(len(big))
    assert second.body == big and page.body == b"<h1>herald</h1>"


def test_a_file_request_with_a_body_gets_the_file_then_closes(make_herald, public_dir):
    # The body used to replace the file: the head promised 15 bytes that never came.
    herald = make_herald(publicDirectory=public_dir)
    responses, closed = herald.exchange(request("GET", "/index.html", "x") + request("GET", "/healthz"), 2, timeout=3)
    assert [r.status for r in responses] == [200] and responses[0].body == b"<h1>herald</h1>"
    assert responses[0].header("connection") == "close" and closed


def test_empty_lines_before_a_request(herald):
    responses, closed = herald.exchange(b"\r\n\r\n" + request("GET", "/healthz"), 1)
    assert responses[0].status == 200 and not closed, "a client may end a body with an extra CRLF"
    responses, closed = herald.exchange(b"\n" * 9 + request("GET", "/healthz"), 2)
    assert [r.status for r in responses] == [400] and closed, "a stream of empty lines is refused, not kept"


LENIENT_FRAMING = {
    "chunk size ends in LF": b"2\n{}\r\n0\r\n\r\n",
    "chunk data ends in LF": b"2\r\n{}\n0\r\n\r\n",
    "CR in an extension": b"2;a\rb\r\n{}\r\n0\r\n\r\n",
    "trailer ends in LF": b"2\r\n{}\r\n0\r\nX: y\n\r\n",
}


@pytest.mark.parametrize("body", LENIENT_FRAMING.values(), ids=LENIENT_FRAMING.keys())
def test_lenient_chunked_framing_is_refused(herald, body):
    head = (b"POST /v1/patterns/test HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    responses, closed = herald.exchange(head + body + request("GET", "/healthz"), 2, timeout=2)
    assert [r.status for r in responses] == [400] and responses[0].error_code == "bad_request" and closed


def test_an_empty_content_length_is_refused(herald):
    data = request("POST", "/v1/events", None, {**KEY, "Content-Length": ""}) + b'{"type":"x"}'
    responses, closed = herald.exchange(data, 2, timeout=2)
    assert [r.status for r in responses] == [400] and closed
    assert herald.stats()["events"]["accepted"] == 0


@pytest.mark.parametrize("library", ["poll", "libev"])
def test_both_event_libraries_answer_pipelined_posts_and_stream(make_herald, library):
    """listen.eventLibrary: libev (the default, O(ready sockets)) and poll serve the same."""
    from support import ws_connect
    herald = make_herald(listen={"eventLibrary": library})
    ws, _ = ws_connect(herald)
    ws.send_json({"op": "subscribe", "id": "s", "filter": {}})
    assert ws.receive_json()["type"] == "subscribed"
    body = json.dumps({"type": "x"})
    responses, _ = herald.exchange(request("POST", "/v1/events", body, KEY) * 2 + request("GET", "/healthz"), 3)
    assert [r.status for r in responses] == [202, 202, 200]
    assert [ws.receive_json()["seq"] for _ in range(2)] == [1, 2]
    ws.close()
