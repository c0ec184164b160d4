"""Protocol edges: what a strict or hostile HTTP/WebSocket peer sends, and the answer it
must get (a JSON error with the right status, or the right close code) — never a dropped
connection, an HTML page or an anonymous stream."""
import json
import os
import random
import time

import pytest

from support import PUBLISHER_KEY, ResponseReader, WebSocket, close_code, frame, ws_connect


def answer(herald, data, timeout=3):
    responses, closed = herald.exchange(data, 1, timeout)
    assert responses, f"no answer to {data[:80]!r}"
    return responses[0], closed


@pytest.mark.parametrize("method", ["BREW", "TRACE", "CONNECT", "PROPFIND"])
def test_unknown_and_unwanted_methods_get_405_json(herald, method):
    response, _ = answer(herald, f"{method} /healthz HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    assert response.status == 405 and response.error_code == "method_not_allowed"
    assert response.header("allow") == "GET, HEAD" and response.header("content-type") == "application/json"


def test_limits_on_the_request_head(herald):
    long_target, closed = answer(herald, b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert long_target.status == 414 and long_target.error_code == "uri_too_long" and closed
    token = "x" * 9000
    big_key, closed = answer(herald, f"POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nContent-Length: 2\r\n\r\n{{}}".encode())
    assert big_key.status == 431 and big_key.error_code == "headers_too_large" and closed
    many = "".join(f"X-H{i}: {'v' * 200}\r\n" for i in range(90))
    big_head, closed = answer(herald, f"GET /healthz HTTP/1.1\r\nHost: t\r\n{many}\r\n".encode())
    assert big_head.status == 431 and closed


def test_a_huge_token_on_sse_is_refused_not_anonymous(herald):
    # Before: a header over 8 KiB was treated as absent, so this opened an anonymous stream.
    response, _ = answer(herald, f"GET /v1/sse?filter=%7B%7D HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {'z' * 9000}\r\n\r\n".encode())
    assert response.status == 431
    response, _ = answer(herald, f"GET /v1/sse?filter=%7B%7D HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {'z' * 4000}\r\n\r\n".encode())
    assert response.status == 401 and response.error_code == "unauthorized"


MALFORMED = [
    (b"GET /%00 HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"GET /a%2 HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(200) + b"\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n", 400),
]


@pytest.mark.parametrize("data,status", MALFORMED, ids=["nul", "percent", "http2", "no-host", "tls-hello", "bad-header"])
def test_malformed_requests_get_a_json_error_and_close(herald, data, status):
    response, closed = answer(herald, data)
    assert response.status == status and response.header("content-type") == "application/json" and closed
    assert response.version == "HTTP/1.1"


def test_demo_nick_with_a_newline_is_refused(herald):
    refused, _ = answer(herald, b"GET /v1/demo/token?nick=ada%0Aevil HTTP/1.1\r\nHost: t\r\n\r\n")
    assert refused.status == 400 and refused.json()["error"]["path"] == "nick"
    accepted, _ = answer(herald, b"GET /v1/demo/token?nick=ada&room=lobby HTTP/1.1\r\nHost: t\r\n\r\n")
    assert accepted.status == 200 and accepted.json()["nick"] == "ada"


def test_static_files_stay_inside_the_directory(make_herald, public_dir):
    herald = make_herald(publicDirectory=public_dir)
    head, _ = answer(herald, b"HEAD /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
    assert head.status == 200 and head.header("content-type") == "text/html; charset=utf-8"
    assert head.header("content-length") == "15" and head.body == b""
    assert herald.get("/alias.html").body == b"<h1>herald</h1>", "a link that stays inside is followed"
    for escape in ["/leak", "/outside/passwd", "/outside/", "/..%2Fetc/passwd", "/.%2E/.%2E/etc/passwd"]:
        response = herald.get(escape)
        assert response.status == 404 and b"root:" not in response.body, escape


def test_a_directory_redirect_stays_on_this_origin(make_herald, public_dir):
    # "//sub" was answered with "Location: //sub/", a link to the host "sub".
    herald = make_herald(publicDirectory=public_dir)
    for path in ["/sub", "//sub", "///sub"]:
        response = herald.get(path)
        assert response.status == 301 and response.header("location") == "/sub/", path
    assert herald.get("/sub/").body == b"<h1>sub</h1>"


def test_a_client_that_stops_reading_is_dropped(make_herald, public_dir):
    herald = make_herald(publicDirectory=public_dir, limits={"sendTimeoutSeconds": 2})
    alone = herald.metric("herald_open_connections")  # the /metrics request itself
    sock = herald.connect(receive_buffer=4096)
    sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n" * 8)
    time.sleep(0.5)
    assert herald.metric("herald_open_connections") == alone + 1
    deadline = time.time() + 6
    while herald.metric("herald_open_connections") > alone and time.time() < deadline:
        time.sleep(0.25)
    assert herald.metric("herald_open_connections") == alone, "a reader of nothing holds its connection"
    sock.close()


def test_refused_upgrades_are_http_1_1_json(herald):
    _, refused = ws_connect(herald, headers={"Authorization": "Bearer not-a-key"})
    assert refused.version == "HTTP/1.1" and refused.status == 401 and refused.error_code == "unauthorized"
    _, wrong_path = ws_connect(herald, path="/v1/elsewhere")
    assert wrong_path.status == 404
    sock = herald.connect()
    sock.sendall(b"GET /v1/ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")
    old = ResponseReader(sock).read()
    assert old.status == 426 and old.header("sec-websocket-version") == "13"
    sock.close()
    _, other = ws_connect(herald, subprotocol="mqtt")
    assert other.status == 400


FRAMING_FAULTS = [
    ("unmasked", frame(1, b'{"op":"ping"}', mask=False), 1002),
    ("rsv1", frame(1, b'{"op":"ping"}', rsv=4), 1002),
    ("reserved opcode", frame(3, b""), 1002),
    ("orphan continuation", frame(0, b"x"), 1002),
    ("invalid UTF-8", frame(1, b"\xc3\x28"), 1007),
    ("oversized while anonymous", frame(1, b"x" * (64 * 1024 + 1)), 1009),
    ("1-byte close", frame(8, b"\x03"), 1002),
]


@pytest.mark.parametrize("name,data,code", FRAMING_FAULTS, ids=[fault[0] for fault in FRAMING_FAULTS])
def test_websocket_framing_faults_close_with_their_code(herald, name, data, code):
    ws, response = ws_connect(herald)
    assert response.status == 101 and response.header("sec-websocket-protocol") == "herald.v1"
    ws.send_raw(data)
    assert ws.expect_close() == code, name
    ws.close()


def test_an_unfinished_websocket_message_times_out(make_herald):
    # Pings kept a fragment alive for ever; enough of them held the input budget and
    # every POST got 503.
    herald = make_herald(limits={"bodyTimeoutSeconds": 1})
    fragment, _ = ws_connect(herald)
    fragment.send_raw(frame(1, b"x" * 10_000, fin=False))
    partial, _ = ws_connect(herald)
    partial.send_raw(frame(1, b'{"op":"ping"}' + b" " * 1000)[:300])
    time.sleep(0.3)
    assert herald.metric("herald_pending_input_bytes") >= 10_000
    for _ in range(4):
        fragment.send_raw(frame(9, b"still here"))
        time.sleep(0.3)
    assert fragment.expect_close(timeout=3) == 1008
    assert partial.expect_close(timeout=3) == 1008
    assert herald.metric("herald_pending_input_bytes") == 0
    fragment.close()
    partial.close()


def test_input_buffered_with_the_upgrade_is_read(herald):
    # A large message in the same write as the handshake left reading paused for ever.
    sock = herald.connect()
    message = frame(1, json.dumps({"op": "ping", "pad": "a" * 199_000}).encode())
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    sock.sendall(f"GET /v1/ws HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {PUBLISHER_KEY}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Protocol: herald.v1\r\n\r\n".encode() + message[:100_000])
    reader = ResponseReader(sock)
    assert reader.read().status == 101
    time.sleep(0.3)
    sock.sendall(message[100_000:])
    ws = WebSocket(sock, reader.buffer)
    assert ws.receive_json(timeout=5)["type"] == "pong"
    ws.close()


def test_websocket_control_frames(herald):
    ws, _ = ws_connect(herald)
    ws.send_raw(frame(2, b"\x00\x01"))
    assert ws.receive_json()["code"] == "invalid_message", "binary is refused, the session stays"
    ws.send_raw(frame(9, b"are you there"))
    assert ws.receive() == (10, b"are you there")
    ws.send_raw(frame(8, b"\x03\xe8bye"))
    assert ws.expect_close() == 1000
    ws.close()


def test_websocket_op_fuzz(herald):
    """Seeded random messages of every shape: each is answered, the session survives.
    (`auth` is left out: a refused token closes the session by design, 1008.)"""
    rng = random.Random(6455)
    ws, _ = ws_connect(herald)
    scalars = [None, True, 0, -1, 1.5, 1e308, "", "x" * 300, "é\u2028", [], {}, [1, [2]], {"a": {"b": []}}]
    ops = ["subscribe", "unsubscribe", "publish", "ping", "presence.join", "presence.leave", "dance", None, 7]
    keys = ["op", "id", "filter", "route", "since", "event", "group", "info", "epoch"]
    for _ in range(300):
        message = {key: rng.choice(scalars) for key in rng.sample(keys, rng.randint(0, 5))}
        if rng.random() < 0.8:
            message["op"] = rng.choice(ops)
        text = json.dumps(message) if rng.random() < 0.9 else json.dumps(message)[: rng.randint(0, 20)]
        ws.send_text(text)
    ws.send_json({"op": "ping"})
    deadline = time.time() + 10
    while time.time() < deadline:
        if ws.receive_json().get("type") == "pong":
            break
    else:
        raise AssertionError("no pong after the fuzzed messages")
    ws.close()


def test_random_request_bytes(herald):
    rng = random.Random(9112)
    pieces = [b"GET", b"POST", b" ", b"/", b"/v1/events", b"HTTP/1.1", b"\r\n", b"\n", b":", b"Host", b"Content-Length: 5",
              b"Transfer-Encoding: chunked", b"\x00", b"\xff", b"%00", b"?a=%", b"0\r\n\r\n", b"{}", b"\t"]
    for _ in range(200):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 30))) + b"\r\n\r\n"
        responses, _ = herald.exchange(data, 1, timeout=1)
        for response in responses:
            assert response.status in (200, 202, 400, 401, 404, 405, 411, 413, 414, 415, 431, 501, 505), (data, response)


def test_slow_and_stalled_clients_time_out(make_herald):
    herald = make_herald(limits={"headTimeoutSeconds": 1, "bodyTimeoutSeconds": 1, "keepAliveSeconds": 1})
    sock = herald.connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
    reader = ResponseReader(sock, timeout=4)
    late = reader.read()
    assert late.status == 408 and late.error_code == "request_timeout" and reader.closed_after(1)
    sock.close()
    sock = herald.connect()
    sock.sendall(b"POST /v1/patterns/test HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    reader = ResponseReader(sock, timeout=4)
    late = reader.read()
    assert late.status == 408 and reader.closed_after(1)
    sock.close()
    sock = herald.connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    reader = ResponseReader(sock, timeout=4)
    assert reader.read().status == 200
    assert reader.closed_after(3.5), "an idle keep-alive connection is closed"
    sock.close()
    # The unsent body of an answered request: the connection closes, with no second answer.
    sock = herald.connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{")
    reader = ResponseReader(sock, timeout=4)
    assert reader.read().status == 200
    assert reader.closed_after(3.5), "no 408 after the 200"
    sock.close()
