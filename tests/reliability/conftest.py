"""Fixtures of the reliability tests: one tiny model directory and its exported files.

The model directory is `tests.export.model_dirs.write_tiny_model_dir` (a random 2-block
classifier over 3,000 MiniLM tokens); the float32 token-id `.tflite` file and the
SavedModel are written from it by the project's own exporters, once per session.
"""

import os

import pytest

from tests.export import model_dirs
from tests.test_case import shared_path

SST2_TEST = shared_path("data", "sst2", "test.tsv")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return model_dirs.write_tiny_model_dir(str(tmp_path_factory.mktemp("model_dir")))


@pytest.fixture(scope="session")
def tflite_path(tiny_model_dir, tmp_path_factory):
    from export import tflite  # pylint: disable=import-outside-toplevel

    path = os.path.join(str(tmp_path_factory.mktemp("tflite")), "model.tflite")
    tflite.convert(tiny_model_dir, path, quantize="none", eval_path=SST2_TEST, eval_limit=8,
                   log=lambda message: None)
    return path


@pytest.fixture(scope="session")
def saved_model_path(tiny_model_dir, tmp_path_factory):
    from export import saved_model  # pylint: disable=import-outside-toplevel

    out = str(tmp_path_factory.mktemp("serving"))
    return saved_model.export_saved_model(tiny_model_dir, out, verify=False)["path"]
