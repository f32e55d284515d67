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
from tests.export import task_tflite
from tests.export import token_id_models
from tests.test_case import shared_path

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


# === Files of the other tasks (question answering, token tagging, embeddings) ===

SQUAD = shared_path("data", "squad", "dev-v1.1-2articles.json")
CONLL = (
    "-DOCSTART- O\n\nEU B-ORG\nrejects O\nGerman B-MISC\ncall O\n. O\n\n"
    "Peter B-PER\nBlackburn I-PER\n\nBRUSSELS B-LOC\n1996-08-22 O\n"
)


@pytest.fixture(scope="module")
def task_files(tmp_path_factory):
    """Float32 files of the three tasks and a dynamic-int8 embedding file; the QA file takes
    (1, 64) inputs and its manifest shapes its windows."""
    directory = str(tmp_path_factory.mktemp("task_tflite"))
    files = {
        task: task_tflite.write_task_tflite(directory, task, sequence_length=64)
        for task in ("text_embedding", "token_classification")
    }
    files["qa"] = task_tflite.write_task_tflite(
        directory, "qa", sequence_length=64,
        manifest_extra={"doc_stride": 32, "max_query_length": 16},
    )
    files["text_embedding_int8"] = task_tflite.write_task_tflite(
        directory, "text_embedding", sequence_length=64, quantize=True
    )
    return files


def test_file_task(task_files, tmp_path):
    assert check_arm64.file_task(task_files["qa"]) == "qa"
    assert check_arm64.file_task(task_files["text_embedding"]) == "text_embedding"
    # Without a manifest: a classifier, as before.
    assert check_arm64.file_task(_write(tmp_path / "m.tflite", "")) == "classification"
    _write(tmp_path / "n.tflite", "")
    _write(tmp_path / "n.manifest.json", json.dumps({"task": "parsing"}))
    with pytest.raises(ValueError, match=r"n\.tflite: the manifest's task 'parsing' is not one"):
        check_arm64.file_task(str(tmp_path / "n.tflite"))


def test_read_eval_of_every_task(tmp_path):
    questions = check_arm64.read_eval("qa", SQUAD, limit=3)
    assert len(questions) == 3 and questions[0].question and questions[0].context
    sentences = check_arm64.read_eval(
        "token_classification", _write(tmp_path / "d.conll", CONLL)
    )
    assert [s.words for s in sentences] == [
        ["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"],
        ["BRUSSELS", "1996-08-22"],
    ]
    texts = check_arm64.read_eval(
        "text_embedding", _write(tmp_path / "e.tsv", "sentence\nA man is eating .\nhi\n"), 1
    )
    assert texts == ["A man is eating ."]
    texts, _, labels = check_arm64.read_eval(
        "classification", _write(tmp_path / "c.tsv", "sentence\tlabel\nok\t1\n")
    )
    assert texts == ["ok"] and labels.tolist() == [1]
    with pytest.raises(ValueError, match=r"`--eval` file .*nope\.json.* does not exist"):
        check_arm64.read_eval("qa", str(tmp_path / "nope.json"))
    with pytest.raises(ValueError, match=r"e2\.tsv:1: the header \['text'\] names no `sentence`"):
        check_arm64.read_eval("text_embedding", _write(tmp_path / "e2.tsv", "text\nhi\n"))


def test_pack_examples_of_every_task(task_files, tmp_path):
    manifest_settings = check_arm64.tokenizer_settings(task_files["qa"])
    assert manifest_settings["sequence_length"] == 64
    questions = check_arm64.read_eval("qa", SQUAD, limit=2)
    manifest = {"doc_stride": 32, "max_query_length": 16}
    inputs = check_arm64.pack_examples("qa", questions, manifest_settings, manifest)
    # Windows of 64 tokens over each context, the question first.
    assert inputs["token_ids"].shape[1] == 64 and inputs["token_ids"].shape[0] > 2
    assert inputs["lengths"].tolist() == inputs["padding_mask"].sum(axis=1).tolist()
    assert (inputs["token_ids"][:, 0] == 101).all() and inputs["segment_ids"].max() == 1
    # A smaller stride (from the manifest) makes more windows than the task's default 128.
    default = check_arm64.pack_examples(
        "qa", questions, dict(manifest_settings, sequence_length=96)
    )
    assert len(default["lengths"]) < len(inputs["lengths"])
    settings = check_arm64.tokenizer_settings(task_files["token_classification"])
    sentences = check_arm64.read_eval(
        "token_classification", _write(tmp_path / "d.conll", CONLL)
    )
    tagged = check_arm64.pack_examples("token_classification", sentences, settings)
    assert tagged["lengths"].tolist() == [7, 4, 8]  # [CLS] pieces [SEP]
    embedded = check_arm64.pack_examples("text_embedding", ["a man is eating ."], settings)
    assert embedded["lengths"].tolist() == [7] and not embedded["segment_ids"].any()


