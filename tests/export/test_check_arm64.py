"""Tests of `export.check_arm64` and `export.core.arm64_runner`.

The default tests cover the host side: reading the TSV, the comparison, the verdicts, the
report, and the runner on small token-id `.tflite` files here. The slow test runs those files on
the emulated arm64 CPU; it needs `scripts/setup_arm64.sh` to have run (as root; the rootfs is
`.cache/arm64/rootfs` or `$KERAS_BERT_ARM64_ROOTFS`) and skips with that reason otherwise.
"""

import json
import os

import numpy as np
import pytest

from export.core import arm64_runner
from export import check_arm64
from tests.export import token_id_models

THRESHOLDS = {
    "float_max_abs_diff": 1e-4,
    "float_min_agreement": 1.0,
    "quantized_min_agreement": 0.995,
    "quantized_max_accuracy_gap": 0.5,
    "quantized_max_abs_diff": 0.5,
}
# Bazel runs tests from runfiles, away from the checkout: it passes the rootfs's path instead.
ROOTFS = os.environ.get("KERAS_BERT_ARM64_ROOTFS") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    ".cache", "arm64", "rootfs",
)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tflite_files(tmp_path_factory):
    return token_id_models.write_token_id_tflite(str(tmp_path_factory.mktemp("tflite")))


# === Examples ===


def test_read_eval_tsv_single_sentences(tmp_path):
    path = _write(tmp_path / "e.tsv", "sentence\tlabel\na good film \t1\nbad .\t0\n\n")
    texts, texts_pair, labels = check_arm64.read_eval_tsv(path)
    assert texts == ["a good film ", "bad ."]
    assert texts_pair is None
    np.testing.assert_array_equal(labels, [1, 0])


def test_read_eval_tsv_pairs_and_limit(tmp_path):
    path = _write(tmp_path / "e.tsv", "label\tsentence1\tsentence2\n1\ta\tb\n0\tc\td\n1\te\tf\n")
    texts, texts_pair, labels = check_arm64.read_eval_tsv(path, limit=2)
    assert (texts, texts_pair) == (["a", "c"], ["b", "d"])
    np.testing.assert_array_equal(labels, [1, 0])


@pytest.mark.parametrize(
    "text, message",
    [
        # The TSV reader of `keras_bert.tasks.classification`, which names the file and line.
        ("sentence\tlabel\nok\t1\nno label here\n",
         r"e\.tsv:3: expected 2 TSV columns \(sentence, label\), found 1"),
        ("sentence\tlabel\nok\tpositive\n", r"e\.tsv:2: label 'positive' is not an integer"),
        ("text\tlabel\nok\t1\n", r"e\.tsv:1: the header .* names no `sentence`"),
        ("sentence\tscore\nok\t1\n", r"names no `label` column"),
        ("sentence\tlabel\n", r"e\.tsv: no examples"),
    ],
)
def test_read_eval_tsv_errors(tmp_path, text, message):
    path = _write(tmp_path / "e.tsv", text)
    with pytest.raises(ValueError, match=message):
        check_arm64.read_eval_tsv(path)


def test_read_eval_tsv_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"`--eval` file .*nope\.tsv.* does not exist"):
        check_arm64.read_eval_tsv(str(tmp_path / "nope.tsv"))


def test_tokenizer_settings_without_manifest(tmp_path):
    model = _write(tmp_path / "m.tflite", "")
    with pytest.raises(ValueError, match=r"Found no vocabulary for .*m\.tflite"):
        check_arm64.tokenizer_settings(model)
    with pytest.raises(ValueError, match=r"`--vocab` .*missing.* does not exist"):
        check_arm64.tokenizer_settings(model, str(tmp_path / "missing"))
    vocab = _write(tmp_path / "vocab.txt", "[PAD]\n")
    assert check_arm64.tokenizer_settings(model) == {
        "vocabulary": vocab, "lower_case": None, "sequence_length": 128
    }
    (tmp_path / "tokenizer").mkdir()
    _write(tmp_path / "tokenizer" / "vocab.txt", "[PAD]\n")
    settings = check_arm64.tokenizer_settings(model, sequence_length=64)
    assert settings == {
        "vocabulary": str(tmp_path / "tokenizer"), "lower_case": None, "sequence_length": 64
    }
    with pytest.raises(ValueError, match=r"`--sequence_length` \(1\) must be at least 2"):
        check_arm64.tokenizer_settings(model, vocab, sequence_length=1)


def test_tokenizer_settings_keeps_max_length_as_a_deprecated_alias(tmp_path):
    model = _write(tmp_path / "m.tflite", "")
    vocab = _write(tmp_path / "vocab.txt", "[PAD]\n")
    with pytest.warns(DeprecationWarning, match="use `sequence_length`"):
        settings = check_arm64.tokenizer_settings(model, max_length=64)
    assert settings == check_arm64.tokenizer_settings(model, sequence_length=64) == {
        "vocabulary": vocab, "lower_case": None, "sequence_length": 64
    }


