"""The chat demo (public/index.html + chat.js on herald.js) in headless Chromium, against the
real `herald serve` with demo tokens. Several sessions are several browser windows of one
Chromium; a window's console, network conditions and injected scripts are its own."""

import pytest
import requests
from selenium.common.exceptions import NoSuchWindowException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from conftest import ADMIN_KEY, set_offline, wait_until

MESSAGES_JS = """return [...document.querySelectorAll('#messages li.msg')].map(li => ({
  seq: Number(li.dataset.seq), from: li.dataset.from, room: li.dataset.room,
  text: li.querySelector('.text').textContent, receivedAt: Number(li.dataset.receivedAt),
  mentionsMe: [...li.querySelectorAll('mark.mention.me')].map(m => m.textContent)}))"""

# A page where the WebSocket constructor throws, as behind a proxy that refuses upgrades.
BLOCK_WEBSOCKET = """window.WebSocket = class BlockedWebSocket {
  constructor() { throw new DOMException('WebSockets are blocked in this test', 'SecurityError'); }
};"""


class ChatTab:
    """One chat session in its own browser window (the first one reuses the current window)."""

    def __init__(self, driver, gateway, nick, room="lobby", transport=None, new_window=True, block_websocket=False):
        self.driver, self.gateway, self.nick, self.room = driver, gateway, nick, room
        if new_window:
            driver.switch_to.new_window("window")
        self.handle = driver.current_window_handle
        if block_websocket:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": BLOCK_WEBSOCKET})
        query = f"?room={room}&nick={nick}" + (f"&transport={transport}" if transport else "")
        driver.get(f"{gateway.url}/{query}")
        self.wait_ready()

    def focus(self):
        try:
            current = self.driver.current_window_handle
        except NoSuchWindowException:  # the window in focus was closed
            current = None
        if current != self.handle:
            self.driver.switch_to.window(self.handle)
        return self.driver

    def js(self, script, *args):
        return self.focus().execute_script(script, *args)

    def state(self):
        return self.js("return document.getElementById('status').dataset.state")

    def transport(self):
        return self.js("return window.heraldDemo.herald && window.heraldDemo.herald.transport")

    def people(self):
        return self.js("return [...document.querySelectorAll('#people li')].map(li => li.dataset.nick)")

    def messages(self):
        return self.js(MESSAGES_JS)

    def texts(self):
        return [m["text"] for m in self.messages()]

    def find(self, text):
        """The message with exactly this text, or None."""
        return next((m for m in self.messages() if m["text"] == text), None)

    def notice(self):
        return self.js("const n = document.getElementById('notice'); return n.hidden ? '' : n.textContent")

    def wait_ready(self):
        """Connected, and present in the room's member list (so the join and the list work)."""
        wait_until(lambda: self.state() == "open", message=f"{self.nick}'s connection to open")
        wait_until(lambda: self.nick in self.people(), message=f"{self.nick} in their own member list")

    def send(self, text):
        """Types `text` and presses Enter; returns the page's clock just before the key press."""
        box = self.focus().find_element(By.ID, "compose-text")
        box.clear()
        box.send_keys(text)
        sent_at = self.driver.execute_script("return Date.now()")
        box.send_keys(Keys.ENTER)
        return sent_at

    def close(self):
        self.focus().close()


def admin(gateway, method, path, allow=()):
    """An admin request; statuses in `allow` are returned as None instead of failing."""
    response = requests.request(method, f"{gateway.url}{path}", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=5)
    if response.status_code in allow:
        return None
    response.raise_for_status()
    return response.json() if response.content else None


def chat(room, sender, text, mentions=()):
    return {"type": "chat.message", "room": room, "from": sender, "text": text, "mentions": list(mentions)}


def report_latency(what, ms):
    """Asserts the issue's bound (typed in one window, shown in the other within 1 s) and
    prints the measured figure (visible with pytest -s)."""
    print(f"\nchat latency {what}: {ms:.1f} ms")
    assert ms < 1000, f"{what}: delivered after {ms} ms"



