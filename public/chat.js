// The chat demo: rooms, mentions and presence on top of herald.js.
//
// Subscriptions (all through one Herald client):
//   room      {"type":["chat.message"],"room":[room]}, since 0: the room's history, then live
//   rooms     {"type":["chat.message"]}, since 0: projected to room names and counts
//   mentions  {"type":["chat.message"],"mentions":[nick]}, since 0, while "Mentions of me" is on
//   presence  {"type":["herald.presence"],"group":["chat:<room>"]} on top of GET /v1/presence/…
// URL: /?room=lobby&nick=ada joins directly; &transport=sse forces Server-Sent Events.

import { Herald, presenceFilter } from "./herald.js";

const NICK = /^[A-Za-z0-9_.-]{1,32}$/;
const ROOM = /^[A-Za-z0-9_.-]{1,64}$/;
const MENTION = /(^|[^A-Za-z0-9_.-])@([A-Za-z0-9_.-]{1,32})/g;
const MAX_MESSAGES = 500;
const MAX_ROOMS = 30;

const $ = (id) => document.getElementById(id);
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const fullTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** Everything about the current session; replaced on join, transport switch and leave. */
const state = {
  nick: null,
  room: null,
  transport: "auto",          // what the user asked for: auto (WebSocket, SSE fallback) or sse
  herald: null,
  subs: { room: null, rooms: null, mentions: null, presence: null },
  view: "room",               // or "mentions"
  roomMessages: [],
  mentionMessages: [],
  rooms: new Map(),           // room → {count, last}
  members: new Map(),         // presence member id → info
  presencePosition: null,
  presenceBuffer: [],
  presenceGeneration: 0,
  demoAvailable: true,
  shownNicks: null,           // the nicks last shown in the member list (null: none yet for this room)
  token: null,                // the latest demo token (also for GET /v1/presence)
  unsent: null,               // {text, room, id, time} of a message whose answer has not come
  loading: false,
};

// MARK: - Small helpers

function group(room) { return `chat:${room}`; }

/** The distinct @nicks in a text, in order. */
export function parseMentions(text) {
  const found = [];
  for (const match of text.matchAll(MENTION)) {
    const nick = match[2].replace(/[.\-]+$/, "");
    if (nick && !found.includes(nick)) found.push(nick);
  }
  return found;
}

/** Appends `text` to `parent`, wrapping @mentions in <mark>. */
function appendWithMentions(parent, text) {
  let last = 0;
  for (const match of text.matchAll(MENTION)) {
    const nick = match[2].replace(/[.\-]+$/, "");
    if (!nick) continue;
    const start = match.index + match[1].length;
    parent.append(text.slice(last, start));
    const mark = document.createElement("mark");
    mark.className = nick === state.nick ? "mention me" : "mention";
    mark.textContent = `@${nick}`;
    parent.append(mark);
    last = start + 1 + nick.length;
  }
  parent.append(text.slice(last));
}

/** A stable, readable colour per nick (for the initial badge). */
function hue(nick) {
  let h = 0;
  for (const c of nick) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
}

function setURL({ push }) {
  const params = new URLSearchParams(location.search);
  if (state.nick) params.set("nick", state.nick); else params.delete("nick");
  if (state.room) params.set("room", state.room);
  if (state.transport === "sse") params.set("transport", "sse"); else params.delete("transport");
  const url = `${location.pathname}?${params}`;
  if (url === `${location.pathname}${location.search}`) return;
  if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
}

function notice(text, kind = "info") {
  const element = $("notice");
  element.textContent = text;
  element.dataset.kind = kind;
  element.hidden = !text;
}

// MARK: - Status line

function renderStatus(status) {
  const element = $("status");
  const herald = state.herald;
  const transport = herald ? herald.transport : null;
  const name = transport === "sse" ? "Server-Sent Events" : "WebSocket";
  element.dataset.state = status.state;
  element.dataset.transport = transport || "";
  let text;
  switch (status.state) {
    case "connecting": text = `Connecting over ${name}…`; break;
    case "open": text = `Live · ${name}${state.fallback ? " (WebSocket unavailable)" : ""}`; break;
    case "closed":
      text = status.retryInMs == null ? "Disconnected"
        : `Connection lost · retrying in ${Math.max(1, Math.round(status.retryInMs / 1000))} s`;
      break;
    default: text = "Not connected";
  }
  $("status-text").textContent = text;
  $("transport").value = transport === "sse" ? "sse" : "websocket";
}

