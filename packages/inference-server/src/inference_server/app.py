"""The application factory: settings, model, routes, errors, logging and metrics."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

import iris_model
from inference_server import health, seed, v1, v2
from inference_server.config import DEFAULTS, SETTINGS_KEY, Settings, load_settings
from inference_server.errors import register_error_handlers
from inference_server.fastpath import FastPath
from inference_server.lifecycle import LIFECYCLE_KEY, Lifecycle
from inference_server.logs import init_request_logging
from inference_server.metrics import init_metrics
from inference_server.openapi import init_openapi
from inference_server.predictions import MODEL_KEY

logger = logging.getLogger("inference_server")


def load_model(settings: Settings) -> iris_model.IrisModel:
    """Load the configured model, or train the default one, and run its golden self-test.

    Raises:
        iris_model.ModelLoadError: The configured model fails verification (sha256, versions,
            golden pairs); the server must not start.
    """
    if settings.model_dir is None:
        model = iris_model.train(seed=settings.train_seed).model
        model.max_rows = settings.max_rows
        model.self_test()  # load() runs it itself for saved models
        logger.warning(
            "INFERENCE_MODEL_DIR is not set: trained the default model at start-up (seed=%d)",
            settings.train_seed,
        )
        return model
    try:
        # Verifies sha256 (before unpickling), versions and the golden pairs.
        model = iris_model.load(settings.model_dir, max_rows=settings.max_rows)
    except iris_model.ModelLoadError as error:
        logger.critical("refusing to serve the model in %s: %s", settings.model_dir, error)
        raise
    logger.info("loaded model %s from %s", model.sha256, settings.model_dir)
    return model


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the inference app.

    Configuration: :data:`~inference_server.config.DEFAULTS`, then ``INFERENCE_*``
    environment variables, then ``config``. The model is loaded (or trained) once, here.

    Raises:
        inference_server.config.ConfigError: Invalid configuration.
        iris_model.ModelLoadError: The configured model cannot be served.
    """
    app = Flask("inference_server")
    # OPTIONS would answer every route with an empty 200: 405 JSON instead, like other methods.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("INFERENCE")
    if config:
        app.config.update(config)
    settings = load_settings(app.config)
    # One byte of headroom: jsonio.read_body reads limit + 1 bytes to tell "exactly at the
    # limit" from "over it" on chunked bodies; Werkzeug's own cap would refuse that read.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length + 1

    lifecycle = Lifecycle()
    model = load_model(settings)
    app.extensions[SETTINGS_KEY] = settings
    app.extensions[LIFECYCLE_KEY] = lifecycle
    app.extensions[MODEL_KEY] = model

    register_error_handlers(app)
    access_log = init_request_logging(app, log_requests=settings.log_requests)
    metrics = init_metrics(app, model)
    init_openapi(app, model, settings)
    for module in (seed, health, v1, v2):
        app.register_blueprint(module.blueprint)
    if settings.fast_path and not settings.auth_enabled:  # Flask checks bearer tokens
        app.wsgi_app = FastPath(  # type: ignore[method-assign]
            app.wsgi_app,
            model=model,
            metrics=metrics,
            max_content_length=settings.max_content_length,
            access_log=access_log,
        )
    lifecycle.mark_ready()
    return app
