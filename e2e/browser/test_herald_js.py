"""public/herald.js on its own, driven from a page of the real gateway (both transports)."""

import re
import sys
import time
from pathlib import Path

import pytest

from conftest import JWT_SECRET, PUBLISHER_KEY, running_gateway, set_offline

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support import jwt  # noqa: E402

# Runs `body` (an async function body; `Herald`, `token(nick, room)`, `post(events)` and
# `until(condition, ms)` in scope) in the page and returns its result.
HARNESS = """
const done = arguments[arguments.length - 1];
const [body, key] = [arguments[0], arguments[1]];
(async () => {
  const { Herald, HeraldError } = await import('/herald.js');
  const token = async (nick, room) => {
    const query = new URLSearchParams(room ? { nick, room } : { nick });
    return (await (await fetch('/v1/demo/token?' + query)).json()).token;
  };
  const post = async (events) => {
    const response = await fetch('/v1/events', { method: 'POST', body: JSON.stringify(events),
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + key } });
    if (response.status !== 202) throw new Error('POST ' + response.status);
    return (await response.json()).accepted;
  };
  const until = async (condition, ms = 5000) => {
    const end = Date.now() + ms;
    while (!condition()) {
      if (Date.now() > end) throw new Error('timed out: ' + condition);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return await (new Function('Herald', 'HeraldError', 'token', 'post', 'until',
    'return (async () => {' + body + '})()'))(Herald, HeraldError, token, post, until);
})().then((value) => done({ value }), (error) => done({ error: String(error && error.stack || error) }));
"""


def run(driver, gateway, body):
    if not driver.current_url.startswith(gateway.url):
        driver.get(f"{gateway.url}/playground.html")
    driver.set_script_timeout(30)
    result = driver.execute_async_script(HARNESS, body, PUBLISHER_KEY)
    assert "error" not in result, result.get("error")
    return result["value"]


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_subscribe_iterate_and_publish(driver, gateway, transport):
    accepted = gateway.publish([{"type": "chat.message", "room": "lib", "from": "backend", "text": "from history"}])["accepted"]
    result = run(driver, gateway, f"""
      const statuses = [];
      const herald = new Herald({{ token: () => token('ada', 'lib'), transport: '{transport}', onStatus: (s) => statuses.push(s.state) }});
      const sub = herald.subscribe({{ filter: {{ type: ['chat.message'], room: ['lib'] }}, since: 0 }});
      const items = sub[Symbol.asyncIterator]();
      const first = (await items.next()).value;
      const published = await herald.publish({{ type: 'chat.message', room: 'lib', from: 'ada', text: 'from the library' }});
      const second = (await items.next()).value;
      let refused = null;
      try {{ await herald.publish({{ type: 'chat.message', room: 'lib', from: 'mallory', text: 'forged' }}); }}
      catch (error) {{ refused = {{ name: error.name, code: error.code, isError: error instanceof HeraldError }}; }}
      await items.return();
      const done = await items.next();
      const transport = herald.transport;
      herald.close();
      return {{ first: {{ seq: first.seq, text: first.event.text, replayed: first.replayed }},
               published, second: {{ seq: second.seq, text: second.event.text, replayed: second.replayed }},
               refused, done: done.done, state: sub.state, transport, statuses, final: herald.state }};
    """)
    assert result["transport"] == transport
    assert result["first"] == {"seq": accepted[0]["seq"], "text": "from history", "replayed": True}
    assert result["published"]["seq"] > accepted[0]["seq"] and result["published"]["id"]
    assert result["second"] == {"seq": result["published"]["seq"], "text": "from the library", "replayed": False}
    assert result["refused"] == {"name": "HeraldError", "code": "forbidden", "isError": True}
    assert result["done"] is True and result["state"] == "closed"
    assert result["statuses"][:2] == ["connecting", "open"] and result["final"] == "closed"


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_every_event_exactly_once_across_reconnects(driver, gateway, transport):
    result = run(driver, gateway, f"""
      const herald = new Herald({{ transport: '{transport}', reconnect: {{ initialMs: 50, maxMs: 200 }} }});
      const seen = [], resumed = [];
      herald.on('resumed', (r) => resumed.push(r.total));
      const sub = herald.subscribe({{ filter: {{ n: [{{ numeric: ['>=', 0] }}] }}, onEvent: (e, m) => seen.push([m.seq, e.n]) }});
      await sub.ready;
      for (let i = 0; i < 30; i++) {{
        await post([{{ type: 'tick', n: i }}]);
        if (i % 7 === 3) herald.reconnectNow();
      }}
      await until(() => seen.length >= 30 && herald.state === 'open');
      await new Promise((r) => setTimeout(r, 300));
      herald.close();
      return {{ seen, resumed, dropped: sub.duplicatesDropped }};
    """)
    assert [n for _, n in result["seen"]] == list(range(30)), "each event once, in order"
    seqs = [s for s, _ in result["seen"]]
    assert seqs == sorted(set(seqs))
    assert len(result["resumed"]) >= 4, f"a resumed notification per reconnect: {result['resumed']}"


