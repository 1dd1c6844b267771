#!/usr/bin/env -S uv run --script
# /// script
# dependencies = ["nox>=2025.2.9"]
# ///
"""Every workflow of the monorepo, as nox sessions (`nox -l` lists them)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PACKAGES = {
    "iris-model": ROOT / "packages" / "iris-model",
    "inference-server": ROOT / "packages" / "inference-server",
}
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def install(
    session: nox.Session, *groups: str, packages: tuple[str, ...] = tuple(PACKAGES)
) -> None:
    """Install workspace packages (editable) and dependency groups, at uv.lock's versions."""
    requirements: list[str] = []
    for group in groups:
        requirements += nox.project.dependency_groups(PYPROJECT, group)
    editables = [arg for name in packages for arg in ("-e", str(PACKAGES[name]))]
    session.install(*locked_constraints(session, groups), *editables, *requirements)


def locked_constraints(session: nox.Session, groups: tuple[str, ...]) -> list[str]:
    """`-c FILE` arguments that pin every install to uv.lock, so sessions are reproducible.

    Only the packages' dependencies and the session's own groups: some groups conflict (see
    [tool.uv] conflicts), so no single export covers them all.
    """
    uv = shutil.which("uv")
    if uv is None:  # the virtualenv fallback: unpinned, but still within pyproject's ranges
        return []
    constraints = Path(session.create_tmp()) / "uv-lock-constraints.txt"
    selected = [arg for group in groups for arg in ("--group", group)]
    session.run_install(
        uv, "export", "--frozen", "--no-default-groups", *selected, "--no-hashes",
        "--no-header", "--no-emit-project", "--no-emit-workspace", "--quiet",
        "--output-file", str(constraints), external=True, silent=True,
    )  # fmt: skip
    return ["-c", str(constraints)]


@nox.session
def lint(session: nox.Session) -> None:
    """Lint everything: the pre-commit hooks, manifests, Dockerfile and CI workflow checks.

    The hooks (.pre-commit-config.yaml): ruff, ruff format, mypy --strict, hadolint,
    actionlint, zizmor, shellcheck. `nox -s lint -- HOOK_ID...` runs only those hooks.
    """
    install(session, "lint", "test", "plot", "workflows")
    env: dict[str, str] = {}
    go = go_binary()
    if go is None:  # actionlint's hook is built with Go
        message = (
            "actionlint skipped: Go is missing (apt-get install golang-go; go.dev/doc/install)"
        )
        if IN_CI:
            session.error(message)
        session.warn(message)
        env["SKIP"] = "actionlint"
    # The venv first (mypy, and shellcheck for actionlint's run: scripts), then Go.
    path = [session.bin, *([str(Path(go).parent)] if go else []), os.environ.get("PATH", "")]
    env["PATH"] = os.pathsep.join(path)
    # `pre-commit run` takes one hook id: run each one named, or all of them.
    for hook in session.posargs or [None]:
        hook_args = [hook] if hook else []
        session.run(
            "pre-commit", "run", "--all-files", "--show-diff-on-failure", *hook_args, env=env
        )
    if session.posargs:  # only the hooks asked for
        return
    check_manifests(session)
    check_monitoring(session)
    check_dockerfile(session)
    check_workflows(session)


@nox.session
@nox.parametrize("package", list(PACKAGES), ids=list(PACKAGES))
def tests(session: nox.Session, package: str) -> None:
    """Unit tests of one package, with branch coverage."""
    install(session, "test", *PACKAGE_TEST_GROUPS.get(package, ()))
    import_name = package.replace("-", "_")
    coverage_floor = {"iris-model": "90"}.get(package, "85")
    env = {"COVERAGE_FILE": str(ROOT / f".coverage.{package}")}
    if package == "inference-server" and (promtool := find_promtool(session)):
        env["PROMTOOL"] = promtool  # `promtool check metrics` on a live /metrics
    session.run(
        "pytest",
        str(PACKAGES[package] / "tests"),
        f"--cov={import_name}",
        f"--cov-fail-under={coverage_floor}",
        "--cov-report=term-missing:skip-covered",
        *session.posargs,
        env=env,
    )


