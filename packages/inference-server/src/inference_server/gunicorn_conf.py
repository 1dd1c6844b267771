"""Gunicorn configuration: ``-c python:inference_server.gunicorn_conf``.

Every value comes from :class:`inference_server.settings.Settings` (its ``gunicorn`` scope:
variables, defaults and checks are defined there and listed in the package README); an
invalid value stops Gunicorn with a message naming the variable. The machinery (hooks,
logging, the worker) is :mod:`inference_server.http.gunicorn`. The Kubernetes manifests'
termination arithmetic assumes graceful_timeout = 20 s.
"""

from __future__ import annotations

import os
from pathlib import Path

# One BLAS/OpenMP thread per worker: requests are small and the workers are the parallelism;
# more threads only oversubscribe the cores. Set before NumPy is first imported (the settings
# import the library); the image sets them too, and an explicit value from the environment wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from inference_server.settings import ConfigError, load_settings

try:
    _settings = load_settings(os.environ)
except ConfigError as _error:
    raise SystemExit(str(_error)) from None

from inference_server import prefork
from inference_server.http import gunicorn as machinery
from inference_server.http.gunicorn import (  # noqa: F401 - Gunicorn reads them by name
    NoAccessLogger,
    child_exit,
    on_starting,
    post_worker_init,
    pre_request,
)

prefork.metrics_directory(_settings)  # emptied by on_starting
prefork.share_imports()
# In the master: forked workers inherit the allocator's settings, the JSON error pages and the
# strict chunked reader.
prefork.map_body_buffers()
machinery.install_json_errors(log_requests=_settings.log_requests)

bind = [_settings.bind]
workers = _settings.workers
# Gunicorn >= 27 with reuse_port: each worker opens its own listening socket (SO_REUSEPORT)
# and the kernel hashes new connections across them. On one shared socket the workers race to
# accept, and a burst of keep-alive connections (an ingress, a load balancer, wrk) could land
# on one worker and leave the other idle for the connections' lifetime (bench: spread rows).
reuse_port = _settings.reuse_port
# gevent, chosen by measurement (see the package README): sync workers cannot keep
# connections alive; sync and gthread workers block a thread per client still sending its
# headers, while gevent keeps answering /healthz next to hundreds of them.
# "gevent" runs Gunicorn's gevent worker with one change (inference_server.http.worker): it
# yields after every answer, so one fast keep-alive client cannot starve the worker's others.
worker_class = {"gevent": machinery.FAIR_GEVENT_WORKER}.get(
    _settings.worker_class, _settings.worker_class
)
worker_connections = _settings.worker_connections
threads = _settings.threads
timeout = _settings.timeout
graceful_timeout = _settings.graceful_timeout
keepalive = _settings.keepalive
max_requests = _settings.max_requests
# At least 10 % jitter, so the workers of one pod never recycle together.
max_requests_jitter = _settings.jitter
# The heartbeat file is fchmod-ed every second; on a disk-backed /tmp that can stall a worker.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
# gunicorn >= 25.1 opens a control socket under $HOME or $XDG_RUNTIME_DIR by default; it is
# not used here and fails on read-only root filesystems.
control_socket_disable = True
# Models are loaded in each worker, not in the master: no fork after OpenMP/BLAS threads start.
preload_app = False
accesslog = None  # the app writes one JSON line per request itself
logger_class = NoAccessLogger
loglevel = _settings.log_level
logconfig_dict = machinery.logconfig(loglevel)