def test_sse_stream_without_a_pinned_type_sees_every_event_name(driver, gateway):
    """A filter that does not name the type cannot use EventSource listeners: read with fetch."""
    result = run(driver, gateway, """
      const herald = new Herald({ transport: 'sse' });
      const got = [];
      const sub = herald.subscribe({ filter: { room: ['x'] }, since: 0 });
      await post([{ type: 'a.b', room: 'x' }, { eventType: 'c.d', room: 'x' }, { room: 'x' }, { type: 'a.b', room: 'y' }]);
      for await (const { event, seq } of sub) { got.push(event.type || event.eventType || 'none'); if (got.length === 3) break; }
      herald.close();
      return { got, state: sub.state };
    """)
    assert result == {"got": ["a.b", "c.d", "none"], "state": "closed"}


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_a_refused_subscription_fails_with_the_gateway_code(driver, gateway, transport):
    result = run(driver, gateway, f"""
      const herald = new Herald({{ transport: '{transport}' }});
      const errors = [];
      const bad = herald.subscribe({{ filter: {{ type: ['x'], n: [{{ numeric: ['<<', 1] }}] }}, onError: (e) => errors.push(e.code) }});
      const good = herald.subscribe({{ filter: {{ type: ['x'] }} }});
      let code = null;
      try {{ await bad.ready; }} catch (error) {{ code = error.code; }}
      await good.ready;
      await post([{{ type: 'x', n: 1 }}]);
      const item = (await good[Symbol.asyncIterator]().next()).value;
      const state = herald.state;
      herald.close();
      return {{ code, errors, bad: bad.state, good: item.event.n, state }};
    """)
    assert result == {"code": "invalid_pattern", "errors": ["invalid_pattern"], "bad": "failed", "good": 1, "state": "open"}


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_presence_join_refusal_and_leave(driver, gateway, transport):
    result = run(driver, gateway, f"""
      const herald = new Herald({{ token: () => token('ada', 'lib'), transport: '{transport}' }});
      const events = [];
      const watch = herald.subscribe({{ filter: {{ type: ['herald.presence'] }}, onEvent: (e) => events.push([e.group, e.action, e.info.nick]) }});
      await watch.ready;
      const members = async (group) => (await (await fetch('/v1/presence/' + encodeURIComponent(group))).json()).members.map((m) => m.info.nick);
      await herald.presence.join('chat:lib', {{ nick: 'ada' }});
      await until(() => events.length === 1);
      const joined = await members('chat:lib');
      let refused = null;
      try {{ await herald.presence.join('chat:elsewhere', {{ nick: 'ada' }}); }} catch (error) {{ refused = error.code; }}
      const groups = [...herald.presence.groups().keys()];
      await herald.presence.leave('chat:lib');
      await until(() => events.length === 2);
      const left = await members('chat:lib');
      const state = herald.state;
      herald.close();
      return {{ events, joined, refused, groups, left, state }};
    """)
    assert result == {"events": [["chat:lib", "join", "ada"], ["chat:lib", "leave", "ada"]], "joined": ["ada"],
                      "refused": "forbidden", "groups": ["chat:lib"], "left": [], "state": "open"}


def test_work_queued_before_open_or_done_in_an_open_listener_goes_out_once(driver, gateway):
    """A join made before the socket opens and a subscription made from an `open` listener
    are each sent once: one join event, and the subscription stays alive."""
    result = run(driver, gateway, """
      const watcher = new Herald({ transport: 'websocket' });
      const joins = [];
      const watch = watcher.subscribe({ filter: { type: ['herald.presence'], group: ['chat:once'] }, onEvent: (e) => joins.push(e.action) });
      await watch.ready;
      const herald = new Herald({ token: () => token('ada', 'once'), transport: 'websocket', connect: false });
      const joined = herald.presence.join('chat:once', { nick: 'ada' });
      let late = null;
      const got = [];
      herald.on('open', () => { if (!late) late = herald.subscribe({ filter: { type: ['late'] }, onEvent: (e) => got.push(e.n) }); });
      herald.reconnectNow();
      await joined;
      await until(() => late !== null);
      await late.ready;
      await post([{ type: 'late', n: 1 }]);
      await until(() => got.length === 1);
      await new Promise((r) => setTimeout(r, 300));
      const result = { joins, lateState: late.state, got };
      herald.close(); watcher.close();
      return result;
    """)
    assert result == {"joins": ["join"], "lateState": "active", "got": [1]}