# Extra dependency groups a package's unit tests need beyond "test".
PACKAGE_TEST_GROUPS: dict[str, tuple[str, ...]] = {
    "iris-model": ("plot", "notebook"),
    "inference-server": ("server-test",),
}


K8S_DIR = ROOT / "deploy" / "k8s"
# The Kubernetes version the manifests are validated against: minikube's
# default and the CI cluster's (tools/local-cluster).
K8S_SCHEMA_VERSION = "1.35.0"
K8S_PROVIDERS = ("k3d", "kind", "minikube")


@nox.session(default=False)
def manifests(session: nox.Session) -> None:
    """Kubernetes manifests: kustomize build, schema check, checkov, kube-score, invariant tests."""
    check_manifests(session, *session.posargs)


def check_manifests(session: nox.Session, *pytest_args: str) -> None:
    """Render every overlay; schema-check it; run checkov, kube-score and tests/deploy."""
    install(session, "test", "manifests")
    rendered_dir = Path(session.create_tmp()) / "manifests"
    shutil.rmtree(rendered_dir, ignore_errors=True)
    rendered_dir.mkdir()
    rendered = []
    for overlay in sorted(path for path in (K8S_DIR / "overlays").iterdir() if path.is_dir()):
        target = rendered_dir / f"{overlay.name}.yaml"
        with target.open("w", encoding="utf-8") as stream:
            session.run("kubectl", "kustomize", str(overlay), stdout=stream)
        rendered.append(str(target))
    session.run("kubernetes-validate", "--strict", "--quiet", "-k", K8S_SCHEMA_VERSION, *rendered)
    # --skip-download: no calls to the vendor's platform; the checks ship in the wheel.
    session.run(
        "checkov", "--directory", str(rendered_dir), "--framework", "kubernetes",
        "--compact", "--quiet", "--skip-download",
    )  # fmt: skip
    kube_score = go_tool(session, KUBE_SCORE)
    for manifest in rendered if kube_score else []:
        overlay = Path(manifest).stem
        ignored = [test for test, (where, _) in KUBE_SCORE_IGNORED.items() if overlay in where]
        session.run(
            kube_score, "score", "--output-format", "ci", "--exit-one-on-warning",
            *(arg for test in ignored for arg in ("--ignore-test", test)), manifest, external=True,
        )  # fmt: skip
    promtool = find_promtool(session)
    env = {"PROMTOOL": promtool} if promtool else {}
    session.run("pytest", str(ROOT / "tests" / "deploy"), *pytest_args, env=env)


# ------------------------------------------------------------------------ monitoring
MONITORING_DIR = ROOT / "deploy" / "monitoring"
BUILD_PROMETHEUS = ROOT / "tools" / "local-cluster" / "build-prometheus.sh"


def find_promtool(session: nox.Session) -> str | None:
    """promtool: $PROMTOOL, else built once from the Go module proxy (pinned version).

    PATH is not searched: a promtool installed by hand on one machine would hide a missing
    build step (issue 22). Without Go: PATH, else None with a warning (an error in CI).
    """
    if os.environ.get("PROMTOOL"):
        return os.environ["PROMTOOL"]
    if go_binary() is None:
        if found := shutil.which("promtool"):
            return found
        message = "promtool is missing and Go is not installed to build it (go.dev/doc/install)"
        if IN_CI:
            session.error(message)
        session.warn(f"{message}: the promtool checks are skipped")
        return None
    output = session.run("bash", str(BUILD_PROMETHEUS), "promtool", external=True, silent=True)
    return str(Path(str(output).strip().splitlines()[-1]) / "promtool")


