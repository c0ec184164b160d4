// The start page: subscribe with a filter over WebSocket or SSE, publish with a key.
const $ = (id) => document.getElementById(id);
let closeCurrent = () => {};

function show(seq, event) {
  const li = document.createElement("li");
  const s = document.createElement("span");
  s.className = "seq";
  s.textContent = `#${seq} `;
  li.append(s, JSON.stringify(event));
  $("events").prepend(li);
}

function status(text) { $("status").textContent = text; }

function subscribeWebSocket(filter) {
  const url = new URL("/v1/ws", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url, "herald.v1");
  ws.onopen = () => ws.send(JSON.stringify({ op: "subscribe", id: "page", filter }));
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "event") show(msg.seq, msg.event);
    else if (msg.type === "subscribed") status(`Subscribed over WebSocket at position ${msg.position}.`);
    else if (msg.type === "error") status(`Error ${msg.code}: ${msg.message}`);
    else if (msg.type === "gap") status(`Missed events ${msg.from}–${msg.to} (${msg.reason}).`);
  };
  ws.onclose = (e) => status(`WebSocket closed (${e.code}).`);
  return () => ws.close();
}

function subscribeSSE(filter) {
  const source = new EventSource(`/v1/sse?filter=${encodeURIComponent(JSON.stringify(filter))}`);
  source.onopen = () => status("Subscribed over Server-Sent Events.");
  source.onerror = () => status("SSE connection lost; the browser retries.");
  source.onmessage = (m) => show(m.lastEventId, JSON.parse(m.data));
  const typed = (m) => show(m.lastEventId, JSON.parse(m.data));
  // SSE names each block after the event type; listen to the types the filter names.
  for (const t of [].concat(filter.type || [], filter.eventType || [])) source.addEventListener(t, typed);
  source.addEventListener("herald.gap", (m) => status(`Missed events: ${m.data}`));
  return () => source.close();
}

$("subscribe").addEventListener("submit", (e) => {
  e.preventDefault();
  closeCurrent();
  let filter;
  try { filter = JSON.parse($("filter").value); } catch { status("The filter is not valid JSON."); return; }
  closeCurrent = $("transport").value === "sse" ? subscribeSSE(filter) : subscribeWebSocket(filter);
});

$("publish").addEventListener("submit", async (e) => {
  e.preventDefault();
  const response = await fetch("/v1/events", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${$("key").value}` },
    body: $("event").value,
  });
  $("answer").textContent = `${response.status} ${await response.text()}`;
});
