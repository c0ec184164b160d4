"""docs/alerts.yml: valid Prometheus rules (`promtool check rules`), firing as meant on
synthetic series (`promtool test rules docs/alerts.test.yml`), and written against
metrics a running gateway really exports."""
import os
import re
import subprocess

from support import Herald, default_config

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs")


def promtool(*args):
    return subprocess.run(["promtool", *args], cwd=DOCS, capture_output=True, text=True, timeout=60)


def test_the_alerting_rules_are_valid_and_fire_as_their_tests_say():
    check = promtool("check", "rules", "alerts.yml")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 9 rules found" in check.stdout
    run = promtool("test", "rules", "alerts.test.yml")
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_rules_use_only_metrics_the_gateway_exports():
    rules = open(os.path.join(DOCS, "alerts.yml")).read()
    expressions = "\n".join(line for line in rules.splitlines() if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\bherald_[a-z_]+", expressions))
    herald = Herald(default_config())
    try:
        exported = {name for name, _ in herald.metrics()}
        herald.assert_serving_and_idle()
    finally:
        herald.close()
    assert used and used <= exported, f"not exported: {sorted(used - exported)}"
