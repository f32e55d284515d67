"""Crash-safe writes: the old file survives a failure, the new one gets normal permissions."""

import json
import os

import pytest

from keras_bert.utils.atomic import atomic_directory, atomic_file, write_json


def _write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def test_atomic_file_replaces_and_keeps_the_umask_permissions(tmp_path):
    path = tmp_path / "out.json"
    _write(path, "old")
    umask = os.umask(0o022)
    try:
        with atomic_file(str(path)) as temporary:
            assert os.path.dirname(temporary) == str(tmp_path)
            _write(temporary, "new")
    finally:
        os.umask(umask)
    assert path.read_text(encoding="utf-8") == "new"
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_file_failure_leaves_the_old_file(tmp_path):
    path = tmp_path / "out.json"
    _write(path, "old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_file(str(path)) as temporary:
            _write(temporary, "half")
            raise RuntimeError("disk full")
    assert path.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_directory_failure_leaves_no_directory(tmp_path):
    target = tmp_path / "1"
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_directory(str(target)) as temporary:
            _write(os.path.join(temporary, "saved_model.pb"), "x")
            raise RuntimeError("crash")
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_write_json_round_trips_and_a_failure_leaves_the_old_file(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(str(path), {"b": 1, "a": [0.5, "x"]}, indent=2, sort_keys=True)
    assert path.read_text(encoding="utf-8") == '{\n  "a": [\n    0.5,\n    "x"\n  ],\n  "b": 1\n}\n'
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json(str(path), {"a": object()})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": [0.5, "x"], "b": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]
