"""Flask-free wire protocols of the prediction routes: body bytes in, answer bytes out."""

from inference_server.protocols.base import (
    Answer,
    Call,
    EnvironHeaders,
    Headers,
    Prediction,
    PredictionProtocol,
    json_answer,
)
from inference_server.protocols.kserve_v1 import KServeV1Protocol
from inference_server.protocols.open_inference import OpenInferenceProtocol
from inference_server.protocols.seed import SeedProtocol

__all__ = [
    "Answer",
    "Call",
    "EnvironHeaders",
    "Headers",
    "KServeV1Protocol",
    "OpenInferenceProtocol",
    "Prediction",
    "PredictionProtocol",
    "SeedProtocol",
    "json_answer",
]
