// The dashboard: polls /v1/stats every second and draws the last two minutes on <canvas>;
// shows each route's deadline state; with an admin key, lists the busiest and the latest
// clients from /v1/clients every two seconds; on demand,
// follows the recent events through herald.js.
// No third-party library: the gateway may run offline, and the whole page must stay small.

import { Herald } from "./herald.js";

const STATS_EVERY_MS = 1000;
const CLIENTS_EVERY_MS = 2000;
const WINDOW_MS = 120_000;        // what the charts show
const FETCH_TIMEOUT_MS = 2500;
const TOP_CLIENTS = 20;
const KEY_STORAGE = "herald.adminKey";

const $ = (id) => document.getElementById(id);
const integer = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });

// MARK: - Formatting

/** A finite number at `path` in `object`, or `fallback`. */
function num(object, path, fallback = 0) {
  let value = object;
  for (const key of path) value = value == null ? undefined : value[key];
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

function count(n) { return integer.format(n); }

/** 0.086, 6.82, 15, 215, 1,234, 12.3k, 3.4M: at most three significant digits below 1,000. */
function compact(n) {
  const a = Math.abs(n);
  if (a >= 1e9) return `${trim(n / 1e9)}G`;
  if (a >= 1e6) return `${trim(n / 1e6)}M`;
  if (a >= 1e4) return `${trim(n / 1e3)}k`;
  if (a >= 1000) return integer.format(Math.round(n));
  return n === 0 ? "0" : String(Number(n.toPrecision(3)));
}
function trim(n) { return n.toFixed(n >= 100 ? 0 : 1).replace(/\.0$/, ""); }

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(n >= 100 ? 0 : 1)} ${units[i]}`;
}

/** 45 s, 12m 05s, 3h 02m, 2d 4h. */
function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n) => String(n).padStart(2, "0");
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor(s / 3600) % 24}h`;
}

/** A start time: the time of day if it was today, else the date. */
function since(t) {
  const date = new Date(t);
  return date.toDateString() === new Date().toDateString() ? date.toLocaleTimeString() : date.toLocaleDateString();
}

function ms(n) { return n == null ? "–" : `${compact(n)} ms`; }

/** A share as a percentage (0.0042: "0.42 %", 0.001: "0.1 %", 0.25: "25 %"); "–" when there is none. */
function percent(share) {
  if (share == null) return "–";
  const p = share * 100;
  return `${p === 0 ? "0" : p < 1 ? String(Number(p.toPrecision(2))) : trim(p)} %`;
}

// MARK: - Charts

