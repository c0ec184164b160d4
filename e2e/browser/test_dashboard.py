"""The dashboard and the start page in headless Chromium, against the real `herald serve`."""

import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import ADMIN_KEY, StalledWebSocket, running_gateway, wait_until

# Chromium logs every non-2xx fetch as a SEVERE "network" entry; the tests that provoke one
# on purpose allow exactly that one (each allowance: substrings that must all appear).
CLIENTS_401 = ("/v1/clients?", "Failed to load resource", "status of 401")
STATS_FAILED = ("/v1/stats", "Failed to load resource")


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text.strip()


def number(driver, element_id):
    return int(text(driver, element_id).replace(",", "") or -1)


def chart(driver, name):
    """A chart's exposed data: points (samples with data), last (values, comma-separated), peak."""
    data = driver.execute_script(
        "const c = document.getElementById(arguments[0]); return {points: c.dataset.points, last: c.dataset.last,"
        " peak: c.dataset.peak, label: c.getAttribute('aria-label'), pixels: c.toDataURL()};", f"chart-{name}")
    data["points"] = int(data["points"] or 0)
    data["peak"] = float(data["peak"] or 0)
    return data


def live(driver):
    return driver.find_element(By.ID, "conn").get_attribute("data-state") == "live"


def open_dashboard(driver, gateway):
    driver.get(f"{gateway.url}/dashboard.html")
    wait_until(lambda: live(driver) and text(driver, "tile-accepted") not in ("", "—"), timeout=10, message="the first stats poll")


def enter_admin_key(driver, key):
    field = driver.find_element(By.ID, "admin-key")
    field.clear()
    field.send_keys(key + Keys.ENTER)  # the keyboard path: Enter submits the form


def test_index_loads_without_console_errors(driver, gateway, console, screenshot):
    driver.get(f"{gateway.url}/")
    assert driver.title.startswith("Herald")
    wait_until(lambda: driver.execute_script("return document.readyState") == "complete", message="the page load")
    time.sleep(0.5)  # let the module script run
    link = driver.find_element(By.CSS_SELECTOR, 'header a[href="dashboard.html"]')
    assert link.text.strip()
    screenshot("index")
    assert console.severe() == []
    link.click()
    wait_until(lambda: "dashboard" in driver.title, message="the dashboard to open from the start page")
    wait_until(lambda: live(driver), message="the dashboard to go live")
    assert console.severe() == []


