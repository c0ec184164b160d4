// herald.js against the real gateway, in Node (node --test): the package's public API as a
// front-end developer meets it — subscribe, publish, replay, gaps by reason, a restart
// that is a reset and never a silent drop, SSE, presence, typed errors.
import { Gateway, REPO, sleep, until } from "./gateway.mjs";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { Herald, HeraldError, presenceFilter } from "../herald.js";

const open = [];
/** A client that is closed after the test file. */
function client(options) {
  const herald = new Herald({ reconnect: { initialMs: 50, maxMs: 200 }, ...options });
  open.push(herald);
  return herald;
}
after(() => { for (const herald of open) herald.close(); });

/** Collects a subscription's events (and gaps) as they come. */
function recorder() {
  const events = [], gaps = [];
  return { events, gaps, onEvent: (event, meta) => events.push({ event, ...meta }), onGap: (gap) => gaps.push(gap) };
}

test("subscribes over a WebSocket, publishes with a token, receives what backends publish", async () => {
  const gateway = await Gateway.start();
  try {
    const herald = client({ url: gateway.url, token: gateway.token({ sub: "ada", "herald.publish": { type: ["chat.message"] } }) });
    const seen = recorder();
    const sub = herald.subscribe({ filter: { type: ["chat.message"] }, onEvent: seen.onEvent });
    await sub.ready;
    assert.equal(herald.transport, "websocket");
    assert.equal(sub.state, "active");
    const mine = await herald.publish({ type: "chat.message", from: "ada", text: "hi" });
    assert.ok(Number.isInteger(mine.seq) && mine.seq > 0);
    await gateway.publish({ type: "chat.message", from: "backend", text: "hello" });
    await gateway.publish({ type: "other" });
    await until(() => seen.events.length === 2, "both chat messages");
    assert.deepEqual(seen.events.map((e) => e.event.from), ["ada", "backend"]);
    assert.equal(seen.events[0].seq, mine.seq);
    assert.ok(seen.events.every((e) => e.replayed === false && e.subs.includes(sub.id)));
    assert.equal(sub.lastSeq, seen.events[1].seq);
    // The token's publish right holds: another type is refused, typed.
    await assert.rejects(herald.publish({ type: "other" }), (error) => error instanceof HeraldError && error.code === "forbidden");
  } finally {
    await gateway.close();
  }
});

test("a refused subscription rejects `ready` and calls onError with the gateway's code", async () => {
  const gateway = await Gateway.start();
  try {
    const herald = client({ url: gateway.url });
    let refused = null;
    const sub = herald.subscribe({ filter: { type: "not-an-array" }, onError: (error) => { refused = error; } });
    await assert.rejects(sub.ready, (error) => error instanceof HeraldError && error.code === "invalid_pattern");
    assert.equal(refused.code, "invalid_pattern");
    assert.equal(sub.state, "failed");
    assert.throws(() => { herald.close(); herald.subscribe({}); }, (error) => error.code === "closed");
  } finally {
    await gateway.close();
  }
});

test("`since` replays history as replayed events, then live ones follow; an iterator reads them", async () => {
  const gateway = await Gateway.start();
  try {
    for (let n = 1; n <= 3; n++) await gateway.publish({ type: "tick", n });
    const herald = client({ url: gateway.url });
    const sub = herald.subscribe({ filter: { type: ["tick"] }, since: 0 });
    const got = [];
    const reading = (async () => {
      for await (const item of sub) {
        got.push(item);
        if (got.length === 4) break;  // leaving the loop unsubscribes
      }
    })();
    await sub.ready;
    await gateway.publish({ type: "tick", n: 4 });
    await reading;
    assert.deepEqual(got.map((g) => [g.event.n, g.replayed]), [[1, true], [2, true], [3, true], [4, false]]);
    assert.equal(sub.state, "closed");
  } finally {
    await gateway.close();
  }
});

test("history that no longer reaches back is an `expired` gap, said by the subscription and the client", async () => {
  const gateway = await Gateway.start({ history: { maxEvents: 3 } });
  try {
    for (let n = 1; n <= 8; n++) await gateway.publish({ type: "tick", n });
    const herald = client({ url: gateway.url });
    const clientGaps = [];
    herald.on("gap", (gap) => clientGaps.push(gap));
    const seen = recorder();
    const sub = herald.subscribe({ filter: { type: ["tick"] }, since: 1, ...seen });
    await until(() => seen.events.length === 3, "what history holds");
    assert.deepEqual(seen.events.map((e) => e.event.n), [6, 7, 8]);
    assert.equal(seen.gaps.length, 1);
    assert.equal(seen.gaps[0].reason, "expired");
    assert.ok(seen.gaps[0].from === 2 && seen.gaps[0].to === 5, JSON.stringify(seen.gaps[0]));
    assert.equal(clientGaps.length, 1);
    assert.equal(clientGaps[0].subscription, sub);
    assert.equal(clientGaps[0].reason, "expired");
  } finally {
    await gateway.close();
  }
});