def test_a_message_reaches_the_room_and_only_the_room(driver, gateway, screenshot):
    ada = ChatTab(driver, gateway, "ada", new_window=False)
    bob = ChatTab(driver, gateway, "bob")
    carol = ChatTab(driver, gateway, "carol", room="garden")
    assert ada.transport() == bob.transport() == "websocket"

    sent_at = ada.send("hello @bob, welcome to the lobby")
    received = wait_until(lambda: bob.find("hello @bob, welcome to the lobby"), timeout=5, message="ada's message in bob's window")
    report_latency("websocket ada→bob", received["receivedAt"] - sent_at)
    assert received["from"] == "ada" and received["room"] == "lobby"
    assert received["mentionsMe"] == ["@bob"], "bob's mention is highlighted for bob"
    wait_until(lambda: ada.find("hello @bob, welcome to the lobby"), message="ada's own message in her window")
    assert ada.js("return document.getElementById('compose-text').value") == ""

    sent_at = bob.send("hi ada")
    received = wait_until(lambda: ada.find("hi ada"), timeout=5, message="bob's answer in ada's window")
    report_latency("websocket bob→ada", received["receivedAt"] - sent_at)

    # The other room: a later message to garden arrives, the lobby's never did (per-connection order).
    gateway.publish([chat("garden", "dora", "garden marker")])
    wait_until(lambda: carol.find("garden marker"), message="the garden marker in carol's window")
    assert carol.texts() == ["garden marker"]
    assert not ada.find("garden marker") and not bob.find("garden marker")

    # A backend POST with the publisher key shows like a typed message.
    gateway.publish([chat("lobby", "deploy-bot", "build 42 is live @ada", ["ada"])])
    for tab in (ada, bob):
        wait_until(lambda: tab.find("build 42 is live @ada"), message=f"the backend message in {tab.nick}'s window")
    assert ada.find("build 42 is live @ada")["mentionsMe"] == ["@ada"]
    assert [m["text"] for m in bob.messages()] == ["hello @bob, welcome to the lobby", "hi ada", "build 42 is live @ada"]
    seqs = [m["seq"] for m in bob.messages()]
    assert seqs == sorted(set(seqs))

    # A message the token does not allow is refused, and the page says so.
    ada.js("window.heraldDemo.herald.publish({type:'chat.message', room:'lobby', from:'mallory', text:'x'})"
           ".catch(e => { window.refused = e.code; })")
    assert wait_until(lambda: ada.js("return window.refused"), message="the refusal") == "forbidden"
    ada.focus()
    screenshot("chat-desktop")


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_mentions_filter_and_room_list(driver, gateway, screenshot, transport):
    gateway.publish([
        chat("lobby", "ada", "good morning"),
        chat("lobby", "ada", "@bob have a look at the garden", ["bob"]),
        chat("garden", "carol", "the roses are out @bob", ["bob"]),
        chat("garden", "carol", "and the tulips"),
        chat("kitchen", "dora", "coffee @ada", ["ada"]),
    ])
    bob = ChatTab(driver, gateway, "bob", transport="sse" if transport == "sse" else None, new_window=False)
    assert bob.transport() == transport
    wait_until(lambda: bob.texts() == ["good morning", "@bob have a look at the garden"], message="the lobby's history")

    def rooms():
        return bob.js("return [...document.querySelectorAll('#rooms button.room')].map(b => "
                      "[b.dataset.room, parseInt(b.querySelector('.count').textContent, 10), b.getAttribute('aria-current')])")
    wait_until(lambda: sorted(r[:2] for r in rooms()) == [["garden", 2], ["kitchen", 1], ["lobby", 2]], message="the room list with counts")
    assert [r[0] for r in rooms() if r[2] == "true"] == ["lobby"]

    # Mentions of me: across rooms, only messages that mention bob.
    toggle = driver.find_element(By.ID, "mentions-toggle")
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    wait_until(lambda: bob.texts() == ["@bob have a look at the garden", "the roses are out @bob"], message="the mentions view")
    assert [m["room"] for m in bob.messages()] == ["lobby", "garden"]
    subscription = bob.js("return window.heraldDemo.subscriptions.mentions.filter")
    assert subscription == {"type": ["chat.message"], "mentions": ["bob"]}
    gateway.publish([chat("lobby", "ada", "not for bob"), chat("kitchen", "dora", "@bob biscuits?", ["bob"])])
    wait_until(lambda: bob.find("@bob biscuits?"), message="a live mention from another room")
    assert not bob.find("not for bob")
    screenshot(f"chat-mentions-{transport}")

    # Back to the room, then to another room with the keyboard (the room list is buttons).
    toggle.click()
    wait_until(lambda: bob.texts() == ["good morning", "@bob have a look at the garden", "not for bob"], message="the lobby again")
    garden = driver.find_element(By.CSS_SELECTOR, '#rooms button[data-room="garden"]')
    garden.send_keys(Keys.ENTER)
    wait_until(lambda: bob.texts() == ["the roses are out @bob", "and the tulips"], message="the garden's history")
    assert driver.find_element(By.ID, "room-title").text == "#garden"
    assert "room=garden" in driver.current_url and "nick=bob" in driver.current_url
    wait_until(lambda: bob.people() == ["bob"], message="bob in the garden's member list")
    bob.send("hello garden")
    wait_until(lambda: bob.find("hello garden"), message="bob's message in the garden (a new room needs a new token)")
    wait_until(lambda: ["garden", 3, "true"] in rooms(), message="the garden's count to rise")

    # Any room by name: the form, and the history API.
    field = driver.find_element(By.ID, "room-input")
    field.send_keys("attic" + Keys.ENTER)
    wait_until(lambda: driver.find_element(By.ID, "room-title").text == "#attic", message="the attic")
    wait_until(lambda: bob.js("return document.querySelector('#messages .empty') !== null"), message="the empty attic")
    driver.back()
    wait_until(lambda: bob.texts() == ["the roses are out @bob", "and the tulips", "hello garden"], message="back in the garden")


