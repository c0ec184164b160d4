"""Starts the real `herald serve` binary for end-to-end tests written in Python."""
import hashlib
import json
import os
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PUBLISHER_KEY = "e2e-publisher-key"
ADMIN_KEY = "e2e-admin-key"


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


class Gateway:
    def __init__(self, config):
        binary = os.environ.get("HERALD_BIN", os.path.join(ROOT, ".build/debug/herald"))
        self.dir = tempfile.TemporaryDirectory()
        config_path = os.path.join(self.dir.name, "config.json")
        port_path = os.path.join(self.dir.name, "port")
        with open(config_path, "w") as f:
            json.dump(config, f)
        self.process = subprocess.Popen(
            [binary, "serve", "--config", config_path, "--host", "127.0.0.1", "--port", "0", "--port-file", port_path],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while not os.path.exists(port_path) or not open(port_path).read().strip():
            if time.time() > deadline or self.process.poll() is not None:
                raise RuntimeError("herald did not start")
            time.sleep(0.05)
        self.port = int(open(port_path).read())
        self.base = f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, headers=None):
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def publish(self, body):
        return self.request("POST", "/v1/events", body,
                            {"Authorization": f"Bearer {PUBLISHER_KEY}", "Content-Type": "application/json"})

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        finally:
            self.dir.cleanup()


@pytest.fixture
def make_gateway():
    started = []

    def make(**overrides):
        config = {
            "publicDirectory": None,
            "auth": {"anonymous": True,
                     "publisherKeys": [{"name": "e2e", "sha256": sha256(PUBLISHER_KEY)}],
                     "adminKeys": [{"name": "admin", "sha256": sha256(ADMIN_KEY)}]},
            "routes": {"chat": {"pattern": {"type": ["chat.message"]}}},
            "log": {"level": "warning", "lwsLevel": "none"},
        }
        config.update(overrides)
        gateway = Gateway(config)
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        gateway.stop()
