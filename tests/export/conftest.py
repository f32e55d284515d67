"""Fixtures of the export tests: a tiny fine-tuned model directory and files converted from it.

Built once per session: a model directory in the `training.finetune` layout (a random 2-block
classifier over 3,000 MiniLM tokens) and its float32, dynamic-int8 and string-input `.tflite`
files, each with its manifest and parity report on 40 SST-2 test sentences.
"""

import os

import pytest

from tests.export import model_dirs
from tests.test_case import shared_path

SST2_TEST = shared_path("data", "sst2", "test.tsv")
SST2_TRAIN = shared_path("data", "sst2", "train.tsv")
EVAL_LIMIT = 40


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return model_dirs.write_tiny_model_dir(str(tmp_path_factory.mktemp("model_dir")))


@pytest.fixture(scope="session")
def converted(tiny_model_dir, tmp_path_factory):
    """`{variant: (path, parity report)}` for `none`, `dynamic` and `text` (string, float32)."""
    from export import tflite  # pylint: disable=import-outside-toplevel

    directory = str(tmp_path_factory.mktemp("tflite"))
    files = {}
    for name, quantize, string_input in (
        ("none", "none", False), ("dynamic", "dynamic", False), ("text", "none", True)
    ):
        path = os.path.join(directory, f"model_{name}.tflite")
        report = tflite.convert(
            tiny_model_dir, path, quantize=quantize, string_input=string_input,
            eval_path=SST2_TEST, eval_limit=EVAL_LIMIT, log=lambda message: None,
        )
        files[name] = (path, report)
    return files
