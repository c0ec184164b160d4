"""A reconnect storm against a real `herald serve`, as a deploy or a network blip makes
one: 5,000 clients (from four source addresses) drop their connections while events
flow and all come back within one second, resuming from their last position, beside 100
clients that stay. The gateway's storm admission (`limits.resumesPerSecond`, here 300 so
that it refuses part of the wave however slowly a loaded machine lets the clients come
back: 5,000 resumes take it 16 s) refuses with jittered waits; `herald bench --storm`
retries as herald.js does. Every client must end with every event exactly once and in order, the
server's memory must stay under its bound, and the gateway must serve and exit cleanly
afterwards. (Latency is a benchmark's figure, not a test's: see BENCHMARKS.md.)"""
import json
import os
import subprocess

import pytest

from support import PUBLISHER_KEY, Herald, default_config, herald_binary_path

# 5,100 clients cost the server about 3 KB each idle; the queues and history of a run at
# 10 events/s add little. The bound leaves room for a debug build and allocator slack.
SERVER_RSS_BOUND_MIB = 160


@pytest.mark.parametrize("transport", ["ws", "sse"])
def test_five_thousand_clients_reconnecting_at_once_all_end_complete_and_in_order(transport):
    herald = Herald(default_config(limits={"resumesPerSecond": 300}), max_files=20000)
    try:
        run = subprocess.run(
            [herald_binary_path(), "bench", "--url", herald.base, "--key", PUBLISHER_KEY, "--transport", transport,
             "--subscribers", "100", "--storm", "5000", "--rate", "10", "--duration", "9", "--storm-at", "3",
             "--storm-window", "1", "--batch", "1", "--sources", "4", "--threads", "2",
             "--server-pid", str(herald.process.pid), "--max-server-rss", str(SERVER_RSS_BOUND_MIB), "--json"],
            capture_output=True, text=True, timeout=240)
        assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-3000:]
        report = json.loads(run.stdout)
        storm = report["storm"]
        print(run.stdout)  # the figures, in the test log
        assert report["accepted_events"] == 90 and report["failures"] == [] and report["lost"] == 0
        assert storm["storm_complete"] == 5000 and storm["storm_incomplete"] == 0
        assert storm["undisturbed_complete"] == 100 and storm["undisturbed_incomplete"] == 0
        assert storm["out_of_order"] == 0 and storm["duplicates"] == 0 and report["gaps"] == 0
        assert storm["resumes"] >= 5000 and storm["caught_up"] == 5000
        refused = storm["refusals"] - storm["refused_before_storm"]
        assert refused > 0, "5,000 resumes pass limits.resumesPerSecond: part of the wave is told to come back"
        counted = herald.metric("herald_connections_refused_total", reason="resume_rate")
        assert counted >= refused, "the gateway counted what it refused"
        assert 0 < report["server_rss_kb_peak"] <= SERVER_RSS_BOUND_MIB * 1024
        herald.assert_serving_and_idle()
    finally:
        herald.close()