/** A line chart of one or more series over the last WINDOW_MS, drawn on a <canvas>. */
class LineChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{label: string, color: string, dash?: number[]}[]} series
   * @param {{unit: string, describe: (values: (number|null)[]) => string, integer?: boolean}} options
   */
  constructor(canvas, series, options) {
    this.canvas = canvas;
    this.series = series;
    this.options = options;
    this.points = [];            // {t, values: (number|null)[]}
    this.peak = 0;
    new ResizeObserver(() => this.draw()).observe(canvas);
    this.legend();
  }

  /** Adds a sample (null values for a failed poll: the line breaks there). */
  push(t, values) {
    this.points.push({ t, values });
    while (this.points.length && this.points[0].t < t - WINDOW_MS - STATS_EVERY_MS) this.points.shift();
    const known = values.filter((v) => v != null);
    for (const v of known) this.peak = Math.max(this.peak, v);
    // Exposed for tests and curious people: series length, last values, peak so far.
    const data = this.canvas.dataset;
    data.points = String(this.points.filter((p) => p.values.some((v) => v != null)).length);
    data.last = values.map((v) => (v == null ? "" : String(v))).join(",");
    data.peak = String(this.peak);
    this.canvas.setAttribute("aria-label", this.options.describe(values));
    this.draw();
  }

  legend() {
    if (this.series.length < 2) return;
    const list = document.createElement("ul");
    list.className = "legend";
    for (const s of this.series) {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.borderColor = s.color;
      if (s.dash) swatch.style.borderTopStyle = "dashed";
      item.append(swatch, s.label);
      list.append(item);
    }
    this.canvas.after(list);
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    if (!width || !height) return;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);

    const styles = getComputedStyle(canvas);
    const grid = styles.getPropertyValue("--chart-grid").trim() || "#dde1ea";
    const text = styles.getPropertyValue("--chart-text").trim() || "#556";
    g.font = "11px system-ui, sans-serif";

    // Y scale: 0 to a round number above the highest visible value.
    let top = 0;
    for (const p of this.points) for (const v of p.values) if (v != null && v > top) top = v;
    const ticks = 4;
    const max = niceStep(top, ticks, this.options.integer) * ticks;
    const labels = Array.from({ length: ticks + 1 }, (_, i) => compact((max / ticks) * i));
    const left = Math.ceil(Math.max(...labels.map((l) => g.measureText(l).width))) + 8;
    const plot = { x: left, y: 6, w: Math.max(10, width - left - 6), h: Math.max(10, height - 24) };

    g.lineWidth = 1;
    g.textAlign = "right";
    g.textBaseline = "middle";
    for (let i = 0; i <= ticks; i++) {
      const y = Math.round(plot.y + plot.h - (plot.h * i) / ticks) + 0.5;
      g.strokeStyle = grid;
      g.beginPath(); g.moveTo(plot.x, y); g.lineTo(plot.x + plot.w, y); g.stroke();
      g.fillStyle = text;
      g.fillText(labels[i], plot.x - 5, y);
    }
    g.textBaseline = "alphabetic";
    const xLabels = [["−2 min", 0], ["−1 min", 0.5], ["now", 1]];
    for (const [label, at] of xLabels) {
      g.textAlign = at === 0 ? "left" : at === 1 ? "right" : "center";
      g.fillText(label, plot.x + plot.w * at, height - 4);
    }

    if (!this.points.length) return;
    const now = this.points[this.points.length - 1].t;
    const x = (t) => plot.x + plot.w * (1 - (now - t) / WINDOW_MS);
    const y = (v) => plot.y + plot.h - (plot.h * v) / max;
    g.save();
    g.beginPath(); g.rect(plot.x, 0, plot.w + 1, plot.y + plot.h + 1); g.clip();
    g.lineJoin = "round";
    this.series.forEach((s, index) => {
      g.strokeStyle = s.color;
      g.lineWidth = 2;
      g.setLineDash(s.dash || []);
      g.beginPath();
      let previous = null;
      for (const p of this.points) {
        const v = p.values[index];
        if (v == null) { previous = null; continue; }
        const gap = previous && p.t - previous.t > STATS_EVERY_MS * 3.5;
        if (!previous || gap) g.moveTo(x(p.t), y(v)); else g.lineTo(x(p.t), y(v));
        previous = p;
      }
      g.stroke();
      // A dot on the latest value, so a flat line still shows where "now" is.
      const last = this.points[this.points.length - 1].values[index];
      if (last != null) {
        g.setLineDash([]);
        g.fillStyle = s.color;
        g.beginPath(); g.arc(x(now), y(last), 3, 0, Math.PI * 2); g.fill();
      }
    });
    g.restore();
  }
}

/** A round tick step (1, 2 or 5 × 10^k; whole numbers for integer series) so that `ticks` steps reach `value`. */
function niceStep(value, ticks, integer) {
  const raw = Math.max(value * 1.1, integer ? ticks : 1) / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (integer && step === 2.5 && magnitude < 10) continue;
    if (step * magnitude >= raw) return step * magnitude;
  }
  return 10 * magnitude;
}

const BLUE = "#0b5cad", ORANGE = "#b45309", RED = "#b91c1c", GREEN = "#15803d";
const perSecond = (label) => (values) =>
  values[0] == null ? `${label}: no data (gateway unreachable)` : `${label}: ${compact(values[0])} per second now`;