def test_presence_lists_each_nick_once_and_follows_closed_tabs(driver, gateway):
    ada = ChatTab(driver, gateway, "ada", new_window=False)
    bob = ChatTab(driver, gateway, "bob")
    carol = ChatTab(driver, gateway, "carol", room="garden")
    wait_until(lambda: sorted(ada.people()) == ["ada", "bob"], message="ada to see ada and bob")
    wait_until(lambda: sorted(bob.people()) == ["ada", "bob"], message="bob to see ada and bob")
    assert ada.people()[0] == "ada", "you come first"
    assert carol.people() == ["carol"]

    ada_again = ChatTab(driver, gateway, "ada")  # a second tab of the same person
    wait_until(lambda: len(bob.js("return window.heraldDemo.members")) == 3, message="three members in the lobby")
    assert sorted(bob.people()) == ["ada", "bob"], "ada is listed once"
    assert bob.js("return parseInt(document.getElementById('people-count').textContent, 10)") == 2

    bob.close()
    wait_until(lambda: ada.people() == ["ada"], message="bob to leave ada's list when his window closes")
    # Screen readers hear the change in a status line, not the whole rebuilt list.
    assert ada.js("return document.getElementById('people-changes').textContent") == "bob left"
    assert ada.js("return document.getElementById('people').getAttribute('aria-live')") is None
    ada_again.close()
    wait_until(lambda: len(ada.js("return window.heraldDemo.members")) == 1, message="ada's second tab to leave")
    assert ada.people() == ["ada"]
    assert carol.people() == ["carol"]
    group = requests.get(f"{gateway.url}/v1/presence/chat%3Alobby", timeout=5).json()
    assert [m["info"]["nick"] for m in group["members"]] == ["ada"]