def test_sse_filter_pinning_only_event_type_still_sees_events_named_by_type(driver, gateway):
    """The gateway names an SSE event by `type` first, so `eventType` alone must not pick listeners."""
    result = run(driver, gateway, """
      const herald = new Herald({ transport: 'sse' });
      const sub = herald.subscribe({ filter: { eventType: ['Reading'] }, since: 0 });
      await post([{ type: 'sensor.v1', eventType: 'Reading', n: 7 }]);
      const item = (await sub[Symbol.asyncIterator]().next()).value;
      herald.close();
      return item.event.n;
    """)
    assert result == 7


def test_a_refused_token_is_reported_and_does_not_switch_to_sse(driver, gateway):
    """A browser sees a refused upgrade only as a close: the client asks the gateway whether
    the token is the reason before it falls back to SSE."""
    result = run(driver, gateway, """
      const herald = new Herald({ token: 'not.a.token', reconnect: { initialMs: 50, maxMs: 100 } });
      const errors = [], fallbacks = [];
      herald.on('error', (e) => errors.push(e.error.code));
      herald.on('fallback', (f) => fallbacks.push(f.to));
      await until(() => errors.includes('unauthorized'), 8000);
      const result = { transport: herald.transport, fallbacks };
      herald.close();
      return result;
    """)
    assert result == {"transport": "websocket", "fallbacks": []}


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_a_token_about_to_expire_is_renewed_without_losing_events(driver, gateway, transport):
    """The gateway ends a session whose token expired (30 s leeway). herald.js asks its token
    function again before that and applies the new token; events keep arriving, none twice."""
    now = int(time.time())
    claims = {"sub": "ada", "herald.publish": {"type": ["chat.message"]}}
    short = jwt({**claims, "exp": now - 27}, JWT_SECRET)   # the gateway ends it ~3 s from now
    long = jwt({**claims, "exp": now + 600}, JWT_SECRET)
    result = run(driver, gateway, f"""
      const tokens = ['{short}', '{long}', '{long}', '{long}'];
      let asked = 0;
      const connects = [];
      const herald = new Herald({{ token: () => tokens[Math.min(asked++, tokens.length - 1)], transport: '{transport}',
                                  onStatus: (s) => {{ if (s.state === 'connecting') connects.push(Date.now()); }} }});
      const seqs = [];
      herald.subscribe({{ filter: {{ type: ['renewal'] }}, onEvent: (e, meta) => seqs.push(meta.seq) }});
      await until(() => herald.state === 'open');
      for (let i = 0; i < 6; i++) {{
        await post([{{ type: 'renewal', n: i }}]);
        await new Promise((r) => setTimeout(r, 1000));
      }}
      await until(() => seqs.length >= 6, 8000);
      const result = {{ asked, seqs, connects: connects.length }};
      herald.close();
      return result;
    """)
    assert result["asked"] >= 2, "the token function was asked again"
    if transport == "websocket":
        assert result["connects"] == 1, "renewed with the auth op: the WebSocket never closed"
    assert len(result["seqs"]) == 6 and len(set(result["seqs"])) == 6 and result["seqs"] == sorted(result["seqs"])


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_a_gateway_restart_without_storage_is_reported_as_a_reset_never_a_silent_skip(driver, gateway, transport):
    before = run(driver, gateway, f"""
      const herald = new Herald({{ transport: '{transport}', reconnect: {{ initialMs: 50, maxMs: 200 }} }});
      const t = window.__restart = {{ herald, seen: [], gaps: [], resets: [], resumed: [] }};
      herald.on('reset', (r) => t.resets.push({{ epoch: r.epoch, previousEpoch: r.previousEpoch, lost: r.lost, id: r.subscription.id }}));
      herald.on('resumed', (r) => t.resumed.push(r.subscriptions.map((s) => [s.restored, s.reset])));
      t.sub = herald.subscribe({{ filter: {{ kind: ['restart'] }}, onEvent: (e, m) => t.seen.push([m.seq, e.n]),
                                 onGap: (g) => t.gaps.push([g.reason, g.from, g.to, g.epoch]) }});
      await t.sub.ready;
      await post([0, 1, 2].map((n) => ({{ kind: 'restart', n }})));
      await until(() => t.seen.length === 3);
      return {{ epoch: t.sub.epoch, seen: t.seen }};
    """)
    old_epoch = gateway.stats()["events"]["epoch"]
    assert before == {"epoch": old_epoch, "seen": [[1, 0], [2, 1], [3, 2]]}

    # The page is offline while the gateway restarts and takes two events, so that its
    # reconnect finds them there (to be restored after the reset).
    set_offline(driver, True)
    port = gateway.port
    gateway.stop()
    gateway.start(port=port)  # memory only: a new epoch, seq from 1 again
    new_epoch = gateway.stats()["events"]["epoch"]
    assert new_epoch != old_epoch
    gateway.publish([{"kind": "restart", "n": 3}, {"kind": "restart", "n": 4}])
    set_offline(driver, False)

    after = run(driver, gateway, """
      const t = window.__restart;
      await until(() => t.seen.length >= 5 && t.resumed.length >= 1, 15000);
      await new Promise((r) => setTimeout(r, 300));
      await post([{ kind: 'restart', n: 5 }]);  // live after the resume
      await until(() => t.seen.length >= 6);
      t.herald.close();
      return { epoch: t.sub.epoch, lastSeq: t.sub.lastSeq, seen: t.seen, gaps: t.gaps, resets: t.resets,
               resumed: t.resumed, dropped: t.sub.duplicatesDropped };
    """)
    assert after["seen"] == [[1, 0], [2, 1], [3, 2], [1, 3], [2, 4], [3, 5]], "the new epoch's events, none dropped as duplicates"
    assert after["dropped"] == 0
    assert after["gaps"] == [["reset", 1, 0, new_epoch]]
    assert after["resets"] == [{"epoch": new_epoch, "previousEpoch": old_epoch, "lost": 0, "id": after["resets"][0]["id"]}]
    assert after["resumed"][-1] == [[2, True]], after["resumed"]
    assert after["epoch"] == new_epoch and after["lastSeq"] == 3


