"""What every rendered workload must have; each check returns its problems as sentences (none: ok)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agents.names import INTELLIGENCE, MAINTENANCE_QUEUE, queue_keys

Doc = dict[str, Any]
WORKLOADS = ("Deployment", "StatefulSet")
HA_SERVERS = ("redis", "redis-sentinel", "nats")  # StatefulSets whose anti-affinity is required


def name(doc: Doc) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def of_kind(docs: list[Doc], *kinds: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] in kinds]


def engines(docs: list[Doc]) -> list[str]:
    """Names of the engine worker Deployments."""
    return [
        d["metadata"]["name"]
        for d in of_kind(docs, "Deployment")
        if d["metadata"]["name"].endswith("-engine")
    ]


def containers(workload: Doc) -> Iterator[tuple[str, Doc]]:
    """(kind, container) of every container and init container of a workload's pod."""
    spec = workload["spec"]["template"]["spec"]
    for key in ("initContainers", "containers"):
        for container in spec.get(key, []):
            yield key, container


def workload_problems(workload: Doc) -> list[str]:
    """Probes, resources, the restricted security context and anti-affinity of one workload."""
    where, pod = name(workload), workload["spec"]["template"]["spec"]
    problems = []
    pod_security = pod.get("securityContext", {})
    for key, wanted in (("runAsNonRoot", True), ("runAsUser", 1000)):
        if pod_security.get(key) != wanted:
            problems.append(f"{where}: pod securityContext.{key} is not {wanted}")
    if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: pod seccompProfile is not RuntimeDefault")
    for key, container in containers(workload):
        at = f"{where} {key[:-1]} {container['name']}"
        resources = container.get("resources", {})
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(resources.get(part, {})):
                problems.append(f"{at}: resources.{part} lacks cpu or memory")
        security = container.get("securityContext", {})
        checks = {
            "allowPrivilegeEscalation": security.get("allowPrivilegeEscalation") is False,
            "readOnlyRootFilesystem": security.get("readOnlyRootFilesystem") is True,
            "capabilities.drop ALL": security.get("capabilities", {}).get("drop") == ["ALL"],
            "runAsNonRoot": security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True,
        }
        problems += [f"{at}: securityContext {check} missing" for check, ok in checks.items() if not ok]
        if key == "containers":
            problems += [
                f"{at}: no {probe}" for probe in ("livenessProbe", "readinessProbe") if probe not in container
            ]
    problems += _anti_affinity_problems(workload)
    return problems


def _anti_affinity_problems(workload: Doc) -> list[str]:
    anti = workload["spec"]["template"]["spec"].get("affinity", {}).get("podAntiAffinity", {})
    own = workload["spec"]["selector"]["matchLabels"]
    required = [t for t in anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])]
    preferred = [
        t["podAffinityTerm"] for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])
    ]
    kind = "required" if workload["metadata"]["name"] in HA_SERVERS else "preferred"
    terms = required if kind == "required" else preferred + required
    if not any(t.get("labelSelector", {}).get("matchLabels") == own and t.get("topologyKey") for t in terms):
        return [f"{name(workload)}: no {kind} podAntiAffinity term on its own pods ({own})"]
    return []


def pdb_problems(docs: list[Doc]) -> list[str]:
    """Every Deployment and StatefulSet has a PodDisruptionBudget that selects its pods."""
    selectors = [
        pdb["spec"]["selector"].get("matchLabels", {}) for pdb in of_kind(docs, "PodDisruptionBudget")
    ]
    problems = []
    for workload in of_kind(docs, *WORKLOADS):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        if not any(selector and selector.items() <= labels.items() for selector in selectors):
            problems.append(f"{name(workload)}: no PodDisruptionBudget selects its pods")
    return problems


def engine_queues(deployment: str) -> list[str]:
    """The queues an engine Deployment's worker consumes (agents/worker.py)."""
    engine = deployment.removesuffix("-engine")
    return [engine, MAINTENANCE_QUEUE] if engine == INTELLIGENCE else [engine]


def scaling_problems(docs: list[Doc], trigger_type: str) -> list[str]:
    """Each engine Deployment has a ScaledObject with one `trigger_type` trigger per priority list of
    each queue it consumes, all summed into one metric, and no HPA of its own beside it."""
    objects = {so["spec"]["scaleTargetRef"]["name"]: so for so in of_kind(docs, "ScaledObject")}
    hpas = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind(docs, "HorizontalPodAutoscaler")}
    auths = {auth["metadata"]["name"] for auth in of_kind(docs, "TriggerAuthentication")}
    problems = []
    for engine in engines(docs):
        if engine in hpas:
            problems.append(f"{engine}: an HPA and a ScaledObject would both own its replicas")
        so = objects.get(engine)
        if so is None:
            problems.append(f"{engine}: no ScaledObject")
            continue
        triggers = so["spec"]["triggers"]
        wanted = sorted(key for queue in engine_queues(engine) for key in queue_keys(queue))
        lists = sorted(t["metadata"].get("listName", "") for t in triggers)
        if lists != wanted:
            problems.append(f"{engine}: triggers read lists {lists!r}, the worker consumes {wanted!r}")
        problems += [
            f"{engine}: trigger {t.get('name')} is {t['type']}, not {trigger_type}"
            for t in triggers
            if t["type"] != trigger_type
        ]
        problems += [
            f"{engine}: trigger {t.get('name')} has no known authenticationRef"
            for t in triggers
            if t.get("authenticationRef", {}).get("name") not in auths
        ]
        formula = so["spec"].get("advanced", {}).get("scalingModifiers", {}).get("formula", "")
        if sorted(term.strip() for term in formula.split("+")) != sorted(t.get("name", "") for t in triggers):
            problems.append(f"{engine}: formula {formula!r} is not the sum of its triggers")
    return problems


def grace_problems(docs: list[Doc], longest_hard_limit: int) -> list[str]:
    """Engine workers get more than the longest hard time limit to finish on SIGTERM."""
    problems = []
    for deployment in of_kind(docs, "Deployment"):
        if deployment["metadata"]["name"].endswith("-engine"):
            grace = deployment["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
            if grace <= longest_hard_limit:
                problems.append(
                    f"{name(deployment)}: grace {grace} s is not above the hard limit {longest_hard_limit} s"
                )
    return problems


def secret_references(docs: list[Doc]) -> set[tuple[str, str]]:
    """(Secret, key) of every secretKeyRef, TriggerAuthentication secretTargetRef and CNPG initdb secret."""
    found: set[tuple[str, str]] = set()
    for doc in docs:
        if doc["kind"] == "TriggerAuthentication":
            found |= {(ref["name"], ref["key"]) for ref in doc["spec"].get("secretTargetRef", [])}
        initdb = doc["spec"].get("bootstrap", {}).get("initdb", {}) if doc["kind"] == "Cluster" else {}
        if secret := initdb.get("secret"):
            found |= {(secret["name"], "username"), (secret["name"], "password")}
        if doc["kind"] in WORKLOADS:
            for _, container in containers(doc):
                for env in container.get("env", []):
                    if ref := env.get("valueFrom", {}).get("secretKeyRef"):
                        found.add((ref["name"], ref["key"]))
    return found
