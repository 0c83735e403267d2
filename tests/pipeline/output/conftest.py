"""Every output test that touches storage runs on a local folder and on S3 (moto)."""

from __future__ import annotations

import pytest

from tests.pipeline.output.parts import new_output


@pytest.fixture(params=["local", "s3"])
def output(request, tmp_path):
    if request.param == "local":
        return new_output("local", tmp_path, None, None)
    s3_client = request.getfixturevalue("s3_client")
    endpoint = request.getfixturevalue("s3_endpoint")
    return new_output("s3", tmp_path, s3_client, endpoint)
