"""Loading from an `s3://` prefix on a real S3 server (moto, loopback), cached once per node."""

from __future__ import annotations

import pytest
import torch

from model import load_model
from model.remote import FetchError
from tests.helpers import UPSTREAM


def upload_dir(client, bucket: str, prefix: str, root) -> None:
    client.create_bucket(Bucket=bucket)
    for path in sorted(root.iterdir()):
        client.upload_file(str(path), bucket, f"{prefix}/{path.name}")


def test_load_from_s3_matches_local_and_is_cached(s3_client, s3_endpoint, tmp_path):
    upload_dir(s3_client, "models", "tinyllava/group", UPSTREAM / "ckpt_group")
    s3_client.put_object(Bucket="models", Key="tinyllava/group/evil.py", Body=b"raise SystemExit")
    cache = tmp_path / "cache"
    remote = load_model(
        "s3://models/tinyllava/group", device="cpu", endpoint_url=s3_endpoint, cache_dir=cache
    )
    local = load_model(UPSTREAM / "ckpt_group", device="cpu")
    videos = torch.randn(1, 2, 3, 56, 56)
    with torch.no_grad():
        torch.testing.assert_close(remote.encode_video(videos), local.encode_video(videos))
    assert remote.model_id.split("@")[1] == local.model_id.split("@")[1]

    [cached] = [p for p in cache.iterdir() if p.is_dir()]
    assert not (cached / "evil.py").exists()  # code files are never fetched
    stamp = (cached / "model.safetensors").stat().st_mtime_ns
    load_model(
        "s3://models/tinyllava/group", device="cpu", endpoint_url=s3_endpoint, cache_dir=cache
    )
    assert (cached / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not re-fetched


def test_changed_remote_object_is_fetched_again(s3_client, s3_endpoint, tmp_path):
    upload_dir(s3_client, "models2", "ckpt", UPSTREAM / "ckpt_naive")
    cache = tmp_path / "cache"
    load_model("s3://models2/ckpt", device="cpu", endpoint_url=s3_endpoint, cache_dir=cache)
    config = (UPSTREAM / "ckpt_naive" / "config.json").read_text()
    s3_client.put_object(
        Bucket="models2", Key="ckpt/config.json", Body=config.replace("3072", "2048")
    )
    model = load_model("s3://models2/ckpt", device="cpu", endpoint_url=s3_endpoint, cache_dir=cache)
    assert model.config.tokenizer_model_max_length == 2048


def test_missing_prefix_is_a_clear_error(s3_client, s3_endpoint, tmp_path):
    s3_client.create_bucket(Bucket="empty")
    with pytest.raises(FetchError, match="s3://empty/nothing: no such prefix"):
        load_model("s3://empty/nothing", device="cpu", endpoint_url=s3_endpoint, cache_dir=tmp_path)