def check_monitoring(session: nox.Session) -> None:
    """Run promtool check/test rules; check the PrometheusRule copy is in sync (lint runs it)."""
    session.run("python", str(MONITORING_DIR / "sync_rules.py"), "--check")
    promtool = find_promtool(session)
    if promtool is None:
        return
    rules = MONITORING_DIR / "prometheus" / "ml-model.rules.yaml"
    session.run(promtool, "check", "rules", str(rules), external=True)
    session.run(promtool, "test", "rules", str(rules.with_suffix(".test.yaml")), external=True)


KUBE_SCORE = "github.com/zegl/kube-score/cmd/kube-score@v1.20.0"
# The kube-score checks that do not apply, per overlay, each with the reason. Every other
# check must pass on every overlay, warnings included.
KUBE_SCORE_IGNORED: dict[str, tuple[tuple[str, ...], str]] = {
    "container-image-pull-policy": (
        ("local", "minikube"),
        "the test image is loaded into the node (imagePullPolicy Never), not pulled; "
        "production keeps the base's Always",
    ),
    "deployment-has-host-podantiaffinity": (
        ("local", "minikube", "production"),
        "topologySpreadConstraints spread the pods over nodes and zones (ScheduleAnyway), "
        "which a required anti-affinity would turn into unschedulable pods on small clusters",
    ),
    "horizontalpodautoscaler-replicas": (
        ("local", "minikube"),
        "one-node test and laptop clusters run a small HPA range (2-3); production keeps the base's"
        " 2-6",
    ),
    "service-type": (
        ("local", "minikube"),
        "NodePort is how the e2e suite and `minikube service` reach the Service from outside "
        "the cluster; production keeps ClusterIP",
    ),
}


# --------------------------------------------------------------------- container image
# The Dockerfile's default base (tag and digest), read from its `ARG PYTHON_IMAGE=` line.
OFFICIAL_PYTHON_IMAGE = re.search(
    r"^ARG PYTHON_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.MULTILINE
)[1]  # fmt: skip
LOCAL_PYTHON_IMAGE = "local/python:3.11-bookworm"  # built from Debian packages, no registry
CONTAINER_TOOLS = ROOT / "tools" / "container"


def check_dockerfile(session: nox.Session) -> None:
    """Dockerfile checks (checkov) and the image's locked requirements (lint runs it)."""
    install(session, "container-lint", packages=())  # hadolint runs as a pre-commit hook
    session.run(
        "checkov", "--file", "Dockerfile", "--framework", "dockerfile",
        "--compact", "--quiet", "--skip-download",
    )  # fmt: skip
    session.run("python", str(CONTAINER_TOOLS / "wheelhouse.py"), "requirements", "--check")


def require_docker(session: nox.Session) -> None:
    """Skip the session without a Docker daemon (fail in CI), saying how to get one."""
    docker = shutil.which("docker")
    info = [docker or "docker", "info"]
    if docker and subprocess.run(info, capture_output=True, check=False).returncode == 0:
        return
    message = (
        "no Docker daemon: install Docker Engine (Debian/Ubuntu: apt-get install docker.io) "
        "and start it (systemctl start docker, or `dockerd &` as root without systemd)"
    )
    if IN_CI:
        session.error(message)
    session.skip(message)


def image_exists(tag: str) -> bool:
    """Whether the local Docker daemon has the image (no pull is attempted)."""
    inspect = ["docker", "image", "inspect", tag]
    return subprocess.run(inspect, capture_output=True, check=False).returncode == 0


@nox.session(name="base-image", python=False, default=False)
def base_image(session: nox.Session) -> None:
    """Build local/python:3.11-bookworm from Debian packages (`-- --force` rebuilds it)."""
    require_docker(session)
    script = str(CONTAINER_TOOLS / "build-base-image.sh")
    session.run("bash", script, *session.posargs, LOCAL_PYTHON_IMAGE, external=True)


