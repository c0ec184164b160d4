"""nginx + nchan on loopback, as a side-by-side benchmark peer for Herald.

    from nchan import Nchan
    with Nchan(workers=2) as peer:
        # POST <peer.base>/pub/<channel>  body = the message; 201 Created if a subscriber
        #                                 exists, else 202 Accepted (cheap, nothing to deliver)
        # GET  <peer.base>/sub/<channel>  WebSocket upgrade, or Accept: text/event-stream (SSE)
        # GET  <peer.base>/nchan_status   nchan_stub_status counters (shared memory, channels, ...)
        print(peer.port, peer.pids(), peer.rss_kb())

On the wire (nchan 1.3.6): a WebSocket subscriber gets one unmasked frame per message whose
payload is the POST body verbatim: opcode text unless the POST's Content-Type is
application/octet-stream (then binary); nothing on connect, no pings. An SSE subscriber gets
headers without Content-Length or Transfer-Encoding (the stream ends at close), first ": hi\n\n",
then "id: <time>:<n>\ndata: <body>\n\n" per message (a body line break starts a new "data: "
line). Channel names are \w+. A GET /sub/x with neither is 403. Shutdown sends WS close 1001
"410 Gone" and SSE ":410: 410 Gone\n\n".

Stdlib only. Needs Debian's `nginx` (nginx-light) and `libnginx-mod-nchan`. Everything nginx writes
(pid, error log, temp dirs, config) lives in a fresh temp dir that close() removes, except nchan's
fixed temp dir (NCHAN_TEMP_PATH). Works as root (workers then run as www-data, like Debian's stock
nginx) and as non-root (once that dir exists).
"""
import atexit
import glob
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# nchan's large-message temp dir is fixed at nginx's compiled-in client_body_temp_path (nchan's
# create_main_conf presets it, so `nchan_message_temp_path` always fails as "duplicate"); nginx
# creates it at startup (as root) and mkdir must succeed or find it existing (as non-root).
NCHAN_TEMP_PATH = "/var/lib/nginx/body"


def find_module():
    """The nchan .so: Debian installs it under /usr/lib/nginx/modules (see modules-available)."""
    candidates = ["/usr/lib/nginx/modules/ngx_nchan_module.so"]
    for conf in glob.glob("/usr/share/nginx/modules-available/*nchan*.conf"):
        with open(conf) as f:
            for line in f:
                parts = line.strip().rstrip(";").split()
                if len(parts) == 2 and parts[0] == "load_module":
                    path = parts[1]
                    if not os.path.isabs(path):  # relative to nginx's prefix, /usr/share/nginx
                        path = os.path.join("/usr/share/nginx", path)
                    candidates.append(os.path.realpath(path))
    candidates += glob.glob("/usr/lib*/nginx/modules/ngx_nchan_module.so")
    for path in candidates:
        if os.path.exists(path):
            return path
    raise FileNotFoundError("ngx_nchan_module.so not found; apt-get install libnginx-mod-nchan")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


CONFIG = """\
load_module {module};
{user}worker_processes {workers};
worker_rlimit_nofile 20000;
pid {dir}/nginx.pid;
lock_file {dir}/nginx.lock;
error_log {dir}/error.log {log_level};
master_process on;

events {{
    use epoll;
    worker_connections 20000;
}}

http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    # Publishers keep one connection for the whole run; bodies up to 1 MiB stay in memory.
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    client_max_body_size 1m;
    client_body_buffer_size 1m;
    tcp_nodelay on;

    # nchan's shared-memory store (no Redis); 64 MiB is ample: a channel with one ~180-byte message
    # takes ~0.56 KB of it, an idle subscriber's channel ~0.06 KB.
    nchan_shared_memory_size 64m;

    server {{
        # reuseport: one listen socket per worker, so the kernel spreads connections evenly
        # (without it 2,000 connections split about 1283/723 between two workers).
        listen 127.0.0.1:{port} backlog=4096 reuseport;
        server_name _;

        # Live delivery only, bounded memory: at most one buffered message per channel, expired
        # after 10 s, and a new subscriber starts at the next message (the default, oldest, would
        # replay the buffered one to it). Buffer length 0 also delivered every message in tests,
        # but nchan's author warns it can miss messages under fast publishing; 1 is the safe floor.
        # (An SSE client sending Last-Event-ID could still fetch the one buffered message.)
        nchan_message_buffer_length 1;
        nchan_message_timeout 10s;
        nchan_subscriber_first_message newest;
        nchan_subscriber_timeout 0;           # idle subscribers are never dropped
        nchan_websocket_ping_interval 0;      # no server pings: idle connections cost nothing
        nchan_eventsource_ping_interval 0;
        nchan_access_control_allow_origin "*";

        location ~ ^/pub/(\\w+)$ {{
            nchan_publisher http;
            nchan_channel_id $1;
        }}
        location ~ ^/sub/(\\w+)$ {{
            nchan_subscriber websocket eventsource;
            nchan_channel_id $1;
        }}
        location = /nchan_status {{
            nchan_stub_status;
        }}
        location = /healthz {{
            return 200 "ok\\n";
        }}
        location / {{
            return 404;
        }}
    }}
}}
"""