def test_compare_output_kinds():
    lengths = np.array([2, 3])
    # Token logits (length, num_tags): padding positions (beyond `lengths`) are not compared.
    x86 = [np.array([[1.0, 0.0], [0.0, 1.0], [9.0, 0.0]]), np.array([[1.0, 0.0]] * 3)]
    arm64 = [np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 9.0]]), np.array([[1.0, 0.0]] * 2
                                                                       + [[0.0, 0.5]])]
    metrics = check_arm64.compare_output("token_logits", x86, arm64, lengths)
    assert metrics["num_argmax"] == 5 and metrics["num_argmax_disagreements"] == 1
    assert metrics["argmax_agreement"] == pytest.approx(0.8)
    assert metrics["max_abs_diff"] == pytest.approx(1.0) and metrics["max_abs_diff_example"] == 1
    # Span logits (length,): one argmax over the real positions per input.
    spans = check_arm64.compare_output(
        "span_logits", [np.array([0.0, 2.0, 5.0]), np.array([3.0, 1.0, 0.0])],
        [np.array([0.0, 2.5, -5.0]), np.array([1.0, 3.0, 0.0])], lengths,
    )
    assert spans["num_argmax"] == 2 and spans["num_argmax_disagreements"] == 1
    # Embeddings: the smallest cosine.
    embedding = check_arm64.compare_output(
        "embedding", [np.array([1.0, 0.0]), np.array([0.0, 1.0])],
        [np.array([1.0, 0.0]), np.array([0.6, 0.8])], lengths,
    )
    assert embedding["min_cosine"] == pytest.approx(0.8)
    assert embedding["min_cosine_example"] == 1 and "argmax_agreement" not in embedding
    logits = check_arm64.compare_output(
        "example_logits", [np.array([0.2, 0.1])], [np.array([0.1, 0.2])], lengths[:1]
    )
    assert logits["argmax_agreement"] == 0.0 and logits["what"].startswith("logits")
    with pytest.raises(ValueError, match=r"Input 0: the x86 output has shape \(2,\) but"):
        check_arm64.compare_output("embedding", [np.zeros(2)], [np.zeros(3)], lengths[:1])
    with pytest.raises(ValueError, match=r"`kind` \('pooled'\) must be one of"):
        check_arm64.compare_output("pooled", [], [], [])


def test_output_kind():
    assert check_arm64.output_kind("qa", "start_logits", [(64,), (64,)], [64, 64]) == (
        "span_logits"
    )
    assert check_arm64.output_kind("token_classification", "logits", [(5, 9)], [5]) == (
        "token_logits"
    )
    # An embedding's width may equal the input length: the task decides.
    assert check_arm64.output_kind("text_embedding", "embedding", [(64,)], [64]) == "embedding"
    assert check_arm64.output_kind("classification", "logits", [(2,)], [2]) == "example_logits"


def test_judge_outputs():
    figures = {
        "start_logits": {"argmax_agreement": 1.0, "max_abs_diff": 1e-6},
        "end_logits": {"argmax_agreement": 0.99, "max_abs_diff": 2e-4},
    }
    assert check_arm64.judge_outputs(figures, quantized=False, thresholds=THRESHOLDS) == [
        "`end_logits`: argmax agreement 0.9900 < 1.0",
        "`end_logits`: max |diff| 0.0002 > 0.0001",
    ]
    assert check_arm64.judge_outputs(figures, quantized=True, thresholds=THRESHOLDS) == [
        "`end_logits`: argmax agreement 0.9900 < 0.995",
    ]
    embedding = {"embedding": {"min_cosine": 0.98, "max_abs_diff": 0.01}}
    thresholds = dict(THRESHOLDS, float_min_cosine=0.9999, quantized_min_cosine=0.99)
    assert check_arm64.judge_outputs(embedding, quantized=True, thresholds=thresholds) == [
        "`embedding`: min cosine 0.980000 < 0.99",
    ]


