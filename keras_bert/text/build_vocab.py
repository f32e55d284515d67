"""Learns a WordPiece vocabulary from text files with tensorflow-text's learner.

Words are counted after the same normalization and splitting as `BertTokenizer`; the vocabulary
starts with `[PAD] [UNK] [CLS] [SEP] [MASK]` and is written atomically, one token per line.
See `keras_bert.text.wordpiece_vocabulary`.

Example:

    python -m keras_bert.text.build_vocab \\
        --corpus ../shared/data/wikitext2/valid.txt --vocab_size 8000 --out /tmp/vocab.txt
"""

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_multi_string(
    "corpus", None, "Text file(s) to learn from; repeat the flag or separate with commas."
)
flags.DEFINE_integer("vocab_size", None, "Target vocabulary size, special tokens included.")
flags.DEFINE_string("out", None, "Path of the vocab.txt to write.")
flags.DEFINE_bool("lower_case", True, "Lower-case and strip accents (an uncased vocabulary).")
flags.DEFINE_integer("max_unique_chars", 1000, "Most distinct characters in the vocabulary.")
flags.DEFINE_integer("max_token_length", 50, "Longer words are not counted.")
flags.DEFINE_integer("num_iterations", 4, "Learner iterations per threshold.")
flags.DEFINE_integer(
    "min_count", 2, "Lowest token count the learner may admit (lower it on small corpora)."
)
flags.mark_flags_as_required(["corpus", "vocab_size", "out"])


def main(argv):
    del argv
    from keras_bert.text.wordpiece_vocabulary import learn_vocabulary
    from keras_bert.text.wordpiece_vocabulary import write_vocabulary

    paths = [path for value in FLAGS.corpus for path in value.split(",") if path]
    vocabulary = learn_vocabulary(
        paths,
        FLAGS.vocab_size,
        lower_case=FLAGS.lower_case,
        max_unique_chars=FLAGS.max_unique_chars,
        max_token_length=FLAGS.max_token_length,
        num_iterations=FLAGS.num_iterations,
        min_count=FLAGS.min_count,
    )
    write_vocabulary(vocabulary, FLAGS.out)
    print(f"Wrote {len(vocabulary)} tokens to {FLAGS.out}")


if __name__ == "__main__":
    app.run(main)