def test_sse_fallback_when_websockets_are_blocked(driver, gateway, console, screenshot):
    ada = ChatTab(driver, gateway, "ada", new_window=False, block_websocket=True)
    assert ada.transport() == "sse"
    assert "Server-Sent Events" in ada.js("return document.getElementById('status-text').textContent")
    assert "switched to Server-Sent Events" in ada.notice()
    assert console.severe() == [], "the fallback logged errors"
    bob = ChatTab(driver, gateway, "bob")
    assert bob.transport() == "websocket"
    wait_until(lambda: sorted(bob.people()) == ["ada", "bob"], message="ada (on SSE) in bob's member list")
    wait_until(lambda: sorted(ada.people()) == ["ada", "bob"], message="bob in ada's member list")
    clients = admin(gateway, "GET", "/v1/clients")["clients"]
    assert {c["transport"] for c in clients if c.get("user") == "ada"} == {"sse"}

    sent_at = ada.send("sent over POST @bob")
    received = wait_until(lambda: bob.find("sent over POST @bob"), timeout=5, message="ada's message in bob's window")
    report_latency("SSE+POST ada→bob", received["receivedAt"] - sent_at)
    sent_at = bob.send("read over SSE")
    received = wait_until(lambda: ada.find("read over SSE"), timeout=5, message="bob's message in ada's window")
    report_latency("websocket bob→SSE ada", received["receivedAt"] - sent_at)
    wait_until(lambda: ada.find("sent over POST @bob"), message="ada's own message back over SSE")
    ada.focus()
    screenshot("chat-sse-fallback")

    bob.close()
    wait_until(lambda: ada.people() == ["ada"], message="bob to leave ada's list")


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_a_dropped_connection_restores_missed_messages_once(driver, gateway, transport, screenshot):
    ada = ChatTab(driver, gateway, "ada", transport="sse" if transport == "sse" else None, new_window=False)
    assert ada.transport() == transport
    bob = ChatTab(driver, gateway, "bob")
    gateway.publish([chat("lobby", "dora", "before the drop")])
    wait_until(lambda: ada.find("before the drop"), message="the first message")
    before = ada.messages()

    # Ada's network goes away and the gateway drops her connections; her retries fail meanwhile.
    # Going offline may already close her SSE streams, which the gateway notices at once: a
    # client listed a moment ago can be gone (404) by the time it is deleted.
    set_offline(ada.focus(), True)
    for client in admin(gateway, "GET", "/v1/clients")["clients"]:
        if client.get("user") == "ada":
            admin(gateway, "DELETE", f"/v1/clients/{client['id']}", allow=(404,))
    wait_until(lambda: ada.state() != "open", message="ada's page to notice the drop")
    bob.send("missed one")
    gateway.publish([chat("lobby", "dora", "missed two"), chat("lobby", "dora", "missed three @ada", ["ada"])])
    wait_until(lambda: bob.texts()[-3:] == ["missed one", "missed two", "missed three @ada"], message="bob to see all three")
    assert ada.texts() == [m["text"] for m in before]

    set_offline(ada.focus(), False)
    wait_until(lambda: "3 missed messages restored" in ada.notice(), timeout=15, message="the resume notice")
    assert ada.notice() == "Reconnected — 3 missed messages restored."
    after = ada.messages()
    assert [m["text"] for m in after] == [m["text"] for m in before] + ["missed one", "missed two", "missed three @ada"]
    seqs = [m["seq"] for m in after]
    assert seqs == sorted(set(seqs)), "every message once, in order"
    assert ada.js("return document.querySelectorAll('#messages li.system.resumed').length") == 1

    gateway.publish([chat("lobby", "dora", "after the drop")])
    wait_until(lambda: ada.find("after the drop"), message="live messages after the resume")
    assert [m["text"] for m in ada.messages()].count("missed one") == 1
    assert ada.transport() == transport
    wait_until(lambda: sorted(bob.people()) == ["ada", "bob"], message="ada back in bob's member list")
    ada.focus()
    screenshot(f"chat-resumed-{transport}")


def test_a_gateway_restart_without_storage_is_told_truthfully(driver, gateway, screenshot):
    ada = ChatTab(driver, gateway, "ada", new_window=False)
    gateway.publish([chat("lobby", "dora", "before the restart")])
    wait_until(lambda: ada.find("before the restart"), message="the first message")

    # Ada's page is offline while the gateway restarts and takes a message, so that her
    # reconnect finds it there.
    set_offline(ada.focus(), True)
    port = gateway.port
    gateway.stop()
    wait_until(lambda: ada.state() != "open", message="ada's page to notice the gateway is gone")
    gateway.start(port=port)  # memory only: history and positions start again
    gateway.publish([chat("lobby", "dora", "after the restart")])
    set_offline(ada.focus(), False)

    expected = "Reconnected after a gateway restart — 1 message since the restart restored; earlier ones may be missing."
    wait_until(lambda: ada.notice() == expected, timeout=20, message="the restart notice")
    assert ada.texts() == ["before the restart", "after the restart"], "the new message is shown, not dropped as a duplicate"
    systems = ada.js("return [...document.querySelectorAll('#messages li.system')].map(li => [li.className, li.textContent])")
    assert ["system gap", "The gateway restarted and lost its history: messages sent between where you left off and the restart may be missing."] in systems, systems
    assert not any("no messages missed" in text for _, text in systems)
    screenshot("chat-after-gateway-restart")


