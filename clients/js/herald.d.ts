// Type declarations for herald.js, the client of the Herald gateway (written by hand for
// the public API; the implementation is herald.js beside this file).

/** A JSON value as events carry it. */
export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

/** An event: any JSON object. */
export type HeraldEvent = { [key: string]: JSONValue };

/** An EventBridge event pattern (see the gateway's README, "Patterns"). */
export type EventPattern = { [field: string]: JSONValue };

/**
 * An error from the gateway or the client. `code` is the gateway's error code
 * (`forbidden`, `invalid_pattern`, `unauthorized`, `rate_limited`, …) or one of the
 * client's own: `disconnected`, `timeout`, `closed`, `network`, `overflow`, `token` (the
 * token function failed), `invalid_answer`, `http_<status>` (an HTTP answer without a
 * gateway error body).
 */
export class HeraldError extends Error {
  constructor(code: string, message: string, extra?: { status?: number; details?: object });
  readonly name: "HeraldError";
  readonly code: string;
  /** HTTP status, when the error came from an HTTP answer. */
  readonly status: number | undefined;
  /** The gateway's error object, as sent. */
  readonly details: object | undefined;
}

/** Why events will not arrive: see {@link SubscribeOptions.onGap}. */
export type GapReason = "overflow" | "expired" | "reset";

/** Events `from`–`to` of a subscription will not arrive. */
export interface Gap {
  from: number;
  to: number;
  reason: GapReason;
  /** The epoch the positions count in. */
  epoch?: string;
}

/** What comes with each delivered event. */
export interface EventMeta {
  seq: number;
  /** The ids of this client's subscriptions the event matched. */
  subs: string[];
  /** True for an event replayed from history (a `since` or a reconnect's catch-up). */
  replayed: boolean;
  subscription: Subscription;
}

export interface SubscribeOptions {
  /** An event pattern (default `{}`: every event, when no route is given). */
  filter?: EventPattern;
  /** A route name from the gateway's configuration. */
  route?: string;
  /** Replay what history still holds after this seq first. */
  since?: number;
  /** The epoch `since` counts in (a stored `subscription.epoch`). */
  epoch?: string;
  onEvent?: (event: HeraldEvent, meta: EventMeta) => void;
  /**
   * Events that will not arrive: `overflow` — this client fell behind and the gateway
   * dropped some of this subscription's events; `expired` — history no longer reaches back
   * to the resume position; `reset` — the position belongs to another epoch (the gateway
   * restarted without storage): what followed it is unknown, the new epoch's events follow.
   */
  onGap?: (gap: Gap, meta: { subscription: Subscription }) => void;
  /** The gateway refused the subscription. */
  onError?: (error: HeraldError, meta: { subscription: Subscription }) => void;
}

/** One subscription, also an async iterator of its events (leaving the loop unsubscribes). */
export class Subscription implements AsyncIterable<{ event: HeraldEvent; seq: number; subs: string[]; replayed: boolean }> {
  /** The subscription id on the wire (unique per client). */
  readonly id: string;
  readonly filter: EventPattern | undefined;
  readonly route: string | undefined;
  /** The `since` it was created with. */
  readonly since: number | undefined;
  readonly sinceEpoch: string | undefined;
  readonly state: "pending" | "active" | "closed" | "failed";
  /** Why the subscription failed, if it did. */
  readonly error: HeraldError | null;
  /** Events seen again after a reconnect and not delivered twice. */
  readonly duplicatesDropped: number;
  /** The seq of the last event delivered, or null. */
  readonly lastSeq: number | null;
  /** The epoch `lastSeq` counts in (store it with `lastSeq` to resume later), or null. */
  readonly epoch: string | null;
  /** The gateway's position when the subscription was last confirmed, or null. */
  readonly position: number | null;
  /** Resolves once the gateway confirmed the subscription; rejects if it refused it. */
  readonly ready: Promise<{ position: number | null }>;
  unsubscribe(): void;
  [Symbol.asyncIterator](): AsyncIterator<{ event: HeraldEvent; seq: number; subs: string[]; replayed: boolean }>;
}

export type Transport = "websocket" | "sse";
export type ConnectionState = "idle" | "connecting" | "open" | "closed";

