// herald.js — a small browser client for the Herald gateway (DESIGN.md §4). No dependencies.
//
//   import { Herald } from "./herald.js";
//   const herald = new Herald({ token: async () => (await (await fetch("/v1/demo/token?nick=ada")).json()).token });
//   const sub = herald.subscribe({ filter: { type: ["chat.message"] }, since: 0, onEvent: (event, { seq }) => … });
//   await herald.publish({ type: "chat.message", room: "lobby", from: "ada", text: "hi" });
//   for await (const { event, seq } of sub) { … }
//
// One WebSocket (`/v1/ws`, subprotocol herald.v1) carries every subscription. When the
// WebSocket cannot connect at all (blocked by a proxy, disabled, …) the client falls back to
// Server-Sent Events: one stream per subscription, publishing with POST /v1/events. Every
// subscription remembers the last position it delivered — (epoch, seq) — and resumes from
// it after a reconnect (`since` + `epoch` / `lastEventId`); an event at or below it is never
// delivered twice. When the gateway lost its history (restarted without storage: a new
// epoch), the subscription gets a `reset` gap, the client emits `reset`, and what the new
// epoch holds follows: never a silent skip.
//
// The file is split the way the gateway is (one ES module, so it stays one file to copy):
//   Resume     ResumeCursor (one subscription's place in the sequence: duplicates, gaps,
//              where to resume) and ResumeTracker (a reconnect's catch-up → `resumed`)
//   Subscription  the public handle: callbacks, async iteration, `ready`
//   Presence   the groups this client joined, kept across reconnects
//   Transports WebSocketTransport and SSETransport behind one small interface (see there)
//   RequestQueue  the herald.v1 ops that wait for an answer
//   Herald     the facade composing them: subscriptions, auth and token renewal, reconnect
//              with backoff, the WebSocket → SSE fallback, and the events it emits

const DEFAULT_RECONNECT = { initialMs: 500, maxMs: 15000 };
const REQUEST_TIMEOUT_MS = 10000;
const OPEN_TIMEOUT_MS = 10000;
const RESUME_SETTLE_MS = 300;   // quiet time after which a resume counts as complete
const RESUME_MAX_MS = 5000;
const ITERATOR_BUFFER = 10000;  // events kept for an async iterator that is not reading
const STABLE_CONNECTION_MS = 5000; // a connection open this long resets the backoff

/**
 * An error from the gateway or the client, with a machine-readable `code`: the gateway's
 * error code (`forbidden`, `invalid_pattern`, `unauthorized`, …) or one of the client's own
 * (`disconnected`, `timeout`, `closed`, `network`).
 */
export class HeraldError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{status?: number, details?: object}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = "HeraldError";
    /** @type {string} */
    this.code = code;
    /** @type {number|undefined} HTTP status, when the error came from an HTTP answer. */
    this.status = extra.status;
    /** @type {object|undefined} the gateway's error object, as sent. */
    this.details = extra.details;
  }
}

/** A JWT's `exp` (seconds since the epoch), or null when the token is not a JWT with one. */
function tokenExpiry(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(parts[1].length / 4) * 4, "="));
    const exp = JSON.parse(json).exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp : null;
  } catch {
    return null;
  }
}

/** JSON with object keys sorted, so equal patterns compare equal. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** The filter that matches the presence events of one group. */
export function presenceFilter(group) {
  return { type: ["herald.presence"], group: [group] };
}

function reportError(error) {
  if (typeof globalThis.reportError === "function") globalThis.reportError(error);
  else setTimeout(() => { throw error; });
}

// MARK: - Resume

/**
 * Where one subscription stands in the gateway's sequence, so that no reconnect loses or
 * repeats an event: the last seq delivered (what `since` / `lastEventId` asks for next), the
 * `since` it was created with, the gateway's position when it was confirmed and, while a
 * reconnect catches up, how many of the missed events came back. An event at or below what
 * was delivered is a duplicate; a gap moves the cursor past the events that will not come.
 */
class ResumeCursor {
  /** @param {number|undefined} since @param {string|undefined} epoch the epoch `since` counts in */
  constructor(since, epoch) {
    this.since = since;
    this.epoch = epoch ?? null;  // the epoch of `last` / `since` / `position` (null: not known yet)
    this.last = null;       // last delivered seq
    this.position = null;   // gateway position when (re)subscribed
    this.replayTo = null;   // with `since`: the first confirmed position; events up to it are history
    this.round = null;      // {position, restored, done} while a reconnect catches up
  }

  /** Where to resume from: the last delivered seq, else `since`, else the first position. */
  get resumeFrom() {
    if (this.last != null) return this.last;
    if (this.since != null) return this.since;
    return this.position;
  }

  /** The gateway confirmed the subscription at `position` of `epoch` (null: it did not say). */
  confirmed(position, epoch) {
    // A different epoch here is answered by a `reset` gap, which moves the cursor to it.
    if (this.epoch == null && epoch != null) this.epoch = epoch;
    if (position != null && this.position == null && this.since != null) this.replayTo = position;
    if (position != null) this.position = position;
    if (this.round && this.round.position == null && position != null) this.beginRound(position, epoch);
  }

  /** A live-only subscription with nothing delivered yet starts at `position` (when known). */
  startAt(position, epoch) {
    if (position != null && this.resumeFrom == null) {
      this.position = position;
      if (epoch != null) this.epoch = epoch;
    }
  }

  /** A reconnect's catch-up begins: the events at or below `position` (of `epoch`) are the
   *  ones missed (null: the position comes with the confirmation). In another epoch than
   *  the cursor's, it is not done before the `reset` gap arrives. */
  beginRound(position, epoch) {
    const otherEpoch = epoch != null && this.epoch != null && epoch !== this.epoch;
    this.round = position == null
      ? { position: null, restored: 0, done: false, reset: false }
      : { position, restored: 0, done: !otherEpoch && (this.resumeFrom ?? -1) >= position, reset: false };
  }

  /** Whether `seq` was delivered already, or lies at or below `since`: a duplicate. */
  isDuplicate(seq) {
    if (this.last != null) return seq <= this.last;
    return this.since != null && seq <= this.since;
  }

  /** Records `seq` as delivered. @returns {boolean} whether it is a replayed (not live) event */
  advance(seq) {
    this.last = seq;
    let replayed = this.replayTo != null && seq <= this.replayTo;
    const round = this.round;
    if (round && round.position != null) {
      if (seq <= round.position) {
        round.restored++;
        replayed = true;
      } else {
        round.done = true;
      }
    }
    return replayed;
  }

  /** Events up to `gap.to` will not come: resume after them. */
  skip(gap) {
    if (gap.reason === "reset") { this.reset(gap); return; }
    if (typeof gap.to === "number" && (this.last == null || gap.to > this.last)) this.last = gap.to;
  }

  /** The position was in another epoch: start over in `gap.epoch`, after what it lost
   *  (`gap.to`, 0 when nothing); every event of the new epoch that follows is new. */
  reset(gap) {
    this.epoch = gap.epoch ?? null;
    this.since = undefined;
    this.replayTo = null;
    this.last = typeof gap.to === "number" ? gap.to : 0;
    if (this.round) {
      this.round.reset = true;
      if (this.round.position != null) this.round.done = this.last >= this.round.position;
    }
  }
}

/**
 * A reconnect's catch-up across all subscriptions, which the client announces as `resumed`:
 * once every subscription is carried again, the round ends when each has received an event
 * past the position it resumed to, when events stop for RESUME_SETTLE_MS, or after
 * RESUME_MAX_MS — and reports how many missed events each got back.
 */
