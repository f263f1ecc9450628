"""Custom resources validated offline against the openAPIV3Schema of the CRDs vendored in k8s/crds.

The API server prunes unknown fields of a custom resource silently, so a misspelt field would
apply and do nothing; here, as with kubectl's strict field validation, an unknown field is an
error: objects that declare `properties` get `additionalProperties: false` unless the CRD keeps
unknown fields (`x-kubernetes-preserve-unknown-fields`). CEL rules (x-kubernetes-validations)
are not evaluated.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
import yaml

from tests.k8s.manifests_render import K8S

CRDS = K8S / "crds"


@cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict JSON schema, for every served version of every vendored CRD."""
    found = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version["served"]:
                found[(f"{group}/{version['name']}", kind)] = strict(version["schema"]["openAPIV3Schema"])
    return found


def strict(node: Any) -> Any:
    """An OpenAPI v3 (Kubernetes structural) schema as JSON Schema that rejects unknown fields."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict(value) for key, value in node.items()}
    keeps_unknown = out.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in out
    if "properties" in out and not keeps_unknown:
        out["additionalProperties"] = False
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def is_custom(doc: dict[str, Any]) -> bool:
    """Whether a vendored CRD defines this object's kind."""
    return (doc["apiVersion"], doc["kind"]) in schemas()


def crd_problems(doc: dict[str, Any]) -> list[str]:
    """Every schema violation of one custom resource, with its path."""
    schema = schemas()[(doc["apiVersion"], doc["kind"])]
    validator = jsonschema.Draft7Validator(schema)
    where = f"{doc['kind']}/{doc['metadata']['name']}"
    return [
        f"{where}: {'.'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]
