"""The wire protocols: each module owns all its routes, its OpenAPI fragment and its auth.

A protocol module has ``routes(plane) -> list[Route]`` (metadata GETs and inference POSTs,
each route saying whether it needs a bearer token) and ``OPENAPI``, the name of its OpenAPI
fragment next to it. Adding a protocol is one new module and one line in :data:`PROTOCOLS`.
"""

from types import ModuleType

from inference_server.protocols import kserve_v1, open_inference, seed
from inference_server.protocols.base import Call, Prediction, PredictionProtocol
from inference_server.protocols.kserve_v1 import KServeV1Protocol
from inference_server.protocols.open_inference import OpenInferenceProtocol
from inference_server.protocols.seed import SeedProtocol

#: Every protocol the server speaks, in the order their routes are registered.
PROTOCOLS: tuple[ModuleType, ...] = (seed, kserve_v1, open_inference)

__all__ = [
    "PROTOCOLS",
    "Call",
    "KServeV1Protocol",
    "OpenInferenceProtocol",
    "Prediction",
    "PredictionProtocol",
    "SeedProtocol",
]
