"""Kubernetes manifests, validated offline: render, schemas, and the policies we promise."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.32.0"
OVERLAYS = ["overlays/cpu", "overlays/gpu"]
pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (client) is needed to render kustomize"
)


def render(path: str) -> list[dict]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "k8s" / path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_strictly(overlay):
    for doc in render(overlay):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_rayjob_validates_against_its_crd_schema_and_pods_against_kubernetes():
    schema = json.loads((ROOT / "k8s/schemas/rayjob.ray.io_v1.subset.json").read_text())
    docs = render("ray")
    jobs = by_kind(docs, "RayJob")
    assert len(jobs) == 1
    jsonschema.validate(jobs[0], schema)
    cluster = jobs[0]["spec"]["rayClusterSpec"]
    templates = [cluster["headGroupSpec"]["template"]]
    templates += [g["template"] for g in cluster["workerGroupSpecs"]]
    for template in templates:
        pod = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": "t"},
            "template": template,
        }
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    for doc in docs:
        if doc["kind"] != "RayJob":
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_crd_schema_rejects_a_typo():
    schema = json.loads((ROOT / "k8s/schemas/rayjob.ray.io_v1.subset.json").read_text())
    job = by_kind(render("ray"), "RayJob")[0]
    job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replica"] = 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(job, schema)


def containers(doc: dict) -> list[dict]:
    if doc["kind"] == "RayJob":
        c = doc["spec"]["rayClusterSpec"]
        pods = [c["headGroupSpec"]["template"]] + [g["template"] for g in c["workerGroupSpecs"]]
        return [x for p in pods for x in p["spec"]["containers"]]
    return doc["spec"]["template"]["spec"]["containers"]


def pod_specs(doc: dict) -> list[dict]:
    if doc["kind"] == "RayJob":
        c = doc["spec"]["rayClusterSpec"]
        return [c["headGroupSpec"]["template"]["spec"]] + [
            g["template"]["spec"] for g in c["workerGroupSpecs"]
        ]
    return [doc["spec"]["template"]["spec"]]


@pytest.mark.parametrize("overlay", [*OVERLAYS, "ray"])
def test_containers_are_bounded_hardened_and_pinned(overlay):
    workloads = [d for d in render(overlay) if d["kind"] in ("Deployment", "RayJob")]
    assert workloads
    for doc in workloads:
        for spec in pod_specs(doc):
            assert spec["securityContext"]["runAsNonRoot"] is True
        for c in containers(doc):
            assert c["resources"]["requests"] and c["resources"]["limits"], c["name"]
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
            image = c["image"]
            assert ":" in image and not image.endswith(":latest"), image
            if doc["kind"] == "Deployment":
                assert c["securityContext"]["readOnlyRootFilesystem"] is True
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    assert probe in c, (c["name"], probe)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_management_port_is_never_exposed(overlay):
    docs = render(overlay)
    for service in by_kind(docs, "Service"):
        assert 8081 not in [p["port"] for p in service["spec"]["ports"]]
        assert 8081 not in [p.get("targetPort") for p in service["spec"]["ports"]]
    for c in containers(by_kind(docs, "Deployment")[0]):
        assert 8081 not in [p["containerPort"] for p in c["ports"]]
    config = next(d for d in by_kind(docs, "ConfigMap"))["data"]["config.properties"]
    assert "management_address=http://127.0.0.1:" in config


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_and_service_select_the_serving_pods(overlay):
    docs = render(overlay)
    labels = by_kind(docs, "Deployment")[0]["spec"]["template"]["metadata"]["labels"]
    policy = by_kind(docs, "NetworkPolicy")[0]["spec"]["podSelector"]["matchLabels"]
    service = by_kind(docs, "Service")[0]["spec"]["selector"]
    for selector in (policy, service):
        assert selector and all(labels.get(k) == v for k, v in selector.items())


def test_gpu_overlay_asks_for_a_gpu_on_gpu_nodes():
    deployment = by_kind(render("overlays/gpu"), "Deployment")[0]
    spec = deployment["spec"]["template"]["spec"]
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["tolerations"] and spec["nodeSelector"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_traffic_waits_for_a_ready_worker_and_liveness_for_the_frontend(overlay):
    for c in containers(by_kind(render(overlay), "Deployment")[0]):
        for probe in ("startupProbe", "readinessProbe"):
            assert c[probe]["exec"]["command"] == ["mrseq", "ready"], probe
        assert c["livenessProbe"]["httpGet"]["path"] == "/ping"
