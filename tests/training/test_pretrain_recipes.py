"""The recipe knobs of `training.pretrain`: each flag reaches the model, optimizer or data.

The flags are parsed in this process and the program's own builders
(`_build_model`, `_create_optimizer`, `_max_predictions`) run on them, so each
test checks what the run would train, without training.
"""

import numpy as np
import pytest

from keras_bert.models import BertPretrainer
from keras_bert.text.bert_tokenizer import BertTokenizer
from tests.test_case import shared_path
from training import pretrain
from training.core import pretraining_data, recipes

WIKITEXT = shared_path("data", "wikitext2", "valid.txt")
VOCABULARY_SIZE = 120


@pytest.fixture
def parse(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b\n\nc d\n")

    def parse(*args):
        pretrain.FLAGS.unparse_flags()
        source = [] if any(a.startswith("--init_checkpoint") for a in args) else [
            "--preset=bert_tiny"
        ]
        pretrain.FLAGS([
            "pretrain", *source, f"--corpus={corpus}", "--train_steps=100",
            f"--model_dir={tmp_path / 'out'}", *args,
        ])
        return pretrain._knobs()

    yield parse
    pretrain.FLAGS.unparse_flags()


def _model(knobs):
    return pretrain._build_model(BertPretrainer, VOCABULARY_SIZE, "float32", knobs)


def test_default_recipe_and_the_other_one_flag_away(parse):
    assert parse() == recipes.RECIPES[recipes.DEFAULT_RECIPE]
    assert parse("--recipe=budget") == recipes.RECIPES["budget"]
    assert parse("--recipe=bert") == recipes.RECIPES["bert"]
    bert = _model(parse("--recipe=bert"))
    assert not bert.encoder.norm_first and bert.encoder.use_bias
    assert bert.encoder.dropout == 0.1 and bert.nsp_loss_weight == 1.0
    budget = _model(parse("--recipe=budget"))
    assert budget.encoder.norm_first and not budget.encoder.use_bias
    assert budget.encoder.dropout == 0.0


def test_a_flag_overrides_its_recipe_value_only(parse):
    knobs = parse("--recipe=bert", "--beta_2=0.95")
    assert knobs["beta_2"] == 0.95
    assert {k: v for k, v in knobs.items() if k != "beta_2"} == {
        k: v for k, v in recipes.RECIPES["bert"].items() if k != "beta_2"
    }


@pytest.mark.parametrize("value", [True, False])
def test_norm_first(parse, value):
    encoder = _model(parse(f"--{'' if value else 'no'}norm_first")).encoder
    assert encoder.norm_first is value
    assert (encoder.final_layer_norm is not None) is value


@pytest.mark.parametrize("value", [True, False])
def test_embedding_layer_norm(parse, value):
    encoder = _model(parse(f"--{'' if value else 'no'}embedding_layer_norm")).encoder
    assert (encoder.embeddings_layer.embeddings_layer_norm is not None) is value


@pytest.mark.parametrize("value", [True, False])
def test_use_bias(parse, value):
    encoder = _model(parse(f"--{'' if value else 'no'}use_bias")).encoder
    biases = [w for w in encoder.weights
              if "transformer_layer" in w.path and w.path.endswith("bias")]
    assert bool(biases) is value


@pytest.mark.parametrize("value", [True, False])
def test_tie_embeddings(parse, value):
    model = _model(parse(f"--{'' if value else 'no'}tie_embeddings"))
    head = model.masked_lm_head
    assert (head.token_embedding is model.encoder.token_embedding) is value
    assert (head.output_embeddings is None) is value


def test_dropout_in_pretraining(parse):
    encoder = _model(parse("--dropout=0.2")).encoder
    assert (encoder.dropout, encoder.attention_dropout) == (0.2, 0.2)


def test_nsp_loss_weight(parse):
    assert _model(parse("--nsp_loss_weight=5")).nsp_loss_weight == 5.0


def test_masking_rate_sets_the_masked_fraction_and_the_predictions(parse):
    knobs = parse("--masked_lm_prob=0.4", "--sequence_length=64")
    assert pretrain._max_predictions(knobs) == 26  # ceil(64 * 0.4)
    assert pretrain._max_predictions(parse("--recipe=bert")) == 20  # BERT's 128 tokens at 15%
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


@pytest.mark.parametrize(
    "flag, attribute, value",
    [
        ("beta_1", "beta_1", 0.8),
        ("beta_2", "beta_2", 0.95),
        ("epsilon", "epsilon", 1e-9),
        ("weight_decay", "weight_decay", 0.05),
        ("clipnorm", "global_clipnorm", 0.25),
    ],
)
def test_optimizer_knobs(parse, flag, attribute, value):
    knobs = parse(f"--{flag}={value}")
    _, optimizer = pretrain._create_optimizer(_model(knobs), knobs, 100, "float32")
    assert getattr(optimizer, attribute) == pytest.approx(value)


def test_budget_triangle_schedule(parse):
    knobs = parse("--learning_rate=2e-3", "--schedule=budget_triangle")
    schedule, _ = pretrain._create_optimizer(_model(knobs), knobs, 100, "float32")
    rates = np.array([float(schedule(step)) for step in range(100)])
    # 25% of the peak at the start, the peak at step 75 (of 100), zero at the end.
    np.testing.assert_allclose(rates[0], 2e-3 * (0.25 + 0.75 / 75), rtol=1e-5)
    assert int(np.argmax(rates)) == 74 and rates.max() == pytest.approx(2e-3)
    assert np.all(np.diff(rates[:75]) > 0) and np.all(np.diff(rates[75:]) < 0)
    assert rates[-1] == pytest.approx(0.0, abs=1e-9)


def test_warmup_linear_decay_schedule(parse):
    knobs = parse("--recipe=bert", "--warmup_proportion=0.2")
    schedule, _ = pretrain._create_optimizer(_model(knobs), knobs, 100, "float32")
    rates = np.array([float(schedule(step)) for step in range(100)])
    assert int(np.argmax(rates)) == 19 and rates[0] == pytest.approx(1e-3 / 20)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--schedule=budget_triangle", "--warmup_proportion=0.2"],
         r"`--warmup_proportion` \(0.2\): does not apply to --schedule=budget_triangle"),
        (["--recipe=bert", "--end_learning_rate=0.1"],
         r"`--end_learning_rate` \(0.1\): must be in \[0, the learning rate \(0.001\)\]"),
        (["--init_checkpoint=x", "--nouse_bias"], r"`--use_bias` shapes a new model"),
    ],
)
def test_knob_errors(parse, args, message):
    import re

    parse(*args)
    with pytest.raises(ValueError) as error:
        pretrain._check_flags()
    assert re.search(message, str(error.value)), str(error.value)


@pytest.mark.parametrize("args", [["--masked_lm_prob=0"], ["--beta_2=1"], ["--nsp_loss_weight=-1"]])
def test_knob_values_checked_at_parsing(parse, args):
    from absl import flags

    with pytest.raises(flags.IllegalFlagValueError):
        parse(*args)