class ResumeTracker {
  /** @param {(summary: {total: number, subscriptions: {id: string, subscription: Subscription, restored: number}[]}) => void} onResumed */
  constructor(onResumed) {
    this._onResumed = onResumed;
    this._round = null;
  }

  /**
   * Begins a round for `subs`. `position` is where the missed events end when the transport
   * knows it before it opens (SSE asks the gateway; the round then also waits for
   * {@link ResumeTracker#opened}), or null: each subscription's own, from its confirmation
   * (the WebSocket's `subscribed`).
   */
  begin(subs, position, epoch) {
    this.cancel();
    for (const sub of subs) sub._cursor.beginRound(position, epoch);
    this._round = { subs, awaitingOpen: position != null, timer: null, maxTimer: setTimeout(() => this._finish(), RESUME_MAX_MS) };
  }

  /** The transport opened: a round begun with a position may end from now on. */
  opened() {
    const round = this._round;
    if (!round || !round.awaitingOpen) return;
    round.awaitingOpen = false;
    this.progress();
  }

  /** Called as subscriptions are confirmed or refused and as replayed events arrive. */
  progress() {
    const round = this._round;
    if (!round) return;
    const live = round.subs.filter((s) => s.state !== "closed" && s.state !== "failed" && s._cursor.round);
    // Wait for the transport to open (SSE) or for every `subscribed` (WebSocket).
    if (round.awaitingOpen || live.some((s) => s._cursor.round.position == null)) return;
    if (live.every((s) => s._cursor.round.done)) { this._finish(); return; }
    clearTimeout(round.timer);
    round.timer = setTimeout(() => this._finish(), RESUME_SETTLE_MS);
  }

  /** Ends the round without reporting it (the connection it belonged to is gone). */
  cancel() {
    const round = this._round;
    if (!round) return;
    clearTimeout(round.timer);
    clearTimeout(round.maxTimer);
    for (const sub of round.subs) sub._cursor.round = null;
    this._round = null;
  }

  _finish() {
    const round = this._round;
    if (!round) return;
    const subscriptions = round.subs.map((sub) => ({
      id: sub.id, subscription: sub,
      restored: sub._cursor.round ? sub._cursor.round.restored : 0,
      reset: sub._cursor.round ? sub._cursor.round.reset : false,
    }));
    this.cancel();
    this._onResumed({ total: subscriptions.reduce((n, s) => n + s.restored, 0), subscriptions });
  }
}

// MARK: - Subscription

/**
 * One subscription: a filter (an event pattern) and/or a route, with its own resume point.
 * Created by {@link Herald#subscribe}. Also an async iterator of `{event, seq, subs, replayed}`.
 */
export class Subscription {
  /** @param {Herald} herald @param {string} id @param {object} options */
  constructor(herald, id, options) {
    this._herald = herald;
    /** @type {string} the subscription id on the wire (unique per client). */
    this.id = id;
    /** @type {object|undefined} */
    this.filter = options.filter;
    /** @type {string|undefined} */
    this.route = options.route;
    /** @type {number|undefined} the `since` it was created with. */
    this.since = options.since;
    /** @type {string|undefined} the epoch `since` counts in (from {@link Subscription#epoch}). */
    this.sinceEpoch = options.epoch;
    this._onEvent = options.onEvent;
    this._onGap = options.onGap;
    this._onError = options.onError;
    this._cursor = new ResumeCursor(options.since, options.epoch);
    this._iterators = new Set();
    // Without onEvent, events wait here for the first iterator (so none is lost before it starts).
    this._early = options.onEvent ? null : [];
    /** @type {"pending"|"active"|"closed"|"failed"} */
    this.state = "pending";
    /** @type {HeraldError|null} why the subscription failed, if it did. */
    this.error = null;
    this.duplicatesDropped = 0;
    this._readyPromise = new Promise((resolve, reject) => { this._readyResolve = resolve; this._readyReject = reject; });
    this._readyPromise.catch(() => {});
  }

  /** The sequence number of the last event delivered, or null. */
  get lastSeq() { return this._cursor.last; }

  /** The epoch `lastSeq` and `position` count in (store it with `lastSeq` to resume later), or null. */
  get epoch() { return this._cursor.epoch; }

  /** The gateway's position when this subscription was last confirmed (WebSocket), or null. */
  get position() { return this._cursor.position; }

  /** Resolves once the gateway has confirmed the subscription (first time only). */
  get ready() { return this._readyPromise; }

  /** Stops the subscription; ends any async iterator over it. */
  unsubscribe() {
    if (this.state === "closed" || this.state === "failed") return;
    this.state = "closed";
    this._readyReject(new HeraldError("closed", "the subscription was closed"));
    this._herald._removeSubscription(this);
    this._finishIterators(null);
  }

  /** The gateway confirmed the subscription (WebSocket `subscribed`, or an SSE stream opened). */
  _confirmed(position, epoch) {
    this._cursor.confirmed(position, epoch);
    if (this.state === "pending") this.state = "active";
    this._readyResolve({ position });
  }

  _deliver(seq, event, subs) {
    if (this.state === "closed" || this.state === "failed") return;
    const cursor = this._cursor;
    if (cursor.isDuplicate(seq)) { this.duplicatesDropped++; return; }
    const replayed = cursor.advance(seq);
    if (cursor.round) this._herald._resumeTracker.progress();
    const meta = { seq, subs, replayed, subscription: this };
    if (this._onEvent) {
      try { this._onEvent(event, meta); } catch (error) { reportError(error); }
    }
    const item = { event, seq, subs, replayed };
    for (const push of this._iterators) push(item);
    if (this._early) {
      if (this._early.length < ITERATOR_BUFFER) this._early.push(item);
      else this._overflow();
    }
  }

  _gap(gap) {
    if (this.state === "closed" || this.state === "failed") return;
    const previousEpoch = this._cursor.epoch;
    this._cursor.skip(gap);
    if (gap.reason === "reset") this._herald._emit("reset", { subscription: this, epoch: gap.epoch ?? null, previousEpoch, lost: gap.to ?? 0 });
    this._herald._emit("gap", { subscription: this, from: gap.from, to: gap.to, reason: gap.reason, epoch: gap.epoch ?? null });
    if (this._cursor.round) this._herald._resumeTracker.progress();
    if (this._onGap) {
      try { this._onGap(gap, { subscription: this }); } catch (error) { reportError(error); }
    }
  }

  _fail(error) {
    if (this.state === "closed" || this.state === "failed") return;
    this.state = "failed";
    this.error = error;
    this._readyReject(error);
    if (this._onError) {
      try { this._onError(error, { subscription: this }); } catch (e) { reportError(e); }
    }
    this._finishIterators(error);
  }

  /** An iterator fell ITERATOR_BUFFER events behind: end the subscription with an error. */
  _overflow() {
    this._fail(new HeraldError("overflow", `more than ${ITERATOR_BUFFER} events waited for an iterator that did not read them`));
    this._herald._removeSubscription(this);
  }

  _finishIterators(error) {
    for (const push of this._iterators) push(null, error);
    this._iterators.clear();
  }