def test_pages_load_without_console_errors(driver, gateway, console):
    driver.get(f"{gateway.url}/")
    wait_until(lambda: driver.find_element(By.ID, "join-nick").is_displayed(), message="the join form")
    assert driver.title.startswith("Herald")
    assert driver.switch_to.active_element.get_attribute("id") == "join-nick"
    # Joining from the form: keyboard only, and the URL follows.
    driver.switch_to.active_element.send_keys("ada" + Keys.TAB)
    driver.switch_to.active_element.send_keys(Keys.CONTROL, "a")
    driver.switch_to.active_element.send_keys("reading-room" + Keys.ENTER)
    wait_until(lambda: driver.execute_script("return document.getElementById('status').dataset.state") == "open", message="the session")
    assert "nick=ada" in driver.current_url and "room=reading-room" in driver.current_url
    wait_until(lambda: driver.execute_script("return [...document.querySelectorAll('#people li')].length") == 1, message="ada present")
    assert console.severe() == [], "the chat page logged errors"

    # The transport switch starts the session again over SSE; history and live messages follow.
    gateway.publish([chat("reading-room", "bob", "quiet please")])
    wait_until(lambda: "quiet please" in driver.find_element(By.ID, "messages").text, message="the message over WebSocket")
    Select(driver.find_element(By.ID, "transport")).select_by_value("sse")
    wait_until(lambda: driver.execute_script("return window.heraldDemo.herald.transport === 'sse' && "
                                             "document.getElementById('status').dataset.state === 'open'"), message="the SSE session")
    assert "transport=sse" in driver.current_url
    assert "Server-Sent Events" in driver.find_element(By.ID, "status-text").text
    gateway.publish([chat("reading-room", "bob", "thank you")])
    wait_until(lambda: driver.find_element(By.ID, "messages").text.count("thank you") == 1, message="a live message over SSE")
    assert driver.find_element(By.ID, "messages").text.count("quiet please") == 1
    assert console.severe() == [], "switching transports logged errors"

    for path, ready in [
        ("/?room=lobby&nick=bob&transport=sse", "return document.getElementById('status').dataset.state === 'open'"),
        ("/dashboard.html", "return document.getElementById('conn').dataset.state === 'live'"),
        ("/playground.html", "return document.readyState === 'complete'"),
    ]:
        driver.get(f"{gateway.url}{path}")
        wait_until(lambda: driver.execute_script(ready), message=f"{path} to be ready")
        assert console.severe() == [], f"{path} logged errors"
    driver.find_element(By.CSS_SELECTOR, "#subscribe button").click()
    wait_until(lambda: "Subscribed" in driver.find_element(By.ID, "status").text, message="the playground's subscription")
    assert driver.find_element(By.CSS_SELECTOR, 'header a[href="./"]').text.strip()
    assert console.severe() == []


def test_layout_at_desktop_and_mobile_widths(driver, gateway, screenshot):
    gateway.publish([
        chat("lobby", "ada", "Has anyone tried the new release? @bob said the resume works across drops.", ["bob"]),
        chat("lobby", "bob", "Yes — and a long unbroken word: " + "supercalifragilistic" * 6),
        chat("lobby", "carol", "Line one\nline two, and @bob again", ["bob"]),
        chat("design-review", "dora", "A room with a long name"),
    ])
    bob = ChatTab(driver, gateway, "bob", new_window=False)
    wait_until(lambda: len(bob.messages()) == 3, message="the history")
    overflow = "return document.documentElement.scrollWidth - window.innerWidth"
    for name, (width, height) in {"chat-desktop-layout": (1280, 900), "chat-mobile": (390, 844)}.items():
        driver.set_window_size(width, height)
        wait_until(lambda: driver.execute_script(overflow) <= 0, timeout=3, message=f"no horizontal scrolling at {width}px")
        compose = driver.find_element(By.ID, "compose-text")
        assert compose.is_displayed() and compose.size["width"] > 150
        screenshot(name)
    driver.get(f"{gateway.url}/")
    wait_until(lambda: driver.find_element(By.ID, "join-nick").is_displayed(), message="the join form")
    assert driver.execute_script(overflow) <= 0
    screenshot("chat-join-mobile")
    driver.set_window_size(1280, 1000)


