"""Shared by the Python end-to-end suites: the real `herald serve` on an ephemeral port,
raw-socket HTTP and WebSocket helpers, JWTs, and process measurements.

Nothing here needs a third-party package, so the hostile suite tests exactly what goes
over the wire.
"""
import base64
import hashlib
import hmac
import json
import os
import resource
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLISHER_KEY = "e2e-publisher-key"
ADMIN_KEY = "e2e-admin-key"
JWT_SECRET = "e2e-jwt-secret-that-is-at-least-32-bytes-long"


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def default_config(**overrides):
    """The shipped config's shape (anonymous subscribers, demo tokens, a publisher key)
    on loopback, with keys the tests know."""
    config = {
        "publicDirectory": None,
        "auth": {
            "anonymous": True,
            "demo": True,
            "jwtSecret": JWT_SECRET,
            "publisherKeys": [{"name": "e2e", "sha256": sha256(PUBLISHER_KEY)}],
            "adminKeys": [{"name": "admin", "sha256": sha256(ADMIN_KEY)}],
        },
        "routes": {"chat": {"pattern": {"type": ["chat.message"]}}},
        "log": {"level": "warning", "lwsLevel": "none"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def herald_binary_path():
    """The gateway under test: $HERALD_BIN, else the debug build."""
    return os.environ.get("HERALD_BIN", os.path.join(ROOT, ".build/debug/herald"))


class Herald:
    """One `herald serve` process on 127.0.0.1 and a port the kernel chose."""

    def __init__(self, config, max_files=None, ca=None):
        """`max_files` caps the process's open descriptors (RLIMIT_NOFILE); with `ca` (a
        PEM file) every connection speaks TLS to a gateway configured with `tls`,
        verifying its certificate for "localhost"."""
        self.tls = ssl.create_default_context(cafile=ca) if ca else None
        binary = herald_binary_path()
        self.dir = tempfile.TemporaryDirectory()
        config_path = os.path.join(self.dir.name, "config.json")
        port_path = os.path.join(self.dir.name, "port")
        self.log_path = os.path.join(self.dir.name, "herald.log")
        with open(config_path, "w") as f:
            json.dump(config, f)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [binary, "serve", "--config", config_path, "--host", "127.0.0.1", "--port", "0", "--port-file", port_path],
            stdout=self.log, stderr=subprocess.STDOUT,
            preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files))) if max_files else None)
        deadline = time.time() + 20
        while not os.path.exists(port_path) or not open(port_path).read().strip():
            if time.time() > deadline or self.process.poll() is not None:
                raise RuntimeError("herald did not start:\n" + self.log_text())
            time.sleep(0.05)
        self.port = int(open(port_path).read())
        self.base = f"{'https' if ca else 'http'}://127.0.0.1:{self.port}"

    def log_text(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    # MARK: HTTP over one raw socket

    def connect(self, timeout=5.0, receive_buffer=None):
        """A TCP connection to the gateway; `receive_buffer` shrinks the kernel's buffer
        (a client that reads slowly then holds up the gateway's writes quickly)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.tls.wrap_socket(sock, server_hostname="localhost") if self.tls else sock

    def exchange(self, data, responses, timeout=5.0, close_wait=0.3):
        """Sends `data` in one write and reads `responses` HTTP responses (fewer if the
        server closes). Returns (responses, closed) where closed tells whether the server
        closed the connection within `close_wait` seconds after them."""
        sock = self.connect(timeout)
        try:
            sock.sendall(data)
            reader = ResponseReader(sock, timeout)
            out = []
            for _ in range(responses):
                response = reader.read()
                if response is None:
                    break
                out.append(response)
            return out, reader.closed_after(close_wait) if close_wait else reader.eof
        finally:
            sock.close()

    def get(self, path, headers=None, timeout=5.0):
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        found, _ = self.exchange(f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode(), 1, timeout, close_wait=0)
        assert found, f"no answer to GET {path}"
        return found[0]

    def post(self, path, body, headers=None, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        found, _ = self.exchange(
            f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {len(data)}\r\n{extra}\r\n".encode() + data, 1,
            close_wait=0)
        assert found, f"no answer to POST {path}"
        return found[0]

    def publish(self, body, key=PUBLISHER_KEY):
        return self.post("/v1/events", body, {"Authorization": f"Bearer {key}"} if key else None)

    def metrics(self):
        """The Prometheus samples as {(name, frozenset(labels)): value}."""
        text = self.get("/metrics").text
        samples = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name_labels, value = line.rsplit(" ", 1)
            if "{" in name_labels:
                name, labels = name_labels.split("{", 1)
                pairs = frozenset(tuple(p.split("=", 1)) for p in labels.rstrip("}").replace('"', "").split(",") if p)
            else:
                name, pairs = name_labels, frozenset()
            samples[(name, pairs)] = float(value)
        return samples

    def metric(self, name, **labels):
        return self.metrics().get((name, frozenset(labels.items())))

    def stats(self):
        return json.loads(self.get("/v1/stats").body)

    # MARK: process

    def cpu_seconds(self):
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kb(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def assert_serving_and_idle(self):
        """The gateway answers /healthz promptly and its loop is not spinning."""
        response = self.get("/healthz", timeout=3)
        assert response.status == 200 and json.loads(response.body) == {"status": "ok"}
        before = self.cpu_seconds()
        time.sleep(0.5)
        spent = self.cpu_seconds() - before
        assert spent < 0.25, f"the loop used {spent:.2f} s of CPU in 0.5 s while idle"

    def terminate(self, timeout=5.0):
        """SIGTERM; returns the exit code; fails when the process does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("herald did not exit within 5 s of SIGTERM")
        return self.process.returncode

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()
        self.dir.cleanup()


class Response:
    def __init__(self, status, reason, headers, body, version):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.version = version

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    @property
    def error_code(self):
        try:
            return self.json()["error"]["code"]
        except Exception:
            return None

    def __repr__(self):
        return f"<{self.status} {self.body[:120]!r}>"


class ResponseReader:
    """Reads HTTP/1.1 responses one after another from a socket (Content-Length bodies,
    bodiless 1xx/204/304, and HEAD when told)."""

    def __init__(self, sock, timeout=5.0):
        self.sock = sock
        self.buffer = b""
        self.timeout = timeout
        self.eof = False

    def fill(self, deadline):
        if self.eof:
            return False
        self.sock.settimeout(max(0.01, deadline - time.time()))
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionResetError, ssl.SSLError):  # a TLS peer's abrupt close too
            data = b""
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def read(self, head_only=False):
        deadline = time.time() + self.timeout
        while b"\r\n\r\n" not in self.buffer:
            if not self.fill(deadline):
                return None
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_only or int(status) in (100, 101, 204, 304) else int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if not self.fill(deadline):
                break
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Response(int(status), reason, headers, body, version)

    def closed_after(self, wait):
        """True when the peer closed the connection within `wait` seconds (and sent
        nothing more)."""
        deadline = time.time() + wait
        while not self.eof and time.time() < deadline:
            if self.fill(deadline) and self.buffer:
                return False
        return self.eof


