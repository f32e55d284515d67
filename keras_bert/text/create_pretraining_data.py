"""Writes BERT pretraining examples (masked LM + next sentence) as sharded TFRecords.

Corpus: one sentence or paragraph per line, documents separated by blank lines; WikiText files
(`= Title =` lines start articles) are recognized. Lines are tokenized with the checkpoint's
`BertTokenizer` by a `PretrainerPreprocessor`, which also packs and masks the sentence pairs
that `PretrainingExampleBuilder` chooses (seeded: the same flags give the same files); the
examples are written round-robin to `--num_shards` files in `--out`. Read them back with
`keras_bert.text.load_pretraining_dataset`.

Example:

    python -m keras_bert.text.create_pretraining_data \\
        --corpus ../shared/data/wikitext2/valid.txt \\
        --vocab ../shared/models/all-MiniLM-L6-v2/vocab.txt \\
        --out /tmp/pretraining --sequence_length 128 --dupe_factor 2 --num_shards 4
"""

import os

from absl import flags

from keras_bert.text.corpus import CORPUS_FORMATS
from keras_bert.utils import cli

FLAGS = flags.FLAGS
flags.DEFINE_multi_string(
    "corpus", None, "Corpus text file(s); repeat the flag or separate files with commas."
)
flags.DEFINE_string(
    "vocab", None, "vocab.txt of the checkpoint, or a checkpoint directory holding one."
)
flags.DEFINE_string("out", None, "Output directory for the TFRecord shards.")
flags.DEFINE_enum("corpus_format", "auto", CORPUS_FORMATS, "Corpus format (see the docstring).")
flags.DEFINE_bool(
    "lower_case", None, "Lower-case and strip accents; default: from the checkpoint/vocabulary."
)
flags.DEFINE_integer("sequence_length", 128, "Length of the packed sequences.")
cli.define_deprecated_alias("max_seq_length", "sequence_length")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Most masked tokens per sequence.")
flags.DEFINE_float("masked_lm_prob", 0.15, "Fraction of tokens masked.")
flags.DEFINE_float("short_seq_prob", 0.1, "Probability of a shorter target sequence length.")
flags.DEFINE_integer("dupe_factor", 1, "Passes over the corpus, each with other masks and pairs.")
flags.DEFINE_bool("whole_word_masking", False, "Mask all pieces of a word together.")
flags.DEFINE_integer("num_shards", 1, "Number of output TFRecord files.")
flags.DEFINE_integer("seed", 12345, "Random seed.")
flags.DEFINE_integer("batch_size", 1024, "Lines tokenized per batch.")
flags.mark_flags_as_required(["corpus", "vocab", "out"])
flags.register_validator("sequence_length", lambda value: value >= 5, "must be at least 5.")
flags.register_validator("dupe_factor", lambda value: value >= 1, "must be positive.")
flags.register_validator("num_shards", lambda value: value >= 1, "must be positive.")
flags.register_validator("batch_size", lambda value: value >= 1, "must be positive.")
flags.register_validator("short_seq_prob", lambda value: 0 <= value <= 1, "must be in [0, 1].")

# The flag behind each argument that the writer's errors name.
_FLAG_FOR = {
    "sequence_length": "sequence_length",
    "short_seq_prob": "short_seq_prob", "dupe_factor": "dupe_factor", "num_shards": "num_shards",
}


def _corpus_paths():
    return [path for value in FLAGS.corpus for path in value.split(",") if path]


def _check_flags(argv):
    """The checks of the flags that read the disk."""
    del argv  # no positional arguments
    for path in _corpus_paths():
        if not os.path.isfile(path):
            raise cli.FlagError("corpus", path, "not a file.")
    if not os.path.exists(FLAGS.vocab):
        raise cli.FlagError("vocab", FLAGS.vocab, "does not exist.")


def main(argv):
    del argv
    from keras_bert.text.bert_tokenizer import load_tokenizer
    from keras_bert.text.pretraining_data_writer import write_pretraining_data

    corpus_paths = _corpus_paths()
    tokenizer = load_tokenizer(FLAGS.vocab, lower_case=FLAGS.lower_case)
    num_examples = write_pretraining_data(
        corpus_paths,
        tokenizer,
        FLAGS.out,
        corpus_format=FLAGS.corpus_format,
        sequence_length=FLAGS.sequence_length,
        max_predictions_per_seq=FLAGS.max_predictions_per_seq,
        masked_lm_prob=FLAGS.masked_lm_prob,
        short_seq_prob=FLAGS.short_seq_prob,
        dupe_factor=FLAGS.dupe_factor,
        whole_word_masking=FLAGS.whole_word_masking,
        num_shards=FLAGS.num_shards,
        seed=FLAGS.seed,
        batch_size=FLAGS.batch_size,
    )
    print(f"Wrote {num_examples} examples to {FLAGS.out}")


if __name__ == "__main__":
    cli.run(main, flag_for=_FLAG_FOR, input_flags=("corpus", "vocab"), check=_check_flags)
