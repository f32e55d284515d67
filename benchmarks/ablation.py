"""What each optimization of keras_bert's classifier is worth, measured side by side.

Builds, in one process, keras_bert's classifier as shipped and variants with one
optimization taken out, plus keras-hub's for reference, and times `model.fit` (and
`model.predict`) interleaved round by round on the same batches:

* `keras_bert`: as shipped.
* `no_cls_split`: pooled output taken from `sequence_output[:, 0]`, so the last block
  computes every position (what the encoder did before the `[CLS]` split).
* `keras_dropout`: `keras.layers.Dropout`'s random floats instead of 16-bit random
  integers (switched at trace time through `keras_bert.layers.fast_ops.DROPOUT`).
* `no_padding_trim` (SST-2 data only): the classifier without its in-graph trim.
* `keras_hub`: keras-hub's `BertBackbone` with the same head.

Examples:

    flock /tmp/keras_bert_heavy.lock python -m benchmarks.ablation
    python -m benchmarks.ablation --dtype=float32 --data=sst2 --rounds=6
"""

import os
import statistics

from absl import flags

from keras_bert.inputs import INPUT_NAMES
from keras_bert.utils import cli

from benchmarks import data as benchmark_data

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "bert_small", "Encoder shape.")
flags.DEFINE_string("dtype", "mixed_bfloat16", "Dtype policy.")
flags.DEFINE_enum("data", "full", ["full", "sst2"], "Full-length or SST-2 padded data.")
flags.DEFINE_enum("mode", "train", ["train", "predict"], "`fit` or `predict` steps.")
flags.DEFINE_integer("batch_size", 16, "Sequences per step.")
flags.DEFINE_integer("sequence_length", 128, "Tokens per sequence.")
flags.DEFINE_integer("rounds", 4, "Interleaved rounds.")
flags.DEFINE_integer("steps", 3, "Steps per model and round.")
flags.DEFINE_integer("inter_op_threads", 1, "TensorFlow inter-op threads (0: default).")
flags.DEFINE_string("sst2", benchmark_data.DEFAULT_SST2, "SST-2 TSV.")
flags.DEFINE_string("vocabulary", benchmark_data.DEFAULT_VOCABULARY, "Tokenizer checkpoint or vocab.txt.")


def _variants(preset, dtype, data):
    import keras

    from benchmarks import models
    from keras_bert import BertEncoder
    from keras_bert.layers import fast_ops

    def shipped():
        fast_ops.DROPOUT = "random_bits"
        return models.keras_bert_classifier(preset, 2, dtype)

    def keras_dropout():
        fast_ops.DROPOUT = "keras"  # Read when the step function is traced.
        return models.keras_bert_classifier(preset, 2, dtype)

    def encoder_head(pooled_from_sequence):
        fast_ops.DROPOUT = "random_bits"
        encoder = BertEncoder.from_preset(preset, dtype=dtype, activation="gelu_approximate")
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in INPUT_NAMES
        }
        outputs = encoder(inputs)
        if pooled_from_sequence:
            first = keras.layers.Lambda(lambda x: x[:, 0], name="first_position")(outputs["sequence_output"])
            pooled = encoder.pooler_dense(first)
        else:
            pooled = outputs["pooled_output"]
        pooled = keras.layers.Dropout(0.1)(pooled)
        return keras.Model(inputs, keras.layers.Dense(2, dtype="float32")(pooled))

    variants = {
        "keras_bert": shipped,
        "no_cls_split": lambda: encoder_head(pooled_from_sequence=True),
        "keras_dropout": keras_dropout,
    }
    if data == "sst2":
        variants["no_padding_trim"] = lambda: encoder_head(pooled_from_sequence=False)
    variants["keras_hub"] = lambda: models.keras_hub_classifier(preset, 2, dtype)
    return variants


def main(argv):
    del argv
    import tensorflow as tf

    from benchmarks import models
    from benchmarks import timing
    from keras_bert import BertEncoder
    from keras_bert.layers import fast_ops

    from absl import logging

    logging.set_verbosity(logging.ERROR)
    if FLAGS.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
    batch_size = FLAGS.batch_size
    examples = (FLAGS.rounds * FLAGS.steps + 2) * batch_size
    if FLAGS.data == "full":
        vocabulary_size = BertEncoder.preset_config(FLAGS.preset)["vocabulary_size"]
        inputs, labels = benchmark_data.full_length_batches(examples, FLAGS.sequence_length, vocabulary_size)
    else:
        inputs, labels = benchmark_data.sst2_batches(FLAGS.sst2, FLAGS.vocabulary, examples, FLAGS.sequence_length)
    warmup = timing.slice_examples(inputs, labels, 0, 2 * batch_size)
    built = {}
    for name, build in _variants(FLAGS.preset, FLAGS.dtype, FLAGS.data).items():
        model = models.compile_for_training(build(), FLAGS.dtype, jit_compile=False)
        if FLAGS.mode == "train":
            timing.fit_steps(model, *warmup, batch_size)
        else:
            timing.predict_steps(model, warmup[0], batch_size)
        built[name] = model
    fast_ops.DROPOUT = "random_bits"

    def make_run(name):
        def run(round_index):
            start = (2 + round_index * FLAGS.steps) * batch_size
            part_inputs, part_labels = timing.slice_examples(inputs, labels, start, start + FLAGS.steps * batch_size)
            if FLAGS.mode == "train":
                return timing.fit_steps(built[name], part_inputs, part_labels, batch_size)
            return timing.predict_steps(built[name], part_inputs, batch_size)
        return run

    seconds = timing.interleaved({name: make_run(name) for name in built}, FLAGS.rounds)
    reference = statistics.median(seconds["keras_bert"])
    print(f"{FLAGS.mode}, {FLAGS.dtype}, {FLAGS.data} data, {FLAGS.preset}, batch {batch_size}:")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(
            f"  {name:16s} median step {median * 1e3:6.0f} ms  {batch_size / median:6.1f} seq/s  "
            f"keras_bert's speed-up over it {median / reference:.2f}x"
        )


if __name__ == "__main__":
    cli.run(main)
