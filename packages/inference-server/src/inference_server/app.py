"""The application factory: settings, model, the protocols' routes and the one pipeline."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from functools import partial
from typing import Any

from flask import Flask
from prometheus_client import CONTENT_TYPE_LATEST

import iris_model
from inference_server.dataplane import Dataplane
from inference_server.errors import api_error_for
from inference_server.http.auth import BearerAuth, TokenFile
from inference_server.http.bodies import BodyReader
from inference_server.http.lifecycle import LIFECYCLE_KEY, Lifecycle
from inference_server.http.logs import AccessLog
from inference_server.http.pipeline import JSON_HEADERS, Answer, Pipeline, Route
from inference_server.http.strictjson import dumps
from inference_server.metrics import METRICS_KEY, Metrics
from inference_server.openapi import build_openapi
from inference_server.protocols import PROTOCOLS
from inference_server.settings import SETTINGS_KEY, Settings, file_tokens, load_settings

logger = logging.getLogger("inference_server")

#: Key of the served ``IrisModel`` in ``app.extensions``.
MODEL_KEY = "iris_model"
#: Key of the :class:`~inference_server.http.pipeline.Pipeline` in ``app.extensions``.
PIPELINE_KEY = "inference_server.pipeline"


def load_model(settings: Settings) -> iris_model.IrisModel:
    """Load the configured model, or train the default one, and run its golden self-test.

    Raises:
        iris_model.ModelLoadError: The configured model fails verification (sha256, versions,
            golden pairs); the server must not start.
    """
    if settings.model_dir is None:
        if settings.model_digest is not None:
            logger.critical("INFERENCE_MODEL_DIGEST is set but INFERENCE_MODEL_DIR is not")
            raise iris_model.ModelLoadError("a pinned model digest needs a model directory")
        model = iris_model.train(seed=settings.train_seed).model
        model.max_rows = settings.max_rows
        model.self_test()  # load() runs it itself for saved models
        logger.warning(
            "INFERENCE_MODEL_DIR is not set: trained the default model at start-up (seed=%d)",
            settings.train_seed,
        )
        return model
    try:
        # Verifies permissions, digests (before unpickling), versions, an allow-listed
        # unpickling and the golden pairs.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", iris_model.ModelVersionWarning)
            model = iris_model.load(
                settings.model_dir,
                max_rows=settings.max_rows,
                digest=settings.model_digest,
                allow_version_mismatch=settings.allow_version_mismatch,
            )
        for warning in caught:
            logger.warning("%s", warning.message)
    except iris_model.ModelLoadError as error:
        logger.critical("refusing to serve the model in %s: %s", settings.model_dir, error)
        raise
    logger.info(
        "loaded model %s from %s (model file sha256 %s; digest %s)",
        model.digest,
        settings.model_dir,
        model.sha256,
        "pinned" if settings.model_digest else "not pinned",
    )
    if settings.model_digest is None:
        # Without a pin, any valid model swapped into the directory is served without a word.
        logger.warning(
            "INFERENCE_MODEL_DIGEST is not set: any valid model in %s is served; pin %s",
            settings.model_dir,
            model.digest,
        )
    return model


def server_routes(plane: Dataplane) -> list[Route]:
    """The server's own routes: liveness, readiness and the Prometheus exposition."""
    live = Answer(200, dumps({"status": "ok"}))
    ready = dumps({"status": "ready"})
    metrics_headers = (("Content-Type", CONTENT_TYPE_LATEST),)
    return [
        Route("/healthz", "GET", lambda _: live),
        Route("/readyz", "GET", lambda _: plane.when_ready(ready, "not ready: {reason}")),
        Route(
            "/metrics",
            "GET",
            lambda _: Answer(200, plane.metrics.exposition_text(), metrics_headers),
        ),
    ]


def create_app(
    config: Mapping[str, Any] | None = None, *, model: iris_model.IrisModel | None = None
) -> Flask:
    """Create the inference app.

    Configuration: :class:`~inference_server.settings.Settings` defaults, then the
    environment, then ``config`` (keys like ``MAX_ROWS``). The model is loaded (or trained)
    and self-tested once, here, unless ``model`` is given (tests, embedding): the caller
    vouches for that one, and its ``max_rows`` is set from the settings.

    Flask hosts the app (the factory, ``app.extensions``, the test client); every request
    goes through the one :class:`~inference_server.http.pipeline.Pipeline`, which is its
    ``wsgi_app``.

    Raises:
        inference_server.settings.ConfigError: Invalid configuration.
        iris_model.ModelLoadError: The configured model cannot be served.
    """
    settings = load_settings(os.environ, config)
    path = settings.auth_tokens_file
    # Watched from here on: a rotated Secret takes effect without a restart (see auth).
    token_file = TokenFile.watch(path, partial(file_tokens, path)) if path is not None else None
    tokens = settings.auth_tokens + (token_file.tokens if token_file is not None else ())
    # Never the tokens themselves: how many, so an empty Secret is visible in the log.
    if tokens:
        logger.info("auth on: prediction routes need one of %d bearer token(s)", len(tokens))
    else:
        logger.warning("auth off: prediction routes need no token (INFERENCE_AUTH_TOKENS unset)")
    if model is None:
        model = load_model(settings)
    else:
        model.max_rows = settings.max_rows

    lifecycle = Lifecycle()
    metrics = Metrics(model, os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None)
    plane = Dataplane(model, settings.model_name, lifecycle, metrics)
    routes = server_routes(plane)
    for protocol in PROTOCOLS:
        routes += protocol.routes(plane)
    openapi = dumps(build_openapi(model, settings, PROTOCOLS, routes))
    routes.append(Route("/openapi.json", "GET", lambda _: Answer(200, openapi, JSON_HEADERS)))
    pipeline = Pipeline(
        routes,
        body_reader=BodyReader(
            settings.body_limit(model.n_features),
            idle_timeout=settings.body_idle_timeout,
            total_timeout=settings.body_timeout,
            in_flight_limit=settings.body_bytes_in_flight,
        ),
        observer=metrics,
        access_log=AccessLog() if settings.log_requests else None,
        auth=BearerAuth(settings.auth_tokens, token_file).check if tokens else None,
        error_for=api_error_for,
    )

    app = Flask("inference_server")
    app.extensions[SETTINGS_KEY] = settings
    app.extensions[LIFECYCLE_KEY] = lifecycle
    app.extensions[MODEL_KEY] = model
    app.extensions[METRICS_KEY] = metrics
    app.extensions[PIPELINE_KEY] = pipeline
    app.wsgi_app = pipeline  # type: ignore[method-assign]
    lifecycle.mark_ready()
    return app
