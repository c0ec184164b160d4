"""Rights: what a token or key may publish, see and keep doing.

Before: a demo token for mallory in lobby could post into room secret, speak as ada and
forge presence by putting arrays where strings belong; a publisher key could send
HERALD.* types; presence lists ignored token scope; an expired token kept working; and a
WebSocket publish re-encoded numbers through doubles.
"""
import json
import time

import pytest

from support import PUBLISHER_KEY, ResponseReader, jwt, ws_connect


def demo_token(herald, nick="mallory", room="lobby"):
    return herald.get(f"/v1/demo/token?nick={nick}&room={room}").json()["token"]


FORBIDDEN_EVENTS = [
    ({"type": "chat.message", "from": "mallory", "room": ["lobby", "secret"], "text": "x"}, "forbidden"),
    ({"type": "chat.message", "from": ["mallory", "ada"], "room": "lobby", "text": "x"}, "forbidden"),
    ({"type": ["chat.message", "herald.presence"], "from": "mallory", "room": "lobby"}, "invalid_event"),
    ({"type": "chat.message", "from": "mallory", "room": {"name": "lobby"}}, "forbidden"),
    ({"type": "herald.presence", "group": "chat:lobby", "info": {"nick": "mallory"}}, "forbidden"),
    ({"type": "HERALD.Presence", "group": "chat:lobby"}, "forbidden"),
]


@pytest.mark.parametrize("event,code", FORBIDDEN_EVENTS)
def test_a_demo_token_cannot_widen_its_rights_over_websocket(herald, event, code):
    ws, _ = ws_connect(herald, path=f"/v1/ws?token={demo_token(herald)}")
    ws.send_json({"op": "publish", "event": event})
    reply = ws.receive_json()
    assert reply["type"] == "error" and reply["code"] == code, reply
    ws.send_json({"op": "publish", "event": {"type": "chat.message", "from": "mallory", "room": "lobby", "text": "ok"}})
    assert ws.receive_json()["type"] == "published", "what the token allows still works"
    ws.close()
    assert herald.stats()["events"]["accepted"] == 1


@pytest.mark.parametrize("event,code", FORBIDDEN_EVENTS)
def test_a_demo_token_cannot_widen_its_rights_over_http(herald, event, code):
    response = herald.publish(json.dumps(event), key=demo_token(herald))
    assert response.status == (403 if code == "forbidden" else 400) and response.error_code == code


def test_presence_info_is_a_permission_too(herald):
    ws, _ = ws_connect(herald, path=f"/v1/ws?token={demo_token(herald)}")
    ws.send_json({"op": "presence.join", "group": "chat:lobby", "info": {"nick": ["mallory", "ada"]}})
    assert ws.receive_json()["code"] == "forbidden"
    ws.send_json({"op": "presence.join", "group": "chat:lobby", "info": {"nick": "mallory"}})
    assert ws.receive_json()["type"] == "presence.joined"
    ws.close()


def test_publisher_keys_cannot_send_reserved_types_in_any_case(herald):
    for event in [{"type": "herald.presence"}, {"type": "HERALD.x"}, {"type": "ok", "eventType": "Herald.gap"},
                  {"detail-type": "herald.presence"}]:
        response = herald.publish(json.dumps(event))
        assert response.status == 403 and response.error_code == "forbidden", event
    batch = herald.publish(json.dumps([{"type": "fine"}, {"type": "herald.presence"}]))
    assert batch.status == 403 and batch.json()["error"]["index"] == 1
    assert herald.stats()["events"]["accepted"] == 0, "nothing of a refused batch is kept"


def test_presence_lists_obey_the_token_scope(make_herald):
    herald = make_herald(auth={"anonymous": False})
    joiners = []
    for room, nick in [("a", "ada"), ("b", "bob")]:
        ws, _ = ws_connect(herald, path=f"/v1/ws?token={PUBLISHER_KEY}")
        ws.send_json({"op": "presence.join", "group": f"chat:{room}", "info": {"nick": nick}})
        assert ws.receive_json()["type"] == "presence.joined"
        joiners.append(ws)
    scoped = jwt({"sub": "carol", "exp": int(time.time()) + 600, "herald.scope": {"group": ["chat:a"]}})
    headers = {"Authorization": f"Bearer {scoped}"}
    mine = herald.get("/v1/presence/chat:a", headers=headers).json()
    assert [m["info"] for m in mine["members"]] == [{"nick": "ada"}] and mine["count"] == 1
    other = herald.get("/v1/presence/chat:b", headers=headers).json()
    assert other["members"] == [] and other["count"] == 0, "members outside the scope are not listed"
    assert herald.get("/v1/presence/chat:b").status == 401, "no token, no list, when anonymous access is off"
    assert len(herald.get("/v1/presence/chat:b", headers={"Authorization": f"Bearer {PUBLISHER_KEY}"}).json()["members"]) == 1
    for ws in joiners:
        ws.close()


