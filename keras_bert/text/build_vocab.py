"""Learns a WordPiece vocabulary from text files with tensorflow-text's learner.

Words are counted after the same normalization and splitting as `BertTokenizer`; the vocabulary
starts with `[PAD] [UNK] [CLS] [SEP] [MASK]` and is written atomically, one token per line.
See `keras_bert.text.wordpiece_vocabulary`.

Example:

    python -m keras_bert.text.build_vocab \\
        --corpus ../shared/data/wikitext2/valid.txt --vocabulary_size 8000 --out /tmp/vocab.txt
"""

import os

from absl import flags

from keras_bert.utils import cli

FLAGS = flags.FLAGS
flags.DEFINE_multi_string(
    "corpus", None, "Text file(s) to learn from; repeat the flag or separate with commas."
)
flags.DEFINE_integer(
    "vocabulary_size", None, "Target vocabulary size, special tokens included."
)
cli.define_deprecated_alias("vocab_size", "vocabulary_size")
flags.DEFINE_string("out", None, "Path of the vocab.txt to write.")
flags.DEFINE_bool("lower_case", True, "Lower-case and strip accents (an uncased vocabulary).")
flags.DEFINE_integer("max_unique_chars", 1000, "Most distinct characters in the vocabulary.")
flags.DEFINE_integer("max_token_length", 50, "Longer words are not counted.")
flags.DEFINE_integer("num_iterations", 4, "Learner iterations per threshold.")
flags.DEFINE_integer(
    "min_count", 2, "Lowest token count the learner may admit (lower it on small corpora)."
)
flags.mark_flags_as_required(["corpus", "vocabulary_size", "out"])


def _corpus_paths():
    return [path for value in FLAGS.corpus for path in value.split(",") if path]


def _check_flags(argv):
    """The checks of the flags that read the disk."""
    del argv  # no positional arguments
    for path in _corpus_paths():
        if not os.path.isfile(path):
            raise cli.FlagError("corpus", path, "not a file.")


def main(argv):
    del argv
    from keras_bert.text.wordpiece_vocabulary import learn_vocabulary
    from keras_bert.text.wordpiece_vocabulary import write_vocabulary

    vocabulary = learn_vocabulary(
        _corpus_paths(),
        FLAGS.vocabulary_size,
        lower_case=FLAGS.lower_case,
        max_unique_chars=FLAGS.max_unique_chars,
        max_token_length=FLAGS.max_token_length,
        num_iterations=FLAGS.num_iterations,
        min_count=FLAGS.min_count,
    )
    write_vocabulary(vocabulary, FLAGS.out)
    print(f"Wrote {len(vocabulary)} tokens to {FLAGS.out}")


if __name__ == "__main__":
    # `learn_vocabulary`'s errors name its argument `vocabulary_size`, fed by the flag.
    cli.run(
        main, flag_for={"vocabulary_size": "vocabulary_size"}, input_flags=["corpus"],
        check=_check_flags,
    )
