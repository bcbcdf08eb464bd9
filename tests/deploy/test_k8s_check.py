"""The manifest check itself: it must catch what it is there to catch."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("k8s_check", ROOT / "scripts" / "k8s_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["k8s_check"] = module
    spec.loader.exec_module(module)
    return module


check = load_check()


def base_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(check.render(ROOT / "deploy" / "k8s" / "base")) if d]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_every_target_renders_and_passes(tmp_path: Path) -> None:
    assert check.main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "base.yaml").exists() and (tmp_path / "overlays-dev.yaml").exists()


def test_rules_catch_missing_limits_root_probes_and_exposed_admin_ports() -> None:
    docs = base_docs()
    assert check.policy_problems(docs) == []
    broken = copy.deepcopy(docs)
    differ = find(broken, "Deployment", "differ")["spec"]["template"]["spec"]
    del differ["containers"][0]["resources"]["limits"]["memory"]
    del differ["securityContext"]["runAsNonRoot"]
    del differ["containers"][0]["readinessProbe"]
    find(broken, "Service", "bzr-store-admin")["spec"]["type"] = "LoadBalancer"
    find(broken, "PersistentVolumeClaim", "bzr-store")["spec"]["accessModes"] = ["ReadWriteOnce"]
    problems = check.policy_problems(broken)
    assert "Deployment/differ container differ: no limits.memory" in problems
    assert "Deployment/differ container differ: runAsNonRoot is not set" in problems
    assert "Deployment/differ container differ: no readinessProbe" in problems
    assert "Service/bzr-store-admin: admin port [9929] exposed as LoadBalancer" in problems
    assert "PersistentVolumeClaim/bzr-store: shared by replicas, must be ReadWriteMany" in problems


def test_schemas_reject_unknown_fields(tmp_path: Path) -> None:
    docs = base_docs()
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump_all(docs))
    assert check.validate_schemas(good) == []
    find(docs, "Deployment", "bzr-store")["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump_all(docs))
    problems = check.validate_schemas(bad)
    assert problems and any("imagePullPolicyy" in p for p in problems)