def test_an_expired_token_ends_the_session(herald):
    # exp is checked with 30 s of leeway: this token passes it two seconds from now.
    soon = jwt({"sub": "ada", "exp": int(time.time()) - 28, "herald.publish": {"type": ["chat.message"]}})
    ws, response = ws_connect(herald, path=f"/v1/ws?token={soon}")
    assert response.status == 101
    ws.send_json({"op": "subscribe", "id": "s", "filter": {}})
    assert ws.receive_json()["type"] == "subscribed"
    error = ws.receive_json(timeout=6)
    assert error["type"] == "error" and error["code"] == "token_expired"
    assert ws.expect_close() == 4001
    ws.close()


def test_renewing_the_token_in_time_keeps_the_session(herald):
    soon = jwt({"sub": "ada", "exp": int(time.time()) - 28})
    ws, _ = ws_connect(herald, path=f"/v1/ws?token={soon}")
    later = jwt({"sub": "ada", "exp": int(time.time()) + 600})
    ws.send_json({"op": "auth", "token": later})
    renewed = ws.receive_json()
    assert renewed["type"] == "authenticated" and renewed["expiresAt"] > time.time()
    time.sleep(3.5)
    ws.send_json({"op": "ping"})
    assert ws.receive_json() == {"type": "pong"}
    ws.close()


def test_an_expired_token_ends_an_sse_stream(herald):
    soon = jwt({"sub": "ada", "exp": int(time.time()) - 28})
    sock = herald.connect()
    sock.sendall(f"GET /v1/sse?filter=%7B%7D HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {soon}\r\n\r\n".encode())
    reader = ResponseReader(sock, timeout=6)
    head = reader.read(head_only=True)
    assert head.status == 200 and head.header("content-type") == "text/event-stream"
    assert reader.closed_after(6), "the stream ends once the token expired"
    sock.close()


def test_websocket_publish_keeps_the_bytes(herald):
    sub, _ = ws_connect(herald)
    sub.send_json({"op": "subscribe", "id": "s", "filter": {"type": ["exact"]}})
    assert sub.receive_json()["type"] == "subscribed"
    pub, _ = ws_connect(herald, path=f"/v1/ws?token={PUBLISHER_KEY}")
    pub.send_text('{"op":"publish","event":{"type":"exact","big":12345678901234567,"f":1.50,"s":"\\u00e9"}}')
    assert pub.receive_json()["type"] == "published"
    opcode, payload = sub.receive()
    assert b'"event":{"type":"exact","big":12345678901234567,"f":1.50,"s":"\\u00e9"}' in payload, payload
    pub.send_text('{"op":"publish","event":{"type":"exact","e":1e400}}')
    refused = pub.receive_json()
    # The whole message is not valid JSON for Herald, so the WebSocket says invalid_message.
    assert refused["code"] == "invalid_message" and "number out of range" in refused["message"]
    http = herald.publish('{"type":"exact","e":1e400}')
    assert http.status == 400 and http.error_code == "invalid_json" and "number out of range" in http.json()["error"]["message"]
    assert herald.stats()["events"]["accepted"] == 1
    # Binary-mode CloudEvents embed their JSON data as sent too.
    binary = herald.post("/v1/events", '{"big": 12345678901234567, "f": 2.50}', content_type="application/json", headers={
        "Authorization": f"Bearer {PUBLISHER_KEY}", "ce-specversion": "1.0", "ce-id": "b1", "ce-source": "/t", "ce-type": "exact"})
    assert binary.status == 202
    opcode, payload = sub.receive()
    assert b'"data":{"big":12345678901234567,"f":2.50}' in payload, payload
    sub.close()
    pub.close()