// MARK: - Messages

function messageElement(event, meta, { showRoom }) {
  const li = document.createElement("li");
  li.className = "msg";
  const from = typeof event.from === "string" && event.from ? event.from : "unknown";
  const text = typeof event.text === "string" ? event.text : JSON.stringify(event.text ?? "");
  const mentions = Array.isArray(event.mentions) ? event.mentions : [];
  if (from === state.nick) li.classList.add("mine");
  if (mentions.includes(state.nick)) li.classList.add("for-me");
  li.dataset.seq = String(meta.seq);
  li.dataset.from = from;
  li.dataset.room = String(event.room ?? "");
  li.dataset.receivedAt = String(Date.now());
  if (meta.replayed) li.dataset.replayed = "true";

  const badge = document.createElement("span");
  badge.className = "avatar";
  badge.setAttribute("aria-hidden", "true");
  badge.style.setProperty("--hue", String(hue(from)));
  badge.textContent = from.slice(0, 1).toUpperCase();

  const body = document.createElement("div");
  body.className = "body";
  const head = document.createElement("p");
  head.className = "meta";
  const who = document.createElement("span");
  who.className = "from";
  who.textContent = from;
  const when = document.createElement("time");
  const sent = typeof event.time === "string" && !Number.isNaN(Date.parse(event.time)) ? new Date(event.time) : new Date();
  when.dateTime = sent.toISOString();
  when.textContent = timeFormat.format(sent);
  when.title = fullTimeFormat.format(sent);
  head.append(who, " ", when);
  if (showRoom && event.room) {
    const room = document.createElement("span");
    room.className = "room-tag";
    room.textContent = `#${event.room}`;
    head.append(" ", room);
  }
  const p = document.createElement("p");
  p.className = "text";
  appendWithMentions(p, text);
  body.append(head, p);
  li.append(badge, body);
  return li;
}

function systemElement(text, kind) {
  const li = document.createElement("li");
  li.className = `system ${kind}`;
  li.textContent = text;
  return li;
}

/** Appends to the visible list, keeping the view pinned to the bottom if it was there. */
function appendToList(element) {
  const list = $("messages");
  const pinned = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.querySelector(".empty")?.remove();
  list.append(element);
  while (list.children.length > MAX_MESSAGES) list.firstElementChild.remove();
  if (pinned) list.scrollTop = list.scrollHeight;
}

function renderList() {
  const list = $("messages");
  const mentions = state.view === "mentions";
  const items = mentions ? state.mentionMessages : state.roomMessages;
  list.replaceChildren();
  for (const item of items.slice(-MAX_MESSAGES)) {
    list.append(item.system ? systemElement(item.system, item.kind) : messageElement(item.event, item.meta, { showRoom: mentions }));
  }
  if (!items.length) {
    const empty = document.createElement("li");
    empty.className = "empty";
    empty.textContent = mentions ? `No messages mention @${state.nick} yet.` : state.loading ? "Loading messages…" : "No messages yet. Say hello!";
    list.append(empty);
  }
  list.setAttribute("aria-label", mentions ? `Messages that mention ${state.nick}` : `Messages in ${state.room}`);
  list.scrollTop = list.scrollHeight;
}

function push(view, item) {
  const items = view === "mentions" ? state.mentionMessages : state.roomMessages;
  items.push(item);
  if (items.length > MAX_MESSAGES * 2) items.splice(0, items.length - MAX_MESSAGES);
  if (state.view !== view) return;
  appendToList(item.system ? systemElement(item.system, item.kind) : messageElement(item.event, item.meta, { showRoom: view === "mentions" }));
}

function onMessage(view) {
  return (event, meta) => push(view, { event, meta });
}

