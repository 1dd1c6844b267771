# Production image of the Iris inference server.
#
#   docker build --build-arg VERSION=1.2.3 -t ml-model .         # from the package index
#   docker build --network none \
#       --build-arg PYTHON_IMAGE=local/python:3.11-bookworm \
#       --build-arg PIP_NO_INDEX=1 -t ml-model .                 # air-gapped, from ./wheelhouse
#
# Works with the legacy builder and with BuildKit (no syntax directive, no RUN --mount),
# so docker-py/testcontainers can build it too. See tools/container/README.md.

# The default base: the official python:3.12-slim, pinned by the digest of its multi-platform
# index (Python 3.12.14 on Debian trixie). The tag says what it is; the digest is what is
# pulled. To bump it: `docker pull python:3.12-slim`, then
# `docker image inspect --format '{{index .RepoDigests 0}}' python:3.12-slim`, and put the new
# digest here (noxfile.py and .ci/run read it from this line); run `nox -s container`.
# checkov:skip=CKV_DOCKER_7:FROM uses ${PYTHON_IMAGE}, whose default is pinned by digest here
ARG PYTHON_IMAGE=python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea
# The packages' version (PEP 440). There is no .git in the build context: CI and nox pass what
# hatch-vcs derives from the git tag (v1.2.3 -> 1.2.3); the default marks an untagged build.
ARG VERSION=0+unknown

# ---------------------------------------------------------------------------------------
# builder: a venv with both workspace packages and their locked dependencies, plus the
# model trained and verified at build time (pickling and loading sklearn always match).
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# PIP_NO_INDEX=1 (air-gapped): install only from the wheelhouse copied below.
ARG PIP_NO_INDEX
# `wheelhouse*` matches nothing in a normal build: pip then uses the index. Both requirement
# files are exported from uv.lock with hashes, so the image gets the locked versions in both
# modes: the runtime set into /opt/venv, the build backend (hatchling, hatch-vcs) into a
# venv of its own that never reaches the runtime stage.
COPY tools/container/requirements.txt tools/container/requirements-build.txt wheelhouse* \
     /build/wheels/
RUN python -m pip install --require-hashes --only-binary=:all: \
        --find-links /build/wheels -r /build/wheels/requirements.txt \
    # Not needed at run time: the dependencies' test suites (~60 MB).
    && find /opt/venv -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
    && python3 -m venv /opt/build \
    && /opt/build/bin/python -m pip install --require-hashes --only-binary=:all: \
        --find-links /build/wheels -r /build/wheels/requirements-build.txt

# The workspace packages are built from the sources in the context without build isolation,
# by the locked backend above, at the version given (hatch-vcs reads it from
# SETUPTOOLS_SCM_PRETEND_VERSION). The library and the model first, so an edit of the server
# does not retrain; a new VERSION rebuilds from here on, never the dependency layer.
ARG VERSION
COPY packages/iris-model /build/src/iris-model
RUN SETUPTOOLS_SCM_PRETEND_VERSION="${VERSION}" /opt/build/bin/python -m pip wheel \
        --no-build-isolation --no-deps --wheel-dir /build/dist /build/src/iris-model \
    && python -m pip install --no-deps --no-index /build/dist/iris_model-*.whl

# The model: MODEL_SOURCE=train (default) trains it here with MODEL_SEED; MODEL_SOURCE=context
# bakes the saved model directory ./model/ of the build context instead (`iris-model train
# --output model`). MODEL_VERSION names it in its manifest and the image's labels; it defaults
# to the image's VERSION. `model*` matches nothing without ./model/, so the anchor file keeps
# the COPY valid either way; .dockerignore admits only model/model.{joblib,json}.
ARG MODEL_SOURCE=train
ARG MODEL_SEED=42
ARG MODEL_VERSION=${VERSION}
COPY packages/iris-model/pyproject.toml model* /build/model/
RUN case "$MODEL_SOURCE" in \
      train) iris-model train --seed "$MODEL_SEED" --model-version "$MODEL_VERSION" \
                 --output /opt/model ;; \
      context) test -f /build/model/model.joblib \
                 || { echo "MODEL_SOURCE=context: ./model/model.joblib is missing" >&2; exit 1; } \
             && mkdir -p /opt/model \
             && cp /build/model/model.joblib /build/model/model.json /opt/model/ \
             && python -c 'import json, sys; found = json.load(open("/opt/model/model.json")).get("model_version"); sys.exit(None if found == sys.argv[1] else f"MODEL_VERSION={sys.argv[1]} but ./model is version {found}: pass --build-arg MODEL_VERSION={found}")' "$MODEL_VERSION" ;; \
      *) echo "MODEL_SOURCE must be train or context, not $MODEL_SOURCE" >&2; exit 1 ;; \
    esac \
    && iris-model verify /opt/model

COPY packages/inference-server /build/src/inference-server
RUN SETUPTOOLS_SCM_PRETEND_VERSION="${VERSION}" /opt/build/bin/python -m pip wheel \
        --no-build-isolation --no-deps --wheel-dir /build/dist /build/src/inference-server \
    && python -m pip install --no-deps --no-index /build/dist/inference_server-*.whl \
    && python -m pip check \
    && python -m pip uninstall --yes pip setuptools \
    && rm -rf /build /opt/build

# ---------------------------------------------------------------------------------------
# runtime: the venv and the model only; non-root, read-only friendly (only /tmp is written).
FROM ${PYTHON_IMAGE} AS runtime

RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/model /opt/model

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    INFERENCE_MODEL_DIR=/opt/model \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus-multiproc

USER 10001:10001
EXPOSE 5000

# /readyz, not /healthz: Docker's "healthy" is what `docker compose` depends_on and
# load balancers in front of plain Docker gate traffic on, i.e. readiness (model loaded,
# not draining). Liveness-only restarts are an orchestrator concern (Kubernetes probes
# /healthz itself and ignores HEALTHCHECK). The port follows INFERENCE_BIND.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('INFERENCE_BIND', ':5000').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=2)"]

# Exec form: inference-server becomes Gunicorn's master as PID 1, so `docker stop`'s
# SIGTERM starts Gunicorn's graceful shutdown (INFERENCE_GRACEFUL_TIMEOUT).
ENTRYPOINT ["inference-server"]

# Last, so that changing them only touches metadata.
ARG VERSION
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
ARG PYTHON_IMAGE
# Which model the image serves (the same build arguments as the builder's). Its sha256 cannot
# be a label: LABEL values are fixed before any RUN computes it. It is in
# /opt/model/model.json (`iris-model info --json /opt/model`), which deploy tooling reads.
ARG MODEL_SOURCE=train
ARG MODEL_SEED=42
ARG MODEL_VERSION=${VERSION}
LABEL ml-model.model.version="${MODEL_VERSION}" \
      ml-model.model.source="${MODEL_SOURCE}" \
      ml-model.model.seed="${MODEL_SEED}"
LABEL org.opencontainers.image.title="ml-model" \
      org.opencontainers.image.description="Iris LogisticRegression inference server (Flask/Gunicorn; seed, KServe V1, Open Inference Protocol V2)" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
