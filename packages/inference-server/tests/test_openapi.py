"""The OpenAPI document matches the implementation: schemathesis, all checks, fixed seed.

Every operation is exercised in-process (WSGI) with examples, coverage and fuzzing phases:
positive cases must be accepted, negative ones rejected with a documented 4xx, responses must
match their schemas, content types and headers, and undocumented methods must get 405.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from inference_server import create_app

SEED = 20261127
CALLS: list[str] = []
MAX_EXAMPLES = 30

APP = create_app({"LOG_REQUESTS": False})
# 413 is the documented answer to a batch over the row limit, whatever else is wrong in it.
NEGATIVE_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428"]
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        "checks": {"negative_data_rejection": {"expected-statuses": NEGATIVE_STATUSES}},
    }
)
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP, config=CONFIG)


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


def test_document_is_openapi_31() -> None:
    """The document is OpenAPI 3.1 and lists every route of the app."""
    document = APP.test_client().get("/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    documented = set(document["paths"])
    routed = {rule.rule for rule in APP.url_map.iter_rules() if rule.endpoint != "static"}
    assert documented == routed


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_api_conforms(case: schemathesis.Case) -> None:
    """Every generated request gets a documented, schema-valid answer (all checks)."""
    meta = case.meta
    if case.operation.path.endswith("/infer") and meta and meta.generation.mode.is_positive:
        align_shape(case.body)
    CALLS.append(case.operation.label)
    case.call_and_validate()


def test_enough_examples_ran() -> None:
    """The suite above sent at least 300 generated requests, covering every operation."""
    if not CALLS:
        pytest.skip("run the whole module to count examples")
    print(f"schemathesis sent {len(CALLS)} requests")
    assert len(CALLS) >= 300, len(CALLS)
    assert len(set(CALLS)) == len(list(schema.get_all_operations()))
