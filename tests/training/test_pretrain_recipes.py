"""The recipe knobs of `training.pretrain`: each flag reaches the model, optimizer or data.

The flags are parsed and the program's own builders (`_build_model`,
`_create_optimizer`, `_max_predictions`, `_check_flags`) run on them, so each
test checks what the run would train, without training. They run in one fresh
process (`PROBE`): `training.pretrain` defines absl flags that other apps
imported by this test session (`training.predict`, `training.finetune`) define
too.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_bert.text.bert_tokenizer import BertTokenizer
from tests.test_case import shared_path
from training.core import pretraining_data, recipes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
WIKITEXT = shared_path("data", "wikitext2", "valid.txt")

CASES = {
    "default": [],
    "budget": ["--recipe=budget"],
    "bert": ["--recipe=bert"],
    "bert_beta_2": ["--recipe=bert", "--beta_2=0.95"],
    "norm_first": ["--recipe=bert", "--norm_first"],
    "nonorm_first": ["--recipe=budget", "--nonorm_first"],
    "embedding_layer_norm": ["--recipe=budget", "--embedding_layer_norm"],
    "noembedding_layer_norm": ["--noembedding_layer_norm"],
    "use_bias": ["--recipe=budget", "--use_bias"],
    "nouse_bias": ["--recipe=bert", "--nouse_bias"],
    "tie_embeddings": ["--notie_embeddings", "--tie_embeddings"],
    "notie_embeddings": ["--notie_embeddings"],
    "initializer_range": ["--recipe=bert", "--initializer_range=0.05"],
    "dropout": ["--dropout=0.2"],
    "nsp_loss_weight": ["--nsp_loss_weight=5"],
    "nsp_segment_means": ["--recipe=bert", "--nsp_segment_means"],
    "nonsp_segment_means": ["--nonsp_segment_means"],
    "masked_lm_prob": ["--masked_lm_prob=0.4", "--sequence_length=64"],
    "optimizer": ["--beta_1=0.8", "--beta_2=0.95", "--epsilon=1e-9", "--weight_decay=0.05",
                  "--clipnorm=0.25"],
    "triangle": ["--learning_rate=2e-3", "--schedule=budget_triangle"],
    "warmup": ["--recipe=bert", "--warmup_proportion=0.2"],
    "error_triangle_warmup": ["--schedule=budget_triangle", "--warmup_proportion=0.2"],
    "error_end_rate": ["--recipe=bert", "--end_learning_rate=0.1"],
    "error_checkpoint_architecture": ["--init_checkpoint=x", "--nouse_bias"],
    "error_checkpoint_segment_means": ["--init_checkpoint=x", "--nsp_segment_means"],
    "parse_masked_lm_prob": ["--masked_lm_prob=0"],
    "parse_beta_2": ["--beta_2=1"],
    "parse_nsp_loss_weight": ["--nsp_loss_weight=-1"],
    "parse_initializer_range": ["--initializer_range=0"],
    "error_checkpoint_initializer_range": ["--init_checkpoint=x", "--initializer_range=0.05"],
}

# Runs in a fresh process: parses each case's flags and reports what the run would build.
PROBE = """
import json, sys
from absl import flags
from keras_bert.models import BertPretrainer
from training import pretrain