@pytest.fixture
def one_stream_per_subject():
    yield from running_gateway(extra={"limits": {"maxConnectionsPerSubject": 1}})


def test_a_1013_wait_from_the_gateway_is_honoured_and_other_waits_are_full_jitter(driver, one_stream_per_subject):
    result = run(driver, one_stream_per_subject, """
      const first = new Herald({ token: () => token('ada', 'lobby'), transport: 'websocket' });
      await until(() => first.state === 'open');
      const closes = [];
      const second = new Herald({ token: () => token('ada', 'lobby'), transport: 'websocket',
        reconnect: { initialMs: 1000, maxMs: 8000 }, onStatus: (s) => { if (s.state === 'closed') closes.push(s); } });
      await until(() => closes.length >= 1);
      second.close();
      first.close();
      // Waits with no word from the gateway: anywhere in 0 … the step (8 s at the 4th attempt).
      const jittered = new Herald({ token: () => token('bob', 'lobby'), transport: 'websocket',
        reconnect: { initialMs: 1000, maxMs: 8000 } });
      jittered.close();
      jittered._attempt = 3;
      const waits = Array.from({ length: 400 }, () => jittered._backoff({ code: 1006, reason: '' }));
      return { close: closes[0], min: Math.min(...waits), max: Math.max(...waits), low: waits.filter((w) => w < 2000).length };
    """)
    close = result["close"]
    assert close["code"] == 1013 and "retryAfterMs=" in close["reason"], close
    wait = int(re.search(r"retryAfterMs=(\d+)", close["reason"]).group(1))
    assert close["retryInMs"] == wait, "the gateway's wait is the wait"
    assert 1000 <= close["retryInMs"] <= 5000
    assert 0 <= result["min"] and result["max"] <= 8000
    assert result["low"] > 40, "full jitter: about a quarter of the waits fall under a quarter of the step"


def test_a_refused_event_stream_waits_the_gateways_retry_after(driver, one_stream_per_subject):
    # Over SSE a refusal is a 503 whose body carries retryAfterMs (a stream cannot be
    # closed with 1013): herald.js waits exactly that, not its own backoff.
    result = run(driver, one_stream_per_subject, """
      const first = new Herald({ token: () => token('ada', 'lobby'), transport: 'websocket' });
      await until(() => first.state === 'open');
      const closes = [];
      const second = new Herald({ token: () => token('ada', 'lobby'), transport: 'sse',
        reconnect: { initialMs: 100, maxMs: 200 }, onStatus: (s) => { if (s.state === 'closed') closes.push(s); } });
      second.subscribe({ filter: { type: ['x'] } });
      await until(() => closes.length >= 1);
      second.close();
      first.close();
      return { close: closes[0] };
    """)
    close = result["close"]
    assert close["code"] == 503 and close["retryAfterMs"] == close["retryInMs"], close
    assert 1000 <= close["retryInMs"] <= 5000, "the gateway's wait, far above the client's own 100–200 ms steps"