class Nchan:
    def __init__(self, workers=2, port=0, log_level="warn", start_timeout=10.0):
        user, module = _user_line(), find_module()  # raise before anything is created
        self.workers = workers
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="herald-nchan-")
        self.process = None
        self._log = None
        self._known_pids = set()
        self.conf = os.path.join(self.dir, "nginx.conf")
        try:
            if os.geteuid() == 0:
                # Root: workers drop to www-data, which must be able to reach the temp dirs nginx
                # creates (and chowns) inside this directory.
                os.chmod(self.dir, 0o755)
            with open(self.conf, "w") as f:
                f.write(CONFIG.format(module=module, workers=workers, dir=self.dir, port=self.port,
                                      log_level=log_level, user=user))
            self._log = open(os.path.join(self.dir, "stderr.log"), "wb")
            self.process = subprocess.Popen(
                [NGINX, "-p", self.dir + "/", "-c", self.conf, "-e", os.path.join(self.dir, "error.log"),
                 "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent)
            atexit.register(self.close)
            self._wait_ready(start_timeout)
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                # The port answers before nchan's store is ready in every worker: right after
                # start a publish sometimes waits ~1 s. Ready = a round of publishes on fresh
                # connections (spread over the workers by reuseport) each answered within 0.25 s.
                if len(self.pids()) >= 1 + self.workers and all(
                        self._probe_publish() for _ in range(4 * self.workers)):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"nginx/nchan not ready on port {self.port}:\n{self.log_text()}")

    def _probe_publish(self, timeout=0.25):
        request = (b"POST /pub/herald_ready HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n"
                   b"Connection: close\r\n\r\nok")
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(request)
            reply = b""
            while b"\r\n" not in reply:
                data = sock.recv(4096)
                if not data:
                    break
                reply += data
        return reply.startswith((b"HTTP/1.1 201", b"HTTP/1.1 202"))

    def log_text(self):
        text = ""
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        return text

    def pids(self):
        """The master's pid followed by its children's (the workers and, briefly, cache helpers)."""
        if self.process is None or self.process.poll() is not None:
            return []
        master = self.process.pid
        children = []
        try:
            for task in os.listdir(f"/proc/{master}/task"):
                with open(f"/proc/{master}/task/{task}/children") as f:
                    children += [int(p) for p in f.read().split()]
        except OSError:
            pass
        pids = [master] + sorted(set(children))
        self._known_pids.update(pids)
        return pids

    def rss_kb(self):
        """Sum of VmRSS over master + workers (shared-memory pages touched by several count twice)."""
        return sum(_status_kb(pid, "VmRSS:") for pid in self.pids())

    def pss_kb(self):
        """Sum of proportional set size (Pss, shared pages split between processes)."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total

    def close(self, timeout=5.0):
        if self.process is not None:
            self.pids()  # remember the workers before the master goes
            if self.process.poll() is None:
                # SIGTERM is nginx's fast shutdown; SIGQUIT (graceful) would wait for every open
                # subscriber connection to finish.
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout)
            # Workers orphaned by a killed master: end them by their recorded pid only.
            deadline = time.time() + timeout
            for pid in self._known_pids - {self.process.pid}:
                while _is_nginx(pid) and time.time() < deadline:
                    time.sleep(0.05)
                if _is_nginx(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            self.process = None
            atexit.unregister(self.close)
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _die_with_parent():
    """In the child before exec: SIGTERM nginx's master if this Python process dies (e.g. killed by a
    timeout), so no orphaned nginx keeps the port; prctl(PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except Exception:
        pass


def _user_line():
    """As root, run workers as www-data like Debian's stock nginx (see NCHAN_TEMP_PATH); else nothing."""
    if os.geteuid() != 0:
        if not os.path.isdir(NCHAN_TEMP_PATH):
            raise RuntimeError(f"nchan needs {NCHAN_TEMP_PATH} to exist when nginx runs as non-root; "
                               f"create it once as root (e.g. start Nchan() as root, or: install -d {NCHAN_TEMP_PATH})")
        return ""
    try:
        pwd.getpwnam("www-data")
        grp.getgrnam("www-data")
        return "user www-data www-data;\n"
    except KeyError:
        return ""


def _status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _is_nginx(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    name, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2]
    return name == "nginx" and state != "Z"


if __name__ == "__main__":
    with Nchan() as peer:
        print(peer.base, peer.pids(), f"{peer.rss_kb()} KB RSS")
