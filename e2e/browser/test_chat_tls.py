"""The chat demo over TLS in headless Chromium: the page from https://localhost, its
WebSocket over wss:// and its SSE fallback over https://, against `herald serve` with a
certificate made for the test. Chromium trusts exactly that certificate (by its public
key, `--ignore-certificate-errors-spki-list`), nothing else."""
import base64
import subprocess

import pytest

from conftest import running_gateway, start_chromium, wait_until
from test_chat import ChatTab, report_latency


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def spki_sha256(cert):
    """base64 of the SHA-256 of the certificate's public key: what Chromium pins."""
    public_key = subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"], check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=public_key, check=True, capture_output=True).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der, check=True, capture_output=True).stdout
    return base64.b64encode(digest).decode()


@pytest.fixture
def gateway(certificate):
    yield from running_gateway(tls=certificate)


@pytest.fixture
def driver(certificate):
    chrome = start_chromium([f"--ignore-certificate-errors-spki-list={spki_sha256(certificate[0])}"])
    try:
        yield chrome
    finally:
        chrome.quit()


def test_the_chat_works_over_https_wss_and_sse(driver, gateway, console, screenshot):
    ada = ChatTab(driver, gateway, "ada", new_window=False)
    assert ada.js("return location.protocol") == "https:"
    assert ada.transport() == "websocket"
    assert ada.js("return performance.getEntriesByType('navigation')[0].nextHopProtocol") == "http/1.1"
    bob = ChatTab(driver, gateway, "bob", transport="sse")
    assert bob.transport() == "sse"

    sent_at = ada.send("over wss @bob")
    received = wait_until(lambda: bob.find("over wss @bob"), timeout=5, message="ada's message (wss) in bob's window (SSE)")
    report_latency("wss ada→https SSE bob", received["receivedAt"] - sent_at)
    sent_at = bob.send("over https")
    received = wait_until(lambda: ada.find("over https"), timeout=5, message="bob's message (POST over https) in ada's window")
    report_latency("https bob→wss ada", received["receivedAt"] - sent_at)
    gateway.publish([{"type": "chat.message", "room": "lobby", "from": "deploy-bot", "text": "published over TLS", "mentions": []}])
    for tab in (ada, bob):
        wait_until(lambda: tab.find("published over TLS"), message=f"the backend message in {tab.nick}'s window")
    assert console.severe() == [], "the page logged errors over TLS"
    ada.focus()
    screenshot("chat-tls")