def test_tokenizer_settings_from_export_manifest(tmp_path):
    # What `export.tflite` writes beside `model.tflite`.
    model = _write(tmp_path / "model.tflite", "")
    vocab = _write(tmp_path / "model.vocab.txt", "[PAD]\n")
    _write(tmp_path / "vocab.txt", "[UNK]\n")
    manifest = {
        "vocab": "model.vocab.txt",
        "vocab_sha256": check_arm64.file_sha256(vocab),
        "lower_case": False,
        "max_seq_length": 96,
    }
    _write(tmp_path / "model.manifest.json", json.dumps(manifest))
    assert check_arm64.tokenizer_settings(model) == {
        "vocabulary": vocab, "lower_case": False, "sequence_length": 96
    }
    # The flags win; lower-casing is then left to the tokenizer's own files.
    other = _write(tmp_path / "other.txt", "[PAD]\n")
    assert check_arm64.tokenizer_settings(model, other, 32) == {
        "vocabulary": other, "lower_case": None, "sequence_length": 32
    }


@pytest.mark.parametrize(
    "manifest, message",
    [
        ({"vocab": "gone.txt"}, r"model\.manifest\.json: `vocab` \('gone\.txt'\) does not exist"),
        (
            {"vocab": "vocab.txt", "vocab_sha256": "0" * 64},
            r"vocab\.txt has SHA-256 [0-9a-f]{64}, not `vocab_sha256` 0000",
        ),
        (["vocab.txt"], r"model\.manifest\.json holds a list, not an object"),
    ],
)
def test_tokenizer_settings_manifest_errors(tmp_path, manifest, message):
    model = _write(tmp_path / "model.tflite", "")
    _write(tmp_path / "vocab.txt", "[PAD]\n")
    _write(tmp_path / "model.manifest.json", json.dumps(manifest))
    with pytest.raises(ValueError, match=message):
        check_arm64.tokenizer_settings(model)


def test_tokenizer_settings_bad_json(tmp_path):
    model = _write(tmp_path / "model.tflite", "")
    _write(tmp_path / "manifest.json", "{not json")
    with pytest.raises(ValueError, match=r"manifest\.json is not valid JSON"):
        check_arm64.tokenizer_settings(model)


# === Comparison ===


def test_compare_logits():
    labels = np.array([0, 1, 1, 0])
    x86 = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.2, 0.1]], np.float32)
    arm64 = x86.copy()
    arm64[3] = [0.1, 0.2]  # A near tie flips: 1 of 4 labels differs.
    metrics = check_arm64.compare_logits(x86, arm64, labels)
    assert metrics["num_examples"] == 4
    assert metrics["max_abs_diff"] == pytest.approx(0.1)
    assert metrics["max_abs_diff_example"] == 3
    assert metrics["label_agreement"] == 0.75
    assert metrics["num_label_disagreements"] == 1
    assert metrics["accuracy_x86"] == 1.0
    assert metrics["accuracy_arm64"] == 0.75
    assert metrics["accuracy_gap_points"] == pytest.approx(25.0)


def test_compare_logits_single_logit_is_binary():
    np.testing.assert_array_equal(
        check_arm64.predicted_labels(np.array([[-0.5], [0.5]])), [0, 1]
    )


def test_compare_logits_errors():
    with pytest.raises(ValueError, match=r"x86 logits have shape \(2, 2\) but arm64 .*\(2, 3\)"):
        check_arm64.compare_logits(np.zeros((2, 2)), np.zeros((2, 3)), np.zeros(2, int))
    with pytest.raises(ValueError, match=r"do not fit 3 labels"):
        check_arm64.compare_logits(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros(3, int))
    with pytest.raises(ValueError, match=r"Label 2 is out of range for 2 logits"):
        check_arm64.compare_logits(np.zeros((2, 2)), np.zeros((2, 2)), np.array([0, 2]))


def test_judge():
    good = {"label_agreement": 1.0, "max_abs_diff": 5e-7, "accuracy_gap_points": 0.0}
    assert check_arm64.judge(good, quantized=False, thresholds=THRESHOLDS) == []
    float_bad = dict(good, max_abs_diff=2e-4, label_agreement=0.999)
    failures = check_arm64.judge(float_bad, quantized=False, thresholds=THRESHOLDS)
    assert len(failures) == 2 and "max |diff| 0.0002 > 0.0001" in failures[1]
    nan = dict(good, max_abs_diff=float("nan"))
    assert check_arm64.judge(nan, quantized=False, thresholds=THRESHOLDS)
    # Quantized files are judged on labels and accuracy, and only loosely on the differences.
    int8_ok = {"label_agreement": 0.996, "max_abs_diff": 5e-3, "accuracy_gap_points": 0.4}
    assert check_arm64.judge(int8_ok, quantized=True, thresholds=THRESHOLDS) == []
    int8_bad = dict(int8_ok, label_agreement=0.99, accuracy_gap_points=0.6, max_abs_diff=1.3)
    failures = check_arm64.judge(int8_bad, quantized=True, thresholds=THRESHOLDS)
    assert failures == [
        "label agreement 0.9900 < 0.995",
        "accuracy gap 0.60 points > 0.5",
        "max |diff| 1.3 > 0.5",
    ]