def test_dashboard_moves_when_events_are_published(driver, gateway, subscribers, console, screenshot):
    sse, ws = subscribers
    open_dashboard(driver, gateway)
    assert console.severe() == [], "the dashboard logged errors on load"
    assert number(driver, "tile-accepted") == 0
    wait_until(lambda: number(driver, "tile-connections") == 2, message="the connections tile to show both subscribers")
    events_before = chart(driver, "events")
    deliveries_before = chart(driver, "deliveries")
    assert events_before["peak"] == 0
    screenshot("dashboard-initial")

    # N events over about three seconds, so several 1-second polls see a non-zero rate.
    batches, per_batch = 6, 5
    posted = batches * per_batch
    for b in range(batches):
        gateway.publish([{"type": "chat.message", "room": "lobby", "from": "browser-test", "text": f"message {b}.{i}"}
                         for i in range(per_batch)])
        time.sleep(0.5)
    wait_until(lambda: sse.events == posted and ws.events == posted, timeout=10,
               message=f"both subscribers to receive {posted} events (sse {sse.events}, ws {ws.events})")

    wait_until(lambda: number(driver, "tile-accepted") == posted, message=f"the accepted tile to reach {posted}")
    wait_until(lambda: number(driver, "tile-delivered") == 2 * posted, message=f"the delivered tile to reach {2 * posted}")
    assert number(driver, "tile-connections") == 2
    assert number(driver, "tile-dropped") == 0
    stats = gateway.stats()
    assert stats["events"]["accepted"] == posted
    assert "WebSocket 1" in text(driver, "tile-connections-detail") and "SSE 1" in text(driver, "tile-connections-detail")

    events_after = wait_until(lambda: (c := chart(driver, "events"))["peak"] > 0 and c, message="the events-in chart to rise")
    deliveries_after = wait_until(lambda: (c := chart(driver, "deliveries"))["peak"] > 0 and c, message="the deliveries chart to rise")
    latency = wait_until(lambda: (c := chart(driver, "latency"))["peak"] > 0 and c, message="the latency chart to show a value")
    connections = chart(driver, "connections")
    assert events_after["points"] > events_before["points"]
    assert events_after["pixels"] != events_before["pixels"], "the events-in canvas did not change"
    assert deliveries_after["pixels"] != deliveries_before["pixels"], "the deliveries canvas did not change"
    assert deliveries_after["peak"] >= events_after["peak"]  # two subscribers: twice the deliveries
    assert connections["last"] == "2"
    assert "per second" in events_after["label"]
    assert "p50" in latency["label"]

    # The per-route table: route chat and the ad-hoc filter both matched every event.
    def route_row(name):
        row = driver.find_element(By.CSS_SELECTOR, f'#routes-body tr[data-route="{name}"]')
        return [c.text.replace(",", "") for c in row.find_elements(By.CSS_SELECTOR, "td")]
    wait_until(lambda: route_row("chat")[:2] == [str(posted), str(posted)], message="the chat route row")
    wait_until(lambda: route_row("")[:2] == [str(posted), str(posted)], message="the ad-hoc filters row")
    screenshot("dashboard-live")

    # Admin: the clients table lists both subscribers with their subscriptions.
    enter_admin_key(driver, ADMIN_KEY)
    wait_until(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#clients-body tr")) == 2, message="two client rows")
    rows = {r.get_attribute("data-transport"): r for r in driver.find_elements(By.CSS_SELECTOR, "#clients-body tr")}
    assert set(rows) == {"ws", "sse"}
    assert "route chat" in rows["sse"].text
    assert "chat.message" in rows["ws"].text and "browser-test" in rows["ws"].text
    assert "127.0.0.1" in rows["ws"].text
    sent = [int(c.text.replace(",", "")) for c in driver.find_elements(By.CSS_SELECTOR, "#clients-body tr td:nth-of-type(7)")]
    assert sent == [posted, posted]
    assert driver.find_element(By.ID, "clients-status").get_attribute("data-state") == "ok"
    assert driver.execute_script("return sessionStorage.getItem('herald.adminKey')") == ADMIN_KEY
    screenshot("dashboard-admin")

    # The key survives a reload of the tab (session storage) and the table comes back.
    driver.refresh()
    wait_until(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#clients-body tr")) == 2, message="the clients table after a reload")
    assert driver.find_element(By.ID, "admin-key").get_attribute("value") == ADMIN_KEY
    driver.find_element(By.ID, "admin-forget").click()
    assert driver.execute_script("return sessionStorage.getItem('herald.adminKey')") is None
    assert not driver.find_element(By.ID, "clients-wrap").is_displayed()
    assert console.severe() == [], "the dashboard logged errors"


def test_wrong_admin_key_shows_a_clear_message(driver, gateway, console, screenshot):
    open_dashboard(driver, gateway)
    enter_admin_key(driver, "not-the-admin-key")
    status = driver.find_element(By.ID, "clients-status")
    wait_until(lambda: status.get_attribute("data-state") == "denied", message="the refusal message")
    assert "401" in status.text and "refused" in status.text
    assert driver.execute_script("return sessionStorage.getItem('herald.adminKey')") is None, "a refused key was kept"
    assert not driver.find_element(By.ID, "clients-wrap").is_displayed()
    screenshot("dashboard-admin-denied")
    # The page stops asking with a refused key: one request, one network error, nothing else.
    time.sleep(2.5)
    assert len([e for e in console.read() if all(part in e["message"] for part in CLIENTS_401)]) == 1
    assert console.severe(allow=[CLIENTS_401]) == []


def test_stalled_client_shows_queue_depth_and_drops(driver, gateway, console, screenshot):
    """A client that stops reading: its queue fills (the queue chart rises), the gateway drops
    the oldest events for it (the drops tile and chart move), and the clients table puts it first."""
    open_dashboard(driver, gateway)
    enter_admin_key(driver, ADMIN_KEY)
    stalled = StalledWebSocket(gateway.port, {"type": ["bulk"]})
    try:
        wait_until(lambda: number(driver, "tile-connections") == 1, message="the stalled client to be counted")
        padding = "x" * 50_000
        for b in range(12):  # ~10 MB for a client whose socket buffers hold far less
            gateway.publish([{"type": "bulk", "n": b * 18 + i, "padding": padding} for i in range(18)])
        wait_until(lambda: number(driver, "tile-dropped") > 0, message="drops to show")
        wait_until(lambda: chart(driver, "queue")["peak"] > 0, message="the queue-depth chart to rise")
        wait_until(lambda: chart(driver, "drops")["peak"] > 0, message="the drops chart to rise")
        # Rows are rebuilt as figures change: read the busiest row afresh each time.
        busiest = """const row = document.querySelector('#clients-body tr');
                     return row && {text: row.innerText, depth: row.cells[5].textContent, depthClass: row.cells[5].className};"""
        row = wait_until(lambda: (r := driver.execute_script(busiest)) and int(r["depth"].replace(",", "")) > 0 and r,
                         message="a queue depth in the clients table")
        assert 0 < int(row["depth"].replace(",", "")) <= 50
        assert "warn" in row["depthClass"]
        assert "stalled" in row["text"]
        assert "overflow" in text(driver, "tile-dropped-detail")
        screenshot("dashboard-stalled")
    finally:
        stalled.close()
    assert console.severe() == []


@pytest.fixture
def deadline_gateway():
    """The gateway with a route whose deadline is 5 ms, beside the chat route."""
    yield from running_gateway(extra={"routes": {
        "chat": {"pattern": {"type": ["chat.message"]}},
        "bulk": {"pattern": {"type": ["bulk"]}, "deadlineMs": 5},
    }})


def test_a_late_route_turns_red_and_names_the_client_that_made_it_late(driver, deadline_gateway, console, screenshot):
    """A client that stops reading, then reads again: what waited in its queue went out long
    past the route's 5 ms, so the route turns red, the summary blames slow clients, the
    healthy route stays green, and the admin's late-clients table names the client."""
    gateway = deadline_gateway
    open_dashboard(driver, gateway)
    enter_admin_key(driver, ADMIN_KEY)
    wait_until(lambda: "on time" in text(driver, "deadlines-summary"), message="every route on time at first")
    # The Routes table says what it counts, and the latency chart that it is live only.
    assert "ad-hoc filters" in text(driver, "routes-help") and "route=" in text(driver, "routes-help")
    assert driver.find_element(By.CSS_SELECTOR, "#routes thead th").text == "Subscribed through"
    assert "Live delivery latency" in driver.find_element(By.CSS_SELECTOR, '[data-chart="latency"] figcaption').text
    assert "0.1 %" in text(driver, "deadlines-budget")
    stalled = StalledWebSocket(gateway.port, route="bulk")
    try:
        wait_until(lambda: number(driver, "tile-connections") == 1, message="the stalled client to be counted")
        padding = "x" * 50_000
        for b in range(12):  # ~10 MB: far more than the socket buffers hold
            gateway.publish([{"type": "bulk", "n": b * 18 + i, "padding": padding} for i in range(18)])
        time.sleep(0.5)
        stalled.drain(2)
        state = "return [...document.querySelectorAll('#deadlines-body tr')].map(r => [r.dataset.route, r.dataset.state, r.innerText])"
        rows = wait_until(lambda: (rows := {route: (state, row) for route, state, row in driver.execute_script(state)})
                          and rows.get("bulk", ("",))[0] == "red" and rows, message="the bulk route to turn red")
        assert rows["chat"][0] == "green" and rows[""][0] == "green", rows
        assert "5 ms" in rows["bulk"][1] and "RED" in rows["bulk"][1].upper()
        assert "ingest answers (202)" in rows["(ingest)"][1]
        summary = text(driver, "deadlines-summary")
        assert summary.startswith("Late: bulk") and "slow clients" in summary, summary
        late = wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#late-body tr"), message="the late-clients table")
        cells = [c.text for c in late[0].find_elements(By.CSS_SELECTOR, "th, td")]
        assert int(cells[5].replace(",", "")) > 0 and "route bulk" in cells[4], cells
        driver.execute_script("document.getElementById('deadlines-title').scrollIntoView()")
        screenshot("dashboard-deadlines")
    finally:
        stalled.close()
    assert console.severe() == []


def test_disconnected_state_and_recovery(driver, gateway, console, screenshot):
    open_dashboard(driver, gateway)
    port = gateway.port
    gateway.stop()
    wait_until(lambda: driver.find_element(By.ID, "conn").get_attribute("data-state") == "down", timeout=10,
               message="the disconnected state")
    assert "Disconnected" in text(driver, "conn-text")
    time.sleep(1.5)  # a gap in the charts
    screenshot("dashboard-disconnected")
    gateway.start(port=port)
    wait_until(lambda: live(driver), timeout=15, message="the dashboard to recover")
    assert number(driver, "tile-accepted") == 0
    screenshot("dashboard-recovered")
    # While the gateway was away Chromium logged failed fetches; nothing else.
    assert console.severe(allow=[STATS_FAILED]) == []


def test_dashboard_is_responsive_and_accessible(driver, gateway, console, screenshot):
    driver.set_window_size(400, 900)
    open_dashboard(driver, gateway)
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"), "horizontal scrolling on a phone"
    problems = driver.execute_script("""
        const problems = [];
        for (const el of document.querySelectorAll('input, select, textarea')) {
          if (!el.labels || !el.labels.length) problems.push('no label: #' + el.id);
        }
        for (const c of document.querySelectorAll('canvas')) {
          if (c.getAttribute('role') !== 'img' || !c.getAttribute('aria-label')) problems.push('canvas without a text alternative: #' + c.id);
        }
        for (const b of document.querySelectorAll('button')) if (!b.textContent.trim()) problems.push('button without text');
        if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
        for (const t of document.querySelectorAll('table')) if (!t.querySelector('th[scope]')) problems.push('table without header cells');
        if (!document.documentElement.lang) problems.push('no lang');
        return problems;
    """)
    assert problems == []
    # Keyboard: Tab moves from the key field to its button.
    driver.find_element(By.ID, "admin-key").click()
    driver.switch_to.active_element.send_keys(Keys.TAB)
    assert driver.switch_to.active_element.get_attribute("id") == "admin-show"
    screenshot("dashboard-mobile")
    assert console.severe() == []


def test_recent_events_tail_follows_through_herald_js(driver, gateway, console, screenshot):
    open_dashboard(driver, gateway)
    assert not driver.find_element(By.ID, "tail-wrap").is_displayed()
    assert number(driver, "tile-connections") == 0, "the tail is off until asked for"
    field = driver.find_element(By.ID, "tail-filter")
    field.clear()
    field.send_keys('{"type":["deploy.finished"]}' + Keys.ENTER)
    status = driver.find_element(By.ID, "tail-status")
    wait_until(lambda: status.get_attribute("data-state") == "live", message="the tail to connect")
    assert "WebSocket" in status.text
    assert driver.find_element(By.ID, "tail-toggle").get_attribute("aria-pressed") == "true"

    accepted = gateway.publish([{"type": "chat.message", "room": "lobby", "from": "x", "text": "not followed"},
                                {"type": "deploy.finished", "service": "api", "version": "1.4.2"}])["accepted"]
    rows = lambda: driver.find_elements(By.CSS_SELECTOR, "#tail-body tr")  # noqa: E731
    wait_until(lambda: len(rows()) == 1, message="the deploy event in the tail")
    row = rows()[0]
    assert row.get_attribute("data-seq") == str(accepted[1]["seq"])
    assert "deploy.finished" in row.text and '"version":"1.4.2"' in row.text
    wait_until(lambda: "1 event so far" in status.text, message="the count in the status")
    wait_until(lambda: number(driver, "tile-connections") == 1, message="the tail counted as a connection")
    screenshot("dashboard-tail")

    driver.find_element(By.ID, "tail-toggle").click()
    wait_until(lambda: status.get_attribute("data-state") == "idle", message="the tail to stop")
    wait_until(lambda: number(driver, "tile-connections") == 0, message="the tail's connection to close")
    assert console.severe() == []