const charts = {
  events: new LineChart($("chart-events"), [{ label: "events in/s", color: BLUE }],
    { unit: "/s", describe: perSecond("Events in") }),
  deliveries: new LineChart($("chart-deliveries"), [{ label: "deliveries/s", color: GREEN }],
    { unit: "/s", describe: perSecond("Deliveries") }),
  drops: new LineChart($("chart-drops"), [{ label: "drops/s", color: RED }],
    { unit: "/s", describe: perSecond("Drops") }),
  connections: new LineChart($("chart-connections"), [{ label: "connections", color: BLUE }],
    { unit: "", integer: true, describe: (v) => (v[0] == null ? "Connections: no data" : `Connections: ${v[0]} now`) }),
  latency: new LineChart($("chart-latency"),
    [{ label: "p50", color: BLUE }, { label: "p99", color: ORANGE, dash: [5, 3] }],
    { unit: "ms", describe: (v) => (v[0] == null ? "Delivery latency: no data" : `Delivery latency: p50 ${ms(v[0])}, p99 ${ms(v[1])}`) }),
  queue: new LineChart($("chart-queue"),
    [{ label: "p99", color: BLUE }, { label: "max", color: ORANGE, dash: [5, 3] }],
    { unit: "", integer: true, describe: (v) => (v[0] == null ? "Queue depth: no data" : `Queue depth over clients: p99 ${v[0]}, max ${v[1]}`) }),
};

// MARK: - Stats polling

async function getJSON(url, headers = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  try {
    const response = await fetch(url, { headers, cache: "no-store", signal: controller.signal });
    let body = null;
    try { body = await response.json(); } catch { body = null; }
    return { status: response.status, ok: response.ok, body };
  } finally {
    clearTimeout(timer);
  }
}

let failures = 0;
let downSince = null;
let statsTimer = null;
let statsInFlight = false;

function setConnection(state, text) {
  const conn = $("conn");
  conn.dataset.state = state;
  $("conn-text").textContent = text;
  document.body.dataset.connection = state;
}