test("a restart without storage is a reset, said and followed by the new epoch's events — nothing dropped as a duplicate", async () => {
  const gateway = await Gateway.start();
  try {
    const herald = client({ url: gateway.url });
    const seen = recorder();
    const sub = herald.subscribe({ filter: { type: ["tick"] }, ...seen });
    await sub.ready;
    for (let n = 1; n <= 3; n++) await gateway.publish({ type: "tick", n });
    await until(() => seen.events.length === 3, "the first epoch's events");
    const firstEpoch = sub.epoch;
    const happened = [];
    for (const name of ["closed", "reconnecting", "open", "reset", "resumed"]) herald.on(name, (detail) => happened.push([name, detail]));
    await gateway.restart();
    // The new epoch numbers from 1 again: those seqs must arrive, not be taken for repeats.
    await until(() => happened.some(([name]) => name === "open"), "the reconnect");
    for (let n = 4; n <= 5; n++) await gateway.publish({ type: "tick", n });
    await until(() => seen.events.length === 5, "the new epoch's events");
    assert.deepEqual(seen.events.map((e) => e.event.n), [1, 2, 3, 4, 5]);
    assert.equal(sub.duplicatesDropped, 0);
    assert.notEqual(sub.epoch, firstEpoch);
    const names = happened.map(([name]) => name);
    assert.ok(names.indexOf("closed") < names.indexOf("reconnecting"), names.join(","));
    const reconnecting = happened.find(([name]) => name === "reconnecting")[1];
    assert.ok(reconnecting.attempt >= 1 && Number.isFinite(reconnecting.inMs));
    const reset = happened.find(([name]) => name === "reset");
    assert.ok(reset, `a reset is announced: ${names.join(",")}`);
    assert.equal(reset[1].subscription, sub);
    assert.equal(reset[1].previousEpoch, firstEpoch);
    assert.ok(seen.gaps.some((gap) => gap.reason === "reset"));
  } finally {
    await gateway.close();
  }
});

test("over SSE: the same subscription API, and publishing with POST", async () => {
  const gateway = await Gateway.start();
  try {
    const herald = client({ url: gateway.url, transport: "sse", token: gateway.token({ sub: "sse", "herald.publish": { type: ["note"] } }) });
    const seen = recorder();
    const sub = herald.subscribe({ filter: { type: ["note"] }, ...seen });
    await sub.ready;
    assert.equal(herald.transport, "sse");
    await gateway.publish({ type: "note", n: 1 });
    const posted = await herald.publish({ type: "note", n: 2 });
    assert.ok(posted.seq > 0);
    await until(() => seen.events.length === 2, "both notes");
    assert.deepEqual(seen.events.map((e) => e.event.n), [1, 2]);
  } finally {
    await gateway.close();
  }
});

test("presence: a join is announced to the group's watchers, a leave too", async () => {
  const gateway = await Gateway.start();
  try {
    const watcher = client({ url: gateway.url });
    const seen = recorder();
    const watching = watcher.subscribe({ filter: presenceFilter("room"), ...seen });
    await watching.ready;
    // Joining is publishing a presence event: the token must allow it for the group.
    const ada = client({ url: gateway.url, token: gateway.token({ sub: "ada", "herald.publish": { type: ["herald.presence"], group: ["room"] } }) });
    const stranger = client({ url: gateway.url, token: gateway.token({ sub: "eve" }) });
    await assert.rejects(stranger.presence.join("room", {}), (error) => error instanceof HeraldError && error.code === "forbidden");
    await ada.presence.join("room", { nick: "ada" });
    assert.deepEqual([...ada.presence.groups().keys()], ["room"]);
    await until(() => seen.events.length === 1, "the join");
    assert.equal(seen.events[0].event.group, "room");
    await ada.presence.leave("room");
    await until(() => seen.events.length === 2, "the leave");
  } finally {
    await gateway.close();
  }
});

test("the package: public/herald.js is this file byte for byte, package.json names what ships", () => {
  const own = readFileSync(new URL("../herald.js", import.meta.url));
  assert.ok(own.equals(readFileSync(join(REPO, "public/herald.js"))), "public/herald.js differs from clients/js/herald.js: run make herald-js");
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  assert.equal(pkg.type, "module");
  assert.equal(pkg.exports["."].types, "./herald.d.ts");
  assert.equal(pkg.exports["."].default, "./herald.js");
  for (const file of pkg.files) assert.ok(readFileSync(new URL(`../${file}`, import.meta.url)).length > 0, file);
});

test("the declarations type-check a client written against them, and refuse misuse (tsc --strict)", () => {
  const tsc = spawnSync("tsc", ["--noEmit", "--strict", "--target", "es2022", "--module", "es2022", "--moduleResolution", "node",
    new URL("./usage.ts", import.meta.url).pathname], { encoding: "utf8" });
  assert.equal(tsc.error, undefined, `tsc could not run: ${tsc.error}`);
  assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
});