export interface StatusDetail {
  state: ConnectionState;
  transport: Transport;
  [more: string]: unknown;
}

/** The events a client emits, by name, with what each carries. */
export interface HeraldEventMap {
  /** Every change of `state`. */
  status: StatusDetail;
  /** A connection attempt begins (attempt 1, 2, … while reconnecting). */
  connecting: StatusDetail & { attempt: number };
  /** Connected; `resumed` when subscriptions resume after a reconnect. */
  open: StatusDetail & { resumed?: boolean };
  /** Disconnected; `retryInMs` is when the next attempt comes, null once closed for good. */
  closed: StatusDetail & { code?: number; reason?: string; retryInMs: number | null };
  /** A reconnect is scheduled in `inMs` (the backoff, or the gateway's retryAfterMs). */
  reconnecting: { transport: Transport; attempt: number; inMs: number; code?: number; reason?: string };
  /** A gap of any subscription (as its `onGap` gets it). */
  gap: { subscription: Subscription; from: number; to: number; reason: GapReason; epoch: string | null };
  /** The WebSocket could not connect: SSE is used instead. */
  fallback: { from: "websocket"; to: "sse"; reason: string };
  /** After a reconnect, once the missed events were replayed. */
  resumed: {
    transport: Transport;
    total: number;
    subscriptions: { id: string; subscription: Subscription; restored: number; reset: boolean }[];
  };
  /** A subscription's resume position belongs to another epoch: what followed it is unknown. */
  reset: { subscription: Subscription; epoch: string | null; previousEpoch: string | null; lost: number };
  /** A failure that belongs to no call (a presence re-join, …). */
  error: { error: HeraldError };
}

export interface HeraldOptions {
  /** The gateway's base URL (default: the page's origin). */
  url?: string;
  /** A token, or a function asked for one on every (re)connect (nothing: anonymous). */
  token?: string | null | (() => string | null | Promise<string | null>);
  /** "auto" (default): WebSocket, and SSE when the WebSocket cannot connect. */
  transport?: "auto" | Transport;
  /** Reconnect backoff bounds (500 ms … 15 s). */
  reconnect?: { initialMs?: number; maxMs?: number };
  /** Shorthand for `on("status", …)`. */
  onStatus?: (status: StatusDetail) => void;
  /** Connect at once (default true). */
  connect?: boolean;
}

/** A connection to a Herald gateway, shared by any number of subscriptions. */
export class Herald {
  constructor(options?: HeraldOptions);
  readonly url: string;
  /** A random tag in every subscription id, so admin tools can tell clients apart. */
  readonly clientTag: string;
  readonly transport: Transport;
  readonly state: ConnectionState;
  readonly subscriptions: Subscription[];
  /** Presence: membership of named groups, re-joined after every reconnect. */
  readonly presence: {
    join(group: string, info?: { [key: string]: JSONValue }): Promise<{ group: string; seq: number | null }>;
    leave(group: string): Promise<{ group: string; seq: number | null }>;
    groups(): Map<string, { [key: string]: JSONValue }>;
  };
  /** Listens to one of the client's events; returns a function that removes the listener. */
  on<K extends keyof HeraldEventMap>(type: K, listener: (detail: HeraldEventMap[K]) => void): () => void;
  off<K extends keyof HeraldEventMap>(type: K, listener: (detail: HeraldEventMap[K]) => void): void;
  subscribe(options?: SubscribeOptions): Subscription;
  /**
   * Publishes one event, a JSON object (the token must allow it). Over a WebSocket the
   * answer carries the epoch; over HTTP (SSE mode) whether it was a duplicate.
   */
  publish(event: object): Promise<{ id: string; seq: number; epoch?: string | null; duplicate?: boolean }>;
  /** Asks the token function for a fresh token and applies it. */
  reauthenticate(): Promise<void>;
  /** Drops the connection and connects again at once; subscriptions resume. */
  reconnectNow(): void;
  /** Closes the connection for good; every subscription ends. */
  close(): void;
}

/** The filter that matches the presence events of one group. */
export function presenceFilter(group: string): EventPattern;

export default Herald;
