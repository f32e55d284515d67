"""`python -m benchmarks.pretraining_throughput`: the batches, our step, the flags, the app."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import pretraining_throughput as benchmark

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
TORCH_VENV = os.path.join(REPOSITORY, ".venv-torch")


def _app(*flags, timeout=120):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.pretraining_throughput", *flags],
        cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=timeout,
    )


def test_batches_carry_both_sides_labels():
    batches = benchmark.synthetic_batches(
        num_batches=2, batch_size=3, sequence_length=16, vocabulary_size=50, num_predictions=4,
        seed=1,
    )
    shapes = {name: (value.shape, value.dtype.name) for name, value in batches.items()}
    assert shapes == {
        "token_ids": ((6, 16), "int32"),
        "segment_ids": ((6, 16), "int32"),
        "padding_mask": ((6, 16), "int32"),
        "masked_positions": ((6, 4), "int32"),
        "masked_ids": ((6, 4), "int32"),
        "masked_weights": ((6, 4), "float32"),
        "next_sentence_label": ((6,), "int32"),
        "mlm_labels": ((6, 16), "int32"),
    }
    assert (batches["padding_mask"] == 1).all()
    assert (batches["masked_weights"] == 1).all()
    assert set(np.unique(batches["next_sentence_label"])) <= {0, 1}
    tokens, positions = batches["token_ids"], batches["masked_positions"]
    assert tokens.min() >= 0 and tokens.max() < 50
    assert (tokens[:, 0] == benchmark.CLS_ID).all() and (tokens[:, -1] == benchmark.SEP_ID).all()
    for row in range(6):
        # [CLS] A [SEP] B [SEP]: segment 1 starts right after the first [SEP].
        first_sep = int(np.argmax(tokens[row] == benchmark.SEP_ID))
        assert 2 <= first_sep < 14
        assert (batches["segment_ids"][row] == (np.arange(16) > first_sep)).all()
        # Distinct, ascending, never a special position.
        assert (np.diff(positions[row]) > 0).all()
        assert not set(positions[row]) & {0, first_sep, 15}
        # Hugging Face's labels: the original id at each masked position, -100 elsewhere.
        labels = batches["mlm_labels"][row]
        assert (labels[positions[row]] == batches["masked_ids"][row]).all()
        assert (np.delete(labels, positions[row]) == benchmark.IGNORED_LABEL).all()
        assert (batches["masked_ids"][row] >= benchmark.FIRST_WORD_ID).all()
    # Most masked inputs become [MASK]; unmasked positions keep their ids.
    assert (np.take_along_axis(tokens, positions, 1) == benchmark.MASK_ID).mean() > 0.5
    same = benchmark.synthetic_batches(2, 3, 16, 50, 4, seed=1)
    assert all((same[name] == value).all() for name, value in batches.items())


def test_batches_reject_bad_arguments():
    with pytest.raises(ValueError, match=r"`sequence_length` \(6\) must be at least"):
        benchmark.synthetic_batches(1, 2, 6, 50, 4)
    with pytest.raises(ValueError, match=r"`vocabulary_size` \(5\)"):
        benchmark.synthetic_batches(1, 2, 16, 5, 4)
    with pytest.raises(ValueError, match="`batch_size` must be positive"):
        benchmark.synthetic_batches(1, 0, 16, 50, 4)


def test_hugging_face_config_has_our_shape_and_dropout():
    config = benchmark.encoder_config_of("bert_mini", 30522, {"dropout": 0.05})
    assert benchmark.hf_config(config) == {
        "vocab_size": 30522, "hidden_size": 256, "num_hidden_layers": 4,
        "num_attention_heads": 4, "intermediate_size": 1024, "max_position_embeddings": 512,
        "type_vocab_size": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.05,
        "attention_probs_dropout_prob": 0.05, "layer_norm_eps": 1e-12,
        "initializer_range": 0.02,
    }
    with pytest.raises(ValueError, match="Unknown `BertEncoder` config keys"):
        benchmark.encoder_config_of("bert_mini", 30522, {"bogus": 1})
    with pytest.raises(ValueError, match="`dtype` must be float32"):
        benchmark.encoder_config_of("bert_mini", 30522, {"dtype": "mixed_bfloat16"})
    with pytest.raises(ValueError, match=r"Unknown `BertPretrainer` arguments \['bogus'\]"):
        benchmark.check_pretrainer_overrides({"bogus": 1})


def test_keras_bert_step_runs_and_gives_examples_per_second():
    batches = benchmark.synthetic_batches(2, 2, 16, 64, 3)
    side = benchmark.KerasBertSide(batches, 2, benchmark.encoder_config_of("bert_tiny", 64, {}))
    seconds = side.run(2)
    assert int(side.model.optimizer.iterations.numpy()) == 2
    assert benchmark.examples_per_second(seconds, 2, 2) > 0
    assert side.encoder_config["num_layers"] == 2


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--encoder_overrides=[1]"], "`--encoder_overrides` ('[1]'): must be a JSON object."),
        (["--pretrainer_overrides={x"], "`--pretrainer_overrides` ('{x'): is not JSON"),
        (["--num_predictions=126"], "`--num_predictions` (126): must be at most"),
        (['--encoder_overrides={"bogus": 1}'], "`--encoder_overrides`"),
        (["--torch_venv=/nonexistent/venv"], "run scripts/setup_torch.sh"),
    ],
)
def test_bad_flags_give_one_line(flags, expected):
    completed = _app(*flags)
    assert completed.returncode == 2, completed.stderr[-2000:]
    lines = [line for line in completed.stderr.splitlines() if expected in line]
    assert len(lines) == 1, completed.stderr[-2000:]
    assert "Traceback" not in completed.stderr


@pytest.mark.slow
def test_the_app_runs_one_round_against_hugging_face(tmp_path):
    if not os.path.isfile(os.path.join(TORCH_VENV, "bin", "python")):
        pytest.skip(".venv-torch does not exist: run scripts/setup_torch.sh")
    out = tmp_path / "result.json"
    completed = _app(
        "--preset=bert_tiny", "--batch_size=2", "--sequence_length=16", "--num_predictions=2",
        "--vocabulary_size=100", "--rounds=1", "--steps=1", f"--out={out}", timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("CPU: ")
    assert lines[-1].startswith("keras_bert / HF examples/s ratio of medians: ")
    with open(out) as f:
        result = json.load(f)
    assert result["parameters"]["keras_bert"] == result["parameters"]["hugging_face"]
    for side in ("keras_bert", "hugging_face"):
        assert len(result["results"][side]["round_examples_per_second"]) == 1
        assert result["results"][side]["median_examples_per_second"] > 0
    assert result["ratio_of_medians"] > 0
    assert result["versions"]["transformers"]
