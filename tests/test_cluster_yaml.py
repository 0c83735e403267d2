"""cluster.yaml: valid for Ray's own cluster launcher (its schema and defaults), offline.

`prepare_config` merges the AWS defaults the way `ray up` does and `validate_config` checks
Ray's JSON schema; neither talks to AWS, so no credentials are needed.
"""

from __future__ import annotations

import copy
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
