"""Framework ceiling: the smallest Flask app that answers the benchmark's routes.

It returns a constant JSON document without reading the body, so its throughput under
the shipped Gunicorn configuration module is the most our server could reach there:
everything the real server does per request (parse, validate, predict, metrics,
logging) shows up as the gap to this app.
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)

# The shipped Gunicorn config's post_worker_init hook wires SIGTERM to the app's readiness
# state; give it the real (tiny, dependency-free) object so the hooks run unchanged.
try:
    from inference_server.http.lifecycle import LIFECYCLE_KEY, Lifecycle
except ImportError:  # pragma: no cover - the server package is not installed
    pass
else:
    app.extensions[LIFECYCLE_KEY] = Lifecycle()

PREDICTION = {"prediction": 0}


@app.get("/")
def home() -> str:
    """Liveness, as the seed answered it."""
    return "OK"


@app.post("/predict")
@app.post("/v2/models/iris/infer")
def constant() -> dict[str, int]:
    """A constant JSON answer: Flask routing plus JSON response, nothing else."""
    return PREDICTION