@nox.session(default=False)
def wheelhouse(session: nox.Session) -> None:
    """Download wheelhouse/ for an offline image build on a base (`-- IMAGE`, default local)."""
    require_docker(session)
    session.install("pip")
    image = session.posargs[0] if session.posargs else LOCAL_PYTHON_IMAGE
    session.run("python", str(CONTAINER_TOOLS / "wheelhouse.py"), "download", "--image", image)


def prepare_image_build(session: nox.Session) -> dict[str, str]:
    """Choose how tests/integration/conftest.py builds the image; return its environment.

    Base image: PYTHON_IMAGE if set (air-gapped when PIP_NO_INDEX=1), else python:3.12-slim
    when the daemon has it (packages from the index), else the air-gapped mode: the Debian
    base image (`base-image`) and wheelhouse/ (`wheelhouse`), built with --network none.
    ML_MODEL_IMAGE=TAG uses a prebuilt image instead. Needs the "container" group and pip.
    """
    require_docker(session)
    session.install("pip")  # for the wheelhouse
    tools = str(CONTAINER_TOOLS / "wheelhouse.py")
    session.run("python", tools, "requirements", *(["--check"] if IN_CI else []))
    env = {"TESTCONTAINERS_RYUK_DISABLED": os.environ.get("TESTCONTAINERS_RYUK_DISABLED", "true")}
    base = os.environ.get("PYTHON_IMAGE")
    if os.environ.get("ML_MODEL_IMAGE"):
        session.log(f"using the prebuilt image {os.environ['ML_MODEL_IMAGE']}")
    elif base:
        offline = bool(os.environ.get("PIP_NO_INDEX"))
        session.log(f"building on PYTHON_IMAGE={base} ({'air-gapped' if offline else 'index'})")
        if offline:
            session.run("python", tools, "download", "--image", base)
    elif image_exists(OFFICIAL_PYTHON_IMAGE):
        session.log(f"building on {OFFICIAL_PYTHON_IMAGE}, packages from the index")
    else:
        session.log(
            f"{OFFICIAL_PYTHON_IMAGE} is not available locally: air-gapped build on "
            f"{LOCAL_PYTHON_IMAGE} (from Debian packages) with wheelhouse/ and --network none"
        )
        script = str(CONTAINER_TOOLS / "build-base-image.sh")
        session.run("bash", script, LOCAL_PYTHON_IMAGE, external=True)
        session.run("python", tools, "download", "--image", LOCAL_PYTHON_IMAGE)
        env |= {"PYTHON_IMAGE": LOCAL_PYTHON_IMAGE, "PIP_NO_INDEX": "1"}
    return env


@nox.session
def container(session: nox.Session) -> None:
    """Build the production image and run its testcontainers suite (tests/integration/container).

    Skips without Docker (fails in CI). See prepare_image_build for the base image choice.
    """
    require_docker(session)
    install(session, "test", "container", packages=())
    env = prepare_image_build(session)
    session.run(
        "pytest", str(ROOT / "tests" / "integration" / "container"), "-m", "container",
        "--durations=5", *session.posargs, env=env,
    )  # fmt: skip


# ------------------------------------------------------------------------ kubernetes
@nox.session
def e2e(session: nox.Session) -> None:
    """Deploy overlays/local to a real cluster and test it (`-- --k8s-kubeconfig PATH`)."""
    args = list(session.posargs)
    has_target = any(arg.split("=")[0] in K8S_TARGET_OPTIONS for arg in args)
    if not has_target and os.environ.get("E2E_KUBECONFIG"):
        args += ["--k8s-kubeconfig", os.environ["E2E_KUBECONFIG"]]
        has_target = True
    if not has_target and not any(shutil.which(name) for name in K8S_PROVIDERS):
        message = (
            "no Kubernetes cluster configured: pass `nox -s e2e -- --k8s-kubeconfig PATH` "
            "(or set E2E_KUBECONFIG; tools/local-cluster/cluster.sh kubeconfig prints one), "
            "or install minikube, kind or k3d (plus Docker) for `-- --k8s-provider NAME`"
        )
        if IN_CI:
            session.error(message)
        session.skip(message)
    install(session, "test", "container", "e2e", packages=())
    env = prepare_image_build(session)  # the image is built (or found) and loaded via Docker
    # -rA: the passing tests' figures (request and failure counts, timelines) are printed too.
    # The `published` tests deploy what `publish` pushed: session `delivery` runs them.
    e2e_tests = str(ROOT / "tests" / "integration" / "e2e")
    marker = "k8s and not published"
    session.run("pytest", e2e_tests, "-m", marker, "-rA", "--durations=10", *args, env=env)