function onGap(view) {
  return (gap) => {
    // The reasons say different things: "overflow" means messages of this room were
    // dropped; "expired" means the gateway's history no longer reaches back to where this
    // window left off, so some messages may (or may not) be missing; "reset" means the
    // gateway restarted without storage and everything after that point is unknown.
    const text = gap.reason === "overflow"
      ? `Some messages were dropped because this window fell behind (positions ${gap.from}–${gap.to}).`
      : gap.reason === "expired"
        ? "Earlier messages may be missing: the gateway's history no longer reaches back to where this window left off."
        : gap.reason === "reset"
          ? "The gateway restarted and lost its history: messages sent between where you left off and the restart may be missing."
          : `Some messages may be missing (${gap.reason}).`;
    push(view, { system: text, kind: "gap" });
  };
}

// MARK: - Rooms list

let roomsTimer = null;

function countRoom(event, meta) {
  if (typeof event.room !== "string" || !ROOM.test(event.room)) return;
  const entry = state.rooms.get(event.room) || { count: 0, last: 0 };
  entry.count++;
  entry.last = Math.max(entry.last, meta.seq);
  state.rooms.set(event.room, entry);
  clearTimeout(roomsTimer);
  roomsTimer = setTimeout(renderRooms, 30);   // history arrives in a burst: draw once
}

function renderRooms() {
  const list = $("rooms");
  const rooms = [...state.rooms.entries()].sort((a, b) => b[1].last - a[1].last).slice(0, MAX_ROOMS);
  if (state.room && !state.rooms.has(state.room)) rooms.unshift([state.room, { count: 0, last: 0 }]);
  const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.dataset.room : null;
  list.replaceChildren(...rooms.map(([room, { count }]) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "room";
    button.dataset.room = room;
    if (room === state.room) button.setAttribute("aria-current", "true");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `#${room}`;
    const n = document.createElement("span");
    n.className = "count";
    n.textContent = String(count);
    const unit = document.createElement("span");
    unit.className = "visually-hidden";
    unit.textContent = ` message${count === 1 ? "" : "s"}`;
    n.append(unit);
    button.append(name, n);
    button.addEventListener("click", () => switchRoom(room));
    li.append(button);
    return li;
  }));
  if (focused) list.querySelector(`button[data-room="${CSS.escape(focused)}"]`)?.focus();
}

// MARK: - Presence

function applyPresence(event) {
  if (event.group !== group(state.room) || typeof event.member !== "string") return;
  if (event.action === "join") state.members.set(event.member, event.info || {});
  else if (event.action === "leave") state.members.delete(event.member);
}

function onPresenceEvent(event, meta) {
  if (state.presencePosition == null) { state.presenceBuffer.push({ event, seq: meta.seq }); return; }
  if (meta.seq <= state.presencePosition) return;
  applyPresence(event);
  renderPeople();
}

/** The member list: GET /v1/presence/{group}, then the events after its position on top. */
async function refreshPresence() {
  const generation = ++state.presenceGeneration;
  const room = state.room;
  state.presencePosition = null;
  try {
    const sub = state.subs.presence;
    if (sub) await sub.ready;
    const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
    const response = await fetch(`/v1/presence/${encodeURIComponent(group(room))}`, { cache: "no-store", headers });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const body = await response.json();
    if (generation !== state.presenceGeneration || room !== state.room) return;
    state.members = new Map((body.members || []).map((m) => [String(m.member), m.info || {}]));
    state.presencePosition = typeof body.position === "number" ? body.position : 0;
    for (const { event, seq } of state.presenceBuffer.splice(0)) if (seq > state.presencePosition) applyPresence(event);
    $("people-note").textContent = "";
  } catch (error) {
    if (generation !== state.presenceGeneration) return;
    state.presencePosition = 0;   // show what the events say, at least
    for (const { event } of state.presenceBuffer.splice(0)) applyPresence(event);
    $("people-note").textContent = `The member list is unavailable (${error.message}).`;
  }
  renderPeople();
}

/**
 * Tells screen readers who joined or left, in a polite status line, instead of making the
 * rebuilt list live (it would be read out whole on every change). The first list of a
 * room (`state.shownNicks` null) is not announced.
 */