def test_every_output_of_every_task_on_x86(task_files, tmp_path):
    """The check's host side on each task's file: run, compare every output, report. The float
    file against itself agrees exactly; the dynamic-int8 embedding file stands in for a second
    CPU with different kernels."""
    settings = {path: check_arm64.tokenizer_settings(path) for path in task_files.values()}
    examples = {
        "qa": check_arm64.read_eval("qa", SQUAD, limit=2),
        "token_classification": check_arm64.read_eval(
            "token_classification", _write(tmp_path / "d.conll", CONLL)
        ),
        "text_embedding": ["a man is eating food .", "a man is riding a horse .", "hi"],
    }
    entries = []
    for name in ("qa", "token_classification", "text_embedding"):
        path = task_files[name]
        manifest = json.loads(open(path[:-7] + ".manifest.json", encoding="utf-8").read())
        inputs = check_arm64.pack_examples(name, examples[name], settings[path], manifest)
        outputs, info = check_arm64.run_outputs_on_x86(path, inputs)
        again, _ = check_arm64.run_outputs_on_x86(path, inputs, num_threads=2)
        figures = check_arm64.compare_outputs(
            name, outputs, again, inputs["lengths"], info["fed_lengths"]
        )
        entries.append(check_arm64.outputs_entry(
            path, name, settings[path], figures, info, info, THRESHOLDS
        ))
        if name == "qa":
            # Fixed length: every window fed at 64, whatever its real length; both logits.
            assert set(info["fed_lengths"]) == {64}
            assert info["inputs"]["ids"]["shape_signature"] == [-1, 64]
            assert sorted(figures) == ["end_logits", "start_logits"]
            assert figures["start_logits"]["what"].startswith("logits over positions")
            assert figures["start_logits"]["num_argmax"] == len(inputs["lengths"])
        if name == "token_classification":
            assert info["fed_lengths"] == inputs["lengths"].tolist()
            assert figures["logits"]["num_argmax"] == int(inputs["lengths"].sum())
        if name == "text_embedding":
            assert figures["embedding"]["min_cosine"] == pytest.approx(1.0)
            int8_outputs, int8_info = check_arm64.run_outputs_on_x86(
                task_files["text_embedding_int8"], inputs
            )
            assert check_arm64.is_quantized(int8_info["tensor_dtypes"])
            int8 = check_arm64.compare_outputs(
                name, outputs, int8_outputs, inputs["lengths"], info["fed_lengths"]
            )["embedding"]
            assert 0 < int8["max_abs_diff"] < 0.5 and 0.9 < int8["min_cosine"] < 1.0
    for entry in entries:
        assert entry["passed"], entry["failures"]
        assert entry["kind"] == "float" and entry["max_abs_diff"] <= 1e-5
    report = check_arm64.build_report(
        entries, "eval", ["python"], {}, {}, dict(THRESHOLDS, float_min_cosine=0.9999,
                                                  quantized_min_cosine=0.99),
    )
    assert report["passed"]
    markdown = check_arm64.report_markdown(report)
    assert "| `qa.tflite` | float, qa | " in markdown
    assert "| `qa.tflite` | `start_logits` | logits over positions" in markdown
    assert "| `text_embedding.tflite` | `embedding` | embedding, cosine per example |" in markdown
    assert "embeddings min cosine >= 0.9999 (float)" in markdown


def test_runner_writes_every_output(task_files, tmp_path):
    inputs = token_id_models.random_token_inputs(3, sequence_length=16)
    arm64_runner.save_npz_atomically(str(tmp_path / "in.npz"), **inputs)
    arm64_runner.main([
        f"--model={task_files['token_classification']}", f"--inputs={tmp_path / 'in.npz'}",
        f"--output={tmp_path / 'out.npz'}", "--all_outputs",
    ])
    with np.load(tmp_path / "out.npz", allow_pickle=False) as data:
        outputs, info = arm64_runner.unpack_outputs(data)
    expected, _ = arm64_runner.run_model_outputs(task_files["token_classification"], inputs)
    assert info["output_names"] == ["logits"]
    for value, reference, length in zip(outputs["logits"], expected["logits"], inputs["lengths"]):
        assert value.shape == (length, task_tflite.NUM_TAGS)
        np.testing.assert_array_equal(value, reference)


def test_stack_ragged_round_trip():
    arrays = [np.ones((2, 3)), np.zeros((4, 3)), np.full((1, 3), 7.0)]
    values, shapes = arm64_runner.stack_ragged(arrays)
    assert values.shape == (3, 4, 3) and shapes.tolist() == [[2, 3], [4, 3], [1, 3]]
    for got, want in zip(arm64_runner.unstack_ragged(values, shapes), arrays):
        np.testing.assert_array_equal(got, want)


def test_input_roles_and_fixed_length():
    assert [arm64_runner.input_role(n) for n in ("ids", "mask", "segment_ids", "text")] == [
        "token_ids", "padding_mask", "segment_ids", None
    ]
    assert arm64_runner.fixed_length({"ids": {"shape_signature": [1, 384]}}) == 384
    assert arm64_runner.fixed_length({"token_ids": {"shape_signature": [1, -1]}}) is None
    with pytest.raises(ValueError, match=r"disagree on their length: \[-1, 8\]"):
        arm64_runner.fixed_length({
            "a": {"shape_signature": [1, 8]}, "b": {"shape_signature": [1, -1]}
        })


@pytest.mark.slow
def test_arm64_matches_x86_on_every_task(task_files):
    try:
        check_arm64.check_rootfs(ROOTFS, "/opt/litert/bin/python")
    except ValueError as error:
        pytest.skip(f"the arm64 set-up is missing: {error}")
    inputs = token_id_models.random_token_inputs(8, sequence_length=64)
    thresholds = dict(THRESHOLDS, float_min_cosine=0.9999, quantized_min_cosine=0.99)
    for name, path in task_files.items():
        task = check_arm64.file_task(path)
        x86_outputs, x86_info = check_arm64.run_outputs_on_x86(path, inputs)
        arm64_outputs, arm64_info = check_arm64.run_outputs_on_arm64(path, inputs, ROOTFS)
        assert arm64_info["versions"]["machine"] == "aarch64"
        figures = check_arm64.compare_outputs(
            task, x86_outputs, arm64_outputs, inputs["lengths"], x86_info["fed_lengths"]
        )
        quantized = check_arm64.is_quantized(x86_info["tensor_dtypes"])
        assert check_arm64.judge_outputs(figures, quantized, thresholds) == [], (name, figures)
