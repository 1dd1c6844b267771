"""Seed-style baseline: the original service's stack, kept as the "before" reference.

A plain Flask app that loads a scikit-learn LogisticRegression and calls `predict` per
request on `np.array(features).reshape(1, -1)`, served by `gunicorn --workers 2` with
Gunicorn's defaults (sync workers). The `instances` branch is the same seed-style code
extended to a batch, so the 1,000-row workload has a baseline too.
"""

from __future__ import annotations

import os
from typing import Any

import joblib
import numpy as np
from flask import Flask, jsonify, request

app = Flask(__name__)
model: Any = joblib.load(os.environ.get("BENCH_SEED_MODEL", "model.pkl"))


@app.route("/")
def home() -> str:
    """Liveness, as in the seed."""
    return "OK"


@app.route("/predict", methods=["POST"])
def predict() -> Any:
    """The seed's handler: JSON in, sklearn predict, JSON out."""
    data = request.get_json()
    if "instances" in data:
        predictions = model.predict(np.array(data["instances"]))
        return jsonify({"predictions": predictions.tolist()})
    features = np.array(data["features"]).reshape(1, -1)
    prediction = model.predict(features)
    return jsonify({"prediction": int(prediction[0])})
