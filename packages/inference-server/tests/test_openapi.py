"""The OpenAPI document matches the implementation: schemathesis, all checks, fixed seed.

Every operation is exercised in-process (WSGI) with examples, coverage and fuzzing phases:
positive cases must be accepted, negative ones rejected with a documented 4xx, responses must
match their schemas, content types and headers, and undocumented methods must get 405. The
app is built by a fixture (nothing trains at import), and the number of requests sent is
checked after the module's last test, over whichever operations ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from inference_server.app import PIPELINE_KEY

SEED = 20261127
MAX_EXAMPLES = 30
#: Requests per operation at least (>= 300 over the 15 operations).
MIN_CALLS_PER_OPERATION = 20
# 413 is the documented answer to a batch over the row limit, whatever else is wrong in it.
NEGATIVE_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428"]
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        "checks": {"negative_data_rejection": {"expected-statuses": NEGATIVE_STATUSES}},
    }
)


@pytest.fixture(scope="module")
def api_schema(app: Flask) -> Any:
    """The document the app serves, loaded in-process."""
    return schemathesis.openapi.from_wsgi("/openapi.json", app, config=CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def calls() -> Iterator[list[str]]:
    """Operation label of every request sent; after the module: enough for each one."""
    sent: list[str] = []
    yield sent
    operations = set(sent)
    assert len(sent) >= MIN_CALLS_PER_OPERATION * len(operations), (len(sent), operations)
    print(f"schemathesis sent {len(sent)} requests over {len(operations)} operations")


def align_shape(body: Any) -> None:
    """Make a tensor's row count agree with its data, the one rule JSON Schema cannot state.

    Applied to positive (schema-valid) cases only, so negative cases stay negative.
    """
    if not isinstance(body, dict):
        return
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        return
    tensor = inputs[0]
    data = tensor.get("data")
    if not isinstance(data, list) or not data:
        return
    if isinstance(data[0], list):
        tensor["shape"] = [len(data), 4]
    elif len(data) >= 4:
        tensor["data"] = data[: len(data) - len(data) % 4]
        tensor["shape"] = [len(tensor["data"]) // 4, 4]


def test_document_is_openapi_31(app: Flask) -> None:
    """The document is OpenAPI 3.1 and documents exactly the routes served, method by method."""
    document = app.test_client().get("/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    routed = {(route.path, route.method) for route in app.extensions[PIPELINE_KEY].routes}
    assert documented == routed


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_api_conforms(case: schemathesis.Case, calls: list[str]) -> None:
    """Every generated request gets a documented, schema-valid answer (all checks)."""
    meta = case.meta
    if case.operation.path.endswith("/infer") and meta and meta.generation.mode.is_positive:
        align_shape(case.body)
    calls.append(case.operation.label)
    case.call_and_validate()
