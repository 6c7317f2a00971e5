"""Enough of ``kustomize build`` to render this project's overlays without the binary
(none installs from the package registries): resources (files and directories), the
namespace, ``labels`` pairs on metadata, and strategic-merge patches by target, where
lists of named items (containers, volumes, env, ports) merge by name."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding"}


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and all(
            isinstance(i, dict) and "name" in i for i in [*base, *patch]):
        merged_list = [copy.deepcopy(i) for i in base]
        names = [i["name"] for i in merged_list]
        for item in patch:
            if item["name"] in names:
                index = names.index(item["name"])
                merged_list[index] = _merge(merged_list[index], item)
            else:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(patch)


def _matches(resource: dict, target: dict) -> bool:
    return all(resource.get("kind") == v if k == "kind" else
               resource["metadata"].get("name") == v if k == "name" else True
               for k, v in target.items())


def build(directory: Path) -> list[dict]:
    """The resources ``kustomize build directory`` would print."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    resources: list[dict] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        if path.is_dir():
            resources.extend(build(path))
        else:
            resources.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for patch in spec.get("patches", []):
        body = yaml.safe_load((directory / patch["path"]).read_text())
        targets = [r for r in resources if _matches(r, patch["target"])]
        if not targets:
            raise ValueError(f"{directory / patch['path']}: no resource matches "
                             f"{patch['target']}")
        for resource in targets:
            resources[resources.index(resource)] = _merge(resource, body)
    for resource in resources:
        if spec.get("namespace") and resource["kind"] not in CLUSTER_SCOPED:
            resource["metadata"]["namespace"] = spec["namespace"]
        for group in spec.get("labels", []):
            resource["metadata"].setdefault("labels", {}).update(group["pairs"])
    return resources