  /**
   * `for await (const {event, seq, subs, replayed} of subscription)`; leaving the loop
   * unsubscribes. A subscription made without `onEvent` keeps its events (up to 10,000) for
   * its first iterator, so none is lost between subscribe() and the loop.
   */
  [Symbol.asyncIterator]() {
    const buffered = this._early || [];
    this._early = null;
    const waiting = [];
    let done = this.state === "closed";
    let failure = this.state === "failed" ? this.error : null;
    const push = (item, error) => {
      if (item === null) {
        done = true;
        failure = error || null;
        while (waiting.length) {
          const w = waiting.shift();
          if (failure) w.reject(failure); else w.resolve({ value: undefined, done: true });
        }
        return;
      }
      if (waiting.length) waiting.shift().resolve({ value: item, done: false });
      else if (buffered.length < ITERATOR_BUFFER) buffered.push(item);
      else subscription._overflow();   // never skip silently: end with an error
    };
    if (!done && !failure) this._iterators.add(push);
    const subscription = this;
    return {
      next() {
        if (buffered.length) return Promise.resolve({ value: buffered.shift(), done: false });
        if (failure) return Promise.reject(failure);
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
      },
      return() {
        subscription._iterators.delete(push);
        subscription.unsubscribe();
        push(null);
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() { return this; },
    };
  }
}

// MARK: - Presence

/**
 * The presence groups this client is a member of (announced to others as `herald.presence`
 * events), with their info, kept across reconnects. Over a transport with ops, joining and
 * leaving are ops and every group is joined again when a connection opens; over SSE a
 * membership lasts as long as a stream opened with `presence=`, which the transport keeps
 * for each group. Who else is in a group is the gateway's to tell (GET /v1/presence/…).
 */
class Presence {
  /** @param {Herald} client */
  constructor(client) {
    this._client = client;
    /** @type {Map<string, object>} group → info */
    this.groups = new Map();
    this._failures = new Map();   // SSE: group → why the gateway refused its stream
  }

  join(group, info) {
    if (typeof group !== "string" || !group) return Promise.reject(new TypeError("a presence group is a non-empty string"));
    info = info || {};
    this.groups.set(group, info);
    this._failures.delete(group);
    if (!this._client._carriesOps) return this._untilHeld(group);
    return this._client._request("presence.join", { op: "presence.join", group, info })
      .catch((error) => { this._forgetRefusedJoin(group, info, error); throw error; });
  }

  leave(group) {
    const client = this._client;
    const joined = this.groups.delete(group);
    if (!client._carriesOps) {
      if (client._transport) client._transport.update();
      return Promise.resolve({ group, seq: null });
    }
    if (!joined) return Promise.resolve({ group, seq: null });
    if (client._state !== "open") {
      // Not connected: the gateway has already dropped this connection's memberships.
      client._requests.resolveQueued((e) => e.kind === "presence.join" && e.message.group === group, { group, seq: null });
      return Promise.resolve({ group, seq: null });
    }
    return client._request("presence.leave", { op: "presence.leave", group });
  }

  /** A connection with ops opened: joins every group again that no queued join covers. */
  rejoin(queued) {
    const requests = this._client._requests;
    for (const [group, info] of this.groups) {
      if (queued.has(group)) continue;
      requests.dispatch(requests.create("presence.join", { op: "presence.join", group, info },
        (error) => { this._forgetRefusedJoin(group, info, error); this._client._emit("error", { error }); }));
    }
  }

  /** SSE: the gateway refused the stream that held `group`; the membership ends. */
  refused(group, failure) {
    this.groups.delete(group);
    this._failures.set(group, failure);
    this._client._emit("error", { error: failure });
  }

  /** A join the gateway refused is not tried again after a reconnect. */
  _forgetRefusedJoin(group, info, error) {
    const transient = ["disconnected", "timeout", "closed"].includes(error && error.code);
    if (!transient && this.groups.get(group) === info) this.groups.delete(group);
  }

  /** Without ops (SSE) a join is a stream the transport opens: resolves once it holds `group`. */
  _untilHeld(group) {
    const client = this._client;
    if (client._transport) client._transport.update();
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const check = () => {
        const failure = this._failures.get(group);
        if (failure) { reject(failure); return; }
        if (!this.groups.has(group)) { resolve({ group, seq: null }); return; }
        if (client._transport && client._transport.holds(group)) { resolve({ group, seq: null }); return; }
        if (Date.now() - started > REQUEST_TIMEOUT_MS) { reject(new HeraldError("timeout", `could not join ${group}`)); return; }
        setTimeout(check, 50);
      };
      check();
    });
  }
}

// MARK: - Transports

// A transport is one connection of a client to the gateway, carrying all of its subscriptions
// and presence groups; the facade makes a new one for every (re)connect and closes it on
// teardown. Adding one (HTTP long-polling, say) is a class with this shape and an entry in
// TRANSPORTS:
//
//   static carriesOps   true: subscribing, publishing, presence and auth are herald.v1 ops the
//                       facade sends (WebSocket); false: the transport follows the client's
//                       subscriptions and groups by itself and publishing is POST /v1/events
//   constructor(client, handlers)
//   connect()           starts connecting, with the client's current token
//   send(op)            (with ops) sends one op; false when it was not sent
//   update()            (without ops) the client's subscriptions or presence groups changed
//   holds(group)        (without ops) whether this connection holds the membership of `group`
//   close()             quietly: no handler is called after it
//
// and calls the handlers the facade gives it:
//
//   resume(position)    about to carry the subscriptions; after a reconnect the missed events
//                       end at `position` (null: each subscription's own, from its confirmation)
//   open()              it carries everything now
//   message(msg)        (with ops) a herald.v1 message from the gateway
//   closed(detail)      {code, reason}: it broke, or could not connect; reconnect with backoff
//   failed(reason)      it never opened; the facade may fall back to another transport
//
// A transport without ops has no herald.v1 messages to hand up: it confirms and feeds each
// subscription itself (`_confirmed`, `_deliver`, `_gap`, `_fail`), as the gateway's own
// transports drive a session.

/**
 * One WebSocket (`/v1/ws`, subprotocol herald.v1) for everything: the facade sends ops over
 * it, and hands the gateway's messages up. Gives up after OPEN_TIMEOUT_MS without opening.
 */
class WebSocketTransport {
  static get carriesOps() { return true; }

  /** @param {Herald} client @param {object} handlers */
  constructor(client, handlers) {
    this._client = client;
    this._handlers = handlers;
    this._ws = null;
    this._openTimer = null;
  }

  connect() {
    const url = new URL("/v1/ws", this._client.url);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (this._client._token) url.searchParams.set("token", this._client._token);
    let ws;
    try {
      ws = new WebSocket(url.href, "herald.v1");
    } catch (error) {
      this._handlers.failed(`the WebSocket could not be created (${error && error.message})`);
      return;
    }
    this._ws = ws;
    let opened = false;
    this._openTimer = setTimeout(() => {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(); } catch { /* ignore */ }
      this._ws = null;
      this._handlers.failed("the WebSocket did not open in time");
    }, OPEN_TIMEOUT_MS);
    ws.onopen = () => {
      clearTimeout(this._openTimer);
      opened = true;
      this._handlers.resume(null);   // positions come with `subscribed`
      this._handlers.open();
    };
    ws.onmessage = (message) => {
      let msg;
      try { msg = JSON.parse(message.data); } catch { return; }
      this._handlers.message(msg);
    };
    ws.onerror = () => { /* a close event follows */ };
    ws.onclose = (event) => {
      clearTimeout(this._openTimer);
      this._ws = null;
      if (!opened) this._handlers.failed(`the WebSocket closed before it opened (${event.code})`);
      else this._handlers.closed({ code: event.code, reason: event.reason });
    };
  }

  send(message) {
    if (!this._ws || this._ws.readyState !== 1) return false;
    this._ws.send(JSON.stringify(message));
    return true;
  }

  close() {
    clearTimeout(this._openTimer);
    const ws = this._ws;
    if (!ws) return;
    this._ws = null;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try { ws.close(1000); } catch { /* already closed */ }
  }
}

