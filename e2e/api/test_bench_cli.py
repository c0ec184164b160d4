"""`herald bench` as a user runs it against a real `herald serve`: Herald's own defaults,
the gateway-neutral templates, and every way it can be misused — each with a clear
message and exit code, and the gateway still serving afterwards."""
import json
import os
import subprocess

from support import PUBLISHER_KEY, Herald, default_config, free_port

BIN = os.environ.get("HERALD_BIN", os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), ".build/debug/herald"))


def bench(*args, timeout=120):
    return subprocess.run([BIN, "bench", *args], capture_output=True, text=True, timeout=timeout)


def test_routed_run_against_a_real_gateway_delivers_everything_and_reports_json():
    herald = Herald(default_config())
    try:
        run = bench("--url", herald.base, "--key", PUBLISHER_KEY, "--subscribers", "20", "--routed", "--batch", "1",
                    "--rate", "400", "--duration", "1", "--sources", "2", "--server-pid", str(herald.process.pid),
                    "--json")
        assert run.returncode == 0, run.stderr
        report = json.loads(run.stdout)
        assert report["routed"] is True and report["subscribers"] == 20
        assert report["accepted_events"] == 400 and report["expected"] == 400 and report["delivered"] == 400
        assert report["lost"] == 0 and report["unexpected"] == 0 and report["failures"] == []
        assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p99"] <= report["latency_ms"]["max"]
        assert report["server_rss_kb_after"] > 0
        # Late deliveries as the tool saw them, and as the gateway counted them against its
        # own deadlines (delivery.deadlineMs, 100 ms by default): every live delivery once.
        assert report["deadline_ms"] == 100 and 0 <= report["late_deliveries"] <= 400
        gateway = report["gateway_deadlines"]
        assert gateway["met"] + gateway["missed_slow_client"] + gateway["missed_gateway"] == 400, gateway
        herald.assert_serving_and_idle()
    finally:
        herald.close()


def test_templates_measure_a_gateway_by_urls_alone():
    herald = Herald(default_config())
    try:
        port = herald.base.rsplit(":", 1)[1]
        run = bench("--subscribers", "5", "--batch", "5", "--events", "50",
                    "--subscribe-url", f"ws://127.0.0.1:{port}/v1/ws", "--ws-protocol", "herald.v1",
                    "--subscribe-message", '{"op":"subscribe","id":"s","filter":{"kind":["tpl"],"g":[{i}]}}',
                    "--publish-url", f"http://127.0.0.1:{port}/v1/events",
                    "--header", f"Authorization: Bearer {PUBLISHER_KEY}", "--header", "Content-Type: application/json",
                    "--event", '{"kind":"tpl","g":{i},"n":{n},"sentAt":{sentAt}}')
        assert run.returncode == 0, run.stderr + run.stdout
        assert "delivered 50 of 50 (0 lost" in run.stdout
        assert "deadline 100.0 ms: " in run.stdout and "the gateway counted" not in run.stdout, "templates: any gateway"
        herald.assert_serving_and_idle()
    finally:
        herald.close()


def test_refusals_and_misuse_get_a_message_and_an_exit_code():
    herald = Herald(default_config())
    try:
        wrong_key = bench("--url", herald.base, "--key", "not-the-key", "--subscribers", "2", "--events", "10",
                          "--batch", "5", "--json")
        assert wrong_key.returncode == 1
        report = json.loads(wrong_key.stdout)
        assert report["accepted_events"] == 0 and report["refused_posts"] == 2
        assert any("HTTP 401" in failure for failure in report["failures"])

        refused_filter = bench("--subscribe-url", herald.base.replace("http", "ws") + "/v1/ws", "--ws-protocol", "herald.v1",
                               "--subscribe-message", '{"op":"subscribe","id":"s","filter":{"kind":"scalar"}}',
                               "--publish-url", herald.base + "/v1/events", "--event", '{"sentAt":{sentAt}}',
                               "--subscribers", "3", "--events", "1")
        assert refused_filter.returncode == 1
        assert "subscription was refused" in refused_filter.stderr

        for args, message in [
            (["--transport", "carrier-pigeon"], "--transport must be ws or sse"),
            (["--duration", "5"], "--duration needs a positive --rate"),
            (["--deadline-ms", "0"], "--deadline-ms must be in 1...600000"),
            (["--subscribe-url", "ws://127.0.0.1:1/x"], "give all three"),
            (["--header", "no colon here", "--url", herald.base], "expected \"Name: value\""),
            (["--url", herald.base, "--key", PUBLISHER_KEY, "--sources", "999"], "sources must be 1"),
            (["--url", herald.base, "--key", PUBLISHER_KEY, "--publishers", "0"], "at least 1"),
        ]:
            run = bench(*args)
            assert run.returncode != 0, args
            assert message in run.stderr, (args, run.stderr)
        herald.assert_serving_and_idle()
    finally:
        herald.close()

    closed = free_port()
    unreachable = bench("--url", f"http://127.0.0.1:{closed}", "--key", PUBLISHER_KEY, "--subscribers", "2",
                        "--events", "1")
    assert unreachable.returncode == 1
    assert "connect" in unreachable.stderr and "refused" in unreachable.stderr.lower()
