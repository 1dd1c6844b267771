"""The requests the bench sends: one route, one body and the rows it carries, per workload."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

BATCH_ROWS = 1000
SINGLE_ROW = [5.1, 3.5, 1.4, 0.2]
# The bearer token of the `server_auth` instance (127.0.0.1 only, for the auth-on row).
AUTH_TOKEN = "bench-token"  # noqa: S105 - a local bench server's token, not a secret

WORKLOAD_LABELS = {
    "predict": "/predict, 1 row",
    "v1": "KServe V1 :predict, 1 row",
    "v2": "V2 infer, 1 row",
    "batch": f"/predict, {BATCH_ROWS:,} rows",
    "predict_auth": "/predict, 1 row, bearer auth on",
    "v2bin": "V2 infer, 1 row, binary tensors",
    "v2bin_batch": f"V2 infer, {BATCH_ROWS:,} rows, binary tensors",
    "v2_batch": f"V2 infer, {BATCH_ROWS:,} rows, JSON",
}
# The extension's header: length of the JSON part before the raw tensor bytes.
BINARY_HEADER = "Inference-Header-Content-Length"


@dataclass(frozen=True)
class Workload:
    """One kind of request: a route, a body, its headers and the rows it carries."""

    key: str
    path: str
    rows: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


def iris_rows(count: int) -> list[list[float]]:
    """Real iris measurements (shipped with scikit-learn), cycled to `count` rows."""
    from sklearn.datasets import load_iris  # noqa: PLC0415 - heavy, only when building bodies

    data = load_iris().data.tolist()
    return [[float(value) for value in data[(i * 37) % len(data)]] for i in range(count)]


def binary_infer(rows: list[list[float]], key: str) -> Workload:
    """A V2 infer as tritonclient.http sends it by default: FP32 bytes in, binary outputs."""
    import numpy as np  # noqa: PLC0415 - with sklearn, only when building bodies

    raw = np.asarray(rows, dtype="<f4").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [len(rows), len(rows[0])],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    headers = {"Content-Type": "application/octet-stream", BINARY_HEADER: str(len(header))}
    return Workload(key, "/v2/models/iris/infer", len(rows), header + raw, headers)


def make_workloads() -> dict[str, Workload]:
    """Every workload of the suite, with its body."""
    v2 = {
        "id": "bench",
        "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": SINGLE_ROW}],
    }
    # A JSON batch the simdjson path does not take: strict JSON proof and number_rows do the work.
    flat = [value for row in iris_rows(BATCH_ROWS) for value in row]
    v2_batch = {
        "inputs": [{"name": "input-0", "shape": [BATCH_ROWS, 4], "datatype": "FP64", "data": flat}],
    }
    single = json.dumps({"features": SINGLE_ROW}).encode()
    workloads = [
        Workload("predict", "/predict", 1, single),
        Workload(
            "v1", "/v1/models/iris:predict", 1, json.dumps({"instances": [SINGLE_ROW]}).encode()
        ),
        Workload("v2", "/v2/models/iris/infer", 1, json.dumps(v2).encode()),
        Workload(
            "batch",
            "/predict",
            BATCH_ROWS,
            json.dumps({"instances": iris_rows(BATCH_ROWS)}).encode(),
        ),
        Workload(
            "predict_auth",
            "/predict",
            1,
            single,
            {"Content-Type": "application/json", "Authorization": f"Bearer {AUTH_TOKEN}"},
        ),
        Workload("v2_batch", "/v2/models/iris/infer", BATCH_ROWS, json.dumps(v2_batch).encode()),
        binary_infer([SINGLE_ROW], "v2bin"),
        binary_infer(iris_rows(BATCH_ROWS), "v2bin_batch"),
    ]
    return {workload.key: workload for workload in workloads}