function announcePeopleChanges(nicks) {
  const before = state.shownNicks;
  state.shownNicks = state.presencePosition == null ? null : nicks;   // the list is not loaded yet
  if (!before || !state.shownNicks) return;
  const joined = [...nicks].filter((n) => !before.has(n));
  const left = [...before].filter((n) => !nicks.has(n));
  const parts = [...joined.map((n) => `${n} joined`), ...left.map((n) => `${n} left`)];
  if (parts.length) $("people-changes").textContent = parts.join(", ");
}

function renderPeople() {
  const nicks = new Map();   // nick → tabs
  for (const info of state.members.values()) {
    const nick = info && typeof info.nick === "string" ? info.nick : null;
    if (nick) nicks.set(nick, (nicks.get(nick) || 0) + 1);
  }
  const sorted = [...nicks.keys()].sort((a, b) => (a === state.nick ? -1 : b === state.nick ? 1 : a.localeCompare(b)));
  announcePeopleChanges(new Set(sorted));
  $("people").replaceChildren(...sorted.map((nick) => {
    const li = document.createElement("li");
    li.dataset.nick = nick;
    const dot = document.createElement("span");
    dot.className = "online";
    dot.setAttribute("aria-hidden", "true");
    li.append(dot, nick);
    if (nick === state.nick) {
      const you = document.createElement("span");
      you.className = "you";
      you.textContent = " (you)";
      li.append(you);
    }
    return li;
  }));
  const unit = document.createElement("span");
  unit.className = "visually-hidden";
  unit.textContent = sorted.length === 1 ? " person" : " people";
  $("people-count").replaceChildren(String(sorted.length), unit);
}

// MARK: - Session

async function fetchToken() {
  const query = new URLSearchParams({ nick: state.nick, room: state.room });
  const response = await fetch(`/v1/demo/token?${query}`, { cache: "no-store" });
  if (response.status === 404) {
    state.demoAvailable = false;
    return null;   // no demo tokens on this gateway: read-only, anonymous
  }
  if (!response.ok) throw new Error(`the demo token was refused (${response.status})`);
  state.demoAvailable = true;
  state.token = (await response.json()).token;
  return state.token;
}

function startSession() {
  const herald = new Herald({
    token: fetchToken,
    transport: state.transport === "sse" ? "sse" : "auto",
    reconnect: { initialMs: 300, maxMs: 5000 },
  });
  state.herald = herald;
  state.fallback = false;
  herald.on("status", renderStatus);
  herald.on("fallback", () => {
    state.fallback = true;
    notice("The WebSocket could not connect; switched to Server-Sent Events.", "info");
  });
  herald.on("open", ({ resumed }) => {
    if (resumed) refreshPresence();
  });
  herald.on("resumed", ({ subscriptions }) => {
    const sub = state.view === "mentions" ? state.subs.mentions : state.subs.room;
    const mine = subscriptions.find((s) => s.subscription === sub);
    const restored = mine?.restored ?? 0;
    const plural = `${restored} message${restored === 1 ? "" : "s"}`;
    const text = mine?.reset
      ? `Reconnected after a gateway restart — ${plural} since the restart restored; earlier ones may be missing.`
      : restored === 0 ? "Reconnected — no messages missed."
        : `Reconnected — ${restored} missed message${restored === 1 ? "" : "s"} restored.`;
    notice(text, "ok");
    push(state.view, { system: text, kind: "resumed" });
  });
  // A token that cannot be fetched while the network is away shows in the status line already.
  herald.on("error", ({ error }) => { if (error.code !== "token") notice(`${error.code}: ${error.message}`, "error"); });

  state.rooms = new Map();
  state.subs.rooms = herald.subscribe({ filter: { type: ["chat.message"] }, since: 0, onEvent: countRoom });
  enterRoom(state.room, { first: true });
  if (state.view === "mentions") subscribeMentions();
}

function stopSession() {
  if (state.herald) state.herald.close();
  state.herald = null;
  state.subs = { room: null, rooms: null, mentions: null, presence: null };
  state.presenceGeneration++;
}