# ------------------------------------------------------------------------- publishing
TOOLS_DIR = ROOT / "tools"
# The registry client (read manifests back, add tags in the registry) and the signer.
CRANE = "github.com/google/go-containerregistry/cmd/crane@v0.22.1"
COSIGN = "github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5"


def release_tools(session: nox.Session) -> dict[str, str]:
    """Build crane and cosign once from the Go module proxy (go_tool); fails without Go."""
    tools = {name.upper(): go_tool(session, module) for name, module in (
        ("crane", CRANE), ("cosign", COSIGN))}  # fmt: skip
    missing = [name.lower() for name, path in tools.items() if path is None]
    if missing:
        session.error(f"{', '.join(missing)} cannot be built: Go is missing (go.dev/doc/install)")
    return {name: str(path) for name, path in tools.items()}


@nox.session(python=False, default=False)
def publish(session: nox.Session) -> None:
    """Push the tested image, check its digest, sign and tag it (tools/release/publish.py).

    `nox -s publish -- IMAGE REPOSITORY (--keyless | --key FILE | --generate-key DIR) ...`;
    `-- prepare` only builds crane and cosign (the workflow does so before it logs in).
    """
    tools = release_tools(session)
    if session.posargs == ["prepare"]:
        session.log(f"crane: {tools['CRANE']}, cosign: {tools['COSIGN']}")
        return
    require_docker(session)
    session.run(
        "python3", str(TOOLS_DIR / "release" / "publish.py"), *session.posargs,
        "--crane", tools["CRANE"], "--cosign", tools["COSIGN"], external=True,
    )  # fmt: skip


@nox.session(default=False)
def delivery(session: nox.Session) -> None:
    """Deploy what `publish` pushed: verify, pull by digest, refuse unsigned images.

    Needs E2E_PUBLISHED (publish.py's --json), E2E_REGISTRY (where the cluster pulls from) and
    the cluster (`-- --k8s-kubeconfig PATH` or E2E_KUBECONFIG), as `nox -s e2e` does.
    """
    args = list(session.posargs)
    if not any(arg.split("=")[0] in K8S_TARGET_OPTIONS for arg in args):
        if not os.environ.get("E2E_KUBECONFIG"):
            session.error("no cluster: pass `-- --k8s-kubeconfig PATH` or set E2E_KUBECONFIG")
        args += ["--k8s-kubeconfig", os.environ["E2E_KUBECONFIG"]]
    for name in ("E2E_PUBLISHED", "E2E_REGISTRY"):
        if not os.environ.get(name):
            session.error(f"{name} is not set (see the session's docstring)")
    require_docker(session)
    install(session, "test", "container", "e2e", packages=())
    env = release_tools(session)
    e2e_tests = str(ROOT / "tests" / "integration" / "e2e")
    session.run("pytest", e2e_tests, "-m", "published", "-rA", "--durations=5", *args, env=env)


# pytest-kubernetes options that name the cluster to test against.
K8S_TARGET_OPTIONS = ("--k8s-provider", "--k8s-kubeconfig", "--k8s-kubeconfig-override")