async function pollStats() {
  clearTimeout(statsTimer);
  statsInFlight = true;
  const started = performance.now();
  try {
    const { status, ok, body } = await getJSON("/v1/stats");
    if (!ok || !body || typeof body !== "object") throw new Error(`HTTP ${status}`);
    failures = 0;
    downSince = null;
    render(body);
    setConnection("live", `Live · updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    failures++;
    downSince = downSince || new Date();
    const reason = error.name === "AbortError" ? "timed out" : error instanceof TypeError ? "unreachable" : error.message;
    setConnection("down", `Disconnected since ${downSince.toLocaleTimeString()} (${reason}) · retrying`);
    for (const chart of Object.values(charts)) chart.push(Date.now(), chart.series.map(() => null));
  } finally {
    statsInFlight = false;
  }
  // Back off a little while the gateway is away, at most 5 s between tries.
  const every = failures ? Math.min(5000, STATS_EVERY_MS * failures) : STATS_EVERY_MS;
  statsTimer = setTimeout(pollStats, Math.max(0, every - (performance.now() - started)));
}

// Background tabs get their timers slowed down; catch up as soon as the page is seen again.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && !statsInFlight) pollStats();
});

function setTile(name, value, detail) {
  $(`tile-${name}`).textContent = value;
  $(`tile-${name}-detail`).textContent = detail;
}

function render(stats) {
  const now = Date.now();
  const events = stats.events || {}, deliveries = stats.deliveries || {}, dropped = stats.dropped || {};
  const connections = stats.connections || {};
  const delivered = Object.values(deliveries).reduce((a, b) => a + (Number(b) || 0), 0);
  const drops = Object.values(dropped).reduce((a, b) => a + (Number(b) || 0), 0);
  const connected = num(connections, ["ws"]) + num(connections, ["sse"]);

  setTile("accepted", count(num(events, ["accepted"])),
    `${count(num(events, ["duplicate"]))} duplicate · ${count(num(events, ["rejected"]))} rejected`);
  setTile("delivered", count(delivered),
    `WebSocket ${count(num(deliveries, ["ws"]))} · SSE ${count(num(deliveries, ["sse"]))}`);
  setTile("dropped", count(drops),
    `overflow ${count(num(dropped, ["overflow"]))} · coalesced ${count(num(dropped, ["coalesced"]))} · disconnect ${count(num(dropped, ["disconnect"]))}`);
  setTile("connections", count(connected),
    `WebSocket ${count(num(connections, ["ws"]))} · SSE ${count(num(connections, ["sse"]))}`);
  setTile("subscriptions", count(num(stats, ["subscriptions"])), `${bytes(num(stats, ["queued_bytes"]))} queued`);
  setTile("history", count(num(stats, ["history", "events"])), `events · ${bytes(num(stats, ["history", "bytes"]))}`);
  setTile("uptime", duration(num(stats, ["uptime_s"])), `since ${since(now - num(stats, ["uptime_s"]) * 1000)}`);
  document.querySelector(".tiles").dataset.accepted = String(num(events, ["accepted"]));

  const r = (key, fallback = 0) => num(stats, ["rates", "1s", key], fallback);
  charts.events.push(now, [r("events_in")]);
  charts.deliveries.push(now, [r("deliveries")]);
  charts.drops.push(now, [r("drops")]);
  charts.connections.push(now, [connected]);
  charts.latency.push(now, [r("latency_p50_ms", null), r("latency_p99_ms", null)]);
  charts.queue.push(now, [num(stats, ["queue_depth", "p99"]), num(stats, ["queue_depth", "max"])]);

  $("now-events").textContent = `${compact(r("events_in"))}/s`;
  $("now-deliveries").textContent = `${compact(r("deliveries"))}/s`;
  $("now-drops").textContent = `${compact(r("drops"))}/s`;
  $("now-connections").textContent = count(connected);
  $("now-latency").textContent = `p50 ${ms(r("latency_p50_ms", null))} · p99 ${ms(r("latency_p99_ms", null))}`;
  $("now-queue").textContent = `p99 ${count(num(stats, ["queue_depth", "p99"]))} · max ${count(num(stats, ["queue_depth", "max"]))}`;

  renderRates(stats.rates || {});
  renderRoutes(stats.routes || {});
  renderDeadlines(stats.deadlines);
}

/** Replaces a tbody's rows only when their text changed, so focus and selection survive. */
function fillRows(tbody, rows, makeRow) {
  const signature = JSON.stringify(rows);
  if (tbody.dataset.signature === signature) return;
  tbody.dataset.signature = signature;
  tbody.replaceChildren(...rows.map(makeRow));
}

function cell(tag, text, className) {
  const element = document.createElement(tag);
  element.textContent = text;
  if (className) element.className = className;
  if (tag === "th") element.scope = "row";
  return element;
}

function renderRates(rates) {
  const windows = ["1s", "10s", "60s"];
  const rows = [
    ["Events in", "events_in", compact],
    ["Deliveries", "deliveries", compact],
    ["Drops", "drops", compact],
    ["Latency p50", "latency_p50_ms", ms],
    ["Latency p99", "latency_p99_ms", ms],
  ].map(([label, key, format]) => [label, ...windows.map((w) => {
    const value = num(rates, [w, key], null);
    return value == null ? "–" : format(value);
  })]);
  fillRows($("rates-body"), rows, ([label, ...values]) => {
    const tr = document.createElement("tr");
    tr.append(cell("th", label), ...values.map((v) => cell("td", v, "n")));
    return tr;
  });
}

function renderRoutes(routes) {
  const names = Object.keys(routes).sort(routeOrder);
  const rows = names.map((name) => [name, num(routes[name], ["matched"]), num(routes[name], ["delivered"]), num(routes[name], ["dropped"])]);
  const body = $("routes-body");
  if (!rows.length) {
    fillRows(body, [["none"]], () => {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = cell("td", "No routes yet.");
      td.colSpan = 4;
      tr.append(td);
      return tr;
    });
    return;
  }
  fillRows(body, rows, ([name, matched, delivered, droppedCount]) => {
    const tr = document.createElement("tr");
    tr.dataset.route = name;
    const th = name === "" ? cell("th", "ad-hoc filters", "adhoc") : cell("th", name);
    tr.append(th, cell("td", count(matched), "n"), cell("td", count(delivered), "n"), cell("td", count(droppedCount), droppedCount ? "n warn" : "n"));
    return tr;
  });
}

/** Routes in the order of the Routes table: by name, ad-hoc filters last. */
function routeOrder(a, b) { return a === "" ? 1 : b === "" ? -1 : a.localeCompare(b); }

function renderDeadlines(deadlines) {
  if (!deadlines || typeof deadlines !== "object") return;
  const routes = deadlines.routes || {};
  const budget = num(deadlines, ["budget"], null);
  $("deadlines-budget").textContent = budget == null ? "" :
    `Red: more than ${percent(budget)} of the last minute's deliveries were late (delivery.deadlineMissBudget); amber: of the last 10 s only.`;
  const inWindow = (figures, w, key) => num(figures, ["windows", w, key], null);
  const rows = Object.keys(routes).sort(routeOrder).map((name) => {
    const r = routes[name];
    return {
      name, label: name === "" ? "ad-hoc filters" : name, state: String(r.state || "green"),
      deadline: ms(num(r, ["deadline_ms"], null)),
      p50: ms(inWindow(r, "10s", "latency_p50_ms")), p99: ms(inWindow(r, "10s", "latency_p99_ms")),
      max: ms(inWindow(r, "60s", "latency_max_ms")),
      missed10: percent(inWindow(r, "10s", "missed_ratio")), missed60: percent(inWindow(r, "60s", "missed_ratio")),
      missed: num(r, ["missed"]), byClient: num(r, ["missed_slow_client"]), byGateway: num(r, ["missed_gateway"]),
      recentMissed: inWindow(r, "60s", "missed") ?? 0, recentByClient: inWindow(r, "60s", "missed_slow_client") ?? 0,
    };
  });
  const ingest = deadlines.ingest;
  if (ingest) {
    rows.push({
      name: "(ingest)", label: "ingest answers (202)", state: null, deadline: ms(num(ingest, ["deadline_ms"], null)),
      p50: ms(inWindow(ingest, "10s", "latency_p50_ms")), p99: ms(inWindow(ingest, "10s", "latency_p99_ms")),
      max: ms(inWindow(ingest, "60s", "latency_max_ms")),
      missed10: percent(inWindow(ingest, "10s", "missed_ratio")), missed60: percent(inWindow(ingest, "60s", "missed_ratio")),
      missed: num(ingest, ["missed"]), byClient: null, byGateway: null, recentMissed: 0, recentByClient: 0,
    });
  }
  fillRows($("deadlines-body"), rows, (r) => {
    const tr = document.createElement("tr");
    tr.dataset.route = r.name;
    if (r.state) tr.dataset.state = r.state;
    const state = document.createElement("td");
    if (r.state) {
      const pill = document.createElement("span");
      pill.className = "state";
      pill.dataset.state = r.state;
      pill.textContent = r.state;
      state.append(pill);
    } else {
      state.textContent = "–";
    }
    const split = r.byClient == null ? count(r.missed) : `${count(r.missed)} (${count(r.byClient)} · ${count(r.byGateway)})`;
    tr.append(
      cell("th", r.label, r.name === "" || r.state == null ? "adhoc" : undefined), state, cell("td", r.deadline, "n"),
      cell("td", r.p50, "n"), cell("td", r.p99, "n"), cell("td", r.max, "n"),
      cell("td", r.missed10, "n"), cell("td", r.missed60, "n"), cell("td", split, r.missed ? "n warn" : "n"));
    return tr;
  });
  const late = rows.filter((r) => r.state === "red"), burning = rows.filter((r) => r.state === "amber");
  const names = (list) => list.map((r) => r.label).join(", ");
  // Whose fault, over the last minute (the misses that made the state, not those since start).
  const blame = (list) => {
    const missed = list.reduce((a, r) => a + r.recentMissed, 0), client = list.reduce((a, r) => a + r.recentByClient, 0);
    return client * 2 > missed ? "most misses waited in slow clients' queues" : "most misses came before the first write: the gateway is busy";
  };
  const summary = $("deadlines-summary");
  if (late.length) {
    summary.dataset.state = "late";
    summary.textContent = `Late: ${names(late)} missed more than the budget over the last minute; ${blame(late)}.`;
  } else if (burning.length) {
    summary.dataset.state = "burning";
    summary.textContent = `Burning its budget now: ${names(burning)} (the last 10 s); ${blame(burning)}.`;
  } else {
    summary.dataset.state = "live";
    summary.textContent = "Every route is on time.";
  }
}

// MARK: - Admin: busiest clients

let clientsTimer = null;
let clientsGeneration = 0;

function clientsMessage(state, text) {
  const message = $("clients-status");
  message.dataset.state = state;
  message.textContent = text;
}

function adminKey() {
  try { return sessionStorage.getItem(KEY_STORAGE) || ""; } catch { return ""; }
}

function startClients(key) {
  try { sessionStorage.setItem(KEY_STORAGE, key); } catch { /* private mode: keep it in memory only */ }
  stopClients();
  const generation = ++clientsGeneration;
  clientsMessage("loading", "Loading clients…");
  const tick = async () => {
    const again = await pollClients(key, generation);
    if (again && generation === clientsGeneration) clientsTimer = setTimeout(tick, CLIENTS_EVERY_MS);
  };
  tick();
}

function stopClients() {
  clientsGeneration++;
  clearTimeout(clientsTimer);
  clientsTimer = null;
}

/** One refresh; returns whether to keep polling. */
async function pollClients(key, generation) {
  let result;
  try {
    result = await getJSON(`/v1/clients?limit=${TOP_CLIENTS}&offset=0`, { Authorization: `Bearer ${key}` });
  } catch (error) {
    if (generation !== clientsGeneration) return false;
    clientsMessage("error", `Could not reach the gateway (${error.name === "AbortError" ? "timed out" : "network error"}); retrying.`);
    return true;
  }
  if (generation !== clientsGeneration) return false;
  const { status, ok, body } = result;
  const serverMessage = body && body.error ? (body.error.message || body.error.code || "") : "";
  if (status === 401 || status === 403) {
    try { sessionStorage.removeItem(KEY_STORAGE); } catch { /* nothing stored */ }
    $("clients-wrap").hidden = true;
    hideLateClients();
    clientsMessage("denied", `The gateway refused this admin key (${status}${serverMessage ? `: ${serverMessage}` : ""}). Check the key and try again.`);
    return false;
  }
  if (!ok || !body || !Array.isArray(body.clients)) {
    clientsMessage("error", `Could not list clients (HTTP ${status}${serverMessage ? `: ${serverMessage}` : ""}); retrying.`);
    return status !== 404;
  }
  renderClients(body);
  await pollLateClients(key, generation);
  return true;
}

/** The clients that missed the most deadlines, for the Deadlines section. */
async function pollLateClients(key, generation) {
  let result;
  try {
    result = await getJSON("/v1/clients?order=late&limit=5&offset=0", { Authorization: `Bearer ${key}` });
  } catch {
    return;  // the busiest-clients poll says when the gateway cannot be reached
  }
  if (generation !== clientsGeneration || !result.ok || !result.body || !Array.isArray(result.body.clients)) return;
  const late = result.body.clients.filter((c) => num(c, ["missed_deadlines"]) > 0);
  $("late-wrap").hidden = late.length === 0;
  $("late-status").textContent = late.length ? "Most missed deadlines first; the slowest is the client's slowest live delivery."
    : `No client has missed a deadline · updated ${new Date().toLocaleTimeString()}`;
  const rows = late.map((c) => ({
    id: String(c.id ?? ""), transport: String(c.transport ?? ""), remote: String(c.remote ?? ""),
    user: c.user == null ? "—" : String(c.user),
    subs: (Array.isArray(c.subscriptions) ? c.subscriptions : []).map(describeSubscription),
    missed: num(c, ["missed_deadlines"]), slowest: num(c, ["slowest_delivery_ms"]), depth: num(c, ["queue_depth"]),
  }));
  fillRows($("late-body"), rows, (r) => {
    const tr = document.createElement("tr");
    tr.dataset.client = r.id;
    tr.append(
      cell("th", r.id, "n"), cell("td", transportName(r.transport)), cell("td", r.remote), cell("td", r.user),
      subscriptionsCell(r.subs), cell("td", count(r.missed), "n warn"), cell("td", ms(r.slowest), "n"),
      cell("td", count(r.depth), r.depth ? "n warn" : "n"));
    return tr;
  });
}

function hideLateClients() {
  $("late-wrap").hidden = true;
  $("late-body").replaceChildren();
  delete $("late-body").dataset.signature;
  $("late-status").textContent = "With an admin key (below), the clients that missed the most deadlines are listed here.";
}

function transportName(transport) { return transport === "ws" ? "WebSocket" : transport === "sse" ? "SSE" : transport; }

/** The subscriptions of a client, one per line, long filters cut with the whole in a tooltip. */
function subscriptionsCell(texts) {
  const subs = document.createElement("td");
  subs.className = "subs";
  if (!texts.length) subs.textContent = "—";
  for (const text of texts) {
    const code = document.createElement("code");
    code.textContent = text.length > 80 ? `${text.slice(0, 79)}…` : text;
    if (text.length > 80) code.title = text;
    subs.append(code);
  }
  return subs;
}

function describeSubscription(sub) {
  const id = sub && sub.id != null ? String(sub.id) : "";
  let what;
  if (sub && sub.route) what = `route ${sub.route}`;
  else if (sub && sub.filter != null) what = JSON.stringify(sub.filter);
  else what = "everything";
  return id ? `${id}: ${what}` : what;
}

/** The gateway already returns the busiest first; sorting again keeps the order stable. */
function renderClients(body) {
  const clients = body.clients.slice().sort((a, b) =>
    num(b, ["queue_depth"]) - num(a, ["queue_depth"]) || num(b, ["sent"]) - num(a, ["sent"]) || num(a, ["id"]) - num(b, ["id"]));
  const top = clients.slice(0, TOP_CLIENTS);
  const total = num(body, ["total"], clients.length);
  const shown = total === 1 ? "1 client" : top.length === total ? `All ${count(total)} clients` : `Top ${top.length} of ${count(total)} clients`;
  $("clients-caption").textContent = total ? `${shown}, busiest first (queue depth, then messages sent).` : "";
  $("clients-wrap").hidden = total === 0;
  clientsMessage("ok", total === 0
    ? `No clients are connected · updated ${new Date().toLocaleTimeString()}`
    : `Updated ${new Date().toLocaleTimeString()}`);
  const rows = top.map((c) => ({
    id: String(c.id ?? ""),
    transport: String(c.transport ?? ""),
    remote: String(c.remote ?? ""),
    user: c.user == null ? "—" : String(c.user),
    subs: (Array.isArray(c.subscriptions) ? c.subscriptions : []).map(describeSubscription),
    depth: num(c, ["queue_depth"]),
    queued: num(c, ["queue_bytes"]),
    sent: num(c, ["sent"]),
    dropped: num(c, ["dropped"]),
    age: num(c, ["connected_s"]),
  }));
  // Age moves every refresh; compare rows without it, then refresh ages in place.
  fillRows($("clients-body"), rows.map((r) => ({ ...r, age: Math.floor(r.age) })), (r) => {
    const tr = document.createElement("tr");
    tr.dataset.client = r.id;
    tr.dataset.transport = r.transport;
    tr.append(
      cell("th", r.id, "n"), cell("td", transportName(r.transport)),
      cell("td", r.remote), cell("td", r.user), subscriptionsCell(r.subs),
      cell("td", count(r.depth), r.depth ? "n warn" : "n"), cell("td", bytes(r.queued), "n"),
      cell("td", count(r.sent), "n"), cell("td", count(r.dropped), r.dropped ? "n warn" : "n"),
      cell("td", duration(r.age), "n"));
    return tr;
  });
}

$("admin").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("admin-key").value.trim();
  if (!key) {
    clientsMessage("denied", "Enter an admin key first.");
    $("admin-key").focus();
    return;
  }
  startClients(key);
});

