#!/usr/bin/env python3
"""Write the PrometheusRule of the Operator component from the plain rules file.

deploy/monitoring/prometheus/ml-model.rules.yaml is the one source of the rules; the
PrometheusRule's `spec` is that file's `groups`, copied as text (comments included) so a
review sees the same lines in both. `--check` exits 1 when the PrometheusRule is stale
(tests/deploy/test_monitoring.py runs the same comparison on the parsed YAML).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RULES = HERE / "prometheus" / "ml-model.rules.yaml"
PROMETHEUS_RULE = HERE.parent / "k8s" / "components" / "prometheus-operator" / "prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/monitoring/prometheus/ml-model.rules.yaml by
# deploy/monitoring/sync_rules.py; do not edit (the rules, SLOs and their comments are there).
# kube-prometheus-stack only loads PrometheusRules carrying its release label unless
# ruleSelectorNilUsesHelmValues=false (deploy/monitoring/README.md).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: ml-model
spec:
"""


def render(rules_text: str) -> str:
    """The PrometheusRule manifest whose spec holds the rules file's `groups:` block."""
    lines = rules_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = [f"  {line}" if line else "" for line in lines[start:]]
    return HEADER + "\n".join(body) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, verify) the PrometheusRule."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    wanted = render(RULES.read_text(encoding="utf-8"))
    if args.check:
        current = PROMETHEUS_RULE.read_text(encoding="utf-8") if PROMETHEUS_RULE.exists() else ""
        if current != wanted:
            print(f"{PROMETHEUS_RULE} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    PROMETHEUS_RULE.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