/**
 * The SSE event names a stream with this filter can carry, or null when the filter does not
 * pin the type (then the stream is read with fetch, which sees every name).
 */
/** An SSE `id:` as a position: `<epoch>:<seq>`, or a bare `<seq>` (epoch null); null if neither. */
function parseEventID(id) {
  if (!id) return null;
  const colon = id.indexOf(":");
  const seq = Number(colon < 0 ? id : id.slice(colon + 1));
  if (!Number.isInteger(seq) || seq < 0) return null;
  return { epoch: colon < 0 ? null : id.slice(0, colon), seq };
}

function sseEventNames(filter, route) {
  // The gateway names an SSE event by its `type` first (DESIGN §4), so only a filter that
  // pins `type` to strings tells the names; `eventType` alone does not (the event may
  // also carry a `type`).
  if (route || !filter || typeof filter !== "object") return null;
  const values = filter.type;
  if (!Array.isArray(values) || values.length === 0 || !values.every((v) => typeof v === "string")) return null;
  return [...values];
}

/**
 * One SSE stream: an EventSource when the event names are known, else fetch() read by hand
 * (which sees every event name). Calls `handlers.open()`, `handlers.event(name, data, id)`,
 * `handlers.error({opened, status, error})` — the last at most once, after which the stream
 * is closed.
 */
class SSEStream {
  constructor(url, names, handlers) {
    this.url = url;
    this.opened = false;
    this.closed = false;
    this._handlers = handlers;
    if (names && typeof EventSource === "function") this._startEventSource(names);
    else this._startFetch();
  }

  _startEventSource(names) {
    const source = new EventSource(this.url);
    this._source = source;
    source.onopen = () => { if (!this.closed) { this.opened = true; this._handlers.open(); } };
    source.onerror = () => {
      if (this.closed) return;
      // CLOSED: the answer was not a stream (an HTTP error); CONNECTING: the stream broke.
      this._fail({ opened: this.opened, status: source.readyState === EventSource.CLOSED ? undefined : 0 });
    };
    const forward = (m) => { if (!this.closed) this._handlers.event(m.type, m.data, m.lastEventId); };
    for (const name of new Set([...names, "herald.gap"])) source.addEventListener(name, forward);
  }

  async _startFetch() {
    const controller = new AbortController();
    this._controller = controller;
    let response;
    try {
      response = await fetch(this.url, { headers: { Accept: "text/event-stream" }, cache: "no-store", signal: controller.signal });
    } catch (error) {
      this._fail({ opened: false, status: 0, error });
      return;
    }
    if (this.closed) return;
    if (!response.ok || !response.body) {
      let body = null;
      try { body = await response.json(); } catch { body = null; }
      this._fail({ opened: false, status: response.status, error: body && body.error });
      return;
    }
    this.opened = true;
    this._handlers.open();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "", name = "", data = [], id = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.closed) break;
        buffer += value;
        let newline;
        while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
          if (line === "") {
            if (data.length) this._handlers.event(name || "message", data.join("\n"), id);
            name = ""; data = [];
            if (this.closed) return;
            continue;
          }
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? "" : line.slice(colon + 1);
          if (text.startsWith(" ")) text = text.slice(1);
          if (field === "event") name = text;
          else if (field === "data") data.push(text);
          else if (field === "id") id = text;
        }
      }
    } catch (error) {
      if (!this.closed) this._fail({ opened: true, status: 0, error });
      return;
    }
    if (!this.closed) this._fail({ opened: true, status: 0 });
  }

  _fail(info) {
    if (this.closed) return;
    this.close();
    this._handlers.error(info);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    if (this._source) this._source.close();
    if (this._controller) this._controller.abort();
  }
}

/**
 * Server-Sent Events (`transport: "sse"`, or the fallback when the WebSocket cannot connect,
 * e.g. behind a proxy that refuses upgrades): one stream per subscription
 * (resuming with `lastEventId`), plus one per presence group that no subscription's stream
 * can hold (`presence=`). It follows the client's subscriptions and groups, reopening a
 * stream whose presence changed, and counts as open once every stream is. A stream that
 * breaks reconnects them all; one the gateway refuses fails its subscription or its join.
 */
class SSETransport {
  static get carriesOps() { return false; }

  /** @param {Herald} client @param {object} handlers */
  constructor(client, handlers) {
    this._client = client;
    this._handlers = handlers;
    this._streams = new Map();   // key → {stream, identity, group, sub, opened, closed}
    this._position = null;       // the gateway's position {seq, epoch} when connect() began
    this._opening = false;       // from connect() until every stream is open
    this._open = false;
    this._closed = false;
    this._reconcileQueued = false;
  }

  async connect() {
    // The gateway's position now: where live-only subscriptions start, and the line between
    // replayed and live events for the resume count.
    const position = await this._fetchPosition();
    if (this._closed) return;
    this._position = position;
    for (const sub of this._client.subscriptions) sub._cursor.startAt(position?.seq, position?.epoch);
    this._handlers.resume(position ? position.seq : Infinity, position?.epoch);
    this._opening = true;
    this._reconcile();
    this._checkOpen();
  }

  update() {
    if (this._reconcileQueued) return;
    this._reconcileQueued = true;
    queueMicrotask(() => {
      this._reconcileQueued = false;
      if (!this._closed && (this._open || this._opening)) this._reconcile();
    });
  }

  holds(group) {
    const holder = [...this._streams.values()].find((s) => s.group === group);
    return Boolean(holder && holder.opened);
  }

  close() {
    this._closed = true;
    for (const entry of this._streams.values()) entry.close();
    this._streams.clear();
    this._opening = false;
  }

  /** The gateway's position now, `{seq, epoch}`, or null when it cannot be read. */
  async _fetchPosition() {
    try {
      const response = await fetch(new URL("/v1/stats", this._client.url), { cache: "no-store" });
      const body = await response.json();
      const seq = body && body.events && body.events.last_seq;
      const epoch = body && body.events && body.events.epoch;
      return typeof seq === "number" ? { seq, epoch: typeof epoch === "string" ? epoch : null } : null;
    } catch {
      return null;
    }
  }

  _checkOpen() {
    if (!this._opening || this._closed) return;
    for (const s of this._streams.values()) if (!s.opened) return;
    this._opening = false;
    this._open = true;
    this._handlers.open();
  }

  /** The streams there should be: one per subscription, and one per presence group that no
   *  subscription to that group's presence events can carry. */
  _wantedStreams() {
    const subs = this._client.subscriptions;
    const groups = this._client._presence.groups;
    const wanted = new Map();
    const carriers = new Map();
    for (const group of groups.keys()) {
      const target = canonical(presenceFilter(group));
      for (const sub of subs) {
        if (!sub.route && sub.filter && canonical(sub.filter) === target) { carriers.set(sub.id, group); break; }
      }
    }
    for (const sub of subs) {
      const group = carriers.get(sub.id) ?? null;
      wanted.set(`sub:${sub.id}`, { sub, group, filter: sub.filter, route: sub.route });
    }
    const carried = new Set(carriers.values());
    for (const group of groups.keys()) {
      if (!carried.has(group)) wanted.set(`presence:${group}`, { sub: null, group, filter: presenceFilter(group), route: undefined });
    }
    for (const want of wanted.values()) {
      want.identity = want.group == null ? "" : `${want.group}\n${canonical(groups.get(want.group))}`;
    }
    return wanted;
  }