def test_leaving_and_coming_back_resumes_from_the_back_forward_cache(driver, gateway):
    """herald.js closes its connections on pagehide (a cached page would keep its SSE streams,
    holding the browser's six connections per host, and its presence) and resumes on pageshow."""
    ada = ChatTab(driver, gateway, "ada", transport="sse", new_window=False)
    gateway.publish([chat("lobby", "dora", "before leaving")])
    wait_until(lambda: ada.find("before leaving"), message="the first message")
    driver.execute_script("window.stillThisPage = true")
    for path in ("/playground.html", "/dashboard.html"):  # each load needs a free connection
        driver.get(f"{gateway.url}{path}")
    gateway.publish([chat("lobby", "dora", "while away")])
    driver.back()
    driver.back()
    wait_until(lambda: ada.state() == "open" and ada.find("while away"), message="ada's page back, with the message sent meanwhile")
    assert ada.texts() == ["before leaving", "while away"]
    if driver.execute_script("return window.stillThisPage === true"):  # restored from the cache: a resume
        wait_until(lambda: "1 missed message restored" in ada.notice(), message="the resume notice")


def test_a_closed_sse_tab_leaves_presence_and_the_client_list_promptly(driver, gateway):
    ada = ChatTab(driver, gateway, "ada", new_window=False)
    bob = ChatTab(driver, gateway, "bob", transport="sse")
    wait_until(lambda: sorted(ada.people()) == ["ada", "bob"], message="bob (SSE) in ada's list")
    assert len([c for c in admin(gateway, "GET", "/v1/clients")["clients"] if c.get("user") == "bob"]) == 3
    bob.close()
    wait_until(lambda: ada.people() == ["ada"], timeout=3, message="bob to leave ada's list")
    wait_until(lambda: not [c for c in admin(gateway, "GET", "/v1/clients")["clients"] if c.get("user") == "bob"],
               timeout=3, message="bob's three SSE streams to be gone from /v1/clients within 3 s")


def test_history_shows_each_message_at_its_own_time_after_a_reload(driver, gateway, screenshot):
    """Replayed history reads in order: each message shows the time its sender wrote into
    it (`time`), not the moment the page loaded — before and after a reload."""
    import datetime
    base = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(hours=3)
    earlier = [base + datetime.timedelta(minutes=17 * n) for n in range(3)]
    gateway.publish([dict(chat("lobby", "early-bird", f"history {n}"), time=t.isoformat().replace("+00:00", "Z"))
                     for n, t in enumerate(earlier)])
    ada = ChatTab(driver, gateway, "ada", new_window=False)
    ada.send("said just now")
    wait_until(lambda: ada.find("said just now"), message="ada's message")
    times_js = """return [...document.querySelectorAll('#messages li.msg')].map(li =>
        [li.querySelector('.text').textContent, li.querySelector('time').dateTime, li.querySelector('time').textContent])"""
    for attempt in ("first load", "after a reload"):
        if attempt == "after a reload":
            ada.js("location.reload()")
            ada.wait_ready()
            wait_until(lambda: ada.find("said just now"), message="the history after the reload")
        shown = ada.js(times_js)
        assert [text for text, _, _ in shown] == ["history 0", "history 1", "history 2", "said just now"], (attempt, shown)
        stamps = [datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")) for _, stamp, _ in shown]
        assert stamps[:3] == earlier, (attempt, shown)
        assert abs((stamps[3] - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) < 120, (attempt, shown)
        assert stamps == sorted(stamps), f"{attempt}: history reads in order"
        assert len({label for _, _, label in shown[:3]}) == 3, "three different times, not the page's load time thrice"
    screenshot("chat-history-after-reload")