async function enterRoom(room, { first = false } = {}) {
  const herald = state.herald;
  const previous = first ? null : state.room;
  if (state.subs.room) state.subs.room.unsubscribe();
  if (state.subs.presence) state.subs.presence.unsubscribe();
  state.subs.room = state.subs.presence = null;
  if (previous) herald.presence.leave(group(previous)).catch(() => {});
  state.room = room;
  state.roomMessages = [];
  state.members = new Map();
  state.shownNicks = null;
  state.presenceBuffer = [];
  state.presencePosition = null;
  state.loading = true;
  $("room-title").textContent = `#${room}`;
  $("compose-text").placeholder = `Message #${room} — @nick mentions someone`;
  document.title = `Herald — #${room}`;
  renderRooms();
  renderPeople();
  if (state.view === "room") renderList();

  // The token names the room: a new room needs a new token (on a WebSocket, an `auth` op).
  if (!first) {
    try { await herald.reauthenticate(); } catch (error) { notice(`Could not renew the token: ${error.message}`, "error"); }
    if (state.herald !== herald || state.room !== room) return;
  }
  const list = $("messages");
  list.setAttribute("aria-busy", "true");
  state.subs.room = herald.subscribe({
    filter: { type: ["chat.message"], room: [room] },
    since: 0,
    onEvent: onMessage("room"),
    onGap: onGap("room"),
    onError: (error) => notice(`The room subscription failed: ${error.message}`, "error"),
  });
  const loaded = () => {
    if (state.room !== room) return;
    state.loading = false;
    list.setAttribute("aria-busy", "false");
    if (state.view === "room" && !state.roomMessages.length) renderList();
  };
  // The replay follows the confirmation at once; let it land before announcing new messages.
  state.subs.room.ready.then(() => setTimeout(loaded, 150), loaded);
  state.subs.presence = herald.subscribe({
    filter: presenceFilter(group(room)),
    onEvent: onPresenceEvent,
    onGap: () => refreshPresence(),
  });
  herald.presence.join(group(room), { nick: state.nick }).catch((error) => {
    if (state.room === room) notice(`Could not join the member list: ${error.message}`, "error");
  });
  refreshPresence();
}

function subscribeMentions() {
  state.mentionMessages = [];
  state.subs.mentions = state.herald.subscribe({
    filter: { type: ["chat.message"], mentions: [state.nick] },
    since: 0,
    onEvent: onMessage("mentions"),
    onGap: onGap("mentions"),
  });
}

function setView(view) {
  state.view = view;
  const button = $("mentions-toggle");
  button.setAttribute("aria-pressed", String(view === "mentions"));
  document.body.dataset.mode = view;
  if (view === "mentions") {
    if (!state.subs.mentions && state.herald) subscribeMentions();
    $("room-title").textContent = `Mentions of @${state.nick}`;
  } else {
    if (state.subs.mentions) state.subs.mentions.unsubscribe();
    state.subs.mentions = null;
    state.mentionMessages = [];
    $("room-title").textContent = `#${state.room}`;
  }
  renderList();
}

function switchRoom(room) {
  if (!ROOM.test(room)) return;
  if (state.view === "mentions") setView("room");
  if (room === state.room) return;
  notice("");
  enterRoom(room);
  setURL({ push: true });
  $("compose-text").focus();
}

function join(nick, room, { push }) {
  state.nick = nick;
  state.room = room;
  state.view = "room";
  document.body.dataset.view = "chat";
  document.body.dataset.mode = "room";
  $("join-view").hidden = true;
  $("chat-view").hidden = false;
  $("me-nick").textContent = nick;
  $("mentions-toggle").setAttribute("aria-pressed", "false");
  notice("");
  setURL({ push });
  startSession();
  $("compose-text").focus();
}

function showJoin(message = "") {
  stopSession();
  document.body.dataset.view = "join";
  $("chat-view").hidden = true;
  $("join-view").hidden = false;
  $("join-nick").value = state.nick || new URLSearchParams(location.search).get("nick") || "";
  $("join-room").value = state.room || new URLSearchParams(location.search).get("room") || "lobby";
  $("join-error").textContent = message;
  renderStatus({ state: "idle" });
  $("join-nick").focus();
}

// MARK: - Sending

/**
 * Publishes a message. A message whose answer was lost (the connection dropped after it
 * went out) is sent again with the same `source` and `id`, so the gateway's dedup window
 * answers with the original seq instead of showing it twice.
 */
