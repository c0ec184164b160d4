"""Starts the real `herald serve` binary for the API suite (support.Herald), with a
urllib-based request helper that returns (status, body text)."""
import urllib.error
import urllib.request

import pytest

from support import ADMIN_KEY, PUBLISHER_KEY, Herald, sha256  # noqa: F401 (re-exported for the tests)


class Gateway(Herald):
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
        try:
            assert gateway.terminate() == 0
        finally:
            gateway.close()
