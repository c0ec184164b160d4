"""Fixtures for the browser tests: the real `herald serve` on a free port with a temporary
config, headless Chromium through chromedriver, and subscribers that make deliveries move.

Environment: HERALD_BIN (default .build/release/herald), CHROMIUM_BIN and CHROMEDRIVER
(default: found on PATH). Screenshots go to test-output/screenshots/.
"""

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
PUBLIC = REPO / "public"
SCREENSHOTS = REPO / "test-output" / "screenshots"
PUBLISHER_KEY = "browser-test-publisher-key"
JWT_SECRET = "browser-test-jwt-secret-of-at-least-32-bytes"
ADMIN_KEY = "browser-test-admin-key"


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def set_offline(driver, offline):
    """Takes the page's network away (or gives it back): its connections fail, as offline."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions",
                           {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})


class GatewayExited(RuntimeError):
    """The gateway process ended while a test waited for it."""


def wait_until(condition, timeout=15.0, every=0.1, message="condition"):
    """Polls `condition` until it returns something truthy; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except GatewayExited:
            raise
        except Exception as error:  # the condition may race a page update
            last_error = error
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}" + (f" (last error: {last_error!r})" if last_error else ""))


class Gateway:
    """One `herald serve` process; stop() and start(port=...) bring it down and back."""

    def __init__(self, binary, workdir, tls=None, extra=None):
        """`tls`: (cert, key) PEM paths: the gateway serves HTTPS and WSS only, reached as
        https://localhost and trusted by requests through `verify`. `extra`: more config
        sections (e.g. `limits`)."""
        self.binary = binary
        self.workdir = Path(workdir)
        self.tls = tls
        self.verify = str(tls[0]) if tls else True
        self.config = self.workdir / "config.json"
        self.port_file = self.workdir / "port"
        self.log_path = self.workdir / "herald.log"
        self.process = None
        self.port = None
        self.config.write_text(json.dumps({
            "listen": {"host": "127.0.0.1", "port": 0},
            "publicDirectory": str(PUBLIC),
            "auth": {
                "anonymous": True,
                "demo": True,  # GET /v1/demo/token: the chat page's tokens
                "jwtSecret": JWT_SECRET,  # so tests can mint tokens of their own (expiry)
                "publisherKeys": [{"name": "t", "sha256": sha256(PUBLISHER_KEY)}],
                "adminKeys": [{"name": "admin", "sha256": sha256(ADMIN_KEY)}],
            },
            "routes": {"chat": {"pattern": {"type": ["chat.message"]}, "description": "chat messages"}},
            "delivery": {"queue": {"maxMessages": 50, "maxBytes": 1048576, "policy": "drop-oldest"}},
            "log": {"level": "warning", "lwsLevel": "none"},
            **({"tls": {"cert": str(tls[0]), "key": str(tls[1])}} if tls else {}),
            **(extra or {}),
        }))

    @property
    def url(self):
        return f"https://localhost:{self.port}" if self.tls else f"http://127.0.0.1:{self.port}"

    def start(self, port=None):
        self.port_file.unlink(missing_ok=True)
        command = [self.binary, "serve", "--config", str(self.config), "--port-file", str(self.port_file)]
        if port:
            command += ["--port", str(port)]
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

        def ready():
            if self.process.poll() is not None:
                raise GatewayExited(f"herald serve exited with {self.process.returncode}")
            text = self.port_file.read_text().strip() if self.port_file.exists() else ""
            return int(text) if text else None

        try:
            self.port = wait_until(ready, timeout=20, message="the port file")
            wait_until(lambda: requests.get(f"{self.url}/healthz", timeout=1, verify=self.verify).status_code == 200,
                       timeout=10, message="/healthz")
        except (AssertionError, GatewayExited) as error:
            self.stop()
            raise AssertionError(f"{error}\n--- herald log ---\n{self.log()}") from None

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else "(no log)"

    def stats(self):
        response = requests.get(f"{self.url}/v1/stats", timeout=5, verify=self.verify)
        response.raise_for_status()
        return response.json()

    def publish(self, events):
        """POSTs a batch (a JSON array) with the test publisher key; returns the answer."""
        response = requests.post(f"{self.url}/v1/events", data=json.dumps(events), timeout=5, verify=self.verify,
                                 headers={"Authorization": f"Bearer {PUBLISHER_KEY}", "Content-Type": "application/json"})
        assert response.status_code == 202, f"{response.status_code} {response.text}"
        return response.json()


def running_gateway(tls=None, extra=None):
    """A started `Gateway` in a temporary directory, stopped when the generator ends."""
    binary = os.environ.get("HERALD_BIN", str(REPO / ".build" / "release" / "herald"))
    if not os.path.isabs(binary):
        binary = str(REPO / binary)
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no herald binary at {binary}: build it (swift build -c release --product herald) or set HERALD_BIN")
    with tempfile.TemporaryDirectory(prefix="herald-browser-") as workdir:
        server = Gateway(binary, workdir, tls=tls, extra=extra)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def gateway():
    yield from running_gateway()


