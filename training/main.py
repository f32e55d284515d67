"""The main job: build or import a BERT encoder, run it, and print a summary.

Examples:

    # A randomly initialised BERT-small:
    python -m training.main --preset=bert_small

    # Import a Hugging Face or Google checkpoint and encode two sentences:
    python -m training.main --init=/path/to/all-MiniLM-L6-v2 \
        --text="a fine film" --text="a dull film"

Later stages of the pipeline (pretraining, fine-tuning, export) have their own
apps under `training/` and `export/`.
"""

import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import flags, logging  # noqa: E402

from keras_bert.utils import cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "init",
    None,
    "Checkpoint to import: a Hugging Face directory (config.json + "
    "model.safetensors), a Google BERT directory (bert_config.json + "
    "bert_model.ckpt.*), a keras_bert directory, or a .keras file. "
    "Overrides --preset.",
)
flags.DEFINE_string(
    "preset",
    "bert_small",
    "Preset to build when --init is not given: bert_tiny, bert_mini, "
    "bert_small, bert_medium, bert_base or bert_large.",
)
flags.DEFINE_multi_string(
    "text",
    None,
    "Text to encode (repeatable). Needs a vocab.txt in the --init directory; "
    "without one, random token ids are encoded.",
)
flags.DEFINE_integer("sequence_length", 128, "Sequence length of the sample batch.")
flags.DEFINE_integer("batch_size", 8, "Batch size of the sample batch.")
flags.DEFINE_integer("seed", 0, "Seed for random token ids and initialisation.")
flags.DEFINE_string(
    "save_to",
    None,
    "If set, also write the encoder to this directory in the format "
    "keras_bert.load_encoder reads (written atomically).",
)
flags.register_validator("sequence_length", lambda value: value >= 1, "must be positive.")
flags.register_validator("batch_size", lambda value: value >= 1, "must be positive.")


def _sample_inputs(encoder, vocabulary_path):
    import numpy as np

    if FLAGS.text and vocabulary_path:
        import keras_bert

        tokenizer = keras_bert.load_tokenizer(vocabulary_path)
        packed = tokenizer.pack(list(FLAGS.text), sequence_length=FLAGS.sequence_length)
        return {k: np.asarray(v) for k, v in packed.items()}, "text"
    if FLAGS.text:
        logging.warning("No vocab.txt next to the checkpoint: encoding random ids instead of --text.")
    rng = np.random.default_rng(FLAGS.seed)
    length = min(FLAGS.sequence_length, encoder.max_sequence_length)
    token_ids = rng.integers(1, encoder.vocabulary_size, size=(FLAGS.batch_size, length))
    ones = np.ones_like(token_ids, dtype="int32")
    return {
        "token_ids": token_ids.astype("int32"),
        "segment_ids": 0 * ones,
        "padding_mask": ones,
    }, "random ids"


def main(argv):
    del argv
    import keras
    import numpy as np

    import keras_bert
    from keras_bert.checkpoints import read_checkpoint, save_encoder

    keras.utils.set_random_seed(FLAGS.seed)
    vocabulary_path = None
    if FLAGS.init:
        checkpoint = read_checkpoint(FLAGS.init)
        encoder = checkpoint.encoder
        source = f"{FLAGS.init} ({checkpoint.format} format)"
        heads = sorted(checkpoint.head_weights) or "none"
        candidate = os.path.join(FLAGS.init, "vocab.txt")
        if os.path.isdir(FLAGS.init) and os.path.isfile(candidate):
            vocabulary_path = FLAGS.init
    else:
        encoder = keras_bert.BertEncoder.from_preset(FLAGS.preset)
        source = f"preset {FLAGS.preset} (random initialisation)"
        heads = "none"

    inputs, kind = _sample_inputs(encoder, vocabulary_path)
    start = time.perf_counter()
    outputs = encoder(inputs)
    elapsed = time.perf_counter() - start

    print(f"keras_bert {keras_bert.__version__} on Keras {keras.__version__} "
          f"({keras.backend.backend()} backend)")
    print(f"Encoder: {source}")
    for key in ("vocabulary_size", "num_layers", "num_heads", "hidden_dim",
                "intermediate_dim", "max_sequence_length", "activation"):
        print(f"  {key}: {getattr(encoder, key)}")
    print(f"  parameters: {encoder.count_params():,}")
    print(f"  pretraining head weights: {heads}")
    print(f"Encoded a batch of {kind}: token_ids {tuple(inputs['token_ids'].shape)} "
          f"in {elapsed * 1000:.0f} ms (first call, includes tracing)")
    for key in ("sequence_output", "pooled_output"):
        value = np.asarray(outputs[key])
        print(f"  {key}: shape {value.shape}, mean {value.mean():+.4f}, std {value.std():.4f}")
    print(f"  encoder_outputs: {len(outputs['encoder_outputs'])} tensors")
    if FLAGS.save_to:
        save_encoder(encoder, FLAGS.save_to)
        print(f"Saved the encoder to {FLAGS.save_to}")


if __name__ == "__main__":
    # `BertEncoder.from_preset` names its argument `name`.
    cli.run(main, flag_for={"name": "preset"}, input_flags=["init"])
