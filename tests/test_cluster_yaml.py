"""cluster.yaml: valid for Ray's own cluster launcher (its schema and defaults), offline.

`prepare_config` merges the AWS defaults the way `ray up` does and `validate_config` checks
Ray's JSON schema; neither talks to AWS, so no credentials are needed.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

CLUSTER_YAML = Path(__file__).resolve().parent.parent / "cluster.yaml"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


@pytest.fixture(scope="module")
def prepared(raw: dict) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(copy.deepcopy(raw))
    validate_config(config)
    return config


def test_passes_rays_schema(prepared: dict) -> None:
    assert prepared["provider"]["type"] == "aws"
    assert prepared["max_workers"] >= sum(
        node.get("min_workers", 0) for node in prepared["available_node_types"].values()
    )


def test_schema_check_is_real(raw: dict) -> None:
    """The validator rejects what the launcher would: an unknown node-type field."""
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    broken = copy.deepcopy(raw)
    broken["available_node_types"]["gpu"]["gpus"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(broken))


def test_node_types(prepared: dict) -> None:
    types = prepared["available_node_types"]
    head = types[prepared["head_node_type"]]
    assert head["resources"].get("CPU") == 0, "no decode/annotate work on the head"
    assert head["max_workers"] == 0

    cpu_workers = [n for k, n in types.items() if k != "head" and "GPU" not in n["resources"]]
    gpu_workers = [n for n in types.values() if n["resources"].get("GPU", 0) >= 1]
    assert cpu_workers, "a CPU (decode) worker type"
    assert gpu_workers, "a GPU (annotate) worker type with resources: {GPU: N}"
    for node in cpu_workers + gpu_workers:
        assert node["max_workers"] >= max(node["min_workers"], 1)
        assert node["node_config"]["InstanceType"]
        assert node["resources"]["CPU"] >= 1


def test_setup_installs_torch_then_project(prepared: dict) -> None:
    gpu = next(n for n in prepared["available_node_types"].values() if "GPU" in n["resources"])
    for commands in (prepared["head_setup_commands"], gpu["worker_setup_commands"]):
        torch_at = next(i for i, c in enumerate(commands) if "torch" in c)
        project = [i for i, c in enumerate(commands) if c.endswith("-e ~/clipnote")]
        assert len(project) == 1 and torch_at < project[0]
        # The project installs from the lock, as README and CI do.
        assert "-c ~/clipnote/requirements/lock.txt" in commands[project[0]]
    assert "whl/cpu" in " ".join(prepared["head_setup_commands"])
    assert "whl/cpu" not in " ".join(gpu["worker_setup_commands"])
    assert prepared["file_mounts"]["~/clipnote"] == "."


def test_token_auth_stays_on(prepared: dict) -> None:
    """Catches a start command without RAY_AUTH_MODE=token (auth silently off) — and, since the
    filter below could match nothing, a config whose start commands were renamed or dropped."""
    head = [c for c in prepared["head_start_ray_commands"] if "ray start" in c]
    workers = [c for c in prepared["worker_start_ray_commands"] if "ray start" in c]
    assert len(head) == 1 and "--head" in head[0]
    assert len(workers) == 1 and "--address=" in workers[0]
    for command in head + workers:
        assert "RAY_AUTH_MODE=token ray start" in command, command
    assert "~/.ray/auth_token" in prepared["file_mounts"]
    assert "RAY_AUTH_MODE=disabled" not in CLUSTER_YAML.read_text()


# -- images: every node type boots on a pinned image ---------------------------------------

RAY_DEFAULT_AMI_NAME = "Deep Learning AMI (Ubuntu 18.04)"
PINNED_TAG = re.compile(
    r"^rayproject/ray:(?P<ray>\d+\.\d+\.\d+)-py3(?P<minor>\d+)-(cpu|gpu|cu\d+)$"
)
DEPLOY = Path(__file__).resolve().parent.parent / "jobs" / "deploy"


def _container_image(prepared: dict, node_type: str) -> str:
    docker = prepared.get("docker") or {}
    own = prepared["available_node_types"][node_type].get("docker") or {}
    if node_type == prepared["head_node_type"]:
        return docker.get("head_image") or docker["image"]
    return own.get("worker_image") or docker.get("worker_image") or docker["image"]


def test_every_node_type_names_its_host_and_container_image(prepared: dict) -> None:
    """Nothing is left to Ray's default AMI (Python < 3.10, a driver too old for torch 2.13's
    CUDA build): each node type names its host image, and its container image is Ray's own,
    pinned to the client's Ray version and a Python >= 3.10, with CUDA for the GPU nodes."""
    import ray

    for name, node in prepared["available_node_types"].items():
        ami = node["node_config"].get("ImageId", "")
        assert ami, f"node type {name} leaves ImageId to Ray's default"
        assert ami.startswith(("ami-", "resolve:ssm:/aws/service/deeplearning/")), ami
        assert "ubuntu-18.04" not in ami and RAY_DEFAULT_AMI_NAME not in ami
        image = _container_image(prepared, name)
        tag = PINNED_TAG.match(image)
        assert tag, f"node type {name}: {image!r} is not a pinned Ray image"
        assert tag["ray"] == ray.__version__, "the cluster's Ray must be the client's"
        assert int(tag["minor"]) >= 10
        if node["resources"].get("GPU"):
            assert "nvidia-driver" in ami or ami.startswith("ami-"), "a host with a driver"
            assert not image.endswith("-cpu"), f"GPU node type {name} on a CPU-only image"


