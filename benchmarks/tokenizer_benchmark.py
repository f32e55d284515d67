"""Tokenize+pack throughput: keras_bert vs raw tensorflow-text and Hugging Face `tokenizers`.

Reads SST-2 (train, dev, test sentences) and WikiText-2 (valid, test, non-empty lines) from
`../shared/data`, then times, on the same texts and in the same run:

* `keras_bert`: `TextClassifierPreprocessor` (tokenizer + packer, length 128) in a `tf.function`;
* `tf_text`: raw `tensorflow_text.FastBertTokenizer` (tokenize only) in a `tf.function`, the
  fast op without the reference-exact normalization;
* `hf_tokenizers`: `tokenizers.Tokenizer.encode_batch` with truncation and padding to 128.

Throughput is UTF-8 megabytes of input text per second, the best of `--repeats` passes
(interleaved across methods, so that load from other processes hits all of them alike).

Example:

    python -m benchmarks.tokenizer_benchmark
    python -m benchmarks.tokenizer_benchmark --smoke
"""

import os
import time
from pathlib import Path

from absl import flags

from keras_bert.utils import cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "data_dir",
    str(Path(__file__).resolve().parents[1].parent / "shared" / "data"),
    "Folder holding sst2/ and wikitext2/.",
)
flags.DEFINE_string(
    "checkpoint",
    str(Path(__file__).resolve().parents[1].parent / "shared" / "models" / "all-MiniLM-L6-v2"),
    "Checkpoint folder with vocab.txt and tokenizer.json (for the Hugging Face baseline).",
)
flags.DEFINE_integer("batch_size", 2048, "Texts per batch.")
flags.DEFINE_integer("sequence_length", 128, "Packed sequence length.")
cli.define_deprecated_alias("max_length", "sequence_length")
flags.DEFINE_integer("repeats", 7, "Timed passes per method; the best is reported.")
flags.DEFINE_bool("smoke", False, "Run on 2,000 texts with one pass: a seconds-long check.")
flags.register_validator("sequence_length", lambda value: value >= 2, "must be at least 2.")
flags.register_validator("batch_size", lambda value: value >= 1, "must be positive.")
flags.register_validator("repeats", lambda value: value >= 1, "must be positive.")


def read_texts(data_dir):
    """SST-2 sentences and WikiText-2 lines, in a fixed order."""
    from keras_bert.tasks.classification import read_examples  # pylint: disable=import-outside-toplevel

    data_dir = Path(data_dir)
    texts = []
    for split in ("train", "dev", "test"):
        texts.extend(
            read_examples(str(data_dir / "sst2" / f"{split}.tsv"), "sentence", None, "label",
                          "tsv").texts
        )
    for split in ("valid", "test"):
        with open(data_dir / "wikitext2" / f"{split}.txt", encoding="utf-8") as wiki:
            texts.extend(line.strip() for line in wiki if line.strip())
    return texts


def batches(texts, batch_size):
    return [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]


def time_best(methods, repeats):
    """Best wall time of each method; repeats are interleaved so load spikes hit all alike."""
    best = {name: float("inf") for name in methods}
    for _ in range(repeats):
        for name, run in methods.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main(argv):
    del argv
    import numpy as np
    import tensorflow as tf
    import tensorflow_text as tf_text

    from keras_bert.text import TextClassifierPreprocessor
    from keras_bert.text import load_tokenizer

    texts = read_texts(FLAGS.data_dir)
    repeats = FLAGS.repeats
    if FLAGS.smoke:
        texts, repeats = texts[:2000], 1
    megabytes = sum(len(text.encode("utf-8")) for text in texts) / 1e6
    text_batches = [tf.constant(batch) for batch in batches(texts, FLAGS.batch_size)]
    print(f"{len(texts)} texts, {megabytes:.2f} MB, batch size {FLAGS.batch_size}")

    tokenizer = load_tokenizer(FLAGS.checkpoint)
    preprocessor = TextClassifierPreprocessor(tokenizer, sequence_length=FLAGS.sequence_length)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def keras_bert_step(batch):
        return preprocessor(batch)["token_ids"]

    raw = tf_text.FastBertTokenizer(
        vocab=tokenizer.get_vocabulary(),
        lower_case_nfd_strip_accents=tokenizer.lower_case,
        token_out_type=tf.int32,
    )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tf_text_step(batch):
        return raw.tokenize(batch).flat_values

    def run_tf(step):
        def run():
            for batch in text_batches:
                step(batch).numpy()
        return run

    methods = {"keras_bert": run_tf(keras_bert_step), "tf_text": run_tf(tf_text_step)}
    try:
        from tokenizers import Tokenizer

        hf = Tokenizer.from_file(str(Path(FLAGS.checkpoint) / "tokenizer.json"))
        hf.enable_truncation(max_length=FLAGS.sequence_length)
        hf.enable_padding(length=FLAGS.sequence_length)
        python_batches = batches(texts, FLAGS.batch_size)

        def run_hf():
            for batch in python_batches:
                np.asarray([encoding.ids for encoding in hf.encode_batch(batch)])

        methods["hf_tokenizers"] = run_hf
    except ImportError:
        print("tokenizers is not installed: skipping the Hugging Face baseline.")

    for run in methods.values():
        run()  # Warm-up: tracing, thread pools.
    seconds = time_best(methods, repeats)
    throughput = {name: megabytes / s for name, s in seconds.items()}
    for name, value in throughput.items():
        print(f"{name:>14}: {value:7.2f} MB/s ({seconds[name]:.2f} s)")
    print(f"keras_bert / tf_text: {throughput['keras_bert'] / throughput['tf_text']:.2f}x")
    if "hf_tokenizers" in throughput:
        ratio = throughput["keras_bert"] / throughput["hf_tokenizers"]
        print(f"keras_bert / hf_tokenizers: {ratio:.2f}x")


if __name__ == "__main__":
    cli.run(main)