  _reconcile() {
    const wanted = this._wantedStreams();
    for (const [key, current] of this._streams) {
      const want = wanted.get(key);
      if (!want || want.identity !== current.identity) {
        current.stream.close();
        this._streams.delete(key);
      }
    }
    for (const [key, want] of wanted) {
      if (!this._streams.has(key)) this._openStream(key, want);
    }
  }

  _streamURL(want) {
    const url = new URL("/v1/sse", this._client.url);
    if (want.filter != null) url.searchParams.set("filter", JSON.stringify(want.filter));
    if (want.route) url.searchParams.set("route", want.route);
    if (this._client._token) url.searchParams.set("token", this._client._token);
    const cursor = want.sub ? want.sub._cursor.resumeFrom : null;
    if (cursor != null) {
      const epoch = want.sub._cursor.epoch;
      url.searchParams.set("lastEventId", epoch != null ? `${epoch}:${cursor}` : String(cursor));
    }
    if (want.group != null) {
      url.searchParams.set("presence", want.group);
      url.searchParams.set("presenceInfo", JSON.stringify(this._client._presence.groups.get(want.group) || {}));
    }
    return url.href;
  }

  _openStream(key, want) {
    const opening = this._opening;
    const entry = {
      identity: want.identity, group: want.group, sub: want.sub, stream: null, opened: false, closed: false,
      close() { entry.closed = true; if (entry.stream) entry.stream.close(); },
    };
    this._streams.set(key, entry);
    const start = async () => {
      // A live-only subscription added to a running stream set starts from the position now,
      // so a later resume knows where it began.
      if (want.sub && want.sub._cursor.resumeFrom == null && !opening) {
        const position = await this._fetchPosition();
        want.sub._cursor.startAt(position?.seq, position?.epoch);
      }
      if (entry.closed || this._closed) return;
      const url = this._streamURL(want);
      const names = want.sub ? sseEventNames(want.filter, want.route) : ["herald.presence"];
      entry.stream = new SSEStream(url, names, {
        open: () => {
          if (this._closed || entry.closed) return;
          entry.opened = true;
          if (want.sub) want.sub._confirmed(opening ? this._position?.seq ?? null : null, opening ? this._position?.epoch ?? null : null);
          this._checkOpen();
        },
        event: (name, data, id) => {
          if (this._closed || entry.closed || !want.sub) return;
          let payload;
          try { payload = JSON.parse(data); } catch { return; }
          if (name === "herald.gap") { want.sub._gap(payload); return; }
          const position = parseEventID(id);
          if (!position) return;
          if (position.epoch != null) want.sub._cursor.epoch = position.epoch;
          want.sub._deliver(position.seq, payload, [want.sub.id]);
        },
        error: (info) => { if (!this._closed && !entry.closed) this._streamFailed(key, entry, url, info); },
      });
    };
    start();
  }

  async _streamFailed(key, entry, url, info) {
    if (info.opened) {   // a stream that was working broke: reconnect everything, resuming
      this._handlers.closed({ code: info.status || 0, reason: "an event stream closed" });
      return;
    }
    let status = info.status, error = info.error;
    if (status === undefined) ({ status, error } = await this._probe(url));
    if (this._closed) return;
    if (status >= 400 && status < 500 && status !== 401 && status !== 429) {
      // The gateway refused this stream for good: a forbidden presence join (the stream is
      // opened again without it), or a subscription it will never accept (a bad pattern).
      const failure = new HeraldError(error && error.code || `http_${status}`, error && error.message || `the stream was refused (${status})`, { status, details: error });
      if (this._streams.get(key) === entry) this._streams.delete(key);
      entry.close();
      if (entry.group != null && (status === 403 || !entry.sub)) {
        this._client._presence.refused(entry.group, failure);
        this._reconcile();
      } else if (entry.sub) {
        this._client._refused(entry.sub, failure);
      }
      this._checkOpen();
      return;
    }
    // A 503 or 429 with `retryAfterMs` (too many connections or resumes): wait that long.
    const retryAfterMs = error && Number.isFinite(error.retryAfterMs) ? error.retryAfterMs : undefined;
    this._handlers.closed({ code: status || 0, reason: status ? `the event stream was refused (${status})` : "the event stream could not connect", retryAfterMs });
  }

  async _probe(url) {
    // The same request, presence included, so a refused join shows as its 403 (a probe that
    // succeeds announces a brief join and leave; it runs only after a stream failed to open).
    const controller = new AbortController();
    try {
      const response = await fetch(url, { cache: "no-store", signal: controller.signal, headers: { Accept: "text/event-stream" } });
      if (response.ok) { controller.abort(); return { status: response.status }; }
      let body = null;
      try { body = await response.json(); } catch { body = null; }
      return { status: response.status, error: body && body.error };
    } catch {
      return { status: 0 };
    }
  }
}

/** The transports by the name `options.transport` and {@link Herald#transport} use. */
const TRANSPORTS = { websocket: WebSocketTransport, sse: SSETransport };

// MARK: - Requests

/**
 * The herald.v1 ops that wait for an answer (publish, presence, auth). The gateway answers
 * them without an id, in the order they were sent; those made while not connected wait in
 * an outbox for the next connection. Each settles once: by its answer, an error or a timeout.
 */
class RequestQueue {
  /** @param {(message: object) => boolean} send sends an op now; false when it could not */
  constructor(send) {
    this._send = send;
    this._outbox = [];     // made while not connected
    this._inFlight = [];   // sent, awaiting their answers in order
  }

  /** Sends the op now when `connected`, else when the next connection opens. */
  request(kind, message, connected) {
    return new Promise((resolve, reject) => {
      const entry = this.create(kind, message, reject, resolve);
      if (connected) this.dispatch(entry);
      else this._outbox.push(entry);
    });
  }

  /** A request entry that settles once, by its answer or by a timeout. */
  create(kind, message, reject, resolve = () => {}) {
    const entry = { kind, message, settled: false };
    const settle = (fn) => (value) => { if (!entry.settled) { entry.settled = true; clearTimeout(entry.timer); fn(value); } };
    entry.resolve = settle(resolve);
    entry.reject = settle(reject);
    entry.timer = setTimeout(() => entry.reject(new HeraldError("timeout", `no answer to ${kind} within ${REQUEST_TIMEOUT_MS / 1000} s`)), REQUEST_TIMEOUT_MS);
    return entry;
  }

  dispatch(entry) {
    if (entry.settled) return;
    if (this._send(entry.message)) this._inFlight.push(entry);
    else this._outbox.push(entry);
  }

  /** Hands the answer to the oldest waiting request; false when none waits. */
  answer(settle) {
    const entry = this._inFlight.shift();
    if (!entry) return false;
    settle(entry);
    return true;
  }

  /** Empties the outbox. @returns the requests that were waiting in it */
  takeQueued() {
    return this._outbox.splice(0);
  }

  /** Resolves the queued requests that `matches` with `value`, and drops every settled one. */
  resolveQueued(matches, value) {
    for (const entry of this._outbox.filter(matches)) entry.resolve(value);
    this._outbox = this._outbox.filter((e) => !e.settled);
  }

