"""docs/openapi.yaml against the running gateway, with schemathesis: seeded, bounded
examples for every operation; no answer may be a 5xx, hang, or differ from the spec
(status, content type, headers, body schema).

Requests carry a valid publisher key (the admin key on the admin endpoints); schemathesis
adds its own requests with missing and invalid credentials, which must be refused. The
streaming endpoints (GET /v1/sse, GET /v1/ws) are left out: an accepted stream never
ends, so a generated request would only time out; their refusals are covered by
e2e/hostile and the Swift tests.

Two checks are narrowed where JSON Schema cannot say what the gateway checks:
- a body that fits the schema may still be refused where Herald's own language decides
  (an event pattern's operators and limits, an event's identity fields): those
  operations skip "schema-valid data must be accepted", and so does the presence group,
  whose limit is 128 bytes where JSON Schema's maxLength counts characters (a name of
  100 non-ASCII characters fits the schema and is refused);
- the catch-all paths (`/{path}`, `/v1/{rest}`) exclude the names of real endpoints with
  `not: enum`, so a "schema-violating" value there is a real endpoint: they get
  schema-valid values only.
"""
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from support import ADMIN_KEY, PUBLISHER_KEY, ROOT, Herald, default_config

ADMIN = r"^/v1/(clients|clients/\{id\}|routes/explain)$"
STREAMS = r"^/v1/(sse|ws)$"
CATCH_ALL = r"^/(\{path\}|v1/\{rest\})$"
# Refusals here follow Herald's event and pattern rules, which no JSON Schema states.
LANGUAGE_CHECKED = {"/v1/events", "/v1/patterns/test", "/v1/routes/explain"}
# Limits in bytes, which JSON Schema's maxLength (characters) cannot state.
BYTE_LIMITED = {"/v1/presence/{group}"}


@pytest.fixture(scope="module")
def herald():
    gateway = Herald(default_config(publicDirectory=os.path.join(ROOT, "public")))
    yield gateway
    try:
        gateway.assert_serving_and_idle()
        assert gateway.terminate() == 0
    finally:
        gateway.close()


# A refused request may also be 411, 413, 414 or 431: what the gateway answers for a
# missing length, a batch or body too large, a long target or large headers.
CONFIG = {"checks": {"negative_data_rejection": {"expected-statuses": [
    "400", "401", "403", "404", "405", "406", "409", "411", "413", "414", "415", "422", "428", "429", "431", "5xx"]}}}


def load(herald, key, modes=None):
    loaded = schemathesis.openapi.from_path(os.path.join(ROOT, "docs", "openapi.yaml"), config=schemathesis.Config.from_dict(CONFIG))
    loaded.config.update(base_url=herald.base, request_timeout=5, headers={"Authorization": f"Bearer {key}"})
    if modes:
        loaded.config.generation.update(modes=modes)
    return loaded


@pytest.fixture(scope="module")
def publisher_schema(herald):
    return load(herald, PUBLISHER_KEY)


@pytest.fixture(scope="module")
def admin_schema(herald):
    return load(herald, ADMIN_KEY)


@pytest.fixture(scope="module")
def catch_all_schema(herald):
    return load(herald, PUBLISHER_KEY, modes=[GenerationMode.POSITIVE])


SETTINGS = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])

public = (schemathesis.pytest.from_fixture("publisher_schema")
          .exclude(path_regex=STREAMS).exclude(path_regex=ADMIN).exclude(path_regex=CATCH_ALL))
admin = schemathesis.pytest.from_fixture("admin_schema").include(path_regex=ADMIN)
catch_all = schemathesis.pytest.from_fixture("catch_all_schema").include(path_regex=CATCH_ALL)


def call_and_validate(case):
    excluded = [positive_data_acceptance] if case.path in LANGUAGE_CHECKED | BYTE_LIMITED else []
    case.call_and_validate(excluded_checks=excluded)


@public.parametrize()
@SETTINGS
def test_the_api_answers_as_specified(case):
    call_and_validate(case)


@admin.parametrize()
@SETTINGS
def test_the_admin_api_answers_as_specified(case):
    call_and_validate(case)


@catch_all.parametrize()
@SETTINGS
def test_unknown_paths_answer_as_specified(case):
    call_and_validate(case)