def test_skipped_files_do_not_fail_the_report(tmp_path):
    path = _write(tmp_path / "text.tflite", "bytes")
    entry = check_arm64.skipped_entry(path, ["text"], "why")
    report = check_arm64.build_report([entry], "t.tsv", [], {}, {}, THRESHOLDS)
    assert report["passed"] and entry["skipped"] and entry["reason"] == "why"


def test_file_entry_fails_without_xnnpack_on_arm64(tmp_path):
    metrics = check_arm64.compare_logits(np.eye(2), np.eye(2), np.array([0, 1]))
    path = _write(tmp_path / "m.tflite", "bytes")
    info = {"tensor_dtypes": {}, "signature": "s", "output": "logits", "inference_seconds": 1.0}
    entry = check_arm64.file_entry(
        path, {}, metrics, dict(info, xnnpack_nodes=9), dict(info, xnnpack_nodes=0), THRESHOLDS
    )
    assert entry["failures"] == ["XNNPACK ran 9 nodes on x86 but none on arm64"]


def test_proc_cpuinfo():
    text = check_arm64.proc_cpuinfo("cortex-a76")
    assert "CPU implementer\t: 0x41\n" in text and "CPU part\t: 0xd0b\n" in text
    assert "CPU part\t: 0x051\n" in check_arm64.proc_cpuinfo("max")
    with pytest.raises(ValueError, match=r"`--arm64_cpu` \('cortex-x1'\) must be one of"):
        check_arm64.proc_cpuinfo("cortex-x1")


def test_is_quantized():
    assert check_arm64.is_quantized({"float32": 10, "int8": 3})
    assert not check_arm64.is_quantized({"float32": 10, "int32": 4, "bool": 2})


# === Report ===


def _entry(tmp_path, name, quantized, metrics):
    path = _write(tmp_path / name, "bytes")
    info = {
        "tensor_dtypes": {"float32": 5, "int8": 2 if quantized else 0},
        "xnnpack_nodes": 7,
        "signature": "serving_default",
        "output": "logits",
        "inference_seconds": 0.5,
    }
    arm64 = dict(info, inference_seconds=9.0, process_seconds=20.0)
    tokenizer = {"vocabulary": "vocab.txt", "lower_case": True, "sequence_length": 128}
    return check_arm64.file_entry(path, tokenizer, metrics, info, arm64, THRESHOLDS)


def test_report_files(tmp_path):
    labels = np.array([0, 1, 1])
    x86 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    good = check_arm64.compare_logits(x86, x86 + 1e-6, labels)
    bad = check_arm64.compare_logits(x86, x86[:, ::-1], labels)
    text_model = _write(tmp_path / "text.tflite", "bytes")
    entries = [
        _entry(tmp_path, "float32.tflite", False, good),
        _entry(tmp_path, "dynamic_int8.tflite", True, bad),
        check_arm64.skipped_entry(text_model, ["text"], check_arm64.STRING_INPUT_NOTE),
    ]
    assert entries[0]["passed"] and entries[0]["kind"] == "float"
    # The report's key of the packed length is the one it was first written with.
    assert entries[0]["tokenizer"] == {
        "vocabulary": "vocab.txt", "lower_case": True, "max_length": 128
    }
    assert not entries[1]["passed"] and entries[1]["kind"] == "quantized (int8 weights)"
    versions = {"machine": "x86_64", "python": "3.11", "numpy": "2", "ai_edge_litert": "2.3.0"}
    report = check_arm64.build_report(
        entries, "test.tsv", ["python", "-m", "export.check_arm64", "f.tflite"],
        versions, {"versions": dict(versions, machine="aarch64"), "how": "chroot", "qemu": "q"},
        THRESHOLDS,
    )
    assert not report["passed"]
    json_path, markdown_path = check_arm64.write_report(report, str(tmp_path / "out"))
    with open(json_path, encoding="utf-8") as f:
        assert json.load(f) == report
    markdown = open(markdown_path, encoding="utf-8").read()
    assert "Overall: **FAIL** (1 file(s) not run, below)." in markdown
    assert "| `text.tflite` | inputs text | - |" in markdown
    assert "`text.tflite`: not run on arm64: a string-input file." in markdown
    assert (
        "| `float32.tflite` | float | 3 | 1e-06 | 100.00% (0 differ) | 66.67% | 66.67% | 7 / 7 | "
        "pass |" in markdown
    )
    assert "| arm64 | aarch64 | 3.11 | 2.3.0 |" in markdown
    assert "max \\|diff\\| 1 > 0.5 |" in markdown  # Pipes in a cell are escaped.
    assert sorted(os.listdir(tmp_path / "out")) == ["report.json", "report.md"]