async function send(text) {
  if (!state.unsent || state.unsent.text !== text || state.unsent.room !== state.room) {
    state.unsent = { text, room: state.room, id: newMessageID(), time: new Date().toISOString() };
  }
  const event = {
    type: "chat.message",
    source: `herald-chat/${state.nick}`,
    id: state.unsent.id,
    room: state.room,
    from: state.nick,
    text,
    mentions: parseMentions(text),
    time: state.unsent.time,
  };
  const accepted = await state.herald.publish(event);
  state.unsent = null;
  return accepted;
}

function newMessageID() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();   // secure contexts only
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
}

$("compose").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("compose-text");
  const text = input.value.trim();
  if (!text || !state.herald) return;
  $("compose-error").textContent = "";
  input.value = "";
  try {
    await send(text);
  } catch (error) {
    if (!input.value) input.value = text;   // give the text back
    const why = error.code === "forbidden" ? (state.demoAvailable ? "the gateway does not allow this message" : "this gateway has no demo tokens, so the page cannot publish")
      : error.message;
    $("compose-error").textContent = `Not sent: ${why} (${error.code}).`;
  }
});

// MARK: - Wiring

$("join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const nick = $("join-nick").value.trim();
  const room = $("join-room").value.trim() || "lobby";
  if (!NICK.test(nick)) {
    $("join-error").textContent = "Choose a nickname of 1–32 letters, digits, _ . or -.";
    $("join-nick").setAttribute("aria-invalid", "true");
    $("join-nick").focus();
    return;
  }
  $("join-nick").removeAttribute("aria-invalid");
  if (!ROOM.test(room)) {
    $("join-error").textContent = "A room name is 1–64 letters, digits, _ . or -.";
    $("join-room").setAttribute("aria-invalid", "true");
    $("join-room").focus();
    return;
  }
  $("join-room").removeAttribute("aria-invalid");
  join(nick, room, { push: true });
});

$("room-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("room-input");
  const room = input.value.trim().replace(/^#/, "");
  if (!ROOM.test(room)) {
    $("room-error").textContent = "A room name is 1–64 letters, digits, _ . or -.";
    input.setAttribute("aria-invalid", "true");
    return;
  }
  $("room-error").textContent = "";
  input.removeAttribute("aria-invalid");
  input.value = "";
  switchRoom(room);
});

$("mentions-toggle").addEventListener("click", () => setView(state.view === "mentions" ? "room" : "mentions"));

$("leave").addEventListener("click", () => {
  state.nick = null;
  setURL({ push: true });
  showJoin();
});

$("transport").addEventListener("change", () => {
  state.transport = $("transport").value === "sse" ? "sse" : "auto";
  if (!state.herald) { setURL({ push: false }); return; }
  const view = state.view;
  stopSession();
  state.view = view;
  setURL({ push: false });
  notice("");
  startSession();
});

addEventListener("popstate", () => {
  const params = new URLSearchParams(location.search);
  const nick = params.get("nick"), room = params.get("room") || "lobby";
  if (!nick || !NICK.test(nick) || !ROOM.test(room)) { showJoin(); return; }
  if (nick === state.nick && state.herald) { if (room !== state.room) { setView("room"); enterRoom(room); } return; }
  stopSession();
  join(nick, room, { push: false });
});

// For tests and the curious: the live client and the page's state.
window.heraldDemo = {
  get herald() { return state.herald; },
  get nick() { return state.nick; },
  get room() { return state.room; },
  get view() { return state.view; },
  get subscriptions() { return { ...state.subs }; },
  get members() { return [...state.members.entries()].map(([member, info]) => ({ member, info })); },
  parseMentions,
  switchRoom,
  send,
};

// MARK: - Start

{
  const params = new URLSearchParams(location.search);
  state.transport = params.get("transport") === "sse" ? "sse" : "auto";
  $("transport").value = state.transport === "sse" ? "sse" : "websocket";
  const nick = params.get("nick"), room = params.get("room") || "lobby";
  if (nick && NICK.test(nick) && ROOM.test(room)) join(nick, room, { push: false });
  else showJoin(nick && !NICK.test(nick) ? "That nickname is not valid." : "");
}
