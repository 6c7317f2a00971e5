"""deploy/k8s: every overlay renders, every resource is valid against the Kubernetes
schemas, and the manifests agree with the service (its settings, probes, drain)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from orchestrator.settings import Settings
from tests.support.kustomize import build

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["cpu", "gpu"]
VERSIONS = ["1.29.0", "1.33.0"]
"""The oldest Kubernetes we claim and a current one."""


def rendered(overlay: str) -> dict[tuple[str, str], dict]:
    return {(r["kind"], r["metadata"]["name"]): r for r in build(K8S / "overlays" / overlay)}


def container(resources: dict, kind: str, name: str) -> dict:
    (first, *_) = resources[(kind, name)]["spec"]["template"]["spec"]["containers"]
    return first


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_resource_is_valid_for_kubernetes(overlay: str, version: str) -> None:
    resources = build(K8S / "overlays" / overlay)
    assert len(resources) >= 14
    for resource in resources:
        kubernetes_validate.validate(resource, version, strict=True)


def test_a_broken_manifest_is_caught() -> None:
    resources = rendered("cpu")
    deployment = resources[("Deployment", "orchestrator")]
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_every_file_a_kustomization_names_exists() -> None:
    for kustomization in K8S.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        for entry in [*spec.get("resources", []), *(p["path"] for p in spec.get("patches", []))]:
            assert (kustomization.parent / entry).exists(), (kustomization, entry)


def test_the_orchestrator_config_is_valid_settings() -> None:
    resources = rendered("gpu")
    config = resources[("ConfigMap", "voicechat-config")]["data"]
    secret = resources[("Secret", "voicechat-secrets")]["stringData"]
    settings = Settings.from_env({**config, **secret})  # a bad value raises, naming it
    assert settings.auth_required and settings.sql_url.startswith("mysql+aiomysql://")
    assert settings.triton_url == "triton:8001"
    assert settings.milvus_target == "http://milvus:19530"


def test_replicas_probes_and_the_drain_fit_together() -> None:
    resources = rendered("gpu")
    deployment = resources[("Deployment", "orchestrator")]
    pod = deployment["spec"]["template"]["spec"]
    orchestrator = container(resources, "Deployment", "orchestrator")
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert orchestrator["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert orchestrator["livenessProbe"]["httpGet"]["path"] == "/livez"
    # The kubelet kills at the grace period: the preStop pause and the drain fit inside.
    drain = float(resources[("ConfigMap", "voicechat-config")]["data"]["DRAIN_TIMEOUT_S"])
    pre_stop = float(orchestrator["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain + 10
    mounts = {m["mountPath"] for m in orchestrator["volumeMounts"]}
    assert "/models" in mounts  # the catalogue and promotions read the repository
    assert resources[("HorizontalPodAutoscaler", "orchestrator")]["spec"]["minReplicas"] >= 2
    pdb = resources[("PodDisruptionBudget", "orchestrator")]["spec"]
    assert pdb["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    service = resources[("Service", "orchestrator")]["spec"]
    assert service["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_ingress_keeps_websockets_and_routes_only_the_api() -> None:
    ingress = rendered("cpu")[("Ingress", "voicechat")]
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    paths = {p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert {"/api", "/v1", "/ws"} <= paths and "/metrics" not in paths


def test_triton_serves_the_promoted_versions_on_a_gpu_in_the_gpu_overlay() -> None:
    gpu = container(rendered("gpu"), "Deployment", "triton")
    cpu = container(rendered("cpu"), "Deployment", "triton")
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in cpu["resources"]["limits"]
    assert "command" not in gpu  # the image's entrypoint loads the promoted versions
    models = {m["mountPath"]: m["name"] for m in gpu["volumeMounts"]}
    assert models["/models"] == "models" and "/dev/shm" in models
    ports = {p["containerPort"] for p in gpu["ports"]}
    assert ports == {8000, 8001, 8002}
