"""`herald init` as a new user runs it: a production-shaped configuration that Herald
serves, keys that work once printed, secrets kept out of the config; `herald check-config`
pointing at a JSON syntax error by line and column; `make install` into a staging root."""
import json
import os
import re
import stat
import subprocess
import urllib.parse

from support import ROOT, Herald, ws_connect

BIN = os.environ.get("HERALD_BIN", os.path.join(ROOT, ".build/debug/herald"))


def herald(*args, env=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60, env=env)


def test_init_writes_a_configuration_that_serves_with_the_printed_keys(tmp_path, monkeypatch):
    target = tmp_path / "etc"
    run = herald("init", "--dir", str(target))
    assert run.returncode == 0, run.stderr
    publisher, admin = re.findall(r"^\s+(h[pa]_[A-Za-z0-9_-]{43})$", run.stdout, re.M)
    assert publisher.startswith("hp_") and admin.startswith("ha_")
    assert f"herald serve --config {target}/config.json" in run.stdout
    text = (target / "config.json").read_text()
    assert publisher not in text and admin not in text, "only hashes are stored"
    config = json.loads(text)
    assert config["auth"]["anonymous"] is False and config["auth"]["demo"] is False
    assert config["storage"]["path"] == str(target / "data") and (target / "data").is_dir()
    env_file = target / "herald.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((target / "config.json").stat().st_mode) & 0o007 == 0, "not readable by others"
    assert stat.S_IMODE((target / "data").stat().st_mode) & 0o007 == 0, "the event log is not readable by others"
    secret = re.search(r"^HERALD_JWT_SECRET=(\S{64})$", env_file.read_text(), re.M).group(1)
    assert herald("check-config", str(target / "config.json")).returncode == 0

    # Running it twice never overwrites the keys a user may already have handed out.
    again = herald("init", "--dir", str(target))
    assert again.returncode == 1 and "exists already" in again.stderr and (target / "config.json").read_text() == text

    # Served with the env file's secret: the printed publisher key publishes, a token from
    # `herald token` subscribes, an anonymous subscriber and a wrong key are refused.
    monkeypatch.setenv("HERALD_JWT_SECRET", secret)
    gateway = Herald(config)
    try:
        token = herald("token", "--config", str(target / "config.json"), "--sub", "alice", "--ttl", "600")
        assert token.returncode == 0, token.stderr
        ws, _ = ws_connect(gateway, path=f"/v1/ws?token={urllib.parse.quote(token.stdout.strip())}")
        ws.send_json({"op": "subscribe", "id": "s", "filter": {"type": ["hello"]}})
        assert ws.receive_json()["type"] == "subscribed"
        assert gateway.publish(json.dumps({"type": "hello", "text": "world"}), key=publisher).status == 202
        assert ws.receive_json()["event"] == {"type": "hello", "text": "world"}
        assert gateway.publish(json.dumps({"type": "hello"}), key=admin).status == 401, "the admin key does not publish"
        assert gateway.get("/v1/sse?filter=%7B%7D").status == 401, "no anonymous subscribers"
        assert gateway.get("/v1/demo/token?nick=x").status == 404, "no demo tokens"
        assert gateway.get("/v1/clients", {"Authorization": f"Bearer {admin}"}).status == 200
        ws.close()
        gateway.assert_serving_and_idle()
    finally:
        assert gateway.terminate() == 0
        gateway.close()


def test_init_refuses_what_it_cannot_do_and_quotes_what_it_prints(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    run = herald("init", "--dir", str(blocker / "sub"))
    assert run.returncode == 1 and "cannot create" in run.stderr
    assert herald("init", "--dir", str(tmp_path), "--port", "0").returncode != 0
    newline = herald("init", "--dir", str(tmp_path / "a\nb"))
    assert newline.returncode != 0 and "control characters" in newline.stderr
    # A directory with a space and a quote: the printed commands work when pasted.
    odd = tmp_path / "my herald's"
    run = herald("init", "--dir", str(odd))
    assert run.returncode == 0, run.stderr
    line = next(l.strip() for l in run.stdout.splitlines() if l.strip().startswith("set -a;"))
    shell = subprocess.run(["bash", "-c", line + '; test -n "$HERALD_JWT_SECRET"'], capture_output=True, text=True)
    assert shell.returncode == 0, (line, shell.stderr)


def test_check_config_points_at_a_syntax_error_by_line_and_column(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "listen": { "port": 8080, },\n  "routes": {}\n}\n')
    run = herald("check-config", str(path))
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert lines[0] == f"{path}:2:27: not valid JSON: trailing comma in object", lines  # at the comma
    assert lines[1] == '      "listen": { "port": 8080, },'
    assert lines[2] == "    " + " " * 26 + "^"
    # A one-line configuration: only the neighbourhood of the fault is shown, not the
    # secrets elsewhere on the line.
    secret = "s" * 40
    path.write_text(json.dumps({"auth": {"jwtSecret": secret}, "routes": {"r": {"pattern": {"a": [1]}}}, "padding": "p" * 60})[:-1] + ",}")
    run = herald("check-config", str(path))
    assert run.returncode == 1 and "trailing comma" in run.stderr and secret not in run.stderr, run.stderr
    excerpt, caret = run.stderr.splitlines()[1:3]
    assert excerpt.startswith("    …") and len(excerpt) <= 4 + 1 + 80 + 1
    assert excerpt[len(caret) - 1] == ",", (excerpt, caret)
    path.write_text('{"listen": {"port": "8080"}, "routez": {}}')
    run = herald("check-config", str(path))
    assert run.returncode == 1 and f"{path}: $.listen.port:" in run.stderr and "$.routez" in run.stderr


def test_make_install_stages_the_binary_the_pages_and_the_unit(tmp_path):
    missing = subprocess.run(["make", "-s", "install", f"DESTDIR={tmp_path}", "BIN=/nonexistent/herald"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "build it first" in missing.stderr
    staging = tmp_path / "stage dir"  # a space in DESTDIR must not split a path (rm -rf!)
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / "keep").write_text("")
    for _ in range(2):  # and installing twice is fine
        run = subprocess.run(["make", "-s", "install", f"DESTDIR={staging}", "PREFIX=/opt/herald", f"BIN={BIN}"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "stage" / "keep").exists()
    assert run.returncode == 0, run.stdout + run.stderr
    root = staging / "opt/herald"
    assert os.access(root / "bin/herald", os.X_OK)
    assert (root / "share/herald/public/herald.js").read_bytes() == open(os.path.join(ROOT, "public/herald.js"), "rb").read()
    unit = (root / "share/doc/herald/herald.service").read_text()
    assert "ExecStart=/opt/herald/bin/herald serve --config /etc/herald/config.json" in unit and "/usr/local" not in unit
    assert "NoNewPrivileges=yes" in unit and "ProtectSystem=strict" in unit
    assert (root / "share/doc/herald/alerts.yml").exists()
    version = subprocess.run([str(root / "bin/herald"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.strip()