@nox.session(default=False)
def serve(session: nox.Session) -> None:
    """Serve the model on port 5000 with Gunicorn (`nox -s serve -- --workers 1`)."""
    install(session)
    session.run("inference-server", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Performance suite vs framework ceiling and seed baseline (bench/README.md; needs wrk).

    `nox -s bench -- --rounds 3`; `-- --profile predict` samples a worker with py-spy instead.
    """
    install(session, "bench")
    if shutil.which("wrk") is None:
        session.error("wrk is missing: `apt-get install -y wrk` (Debian), `brew install wrk`")
    args = list(session.posargs)
    if args[:1] == ["--profile"]:
        workload = args[1] if len(args) > 1 else "predict"
        session.run("python", str(ROOT / "bench" / "profile_worker.py"), "--workload", workload)
        return
    vegeta = go_tool(session, VEGETA, required=False)
    session.run(
        "python", str(ROOT / "bench" / "run.py"), *(["--vegeta", vegeta] if vegeta else []), *args
    )


# The open-loop load generator of the bench, built from the Go module proxy once per version.
VEGETA = "github.com/tsenart/vegeta/v12@v12.13.0"


@nox.session(default=False, reuse_venv=False)
def dist(session: nox.Session) -> None:
    """Build wheels and sdists into dist/ and check them (twine, check-wheel-contents, pyroma).

    The build backend comes from uv.lock (no build isolation), and the version from git
    (hatch-vcs); `SETUPTOOLS_SCM_PRETEND_VERSION=1.2.3 nox -s build` builds 1.2.3.
    """
    install(session, "build-backend", "dist", packages=())
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    for path in PACKAGES.values():
        session.run("python", "-m", "build", "--no-isolation", "--outdir", str(dist), str(path))
    built = sorted(str(path) for path in dist.iterdir())
    session.run("twine", "check", "--strict", *built)
    session.run("check-wheel-contents", *(path for path in built if path.endswith(".whl")))
    for sdist in (path for path in built if path.endswith(".tar.gz")):
        session.run("pyroma", "--min", "10", sdist)  # metadata completeness, out of 10
    session.run(
        "pytest", str(ROOT / "tests" / "packaging" / "test_distributions.py"),
        "-p", "no:cacheprovider", *session.posargs, env={"DIST_DIR": str(dist)},
    )  # fmt: skip


@nox.session(reuse_venv=False, requires=["dist"])
def build(session: nox.Session) -> None:
    """Build and check dist/ (session `dist`), then test the library's wheel in a fresh venv."""
    (wheel,) = (ROOT / "dist").glob("iris_model-*.whl")
    # Only the wheel and pytest: the tests must see the package exactly as pip users do.
    session.install(*locked_constraints(session, ("test",)), str(wheel), "pytest")
    session.run(
        "pytest",
        str(ROOT / "tests" / "packaging" / "test_installed_library.py"),
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"IRIS_MODEL_WHEEL_TEST": "1"},
    )


@nox.session(default=False)
def version(session: nox.Session) -> None:
    """Print the version hatch-vcs gives the packages (SETUPTOOLS_SCM_PRETEND_VERSION wins)."""
    install(session, "build-backend", packages=())
    code = "import setuptools_scm, sys; print(setuptools_scm.get_version(root=sys.argv[1]))"
    session.run("python", "-c", code, str(ROOT))


@nox.session(python=False, default=False)
def cluster(session: nox.Session) -> None:
    """Local CI Kubernetes cluster from source-built binaries (`-- up|down|status|env`)."""
    script = ROOT / "tools" / "local-cluster" / "cluster.sh"
    linux_root = os.name == "posix" and os.uname().sysname == "Linux" and os.geteuid() == 0
    if not (linux_root and go_binary()):
        session.skip(f"{script.name} needs Linux, root and Go (elsewhere use minikube or kind)")
    session.run(str(script), *(session.posargs or ["status"]), external=True)