$("admin-forget").addEventListener("click", () => {
  stopClients();
  try { sessionStorage.removeItem(KEY_STORAGE); } catch { /* nothing stored */ }
  $("admin-key").value = "";
  $("clients-wrap").hidden = true;
  $("clients-body").replaceChildren();
  delete $("clients-body").dataset.signature;
  hideLateClients();
  clientsMessage("idle", "Key forgotten. Enter an admin key to list connected clients.");
});

// MARK: - Recent events (herald.js)

const TAIL_ROWS = 25;
let tail = null;   // {herald, subscription}

function tailMessage(state, text) {
  const message = $("tail-status");
  message.dataset.state = state;
  message.textContent = text;
}

function tailRow(cells, className) {
  const tr = document.createElement("tr");
  if (className) tr.className = className;
  tr.append(...cells);
  const body = $("tail-body");
  body.prepend(tr);
  while (body.children.length > TAIL_ROWS) body.lastElementChild.remove();
  $("tail-wrap").hidden = false;
}

function startTail(filter) {
  const herald = new Herald({ reconnect: { initialMs: 500, maxMs: 10000 } });
  let received = 0;
  const describe = (status) => {
    const transport = herald.transport === "sse" ? "SSE" : "WebSocket";
    if (status.state === "open") return tailMessage("live", `Following over ${transport} · ${count(received)} event${received === 1 ? "" : "s"} so far`);
    if (status.state === "connecting") return tailMessage("loading", `Connecting over ${transport}…`);
    if (status.state === "closed" && status.retryInMs != null) return tailMessage("error", `Connection lost; retrying in ${Math.ceil(status.retryInMs / 1000)} s.`);
  };
  herald.on("status", describe);
  const subscription = herald.subscribe({
    filter,
    onEvent: (event, { seq }) => {
      received++;
      const type = event.type ?? event.eventType ?? event["detail-type"] ?? "message";
      const code = document.createElement("code");
      const json = JSON.stringify(event);
      code.textContent = json.length > 400 ? `${json.slice(0, 399)}…` : json;
      const eventCell = cell("td", "", "event");
      eventCell.append(code);
      tailRow([cell("th", count(seq), "n"), cell("td", String(type)), cell("td", new Date().toLocaleTimeString()), eventCell]);
      $("tail-body").firstElementChild.dataset.seq = String(seq);
      if (herald.state === "open") describe({ state: "open" });
    },
    onGap: (gap) => {
      const note = cell("td", `Events ${gap.from}–${gap.to} were not delivered (${gap.reason}).`);
      note.colSpan = 3;
      tailRow([cell("th", "gap", "n"), note], "gap");
    },
    onError: (error) => {
      stopTail();
      tailMessage("error", `The gateway refused the filter: ${error.message}`);
    },
  });
  tail = { herald, subscription };
  $("tail-toggle").setAttribute("aria-pressed", "true");
  $("tail-toggle").textContent = "Stop";
  $("tail-filter").disabled = true;
}

function stopTail() {
  if (tail) tail.herald.close();
  tail = null;
  $("tail-toggle").setAttribute("aria-pressed", "false");
  $("tail-toggle").textContent = "Follow";
  $("tail-filter").disabled = false;
}

$("tail-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (tail) {
    stopTail();
    tailMessage("idle", "Stopped following.");
    return;
  }
  let filter;
  try {
    filter = JSON.parse($("tail-filter").value.trim() || "{}");
    if (!filter || typeof filter !== "object" || Array.isArray(filter)) throw new Error("a pattern is a JSON object");
  } catch (error) {
    tailMessage("error", `The filter is not a JSON object (${error.message}).`);
    $("tail-filter").focus();
    return;
  }
  startTail(filter);
});

// MARK: - Start

const saved = adminKey();
if (saved) {
  $("admin-key").value = saved;
  startClients(saved);
}
pollStats();