BILLING_KEY = "billing-service-key"


def keyed_herald(make_herald):
    """A gateway with the test's unrestricted key and a `billing` key that may publish
    only `billing.*` events from team `billing`."""
    from support import sha256
    herald = make_herald(auth={"publisherKeys": [
        {"name": "e2e", "sha256": sha256(PUBLISHER_KEY)},
        {"name": "billing", "sha256": sha256(BILLING_KEY),
         "publish": {"type": [{"prefix": "billing."}], "team": ["billing"]}},
    ]})
    return herald


@pytest.mark.parametrize("batch, index", [
    ([{"type": "billing.paid", "team": "billing"}, {"type": "chat.message", "team": "billing"}], 1),
    ([{"type": "billing.paid", "team": ["billing", "payroll"]}], None),  # every value must satisfy it
    ([{"type": "billing.paid"}], None),  # a constrained path the event lacks
    ([{"type": "billing.paid", "team": "billing"}] * 3 + [{"type": "billing.x", "team": ["billing", "ops"]}], 3),
])
def test_a_key_publishes_only_what_its_pattern_permits_and_nothing_of_a_refused_batch(make_herald, batch, index):
    herald = keyed_herald(make_herald)
    refused = herald.publish(json.dumps(batch if len(batch) > 1 else batch[0]), key=BILLING_KEY)
    assert refused.status == 403, refused
    error = refused.json()["error"]
    assert error["code"] == "forbidden" and '"billing"' in error["message"], error
    assert error.get("index") == index
    assert herald.stats()["events"]["accepted"] == 0, "nothing of a refused batch is kept"
    ok = herald.publish(json.dumps([{"type": "billing.paid", "team": "billing", "n": 1}]), key=BILLING_KEY)
    assert ok.status == 202
    assert herald.publish(json.dumps({"type": "chat.message"})).status == 202, "the unrestricted key is unchanged"
    assert herald.metric("herald_ingest_events_total", key="billing") == 1
    assert herald.metric("herald_ingest_events_total", key="e2e") == 1


def test_a_restricted_key_over_websocket_and_in_pipelined_requests(make_herald):
    herald = keyed_herald(make_herald)
    ws, response = ws_connect(herald, headers={"Authorization": f"Bearer {BILLING_KEY}"})
    assert response.status == 101
    ws.send_json({"op": "publish", "event": {"type": "chat.message", "team": "billing"}})
    reply = ws.receive_json()
    assert reply["type"] == "error" and reply["code"] == "forbidden" and '"billing"' in reply["message"], reply
    ws.send_json({"op": "publish", "event": {"type": "billing.refund", "team": "billing"}})
    assert ws.receive_json()["type"] == "published"
    ws.close()
    good, bad = json.dumps({"type": "billing.paid", "team": "billing"}), json.dumps({"type": "ops.deploy", "team": "billing"})
    def post(body):
        return (f"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {BILLING_KEY}\r\nContent-Length: {len(body)}\r\n\r\n{body}")
    answers, _ = herald.exchange("".join(post(b) for b in (good, bad, good)).encode(), 3)
    assert [a.status for a in answers] == [202, 403, 202]
    assert herald.stats()["events"]["accepted"] == 3
    assert herald.metric("herald_ingest_events_total", key="billing") == 3


def test_a_key_pattern_is_checked_when_the_config_is_read(tmp_path):
    import subprocess
    from support import ROOT, default_config, sha256
    import os
    config = default_config(auth={"publisherKeys": [
        {"name": "a", "sha256": sha256("a"), "publish": {"type": "billing"}},
        {"name": "a", "sha256": sha256("b")},
    ], "adminKeys": [{"name": "ops", "sha256": sha256("c"), "publish": {"type": ["x"]}}]})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    binary = os.environ.get("HERALD_BIN", f"{ROOT}/.build/debug/herald")
    result = subprocess.run([binary, "check-config", str(path)], capture_output=True, text=True, timeout=20)
    assert result.returncode == 1
    for expected in ["$.auth.publisherKeys[0].publish", "$.auth.publisherKeys[1].name", "$.auth.adminKeys[0].publish"]:
        assert expected in result.stdout + result.stderr, result