# MARK: WebSocket over a raw socket


def ws_connect(herald, path="/v1/ws", headers=None, subprotocol="herald.v1", timeout=5.0, receive_buffer=None):
    """Opens a WebSocket with a hand-written handshake; returns (socket, response)."""
    sock = herald.connect(timeout, receive_buffer)
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    if subprotocol:
        extra += f"Sec-WebSocket-Protocol: {subprotocol}\r\n"
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n".encode())
    reader = ResponseReader(sock, timeout)
    response = reader.read()
    return WebSocket(sock, reader.buffer), response


def frame(opcode, payload, mask=True, fin=True, rsv=0):
    """One client frame (masked unless told otherwise)."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", first, (0x80 if mask else 0) | length)
    elif length < 65536:
        head = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, length)
    else:
        head = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class WebSocket:
    def __init__(self, sock, buffered=b""):
        self.sock = sock
        self.buffer = buffered

    def send_text(self, text):
        self.sock.sendall(frame(1, text.encode() if isinstance(text, str) else text))

    def send_json(self, value):
        self.send_text(json.dumps(value))

    def send_raw(self, data):
        self.sock.sendall(data)

    def _need(self, n, deadline):
        while len(self.buffer) < n:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                raise TimeoutError("no WebSocket frame in time")
            if not data:
                raise EOFError("connection closed")
            self.buffer += data

    def receive(self, timeout=5.0):
        """The next frame as (opcode, payload); server frames are unmasked."""
        deadline = time.time() + timeout
        self._need(2, deadline)
        opcode = self.buffer[0] & 0x0F
        length = self.buffer[1] & 0x7F
        offset = 2
        if length == 126:
            self._need(4, deadline)
            length = struct.unpack("!H", self.buffer[2:4])[0]
            offset = 4
        elif length == 127:
            self._need(10, deadline)
            length = struct.unpack("!Q", self.buffer[2:10])[0]
            offset = 10
        self._need(offset + length, deadline)
        payload = self.buffer[offset:offset + length]
        self.buffer = self.buffer[offset + length:]
        return opcode, payload

    def receive_json(self, timeout=5.0):
        """The next text message as JSON, skipping pings."""
        while True:
            opcode, payload = self.receive(timeout)
            if opcode == 1:
                return json.loads(payload)
            if opcode == 8:
                raise EOFError(f"closed with {close_code(payload)}")

    def expect_close(self, timeout=5.0):
        """Reads until a close frame; returns its code (skipping other frames)."""
        while True:
            opcode, payload = self.receive(timeout)
            if opcode == 8:
                return close_code(payload)

    def close(self):
        self.sock.close()


def close_code(payload):
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


# MARK: JWTs


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims, secret=JWT_SECRET):
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64url(signature)}"


def open_websockets(herald, count, timeout=60.0):
    """Opens `count` WebSockets at once (non-blocking handshakes); returns their sockets."""
    import selectors
    selector = selectors.DefaultSelector()
    request = (b"GET /v1/ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    pending = {}
    opened = []
    deadline = time.time() + timeout
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", herald.port))
        selector.register(sock, selectors.EVENT_WRITE)
        pending[sock] = b""
    while pending:
        if time.time() > deadline:
            raise TimeoutError(f"{len(pending)} of {count} WebSockets did not open")
        for key, events in selector.select(timeout=1):
            sock = key.fileobj
            if events & selectors.EVENT_WRITE:
                sock.send(request)
                selector.modify(sock, selectors.EVENT_READ)
                continue
            data = sock.recv(4096)
            if not data:
                raise EOFError("a WebSocket handshake was refused")
            pending[sock] += data
            if b"\r\n\r\n" in pending[sock]:
                assert pending[sock].startswith(b"HTTP/1.1 101"), pending[sock][:60]
                selector.unregister(sock)
                del pending[sock]
                opened.append(sock)
    selector.close()
    return opened


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Redis:
    """Debian's `redis-server` on a free loopback port, durable (appendonly, fsync always),
    in a directory of its own: `restart()` keeps its data, `kill()` is a crash."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.process = None
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            ["/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir.name,
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.command("PING") == b"+PONG\r\n":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def command(self, *words):
        """One command in RESP; the raw reply (None when Redis cannot be reached)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                parts = [f"*{len(words)}\r\n".encode()]
                for word in words:
                    data = word.encode() if isinstance(word, str) else word
                    parts.append(f"${len(data)}\r\n".encode() + data + b"\r\n")
                sock.sendall(b"".join(parts))
                return sock.recv(65536)
        except OSError:
            return None

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self, down_seconds=0.0):
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def close(self):
        self.stop(signal.SIGKILL)
        self.dir.cleanup()