def test_setup_runs_inside_the_pinned_container(prepared: dict) -> None:
    """With `docker:` set the setup commands run in the container, whose Python is the image's."""
    assert prepared["docker"]["container_name"]
    assert prepared["docker"]["pull_before_run"] is True


# -- KubeRay: the same cluster on Kubernetes -----------------------------------------------


def _manifests() -> dict[str, dict]:
    found = {}
    for path in sorted((DEPLOY / "kuberay").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found[doc["kind"]] = doc
    return found


def _containers(template: dict) -> list[dict]:
    return template["spec"]["containers"]


def test_raycluster_has_the_fields_kuberay_requires() -> None:
    """Required by KubeRay's RayCluster type (ray.io/v1, `raycluster_types.go`): headGroupSpec
    with rayStartParams and a pod template; each worker group its groupName, minReplicas,
    maxReplicas, rayStartParams and template; each container a name and an image."""
    import ray

    cluster = _manifests()["RayCluster"]
    assert cluster["apiVersion"] == "ray.io/v1" and cluster["metadata"]["name"]
    spec = cluster["spec"]
    assert spec["rayVersion"] == ray.__version__
    head = spec["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict) and head["rayStartParams"]["num-cpus"] == "0"
    groups = spec["workerGroupSpecs"]
    assert groups
    for group in groups:
        assert group["groupName"]
        assert 0 <= group["minReplicas"] <= group["maxReplicas"]
        assert isinstance(group["rayStartParams"], dict)
    for template in [head["template"]] + [g["template"] for g in groups]:
        for container in _containers(template):
            assert container["name"] and container["image"]


def test_kuberay_gpu_group_asks_for_nvidia_gpus_on_the_one_image() -> None:
    manifests = _manifests()
    spec = manifests["RayCluster"]["spec"]
    templates = [spec["headGroupSpec"]["template"]]
    templates += [g["template"] for g in spec["workerGroupSpecs"]]
    images = {c["image"] for t in templates for c in _containers(t)}
    cron = manifests["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]
    images |= {c["image"] for c in _containers(cron)}
    assert len(images) == 1, images  # head, decode, GPU workers and the nightly submitter
    (image,) = images
    assert not image.endswith(":latest")
    gpu = [
        g for g in spec["workerGroupSpecs"]
        if any("nvidia.com/gpu" in c["resources"]["limits"] for c in _containers(g["template"]))
    ]  # fmt: skip
    assert len(gpu) == 1
    (container,) = _containers(gpu[0]["template"])
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert gpu[0]["rayStartParams"]["num-gpus"] == "1"


def test_kuberay_image_is_built_from_the_pinned_ray_image_and_the_lock(prepared: dict) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)$", dockerfile, re.MULTILINE)
    assert base == _container_image(prepared, "gpu")
    assert '"torch==2.13.0"' in dockerfile
    assert "-c requirements/lock.txt" in dockerfile


def test_cronjob_submits_to_the_rayclusters_head_service() -> None:
    manifests = _manifests()
    name = manifests["RayCluster"]["metadata"]["name"]
    cron = manifests["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]
    (container,) = _containers(cron)
    assert f"--address http://{name}-head-svc:8265" in " ".join(container["args"])