  /** The connection closed: what it carried will not be answered. */
  failInFlight(error) {
    for (const entry of this._inFlight.splice(0)) if (!entry.settled) entry.reject(error);
  }
}

// MARK: - Herald

/**
 * A connection to a Herald gateway, shared by any number of subscriptions.
 *
 * Events emitted (listen with {@link Herald#on}):
 * - `status` `{state, transport, …}` on every change of `state`;
 * - `connecting` `{transport, attempt}`, `open` `{transport, resumed}`,
 *   `closed` `{transport, code, reason, retryInMs}` (retryInMs null once closed for good);
 * - `fallback` `{from: "websocket", to: "sse", reason}` when the WebSocket cannot connect;
 * - `resumed` `{transport, total, subscriptions: [{id, subscription, restored, reset}]}` after a
 *   reconnect, once the missed events have been replayed (`reset`: the gateway had lost the
 *   subscription's position, see `reset`; `restored` then counts the new epoch's events);
 * - `reset` `{subscription, epoch, previousEpoch, lost}` when a subscription's resume position
 *   belongs to another epoch (the gateway restarted without storage): what followed it there
 *   is unknown; `lost` is how many of the new epoch's first events history no longer holds;
 * - `error` `{error}` for failures that belong to no call (a presence re-join, …).
 */
export class Herald {
  /**
   * @param {object} [options]
   * @param {string} [options.url] the gateway's base URL (default: this page's origin)
   * @param {string|null|(() => string|null|Promise<string|null>)} [options.token] a token, or
   *   a function asked for one on every (re)connect (nothing: connect anonymously)
   * @param {"auto"|"websocket"|"sse"} [options.transport] "auto" (default): WebSocket, and SSE
   *   when the WebSocket cannot connect
   * @param {{initialMs?: number, maxMs?: number}} [options.reconnect] backoff bounds (500 ms … 15 s)
   * @param {(status: object) => void} [options.onStatus] shorthand for `on("status", …)`
   * @param {boolean} [options.connect] connect at once (default true)
   */
  constructor(options = {}) {
    const origin = typeof location !== "undefined" ? location.origin : "http://localhost";
    this.url = new URL(options.url || origin, origin).href.replace(/\/$/, "");
    this._tokenOption = options.token ?? null;
    this._transportOption = options.transport || "auto";
    if (!["auto", ...Object.keys(TRANSPORTS)].includes(this._transportOption)) throw new TypeError(`unknown transport ${this._transportOption}`);
    this._reconnect = { ...DEFAULT_RECONNECT, ...(options.reconnect || {}) };
    this._mode = this._transportOption === "sse" || (this._transportOption === "auto" && typeof WebSocket !== "function") ? "sse" : "websocket";
    /** @type {string} a random tag in every subscription id, so admin tools can tell clients apart. */
    this.clientTag = Math.random().toString(36).slice(2, 8);
    this._listeners = new Map();
    this._subs = new Map();
    this._nextId = 1;
    this._gen = 0;              // bumped by every connect and teardown: older async steps stop
    this._state = "idle";
    this._attempt = 0;
    this._wsFailures = 0;
    this._hadOpen = false;
    this._openedAt = 0;
    this._closedForGood = false;
    this._suspended = false;
    this._token = null;
    this._transport = null;     // the current connection, while there is one
    this._retryTimer = null;
    this._refreshTimer = null;
    this._requests = new RequestQueue((message) => this._send(message));
    this._resumeTracker = new ResumeTracker((summary) => this._emit("resumed", { transport: this._mode, ...summary }));
    this._presence = new Presence(this);
    if (options.onStatus) this.on("status", options.onStatus);

    /**
     * Presence: membership of named groups, announced to others as `herald.presence` events.
     * Groups are re-joined after every reconnect.
     */
    this.presence = {
      /**
       * Joins `group` with `info` (e.g. `{nick: "ada"}`); the token must allow it.
       * @returns {Promise<{group: string, seq: number|null}>}
       */
      join: (group, info = {}) => this._presence.join(group, info),
      /** Leaves `group`. @returns {Promise<{group: string, seq: number|null}>} */
      leave: (group) => this._presence.leave(group),
      /** The groups joined, with their info. @returns {Map<string, object>} */
      groups: () => new Map(this._presence.groups),
    };

    this._onOnline = () => { if (this._state === "closed" && !this._closedForGood && !this._suspended) this.reconnectNow(); };
    // A page put in the back/forward cache would keep its streams open (and hold the browser's
    // six connections per host, and its presence): disconnect on pagehide, resume on pageshow.
    this._onPageHide = () => {
      if (this._closedForGood || this._state === "idle") return;
      this._suspended = true;
      clearTimeout(this._retryTimer);
      this._teardown(new HeraldError("disconnected", "the page was hidden"));
      this._setState("closed", { code: 1001, reason: "page hidden", retryInMs: null });
    };
    this._onPageShow = () => {
      if (!this._suspended || this._closedForGood) return;
      this._suspended = false;
      this._connect();
    };
    if (typeof addEventListener === "function") {
      addEventListener("online", this._onOnline);
      addEventListener("pagehide", this._onPageHide);
      addEventListener("pageshow", this._onPageShow);
    }
    if (options.connect !== false) queueMicrotask(() => { if (this._state === "idle") this._connect(); });
  }

  /** The transport in use: "websocket" or "sse". */
  get transport() { return this._mode; }

  /** "idle", "connecting", "open" or "closed". */
  get state() { return this._state; }

  /** The live subscriptions. @returns {Subscription[]} */
  get subscriptions() { return [...this._subs.values()]; }

  /** Whether the transport in use speaks herald.v1 ops (WebSocket) rather than following
   *  the subscriptions itself (SSE). */
  get _carriesOps() { return TRANSPORTS[this._mode].carriesOps; }

