"""TLS (`tls.cert`, `tls.key`, `tls.redirectPort`): HTTPS, WSS and SSE through OpenSSL in
libwebsockets, checked with Python's `ssl`, the `websockets` client and `curl --cacert`;
TLS 1.2 at least, never h2; certificate reload on SIGHUP; a plain-HTTP port that
redirects; and what hostile peers do to a TLS port (plaintext, stalled handshakes,
garbage records). Every test ends with the gateway serving over TLS and exiting 0."""
import json
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest
from websockets.sync.client import connect as ws_client

from support import PUBLISHER_KEY, ROOT, ResponseReader, default_config, free_port, ws_connect


def herald_binary():
    return os.environ.get("HERALD_BIN", f"{ROOT}/.build/debug/herald")


def make_certificate(directory, name):
    """A self-signed P-256 certificate for localhost and 127.0.0.1: (cert, key) paths."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key


@pytest.fixture
def certificate(tmp_path):
    return make_certificate(tmp_path, "server")


@pytest.fixture
def secure(make_herald, certificate, tmp_path):
    """A gateway on TLS whose certificate files the test may replace (they are copies)."""
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    cert.write_bytes(certificate[0].read_bytes())
    key.write_bytes(certificate[1].read_bytes())
    redirect = free_port()
    herald = make_herald(ca=str(certificate[0]), tls={"cert": str(cert), "key": str(key), "redirectPort": redirect},
                         listen={"loops": 2})
    herald.redirect_port = redirect
    herald.ca = str(certificate[0])
    return herald


def peer_certificate(port, ca=None):
    context = ssl.create_default_context(cafile=ca) if ca else ssl._create_unverified_context()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            return ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True))


def test_https_wss_and_sse_carry_events_end_to_end(secure):
    ws, response = ws_connect(secure)
    assert response.status == 101
    ws.send_json({"op": "subscribe", "id": "s", "filter": {"type": ["chat.message"]}})
    assert ws.receive_json()["type"] == "subscribed"
    sse = secure.connect()
    sse.sendall(b"GET /v1/sse?filter=%7B%22type%22%3A%5B%22chat.message%22%5D%7D HTTP/1.1\r\nHost: localhost\r\n\r\n")
    sse.settimeout(5)
    head = sse.recv(4096)
    assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head
    with ws_client(f"wss://localhost:{secure.port}/v1/ws", ssl=secure.tls, subprotocols=["herald.v1"]) as library:
        library.send(json.dumps({"op": "subscribe", "id": "lib", "filter": {"type": ["chat.message"]}}))
        assert json.loads(library.recv(timeout=5))["type"] == "subscribed"
        assert secure.publish(json.dumps({"type": "chat.message", "text": "over tls"})).status == 202
        assert json.loads(library.recv(timeout=5))["event"]["text"] == "over tls"
    assert ws.receive_json()["event"]["text"] == "over tls"
    streamed = b""
    while b"over tls" not in streamed:
        chunk = sse.recv(4096)
        assert chunk, "the SSE stream ended before the event"
        streamed += chunk
    sse.close()


def test_curl_with_the_ca_reaches_every_endpoint_and_refuses_without_it(secure):
    base = f"https://localhost:{secure.port}"
    ok = subprocess.run(["curl", "-sS", "--cacert", secure.ca, f"{base}/healthz"], capture_output=True, text=True, timeout=20)
    assert ok.returncode == 0 and json.loads(ok.stdout) == {"status": "ok"}, ok
    posted = subprocess.run(
        ["curl", "-sS", "--cacert", secure.ca, "-H", f"Authorization: Bearer {PUBLISHER_KEY}", "-H", "Content-Type: application/json",
         "--data", '{"type":"chat.message","n":1}', f"{base}/v1/events"], capture_output=True, text=True, timeout=20)
    assert posted.returncode == 0 and json.loads(posted.stdout)["accepted"][0]["seq"] == 1, posted
    untrusted = subprocess.run(["curl", "-sS", f"{base}/healthz"], capture_output=True, text=True, timeout=20)
    assert untrusted.returncode == 60, "curl must not trust a self-signed certificate it was not given"


def test_only_tls_1_2_and_newer_and_only_http_1_1_are_offered(secure):
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(secure.ca)
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", secure.port), timeout=5) as sock:
        with pytest.raises(ssl.SSLError):
            old.wrap_socket(sock, server_hostname="localhost")
    context = ssl.create_default_context(cafile=secure.ca)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", secure.port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            assert tls.selected_alpn_protocol() == "http/1.1"


def test_pipelined_requests_over_tls_are_answered_once_each_in_order(secure):
    post = json.dumps({"type": "chat.message", "n": 1}).encode()
    data = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            + b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {PUBLISHER_KEY}\r\nContent-Length: {len(post)}\r\n\r\n".encode() + post
            + b"GET /v1/stats HTTP/1.1\r\nHost: x\r\n\r\n")
    responses, _ = secure.exchange(data, 4, close_wait=0.3)
    assert [r.status for r in responses] == [200, 202, 200]
    assert responses[2].json()["events"]["accepted"] == 1


def test_plaintext_stalled_and_garbage_peers_on_the_tls_port_are_dropped(secure):
    # Plain HTTP on the TLS port: the handshake fails and the connection closes.
    with socket.create_connection(("127.0.0.1", secure.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
        assert not answer.startswith(b"HTTP/1.1 200")
    # Garbage that looks like a TLS record.
    with socket.create_connection(("127.0.0.1", secure.port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01\xff\xff" + os.urandom(2000))
        try:
            while sock.recv(4096):
                pass
        except ConnectionResetError:
            pass
    # A client that never finishes its handshake is cut off (head timeout), not kept.
    stalled = [socket.create_connection(("127.0.0.1", secure.port), timeout=5) for _ in range(20)]
    stalled[0].sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
    assert secure.get("/healthz").status == 200, "stalled handshakes must not hold up others"
    # Garbage after a completed handshake: a TLS alert, the connection closes.
    tls = secure.connect()
    tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert tls.recv(4096).startswith(b"HTTP/1.1 200")
    raw_socket = socket.socket(fileno=os.dup(tls.fileno()))  # under the TLS layer: a forged record
    raw_socket.sendall(b"\x17\x03\x03\x00\x20" + os.urandom(32))
    raw_socket.settimeout(5)
    try:
        while raw_socket.recv(4096):
            pass
    except (ConnectionResetError, TimeoutError, socket.timeout):
        pass
    raw_socket.close()
    tls.close()
    for sock in stalled:
        sock.close()


def test_a_stalled_handshake_is_closed_after_the_head_timeout(make_herald, certificate):
    herald = make_herald(ca=str(certificate[0]), tls={"cert": str(certificate[0]), "key": str(certificate[1])},
                         limits={"headTimeoutSeconds": 1})
    with socket.create_connection(("127.0.0.1", herald.port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01")
        started = time.time()
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        assert closed and time.time() - started < 4, "a stalled TLS handshake must be closed"


def test_the_redirect_port_sends_every_request_to_https(secure):
    with socket.create_connection(("127.0.0.1", secure.redirect_port), timeout=5) as sock:
        sock.sendall(b"GET /v1/stats?x=1 HTTP/1.1\r\nHost: localhost:9\r\n\r\n"
                     b"POST /v1/events HTTP/1.1\r\nHost: [::1]\r\nContent-Length: 2\r\n\r\n{}"
                     b"GET / HTTP/1.1\r\nHost: evil\r\n\x20bad\r\n\r\n")
        reader = ResponseReader(sock)
        first, second = reader.read(), reader.read()
    assert first.status == 308 and first.header("location") == f"https://localhost:{secure.port}/v1/stats?x=1"
    assert json.loads(first.body) == {"location": f"https://localhost:{secure.port}/v1/stats?x=1"}
    assert second.status == 308 and second.header("location") == f"https://[::1]:{secure.port}/v1/events"
    for host in ["a\"b", "", "x y"]:
        with socket.create_connection(("127.0.0.1", secure.redirect_port), timeout=5) as sock:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            answer = ResponseReader(sock).read()
        assert answer.status == 400, host
    assert secure.publish(json.dumps({"type": "chat.message"})).status == 202, "nothing the redirect port saw was accepted"
    assert secure.stats()["events"]["accepted"] == 1


def test_sighup_reloads_the_certificate_for_new_connections_and_keeps_open_ones(secure, tmp_path):
    before = peer_certificate(secure.port, secure.ca)
    ws, response = ws_connect(secure)
    assert response.status == 101
    ws.send_json({"op": "subscribe", "id": "s", "filter": {"type": ["chat.message"]}})
    assert ws.receive_json()["type"] == "subscribed"
    cert, key = make_certificate(tmp_path, "next")
    (tmp_path / "live.pem").write_bytes(cert.read_bytes())
    (tmp_path / "live.key").write_bytes(key.read_bytes())
    secure.process.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while peer_certificate(secure.port) == before:
        assert time.time() < deadline, "the new certificate was not served"
        time.sleep(0.1)
    assert "BEGIN CERTIFICATE" in peer_certificate(secure.port, str(cert)), "new connections verify against the new certificate"
    secure.tls = ssl.create_default_context(cafile=str(cert))
    assert secure.publish(json.dumps({"type": "chat.message", "n": 1})).status == 202
    assert ws.receive_json()["event"]["n"] == 1, "a connection made before the reload still works"
    # A broken key is refused: the certificate in use stays, the failure is counted.
    (tmp_path / "live.key").write_text("not a key\n")
    secure.process.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while secure.metric("herald_tls_certificate_reloads_total", result="failed") != 1:
        assert time.time() < deadline, "the failed reload was not counted"
        time.sleep(0.1)
    assert secure.metric("herald_tls_certificate_reloads_total", result="ok") == 1
    assert "BEGIN CERTIFICATE" in peer_certificate(secure.port, str(cert))
    assert "TLS certificate not reloaded" in secure.log_text()


@pytest.mark.parametrize("case, message", [
    ("missing", "tls.cert"),
    ("mismatched", "does not belong to the certificate"),
    ("garbage", "tls.cert"),
])
def test_a_bad_certificate_stops_startup_with_its_reason(tmp_path, certificate, case, message):
    other = make_certificate(tmp_path, "other")
    cert, key = {
        "missing": (tmp_path / "absent.pem", certificate[1]),
        "mismatched": (certificate[0], other[1]),
        "garbage": (tmp_path / "garbage.pem", certificate[1]),
    }[case]
    (tmp_path / "garbage.pem").write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(default_config(tls={"cert": str(cert), "key": str(key)})))
    binary = herald_binary()
    result = subprocess.run([binary, "serve", "--config", str(path), "--host", "127.0.0.1", "--port", "0"],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode != 0 and message in result.stdout + result.stderr, result


@pytest.mark.parametrize("tls, message", [
    ({"cert": "a.pem"}, "$.tls.key: is required"),
    ({"key": "a.key"}, "$.tls.cert: is required"),
    ({"cert": ["a.pem"], "key": "a.key"}, "$.tls.cert: must be a string"),
    ({"cert": "a.pem", "key": "a.key", "redirectPort": 0}, "$.tls.redirectPort: must be an integer in 1...65535"),
    ({"cert": "a.pem", "key": "a.key", "redirectPort": 8080}, "$.tls.redirectPort: must differ from listen.port"),
    ({"cert": "a.pem", "key": "a.key", "ca": "x"}, "$.tls.ca: unknown key"),
    ("yes", "$.tls: must be an object"),
])
def test_tls_config_errors_are_named(tmp_path, tls, message):
    path = tmp_path / "config.json"
    config = default_config(tls=tls)
    config["listen"] = {"port": 8080}
    path.write_text(json.dumps(config))
    binary = herald_binary()
    result = subprocess.run([binary, "check-config", str(path)], capture_output=True, text=True, timeout=20)
    assert result.returncode != 0 and message in result.stdout + result.stderr, result


def test_herald_publish_speaks_https_with_the_given_ca_and_refuses_otherwise(secure):
    event = json.dumps({"type": "chat.message", "n": 7})

    def publish(*args):
        return subprocess.run([herald_binary(), "publish", "--key", PUBLISHER_KEY, *args], input=event,
                              capture_output=True, text=True, timeout=30)

    ok = publish("--url", f"https://localhost:{secure.port}", "--cacert", secure.ca)
    assert ok.returncode == 0 and json.loads(ok.stdout)["accepted"][0]["seq"] == 1, ok
    by_address = publish("--url", f"https://127.0.0.1:{secure.port}", "--cacert", secure.ca)
    assert by_address.returncode == 0, by_address
    untrusted = publish("--url", f"https://localhost:{secure.port}")
    assert untrusted.returncode == 2 and "certificate verify failed" in untrusted.stderr, untrusted
    plain = publish("--url", f"http://localhost:{secure.port}", "--cacert", secure.ca)
    assert plain.returncode == 2 and "--cacert needs an https:// URL" in plain.stderr, plain
    missing = publish("--url", f"https://localhost:{secure.port}", "--cacert", "/nonexistent/ca.pem")
    assert missing.returncode == 2 and "/nonexistent/ca.pem" in missing.stderr, missing
    assert secure.stats()["events"]["accepted"] == 2, "only the trusted publishes were accepted"


def test_herald_bench_measures_a_tls_gateway_over_wss_and_https(secure):
    def bench(*args):
        return subprocess.run([herald_binary(), "bench", "--url", f"https://localhost:{secure.port}", "--key", PUBLISHER_KEY,
                               *args], capture_output=True, text=True, timeout=120)

    for transport in ("ws", "sse"):
        run = bench("--cacert", secure.ca, "--transport", transport, "--subscribers", "20", "--routed", "--batch", "1",
                    "--events", "200", "--sources", "2", "--json")
        assert run.returncode == 0, run.stderr + run.stdout
        report = json.loads(run.stdout)
        assert report["delivered"] == report["expected"] == 200 and report["lost"] == 0 and report["failures"] == []
    # A large batch crosses many TLS records on one publisher connection.
    big = bench("--cacert", secure.ca, "--subscribers", "2", "--batch", "100", "--events", "2000", "--json")
    assert big.returncode == 0 and json.loads(big.stdout)["delivered"] == 4000, big.stderr
    untrusted = bench("--subscribers", "1", "--events", "10")
    assert untrusted.returncode != 0 and "certificate verify failed" in untrusted.stderr, untrusted
    plain = subprocess.run([herald_binary(), "bench", "--url", "http://127.0.0.1:1", "--key", "k", "--cacert", secure.ca],
                           capture_output=True, text=True, timeout=30)
    assert plain.returncode != 0 and "--cacert needs an https:// or wss:// URL" in plain.stderr, plain
    assert secure.get("/healthz").status == 200
