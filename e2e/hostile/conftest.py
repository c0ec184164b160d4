"""The hostile suite: every test gets a fresh gateway and, whatever it did to it, ends by
asserting that the gateway still answers /healthz, is not spinning, and exits with 0 on
SIGTERM within 5 s."""
import os
import tempfile

import pytest

from support import Herald, default_config


@pytest.fixture
def make_herald():
    started = []

    def make(max_files=None, ca=None, **overrides):
        herald = Herald(default_config(**overrides), max_files=max_files, ca=ca)
        started.append(herald)
        return herald

    yield make
    try:
        for herald in started:
            if herald.process.poll() is None:
                herald.assert_serving_and_idle()
            assert herald.terminate() == 0, "herald did not exit cleanly on SIGTERM:\n" + herald.log_text()[-2000:]
    finally:
        for herald in started:
            herald.close()


@pytest.fixture
def herald(make_herald):
    return make_herald()


@pytest.fixture
def public_dir():
    """A public directory with a page, a subdirectory, a file larger than many socket
    writes, and links that lead outside it."""
    with tempfile.TemporaryDirectory() as root:
        public = os.path.join(root, "public")
        os.makedirs(os.path.join(public, "sub"))
        with open(os.path.join(public, "index.html"), "w") as f:
            f.write("<h1>herald</h1>")
        with open(os.path.join(public, "sub", "index.html"), "w") as f:
            f.write("<h1>sub</h1>")
        with open(os.path.join(public, "big.bin"), "wb") as f:
            f.write(bytes(range(256)) * (3 * 4096 + 1) + b"odd tail")
        os.symlink("/etc/passwd", os.path.join(public, "leak"))
        os.symlink("/etc", os.path.join(public, "outside"))
        os.symlink("index.html", os.path.join(public, "alias.html"))
        yield public