corpus, model_dir, cases = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
results = {}
for name, args in cases.items():
    pretrain.FLAGS.unparse_flags()
    source = [] if any(a.startswith("--init_checkpoint") for a in args) else ["--preset=bert_tiny"]
    try:
        pretrain.FLAGS(["pretrain", *source, "--corpus=" + corpus, "--train_steps=100",
                        "--model_dir=" + model_dir, *args])
    except flags.IllegalFlagValueError as error:
        results[name] = {"parse_error": str(error)}
        continue
    try:
        pretrain._check_flags()
    except ValueError as error:
        results[name] = {"error": str(error)}
        continue
    knobs = pretrain._knobs()
    model = pretrain._build_model(BertPretrainer, 120, "float32", knobs)
    schedule, optimizer = pretrain._create_optimizer(model, knobs, 100, "float32")
    encoder, head = model.encoder, model.masked_lm_head
    results[name] = {
        "knobs": knobs,
        "max_predictions": pretrain._max_predictions(knobs),
        "norm_first": encoder.norm_first,
        "final_layer_norm": encoder.final_layer_norm is not None,
        "embedding_layer_norm": encoder.embeddings_layer.embeddings_layer_norm is not None,
        "block_biases": sum("transformer_layer" in w.path and w.path.endswith("bias")
                            for w in encoder.weights),
        "tied": head.token_embedding is encoder.token_embedding,
        "own_table": head.output_embeddings is not None,
        "dropout": [encoder.dropout, encoder.attention_dropout],
        "initializer_range": encoder.initializer_range,
        "kernel_stds": [float(w.numpy().std()) for w in model.weights
                        if w.path.endswith("kernel") or "embeddings" in w.path.split("/")[-1]],
        "nsp_loss_weight": model.nsp_loss_weight,
        "segment_head_kernel": (None if model.segment_pair_head is None
                                else list(model.segment_pair_head.kernel.shape)),
        "optimizer": {name: float(getattr(optimizer, name)) for name in
                      ("beta_1", "beta_2", "epsilon", "weight_decay", "global_clipnorm")},
        "rates": [float(schedule(step)) for step in range(100)],
    }
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    directory = tmp_path_factory.mktemp("recipes")
    corpus = directory / "corpus.txt"
    corpus.write_text("a b\n\nc d\n")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(corpus), str(directory / "out"), json.dumps(CASES)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_default_recipe_and_the_other_one_flag_away(probed):
    assert recipes.DEFAULT_RECIPE == "budget"
    assert probed["default"]["knobs"] == recipes.RECIPES["budget"]
    assert probed["bert"]["knobs"] == recipes.RECIPES["bert"]
    budget = probed["default"]
    assert budget["norm_first"] and budget["final_layer_norm"] and budget["block_biases"] == 0
    assert budget["dropout"] == [0.0, 0.0] and budget["nsp_loss_weight"] == 0.25
    assert budget["knobs"]["nsp_segment_means"] and budget["segment_head_kernel"] == [256, 2]
    assert probed["bert"]["nsp_loss_weight"] == 1.0 and probed["bert"]["segment_head_kernel"] is None
    assert budget["initializer_range"] == 0.05
    bert = probed["bert"]
    assert not bert["norm_first"] and bert["block_biases"] > 0
    assert bert["dropout"] == [0.1, 0.1] and bert["initializer_range"] == 0.02


def test_preset_names_are_the_encoder_presets():
    from keras_bert.bert_encoder import PRESETS

    assert recipes.PRESET_NAMES == tuple(PRESETS)


def test_a_flag_overrides_its_recipe_value_only(probed):
    knobs = probed["bert_beta_2"]["knobs"]
    assert knobs["beta_2"] == 0.95
    assert {k: v for k, v in knobs.items() if k != "beta_2"} == {
        k: v for k, v in recipes.RECIPES["bert"].items() if k != "beta_2"
    }


@pytest.mark.parametrize("value", [True, False])
def test_norm_first(probed, value):
    result = probed["norm_first" if value else "nonorm_first"]
    assert result["norm_first"] is value and result["final_layer_norm"] is value


@pytest.mark.parametrize("value", [True, False])
def test_embedding_layer_norm(probed, value):
    result = probed["embedding_layer_norm" if value else "noembedding_layer_norm"]
    assert result["embedding_layer_norm"] is value


@pytest.mark.parametrize("value", [True, False])
def test_use_bias(probed, value):
    biases = probed["use_bias" if value else "nouse_bias"]["block_biases"]
    # bert_tiny: 2 blocks of 4 attention and 2 feed-forward biases.
    assert biases == (12 if value else 0)


@pytest.mark.parametrize("value", [True, False])
def test_tie_embeddings(probed, value):
    result = probed["tie_embeddings" if value else "notie_embeddings"]
    assert result["tied"] is value and result["own_table"] is not value


def test_dropout_in_pretraining(probed):
    assert probed["dropout"]["dropout"] == [0.2, 0.2]


