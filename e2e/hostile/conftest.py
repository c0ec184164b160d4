"""The hostile suite: every test gets a fresh gateway and, whatever it did to it, ends by
asserting that the gateway still answers /healthz, is not spinning, and exits with 0 on
SIGTERM within 5 s."""
import pytest

from support import Herald, default_config


@pytest.fixture
def make_herald():
    started = []

    def make(**overrides):
        herald = Herald(default_config(**overrides))
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
