"""The shipped Gunicorn configuration with the Gunicorn-side trick ``BENCH_OFF`` turned off."""

import os

import inference_server.http.gunicorn as machinery

if os.environ["BENCH_OFF"] == "mallopt":  # before the shipped config calls it, in the master
    machinery.map_large_allocations = lambda _threshold: False

from inference_server.gunicorn_conf import *  # noqa: F403

if os.environ["BENCH_OFF"] == "fair":
    worker_class = "gevent"
elif os.environ["BENCH_OFF"] == "coalescing":
    worker_class = "tricks_off.TwoWritesWorker"