# === The runner, on this host ===


def test_runner_matches_dynamic_and_padded_lengths(tflite_files):
    inputs = token_id_models.random_token_inputs(6, sequence_length=24)
    logits, info = arm64_runner.run_model(tflite_files["float32"], inputs)
    assert logits.shape == (6, 2) and logits.dtype == np.float32
    assert info["output"] == "logits" and info["signature"] == "serving_default"
    assert not check_arm64.is_quantized(info["tensor_dtypes"])
    # The runner cuts each example to its length; the masked padding must not change the logits.
    padded = dict(inputs, lengths=np.full_like(inputs["lengths"], 24))
    padded_logits, _ = arm64_runner.run_model(tflite_files["float32"], padded)
    np.testing.assert_allclose(padded_logits, logits, atol=1e-5)
    _, int8_info = arm64_runner.run_model(tflite_files["dynamic_int8"], inputs)
    assert check_arm64.is_quantized(int8_info["tensor_dtypes"])


def test_runner_command_line(tflite_files, tmp_path):
    inputs = token_id_models.random_token_inputs(3)
    arm64_runner.save_npz_atomically(str(tmp_path / "in.npz"), **inputs)
    arm64_runner.main([
        f"--model={tflite_files['float32']}",
        f"--inputs={tmp_path / 'in.npz'}",
        f"--output={tmp_path / 'out.npz'}",
    ])
    with np.load(tmp_path / "out.npz", allow_pickle=False) as data:
        assert data["logits"].shape == (3, 2)
        assert json.loads(str(data["info"]))["num_examples"] == 3
    assert sorted(os.listdir(tmp_path)) == ["in.npz", "out.npz"]


def test_runner_errors(tflite_files, tmp_path):
    inputs = token_id_models.random_token_inputs(2)
    with pytest.raises(ValueError, match=r"`signature_key` \('nope'\) is not a signature"):
        arm64_runner.run_model(tflite_files["float32"], inputs, signature_key="nope")
    # A signature with one output gives that output whatever `output_name` says.
    _, info = arm64_runner.run_model(tflite_files["float32"], inputs, output_name="probabilities")
    assert info["output"] == "logits"
    np.savez(tmp_path / "bad.npz", token_ids=np.zeros((2, 4), "int32"))
    missing = r"lacks arrays \['segment_ids', 'padding_mask', 'lengths'\]"
    with pytest.raises(ValueError, match=missing):
        arm64_runner.load_inputs(str(tmp_path / "bad.npz"))


def test_signature_inputs(tflite_files, tmp_path):
    assert sorted(arm64_runner.signature_inputs(tflite_files["float32"])) == [
        "padding_mask", "segment_ids", "token_ids"
    ]
    text_model = token_id_models.write_string_input_tflite(str(tmp_path / "text.tflite"))
    assert arm64_runner.signature_inputs(text_model) == ["text"]


def test_check_rootfs_missing(tmp_path):
    with pytest.raises(ValueError, match=r"run scripts/setup_arm64\.sh"):
        check_arm64.check_rootfs(str(tmp_path), "/opt/litert/bin/python")


# === The emulated arm64 CPU ===


@pytest.mark.slow
def test_arm64_matches_x86(tflite_files):
    try:
        check_arm64.check_rootfs(ROOTFS, "/opt/litert/bin/python")
    except ValueError as error:
        pytest.skip(f"the arm64 set-up is missing: {error}")
    inputs = token_id_models.random_token_inputs(20, sequence_length=64)
    labels = np.zeros(20, np.int64)
    for name, path in tflite_files.items():
        x86_logits, x86_info = check_arm64.run_on_x86(path, inputs)
        arm64_logits, arm64_info = check_arm64.run_on_arm64(path, inputs, ROOTFS)
        assert arm64_info["versions"]["machine"] == "aarch64"
        assert arm64_info["xnnpack_nodes"] > 0, "XNNPACK did not start under emulation"
        assert x86_info["versions"]["machine"] == "x86_64"
        metrics = check_arm64.compare_logits(x86_logits, arm64_logits, labels)
        quantized = check_arm64.is_quantized(x86_info["tensor_dtypes"])
        assert quantized == (name == "dynamic_int8")
        assert check_arm64.judge(metrics, quantized, THRESHOLDS) == [], (name, metrics)