# ------------------------------------------------------------------- GitHub Actions
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
# Permission scopes newer than checkov 3.3.30's bundled workflow schema: it silently drops a
# workflow that uses them (no checks run, exit 0), so its scanned copy leaves them out.
CHECKOV_UNKNOWN_SCOPES = ("attestations", "artifact-metadata", "models")


def check_workflows(session: nox.Session) -> None:
    """Workflow checks (checkov) and the CI gate tests (lint runs it).

    actionlint and zizmor run as pre-commit hooks.
    """
    install(session, "workflows", packages=())
    workflows = sorted(WORKFLOWS_DIR.glob("*.y*ml"))
    checkov_workflows(session, workflows)
    session.run("pytest", str(ROOT / "tests" / "workflows"), "-p", "no:cacheprovider")


def go_binary() -> str | None:
    """The Go toolchain: on PATH, or where the official tarball installs it."""
    fallback = Path("/usr/local/go/bin/go")
    return shutil.which("go") or (str(fallback) if fallback.is_file() else None)


# Go programs the sessions build, one directory per module version, beside the CI cluster's
# builds (tools/local-cluster/build.sh): outside the checkout, so a clean clone reuses them.
GO_TOOLS_CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ml-model" / "go-tools"
).resolve()


def go_tool(session: nox.Session, module: str, *, required: bool = True) -> str | None:
    """`go install module@version` into the project's cache (once) and return the binary.

    The only way the sessions get a Go program: never from PATH, so that a copy installed by
    hand cannot hide a missing build step. Without Go: None with a warning, or an error in CI
    when the tool is `required`.
    """
    path, version = module.rsplit("@", 1)
    parts = path.split("/")
    # `go install` names the binary after the last path element that is not a major version.
    name = parts[-2] if re.fullmatch(r"v\d+", parts[-1]) else parts[-1]
    bindir = GO_TOOLS_CACHE / name / version
    if (bindir / name).is_file():
        return str(bindir / name)
    go = go_binary()
    if go is None:
        message = f"{name} skipped: Go is missing (apt-get install golang-go; go.dev/doc/install)"
        if IN_CI and required:
            session.error(message)
        session.warn(message)
        return None
    session.run(go, "install", module, env={"GOBIN": str(bindir)}, external=True)
    return str(bindir / name)


def checkov_workflows(session: nox.Session, workflows: list[Path]) -> None:
    """Run checkov's GitHub Actions checks; fail unless every workflow was actually scanned."""
    scan_root = Path(session.create_tmp()) / "checkov-workflows"
    shutil.rmtree(scan_root, ignore_errors=True)
    (scan_root / ".github" / "workflows").mkdir(parents=True)
    unknown = re.compile(rf"^\s+({'|'.join(CHECKOV_UNKNOWN_SCOPES)}):.*\n", re.MULTILINE)
    for workflow in workflows:
        text = unknown.sub("", workflow.read_text(encoding="utf-8"))
        (scan_root / ".github" / "workflows" / workflow.name).write_text(text, encoding="utf-8")
    output = session.run(
        "checkov", "--directory", str(scan_root), "--framework", "github_actions",
        "--output", "json", "--skip-download", silent=True, success_codes=[0, 1],
    )  # fmt: skip
    report = json.loads(str(output)) if output else {}
    results = report.get("results", {}) if isinstance(report, dict) else {}
    checks = results.get("passed_checks", []) + results.get("failed_checks", [])
    scanned = {Path(check["file_path"]).name for check in checks}
    for check in results.get("failed_checks", []):
        session.log(f"{check['check_id']} {check['check_name']}: {check['file_path']}")
    missing = sorted(workflow.name for workflow in workflows if workflow.name not in scanned)
    if missing:
        session.error(f"checkov ran no check on {missing} (a schema it does not accept?)")
    if results.get("failed_checks"):
        session.error("checkov: GitHub Actions checks failed")
    session.log(f"checkov: {len(checks)} GitHub Actions checks passed on {len(workflows)} file(s)")


if __name__ == "__main__":
    nox.main()