  /**
   * Listens to `type` (status, connecting, open, closed, reconnecting, fallback, resumed, gap,
   * reset, error).
   * @returns {() => void} a function that removes the listener
   */
  on(type, listener) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(listener);
    return () => this.off(type, listener);
  }

  /** Removes a listener added with {@link Herald#on}. */
  off(type, listener) {
    const set = this._listeners.get(type);
    if (set) set.delete(listener);
  }

  _emit(type, detail) {
    for (const listener of [...(this._listeners.get(type) || [])]) {
      try { listener(detail); } catch (error) { reportError(error); }
    }
  }

  _setState(state, detail = {}) {
    this._state = state;
    const full = { state, transport: this._mode, ...detail };
    if (state !== "idle") this._emit(state, full);
    this._emit("status", full);
  }

  /**
   * Subscribes to the events matching `filter` (an EventBridge pattern) and/or `route`.
   * @param {object} options
   * @param {object} [options.filter] event pattern (default `{}`: every event, when no route)
   * @param {string} [options.route] a route name from the gateway's config
   * @param {number} [options.since] replay what history still holds after this seq first
   * @param {string} [options.epoch] the epoch `since` counts in (a stored `subscription.epoch`);
   *   without it `since` counts in the gateway's current epoch
   * @param {(event: object, meta: {seq: number, subs: string[], replayed: boolean, subscription: Subscription}) => void} [options.onEvent]
   * @param {(gap: {from: number, to: number, reason: string, epoch: string}) => void} [options.onGap] events
   *   `from`–`to` will not arrive: `reason` "overflow" means events of this subscription were
   *   dropped (this client fell behind); "expired" means history no longer reaches back to
   *   the resume position, so matching events may be missing (the gateway cannot know);
   *   "reset" means the resume position belongs to another epoch (the gateway restarted
   *   without storage), so what followed it is unknown — everything the new epoch still
   *   holds follows (the client also emits `reset`)
   * @param {(error: HeraldError) => void} [options.onError] the gateway refused the subscription
   * @returns {Subscription}
   */
  subscribe(options = {}) {
    if (this._closedForGood) throw new HeraldError("closed", "this Herald client is closed");
    const opts = { ...options };
    if (opts.filter == null && !opts.route) opts.filter = {};
    if (opts.since != null && !(Number.isInteger(opts.since) && opts.since >= 0)) throw new TypeError("since must be a non-negative integer");
    if (opts.epoch != null && !(typeof opts.epoch === "string" && /^[0-9a-z]{1,32}$/.test(opts.epoch))) throw new TypeError("epoch must be an epoch string the gateway gave");
    const sub = new Subscription(this, `${this.clientTag}-${this._nextId++}`, opts);
    this._subs.set(sub.id, sub);
    if (!this._carriesOps) { if (this._transport) this._transport.update(); }
    else if (this._state === "open") this._sendSubscribe(sub);
    return sub;
  }

  _removeSubscription(sub) {
    this._subs.delete(sub.id);
    if (!this._carriesOps) { if (this._transport) this._transport.update(); }
    else if (this._state === "open") this._send({ op: "unsubscribe", id: sub.id });
  }

  /** The gateway refused `sub` for good. */
  _refused(sub, error) {
    this._subs.delete(sub.id);
    sub._fail(error);
  }

  /**
   * Publishes one event: over the WebSocket (`publish` op) or, on SSE, with POST /v1/events.
   * The token must allow it. Waits for a connection when there is none yet.
   * @param {object} event
   * @returns {Promise<{id: string, seq: number, duplicate?: boolean}>} rejects with a {@link HeraldError}
   */
  publish(event) {
    if (!event || typeof event !== "object" || Array.isArray(event)) return Promise.reject(new TypeError("publish takes one event object"));
    if (this._closedForGood) return Promise.reject(new HeraldError("closed", "this Herald client is closed"));
    if (!this._carriesOps) return this._post(event);
    return this._request("publish", { op: "publish", event });
  }

  /**
   * Asks the token function for a fresh token and applies it: a WebSocket sends an `auth`
   * op (the connection's credentials are replaced); SSE uses it for the streams it opens next.
   * @returns {Promise<void>}
   */
  async reauthenticate() {
    const token = await this._resolveToken();
    this._token = token;
    this._scheduleTokenRefresh(token);
    if (this._carriesOps && this._state === "open" && token) {
      await this._request("auth", { op: "auth", token });
    }
  }

  /** Drops the current connection (if any) and connects again at once; subscriptions resume. */
  reconnectNow() {
    if (this._closedForGood) return;
    this._suspended = false;
    clearTimeout(this._retryTimer);
    const wasOpen = this._state === "open";
    this._teardown(new HeraldError("disconnected", "reconnecting"));
    if (wasOpen) this._setState("closed", { code: 1000, reason: "reconnectNow", retryInMs: 0 });
    this._connect();
  }

  /** Closes the connection for good; every subscription ends. */
  close() {
    if (this._closedForGood) return;
    this._closedForGood = true;
    clearTimeout(this._retryTimer);
    clearTimeout(this._refreshTimer);
    if (typeof removeEventListener === "function") {
      removeEventListener("online", this._onOnline);
      removeEventListener("pagehide", this._onPageHide);
      removeEventListener("pageshow", this._onPageShow);
    }
    this._teardown(new HeraldError("closed", "the client was closed"));
    for (const entry of this._requests.takeQueued()) entry.reject(new HeraldError("closed", "the client was closed"));
    for (const sub of [...this._subs.values()]) {
      sub.state = "closed";
      sub._readyReject(new HeraldError("closed", "the client was closed"));
      sub._finishIterators(null);
    }
    this._subs.clear();
    this._setState("closed", { code: 1000, reason: "closed", retryInMs: null });
  }

  // MARK: - Auth

  async _resolveToken() {
    const option = this._tokenOption;
    const token = typeof option === "function" ? await option() : option;
    return token ? String(token) : null;
  }

  /**
   * The gateway ends a session whose JWT expired (error `token_expired`, close 4001; SSE
   * streams end). When the token comes from a function, ask it for a new one before that
   * happens and apply it with `reauthenticate()`: a minute before `exp`, or a tenth of the
   * remaining lifetime for short-lived tokens. (The payload is read only for its `exp`;
   * the gateway verifies the token.)
   */
  _scheduleTokenRefresh(token) {
    clearTimeout(this._refreshTimer);
    if (!token || typeof this._tokenOption !== "function" || this._closedForGood) return;
    const exp = tokenExpiry(token);
    if (exp == null) return;
    const remaining = exp * 1000 - Date.now();
    const delay = Math.max(1000, remaining - Math.min(60_000, Math.max(5_000, remaining / 10)));
    this._refreshTimer = setTimeout(() => {
      this.reauthenticate().catch((error) => this._emit("error", { error: new HeraldError("token", `could not renew the token: ${error && error.message}`) }));
    }, delay);
  }

  // MARK: - Connecting

  async _connect() {
    if (this._closedForGood || this._suspended) return;
    clearTimeout(this._retryTimer);
    const gen = ++this._gen;
    this._setState("connecting", { attempt: this._attempt + 1 });
    let token;
    try {
      token = await this._resolveToken();
    } catch (error) {
      if (gen !== this._gen) return;
      this._emit("error", { error: new HeraldError("token", `could not get a token: ${error && error.message}`) });
      this._scheduleRetry({ code: 0, reason: "no token" });
      return;
    }
    if (gen !== this._gen || this._closedForGood) return;
    this._token = token;
    this._scheduleTokenRefresh(token);
    const Transport = TRANSPORTS[this._mode];
    this._transport = new Transport(this, {
      resume: (position, epoch) => { if (this._hadOpen) this._resumeTracker.begin([...this._subs.values()], position, epoch); },
      open: () => this._transportOpened(token),
      message: (msg) => this._onMessage(msg),
      closed: (detail) => this._dropped(detail),
      failed: (reason) => this._openFailed(gen, reason),
    });
    this._transport.connect();
  }

  /**
   * How long to wait before the next attempt: what the gateway said (a close 1013 "try
   * again later" carries `retryAfterMs=<ms>`, a refused event stream `retryAfterMs` in its
   * body, both already jittered), else full jitter — anywhere between 0 and the
   * exponential step — so that clients dropped together do not come back together.
   */
  _backoff(detail) {
    if (detail && Number.isFinite(detail.retryAfterMs)) return detail.retryAfterMs;
    const hint = detail && detail.code === 1013 && /retryAfterMs=(\d+)/.exec(detail.reason || "");
    if (hint) return Number(hint[1]);
    const { initialMs, maxMs } = this._reconnect;
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this._attempt, 16));
    return Math.round(Math.random() * base);
  }

  _scheduleRetry(detail) {
    if (this._closedForGood) return;
    const delay = this._backoff(detail);
    this._attempt++;
    this._setState("closed", { ...detail, retryInMs: delay });
    this._emit("reconnecting", { transport: this._mode, attempt: this._attempt, inMs: delay, code: detail?.code, reason: detail?.reason });
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => this._connect(), delay);
  }

  /** Closes whatever is open now, quietly; in-flight requests fail with `error`. */
  _teardown(error) {
    this._gen++;
    if (this._transport) {
      this._transport.close();
      this._transport = null;
    }
    this._requests.failInFlight(error);
    this._resumeTracker.cancel();
  }

  /**
   * The transport carries everything now. A connection with ops (WebSocket) knows nothing of
   * this client yet: what it must carry is sent before the connection is announced, so that
   * a listener of `open` that subscribes or joins is not sent twice. Requests go out in this
   * order: auth (reauthenticate() ran while it connected with the older `token`), the queued
   * ones, then re-joins of groups that no queued join already covers.
   */
  _transportOpened(token) {
    if (this._carriesOps) {
      this._wsFailures = 0;
      const waiting = this._requests.takeQueued();
      if (this._token && this._token !== token) {
        this._requests.dispatch(this._requests.create("auth", { op: "auth", token: this._token }, (error) => this._emit("error", { error })));
      }
      for (const sub of this._subs.values()) this._sendSubscribe(sub);
      for (const entry of waiting) this._requests.dispatch(entry);
      this._presence.rejoin(new Set(waiting.filter((e) => e.kind === "presence.join").map((e) => e.message.group)));
    }
    this._openedAt = Date.now();
    const resumed = this._hadOpen;
    this._hadOpen = true;
    this._setState("open", { resumed });
    this._resumeTracker.opened();
  }

  _dropped(detail) {
    // A connection that lasted resets the backoff; one closed at once (a kick, overflow
    // under the disconnect policy) keeps growing it, so retries do not hammer the gateway.
    if (Date.now() - this._openedAt > STABLE_CONNECTION_MS) this._attempt = 0;
    const error = new HeraldError("disconnected", `the connection closed (${detail.code}${detail.reason ? ` ${detail.reason}` : ""})`);
    this._teardown(error);
    this._scheduleRetry(detail);
  }

  /** The WebSocket never opened: retry with backoff or, in "auto", fall back to SSE. */
  async _openFailed(gen, reason) {
    this._wsFailures++;
    if (this._transportOption === "auto" && this._wsFailures >= 2) {
      // Two failures: is it the WebSocket, the token, or is the gateway away? Only the first
      // means SSE. The presence list authenticates like an upgrade, so it tells the token's fate
      // (a refused upgrade is only "closed before open" to a browser).
      let reachable = false, refused = false;
      try {
        const headers = this._token ? { Authorization: `Bearer ${this._token}` } : {};
        const response = await fetch(new URL("/v1/presence/herald.js-probe", this.url), { cache: "no-store", headers });
        refused = response.status === 401;
        reachable = response.status < 500 && !refused;
      } catch { reachable = false; }
      if (gen !== this._gen || this._closedForGood) return;
      if (refused) this._emit("error", { error: new HeraldError("unauthorized", "the gateway refused the token; retrying with a new one") });
      if (reachable) {
        this._teardown(new HeraldError("disconnected", reason));
        this._mode = "sse";
        this._emit("fallback", { from: "websocket", to: "sse", reason });
        // Queued WebSocket publishes go out as POSTs now; presence is handled by the streams.
        for (const entry of this._requests.takeQueued()) {
          if (entry.kind === "publish") this._post(entry.message.event).then(entry.resolve, entry.reject);
          else if (entry.kind === "presence.join" || entry.kind === "presence.leave") entry.resolve({ group: entry.message.group, seq: null });
          else entry.resolve({});
        }
        this._connect();
        return;
      }
    }
    if (gen !== this._gen) return;
    this._teardown(new HeraldError("disconnected", reason));
    this._scheduleRetry({ code: 0, reason });
  }

  // MARK: - Ops (WebSocket)

  _send(message) {
    return this._transport ? this._transport.send(message) : false;
  }

  _sendSubscribe(sub) {
    const message = { op: "subscribe", id: sub.id };
    if (sub.filter != null) message.filter = sub.filter;
    if (sub.route) message.route = sub.route;
    const since = sub._cursor.resumeFrom;
    if (since != null) {
      message.since = since;
      if (sub._cursor.epoch != null) message.epoch = sub._cursor.epoch;
    }
    this._send(message);
  }

  /** A request answered without an id (publish, presence, auth): answers come in order. */
  _request(kind, message) {
    return this._requests.request(kind, message, this._state === "open" && this._carriesOps);
  }

  _onMessage(msg) {
    switch (msg.type) {
      case "event": {
        const ids = Array.isArray(msg.subs) ? msg.subs : [];
        for (const id of ids) {
          const sub = this._subs.get(id);
          if (sub) sub._deliver(msg.seq, msg.event, ids);
        }
        break;
      }
      case "subscribed": {
        const sub = this._subs.get(msg.id);
        if (sub) { sub._confirmed(msg.position, msg.epoch); this._resumeTracker.progress(); }
        break;
      }
      case "gap":
        for (const id of msg.subs || []) {
          const sub = this._subs.get(id);
          if (sub) sub._gap({ from: msg.from, to: msg.to, reason: msg.reason, epoch: msg.epoch });
        }
        break;
      case "published":
        this._requests.answer((entry) => entry.resolve({ id: msg.id, seq: msg.seq, epoch: msg.epoch ?? null }));
        break;
      case "presence.joined":
      case "presence.left":
        this._requests.answer((entry) => entry.resolve({ group: msg.group, seq: msg.seq ?? null }));
        break;
      case "authenticated":
        this._requests.answer((entry) => entry.resolve({ subject: msg.subject, expiresAt: msg.expiresAt ?? null }));
        break;
      case "error": {
        const error = new HeraldError(msg.code || "error", msg.message || "error", { details: msg });
        if (msg.id != null && this._subs.has(msg.id)) {
          this._refused(this._subs.get(msg.id), error);
          this._resumeTracker.progress();
        } else if (msg.id != null && String(msg.id).startsWith(`${this.clientTag}-`)) {
          // An answer about a subscription already dropped here (e.g. its unsubscribe).
        } else if (!this._requests.answer((entry) => entry.reject(error))) {
          this._emit("error", { error });
        }
        break;
      }
      default:
        break;   // pong, unsubscribed, and anything newer
    }
  }

  // MARK: - Publishing over HTTP (SSE)

  async _post(event, retried = false) {
    if (this._token == null && !retried && typeof this._tokenOption === "function") {
      try { this._token = await this._resolveToken(); } catch { /* anonymous */ }
    }
    const headers = { "Content-Type": "application/json" };
    if (this._token) headers.Authorization = `Bearer ${this._token}`;
    let response;
    try {
      response = await fetch(new URL("/v1/events", this.url), { method: "POST", headers, body: JSON.stringify(event), cache: "no-store" });
    } catch (error) {
      throw new HeraldError("network", `could not reach the gateway (${error && error.message})`);
    }
    let body = null;
    try { body = await response.json(); } catch { body = null; }
    if (response.status === 401 && !retried && typeof this._tokenOption === "function") {
      this._token = await this._resolveToken();   // the token may have expired: one fresh try
      return this._post(event, true);
    }
    if (!response.ok) {
      const e = body && body.error;
      throw new HeraldError(e && e.code || `http_${response.status}`, e && e.message || `HTTP ${response.status}`, { status: response.status, details: e });
    }
    const accepted = body && Array.isArray(body.accepted) ? body.accepted[0] : null;
    if (!accepted) throw new HeraldError("invalid_answer", "the gateway's answer had no accepted event", { status: response.status });
    return { id: accepted.id, seq: accepted.seq, duplicate: accepted.duplicate };
  }
}

export default Herald;
