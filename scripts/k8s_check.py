"""``make k8s-check``: render every kustomization under deploy/k8s and check it offline.

Each of ``deploy/k8s/base`` and ``deploy/k8s/overlays/*`` is rendered with
``kubectl kustomize`` (kubectl comes as a wheel in .venv), validated against
the Kubernetes JSON schemas with ``kubernetes-validate --strict`` (schemas
ship with it: no cluster, no network), and held to the deployment rules the
schemas cannot express: every container with requests and limits and a
non-root security context, probes on every long-running container, admin
ports reachable only inside the cluster.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ADMIN_PORTS = {9929, 9920, 9933}
# Volumes that several replicas (or services) mount at once.
SHARED_VOLUMES = {"bzr-store", "differ-cache", "artifacts", "auto-upload-state"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def render(directory: Path) -> str:
    done = subprocess.run([str(BIN / "kubectl"), "kustomize", str(directory)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"k8s-check: kubectl kustomize {directory} failed:\n{done.stderr}")
    return done.stdout


def validate_schemas(rendered: Path) -> list[str]:
    done = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", "--no-warn", str(rendered)],
        capture_output=True,
        text=True,
    )
    if done.returncode == 0:
        return []
    return [line for line in (done.stdout + done.stderr).splitlines() if line.strip()] or ["schema validation failed"]


def containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod.get("initContainers", [])
    yield from pod.get("containers", [])


def policy_problems(docs: list[dict[str, Any]]) -> list[str]:
    """What the schemas allow but this deployment must not have."""
    problems = []
    for doc in docs:
        kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
        where = f"{kind}/{name}"
        if kind in WORKLOADS:
            pod = doc["spec"]["template"]["spec"]
            pod_non_root = pod.get("securityContext", {}).get("runAsNonRoot") is True
            for c in containers(pod):
                cname = f"{where} container {c.get('name')}"
                resources = c.get("resources", {})
                for part in ("requests", "limits"):
                    for resource in ("cpu", "memory"):
                        if resource not in resources.get(part, {}):
                            problems.append(f"{cname}: no {part}.{resource}")
                if not (pod_non_root or c.get("securityContext", {}).get("runAsNonRoot") is True):
                    problems.append(f"{cname}: runAsNonRoot is not set")
                if c.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
                    problems.append(f"{cname}: allowPrivilegeEscalation is not false")
                if kind != "Job":
                    for probe in ("livenessProbe", "readinessProbe"):
                        if probe not in c:
                            problems.append(f"{cname}: no {probe}")
        if kind == "Service":
            spec = doc.get("spec", {})
            ports = {p.get("port") for p in spec.get("ports", [])}
            if ports & ADMIN_PORTS and spec.get("type", "ClusterIP") != "ClusterIP":
                problems.append(f"{where}: admin port {sorted(ports & ADMIN_PORTS)} exposed as {spec['type']}")
        shared = name in SHARED_VOLUMES and "ReadWriteMany" not in doc["spec"].get("accessModes", [])
        if kind == "PersistentVolumeClaim" and shared:
            problems.append(f"{where}: shared by replicas, must be ReadWriteMany")
    kinds = {d.get("kind") for d in docs}
    for required in ("NetworkPolicy", "HorizontalPodAutoscaler", "Job", "ConfigMap", "Secret"):
        if required not in kinds:
            problems.append(f"no {required}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "k8s", help="where the rendered YAML goes")
    args = parser.parse_args(argv)
    k8s = ROOT / "deploy" / "k8s"
    targets = [k8s / "base", *sorted(p for p in (k8s / "overlays").iterdir() if p.is_dir())]
    args.out.mkdir(parents=True, exist_ok=True)
    failed = False
    for target in targets:
        label = str(target.relative_to(k8s))
        text = render(target)
        rendered = args.out / f"{label.replace('/', '-')}.yaml"
        rendered.write_text(text)
        docs = [d for d in yaml.safe_load_all(text) if d]
        problems = validate_schemas(rendered) + policy_problems(docs)
        if problems:
            failed = True
            print(f"k8s-check: {label}: {len(problems)} problem(s)", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
        else:
            print(f"k8s-check: {label}: {len(docs)} objects, schemas and rules OK ({rendered})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