def test_initializer_range(probed):
    assert probed["bert"]["initializer_range"] == 0.02
    assert probed["initializer_range"]["initializer_range"] == 0.05
    # Truncated at 2 standard deviations: the drawn standard deviation is 0.88 of the range.
    for case, scale in (("bert", 0.02), ("initializer_range", 0.05)):
        stds = np.array(probed[case]["kernel_stds"])
        assert len(stds) > 10
        np.testing.assert_allclose(np.median(stds), 0.88 * scale, rtol=0.1)


def test_nsp_loss_weight(probed):
    assert probed["nsp_loss_weight"]["nsp_loss_weight"] == 5.0


@pytest.mark.parametrize("value", [True, False])
def test_nsp_segment_means(probed, value):
    result = probed["nsp_segment_means" if value else "nonsp_segment_means"]
    assert result["knobs"]["nsp_segment_means"] is value
    # bert_tiny: hidden_dim 128, so the segment head reads 2 * 128 features.
    assert result["segment_head_kernel"] == ([256, 2] if value else None)


def test_optimizer_knobs(probed):
    assert probed["optimizer"]["optimizer"] == pytest.approx(
        {"beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-9, "weight_decay": 0.05,
         "global_clipnorm": 0.25}
    )


def test_budget_triangle_schedule(probed):
    rates = np.array(probed["triangle"]["rates"])
    # 25% of the peak at the start, the peak at step 75 (of 100), zero at the end.
    np.testing.assert_allclose(rates[0], 2e-3 * (0.25 + 0.75 / 75), rtol=1e-5)
    assert int(np.argmax(rates)) == 74 and rates.max() == pytest.approx(2e-3)
    assert np.all(np.diff(rates[:75]) > 0) and np.all(np.diff(rates[75:]) < 0)
    assert rates[-1] == pytest.approx(0.0, abs=1e-9)


def test_warmup_linear_decay_schedule(probed):
    rates = np.array(probed["warmup"]["rates"])
    assert int(np.argmax(rates)) == 19 and rates[0] == pytest.approx(1e-3 / 20)


@pytest.mark.parametrize(
    "case, message",
    [
        ("error_triangle_warmup",
         "`--warmup_proportion` (0.2): does not apply to --schedule=budget_triangle"),
        ("error_end_rate", "`--end_learning_rate` (0.1): must be in [0, the learning rate (0.001)]"),
        ("error_checkpoint_architecture",
         "`--use_bias` (False): applies only to a new model: with --init_checkpoint"),
        ("error_checkpoint_initializer_range",
         "`--initializer_range` (0.05): applies only to a new model"),
        ("error_checkpoint_segment_means",
         "`--nsp_segment_means` (True): applies only to a new model"),
    ],
)
def test_knob_errors(probed, case, message):
    assert message in probed[case]["error"]


@pytest.mark.parametrize(
    "case",
    ["parse_masked_lm_prob", "parse_beta_2", "parse_nsp_loss_weight", "parse_initializer_range"],
)
def test_knob_values_checked_at_parsing(probed, case):
    assert "parse_error" in probed[case]


def test_masking_rate_sets_the_masked_fraction_and_the_predictions(probed):
    assert probed["masked_lm_prob"]["max_predictions"] == 26  # ceil(64 * 0.4)
    assert probed["bert"]["max_predictions"] == 20  # BERT's 128 tokens at 15%
    assert probed["default"]["max_predictions"] == 39  # ceil(128 * 0.3)
    from keras_bert.text.wordpiece_vocabulary import learn_vocabulary

    vocabulary = learn_vocabulary([WIKITEXT], 2000, lower_case=True, show_progress=False)
    tokenizer = BertTokenizer(vocabulary, lower_case=True)
    fractions = {}
    for rate in (0.15, 0.4):
        corpus = pretraining_data.CorpusExamples(
            [WIKITEXT], tokenizer, "auto", 64, recipes.max_predictions(64, rate), rate, 0.1,
            False,
        )
        inputs, labels = corpus.arrays(seed=1)
        real = inputs["padding_mask"].sum() - 3 * len(inputs["padding_mask"])  # no [CLS]/[SEP]
        fractions[rate] = labels["masked_weights"].sum() / real
    assert abs(fractions[0.15] - 0.15) < 0.01, fractions
    assert abs(fractions[0.4] - 0.4) < 0.01, fractions