def start_chromium(extra_arguments=()):
    """Headless Chromium through chromedriver (the caller quits it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    chromedriver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"
    if not browser or not os.path.exists(chromedriver):
        pytest.fail("headless Chromium is missing: run scripts/browser-test.sh (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1000", "--hide-scrollbars", "--lang=en-US",
                     "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                     "--disable-backgrounding-occluded-windows", "--no-first-run", "--no-default-browser-check",
                     *extra_arguments):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Both paths are given, so Selenium Manager has nothing to download.
    chrome = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    chrome.set_page_load_timeout(20)
    return chrome


@pytest.fixture
def driver():
    chrome = start_chromium()
    try:
        yield chrome
    finally:
        chrome.quit()


class ConsoleLog:
    """Collects the browser's console (get_log empties it on every read)."""

    def __init__(self, chrome):
        self.chrome = chrome
        self.entries = []

    def read(self):
        self.entries += self.chrome.get_log("browser")
        return self.entries

    def severe(self, allow=()):
        """SEVERE entries, less those whose message contains every part of one of `allow`
        (each a tuple of substrings)."""
        return [e for e in self.read() if e["level"] == "SEVERE"
                and not any(all(part in e["message"] for part in parts) for parts in allow)]


@pytest.fixture
def console(driver):
    return ConsoleLog(driver)


@pytest.fixture
def screenshot(driver):
    """screenshot(name): saves test-output/screenshots/<name>.png of the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name):
        size = driver.get_window_size()
        height = driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)")
        driver.set_window_size(size["width"], max(size["height"], height + 140))  # +browser chrome
        time.sleep(0.3)  # the charts redraw on resize
        path = SCREENSHOTS / f"{name}.png"
        driver.save_screenshot(str(path))
        driver.set_window_size(size["width"], size["height"])
        return path

    return take


class SSESubscriber(threading.Thread):
    """An SSE stream on `query` (e.g. route=chat) that counts the events it receives."""

    def __init__(self, url, query):
        super().__init__(daemon=True)
        self.url = f"{url}/v1/sse?{query}"
        self.events = 0
        self.connected = threading.Event()
        self.response = None

    def run(self):
        try:
            self.response = requests.get(self.url, stream=True, timeout=(5, 60))
            self.connected.set()
            for line in self.response.iter_lines(chunk_size=1):
                if line.startswith(b"data:"):
                    self.events += 1
        except Exception:
            pass  # closed by close()

    def close(self):
        # response.close() waits for the reading thread's next chunk (up to a heartbeat, ~9 s):
        # close in the background; stopping the gateway ends the stream in any case.
        if self.response is not None:
            threading.Thread(target=self.response.close, daemon=True).start()


class WebSocketSubscriber(threading.Thread):
    """A herald.v1 WebSocket with one filter subscription that counts the events it receives."""

    def __init__(self, url, filter):
        super().__init__(daemon=True)
        self.url = url.replace("http://", "ws://") + "/v1/ws"
        self.filter = filter
        self.events = 0
        self.subscribed = threading.Event()
        self.socket = None

    def run(self):
        from websockets.sync.client import connect
        try:
            with connect(self.url, subprotocols=["herald.v1"], open_timeout=5) as socket:
                self.socket = socket
                socket.send(json.dumps({"op": "subscribe", "id": "browser-test", "filter": self.filter}))
                for message in socket:
                    kind = json.loads(message).get("type")
                    if kind == "subscribed":
                        self.subscribed.set()
                    elif kind == "event":
                        self.events += 1
        except Exception:
            pass  # closed by close(), or the test fails on `subscribed`

    def close(self):
        if self.socket is not None:
            self.socket.close()


class StalledWebSocket:
    """A WebSocket client that subscribes and then never reads: its queue in the gateway
    grows once the (deliberately small) socket buffers are full."""

    def __init__(self, port, filter=None, route=None):
        """Subscribes with an ad-hoc `filter`, or through `route` by name."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: herald.v1\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, "the gateway closed the stalled WebSocket during the handshake"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head.decode(errors="replace")
        self.send_text(json.dumps({"op": "subscribe", "id": "stalled", **({"route": route} if route else {"filter": filter})}))

    def send_text(self, text):
        payload = text.encode()
        assert len(payload) < 126
        mask = os.urandom(4)
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def drain(self, seconds):
        """Reads at last, for `seconds`: what waited in its queue is written now, late."""
        self.sock.settimeout(0.2)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                if not self.sock.recv(1 << 20):
                    break
            except socket.timeout:
                pass

    def close(self):
        self.sock.close()


@pytest.fixture
def subscribers(gateway):
    """One SSE stream on route chat and one WebSocket filtering chat.message."""
    sse = SSESubscriber(gateway.url, "route=chat")
    sse.start()
    ws = WebSocketSubscriber(gateway.url, {"type": ["chat.message"]})
    ws.start()
    assert sse.connected.wait(5), "the SSE stream did not open"
    assert ws.subscribed.wait(5), "the WebSocket subscription was not confirmed"
    try:
        yield sse, ws
    finally:
        sse.close()
        ws.close()
