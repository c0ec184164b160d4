"""Origins and CORS (`cors.allowedOrigins`): a page on another site may not open streams
or call the API from its visitors' browsers unless the config names it; the gateway's own
pages always may; clients without `Origin` (servers, curl) are not concerned. Every test
ends with the gateway serving."""
import json

import pytest

from support import PUBLISHER_KEY, ws_connect

SSE = "/v1/sse?filter=%7B%7D"
PREFLIGHT = ("OPTIONS /v1/events HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\n"
             "Access-Control-Request-Headers: authorization, content-type\r\n\r\n")


def test_by_default_only_the_gateways_own_pages_may_open_streams(herald):
    ws, response = ws_connect(herald, headers={"Origin": "https://evil.example"})
    assert response.status == 403 and response.error_code == "origin_not_allowed", response
    assert "https://evil.example" in response.json()["error"]["message"]
    ws.close()
    sse = herald.get(SSE, {"Origin": "https://evil.example"})
    assert sse.status == 403 and sse.error_code == "origin_not_allowed"
    stats = herald.get("/v1/stats", {"Origin": "https://evil.example"})
    assert stats.status == 403 and stats.header("access-control-allow-origin") is None
    assert herald.stats()["connections"]["ws"] == 0, "the refused page opened nothing"
    # Its own pages (Origin = the Host it was asked as) and clients without Origin may.
    own, response = ws_connect(herald, headers={"Origin": "http://t"})
    assert response.status == 101
    own.send_json({"op": "subscribe", "id": "s", "filter": {"type": ["x"]}})
    assert own.receive_json()["type"] == "subscribed"
    own.close()
    no_origin, response = ws_connect(herald)
    assert response.status == 101
    no_origin.close()
    answer = herald.get("/v1/stats", {"Origin": "http://t"})
    assert answer.status == 200 and answer.header("access-control-allow-origin") == "http://t"
    assert answer.header("vary") == "origin"
    plain = herald.get("/v1/stats")
    assert plain.status == 200 and plain.header("access-control-allow-origin") == "*", "no Origin: no page reads it"


def test_listed_origins_may_and_the_preflight_says_what_ingest_takes(make_herald):
    herald = make_herald(cors={"allowedOrigins": ["https://app.example", "http://localhost:3000"]})
    answers, _ = herald.exchange("".join(PREFLIGHT.format(origin=o) for o in
                                         ["https://app.example", "https://evil.example", "http://localhost:3000"]).encode(), 3)
    allowed, refused, local = answers
    assert allowed.status == 204 and allowed.header("access-control-allow-origin") == "https://app.example"
    assert allowed.header("access-control-allow-methods") == "POST, OPTIONS"
    assert "authorization" in allowed.header("access-control-allow-headers")
    assert allowed.header("access-control-allow-credentials") is None, "bearer tokens: never credentials"
    assert refused.status == 403 and refused.header("access-control-allow-origin") is None
    assert local.status == 204 and local.header("access-control-allow-origin") == "http://localhost:3000"
    stream = herald.get(SSE, {"Origin": "https://app.example"})  # the head only: the stream has no length
    assert stream.status == 200 and stream.header("access-control-allow-origin") == "https://app.example"
    posted = herald.post("/v1/events", json.dumps({"type": "x"}),
                         {"Authorization": f"Bearer {PUBLISHER_KEY}", "Origin": "https://evil.example"})
    assert posted.status == 403 and posted.error_code == "origin_not_allowed"
    assert herald.publish(json.dumps({"type": "x"})).status == 202, "a server without Origin publishes as before"
    assert herald.stats()["events"]["accepted"] == 1, "the refused page's POST was not accepted"


def test_pipelined_requests_from_several_origins_are_each_judged_on_their_own(herald):
    body = json.dumps({"type": "x"})
    def post(origin):
        return (f"POST /v1/events HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {PUBLISHER_KEY}\r\nContent-Length: {len(body)}\r\n\r\n{body}")
    data = (post("https://evil.example") + post("http://t")
            + "GET /healthz HTTP/1.1\r\nHost: t\r\nOrigin: null\r\n\r\n" + post("https://evil.example"))
    answers, _ = herald.exchange(data.encode(), 4)
    assert [a.status for a in answers] == [403, 202, 403, 403]
    assert herald.stats()["events"]["accepted"] == 1


@pytest.mark.parametrize("origin", ["https://anyone.example", "null"])
def test_the_wildcard_lets_any_page_in_without_credentials(make_herald, origin):
    herald = make_herald(cors={"allowedOrigins": ["*"]})
    ws, response = ws_connect(herald, headers={"Origin": origin})
    assert response.status == 101
    ws.close()
    answer = herald.get("/v1/stats", {"Origin": origin})
    assert answer.status == 200 and answer.header("access-control-allow-origin") == "*"
    assert answer.header("access-control-allow-credentials") is None and answer.header("vary") is None


def test_static_files_are_not_the_api(make_herald, public_dir):
    herald = make_herald(publicDirectory=str(public_dir))
    page = herald.get("/", {"Origin": "https://evil.example"})
    assert page.status == 200, "a page may be linked or embedded from anywhere; the API is what is guarded"
