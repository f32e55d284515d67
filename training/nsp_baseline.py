"""How much next-sentence signal a corpus carries, measured without a network.

Builds next-sentence examples exactly as `training.pretrain` does (same builder and
preprocessor, same evaluation seed), then scores every pair by the IDF-weighted overlap of the word pieces of
its two segments,

    overlap(A, B) = sum(idf(t) for t in A & B) / min(sum(idf(t) for t in A), sum(idf(t) for t in B))

(IDF over the training examples), fits one threshold on the training corpus and reports the
accuracy of "random next when the overlap is under the threshold" on both corpora. This is the
topic signal a pretrained model can use for next-sentence prediction; it shows what the data
allows, as a reference for the accuracy a short pretraining run reaches.

Example:

    python -m training.nsp_baseline --vocab=/tmp/bert_mini/vocab.txt \
        --corpus=../shared/data/wikitext2/valid.txt --eval_corpus=../shared/data/wikitext2/test.txt
"""

import json

import numpy as np
from absl import app
from absl import flags

from keras_bert.utils import cli
from training.core import pretraining_data

FLAGS = flags.FLAGS


def define_flags():
    """Defines the command-line flags (only when run as a program, so that tests and other
    apps can import this module)."""
    flags.DEFINE_string(
        "vocab", None, "vocab.txt (e.g. the one training.pretrain wrote).", required=True
    )
    flags.DEFINE_bool("lower_case", True, "Whether the vocabulary is uncased.")
    flags.DEFINE_string(
        "corpus", None, "Training corpus (fits IDF and the threshold).", required=True
    )
    flags.DEFINE_string("eval_corpus", None, "Evaluation corpus.", required=True)
    flags.DEFINE_integer("sequence_length", 128, "Length of the packed sequences.")
    cli.define_deprecated_alias("max_seq_length", "sequence_length")
    flags.register_validator("sequence_length", lambda value: value >= 5, "must be at least 5.")
    flags.DEFINE_integer("seed", 0, "Seed of the training-corpus examples.")
    flags.DEFINE_integer(
        "eval_seed", pretraining_data.DEFAULT_EVAL_SEED,
        "Seed of the evaluation examples (training.pretrain's default).",
    )
    flags.DEFINE_string("output", None, "Optional JSON file for the results.")


def _check_flags(argv):
    """The checks of the flags that read the disk."""
    del argv  # main refuses positional arguments
    cli.check_paths(files=["vocab", "corpus", "eval_corpus"])


def segment_sets(inputs, labels):
    """Sets of the original token ids of segment A and segment B of each example.

    Args:
        inputs: dict of numpy arrays `token_ids`, `segment_ids`, `padding_mask`
            (`(num_examples, sequence_length)`) and `masked_positions`
            (`(num_examples, max_predictions_per_seq)`).
        labels: dict with `masked_ids` and `masked_weights`
            (`(num_examples, max_predictions_per_seq)`).

    Returns:
        list of `(set, set)`, without `[CLS]` and the two `[SEP]`.
    """
    token_ids = np.array(inputs["token_ids"], copy=True)
    rows = np.arange(len(token_ids))[:, None]
    real = labels["masked_weights"] > 0
    restored = np.where(real, labels["masked_ids"], token_ids[rows, inputs["masked_positions"]])
    token_ids[rows, inputs["masked_positions"]] = restored
    pairs = []
    for ids, segments, mask in zip(token_ids, inputs["segment_ids"], inputs["padding_mask"]):
        length = int(mask.sum())
        first_end = int(np.sum(segments[:length] == 0))  # [CLS] A [SEP]
        pairs.append((set(ids[1:first_end - 1].tolist()), set(ids[first_end:length - 1].tolist())))
    return pairs


def inverse_document_frequency(pairs, vocabulary_size):
    """IDF of every token id over the examples (each example one document)."""
    counts = np.zeros(vocabulary_size)
    for first, second in pairs:
        counts[list(first | second)] += 1
    return np.log(len(pairs) / (1.0 + counts))


def overlap_scores(pairs, idf):
    """IDF-weighted overlap of the two segments of each pair, in [0, 1] for positive IDF."""
    scores = []
    for first, second in pairs:
        shared = sum(idf[t] for t in first & second)
        smaller = min(sum(idf[t] for t in first), sum(idf[t] for t in second))
        scores.append(shared / smaller if smaller > 0 else 0.0)
    return np.asarray(scores)


def fit_threshold(scores, random_next):
    """The threshold (and its accuracy) that best predicts "random next" as `score < threshold`."""
    candidates = np.unique(scores)
    accuracies = [np.mean((scores < t) == random_next) for t in candidates]
    best = int(np.argmax(accuracies))
    return float(candidates[best]), float(accuracies[best])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from keras_bert.models import model_dir
    from keras_bert.text.bert_tokenizer import BertTokenizer
    from keras_bert.text.bert_tokenizer import read_vocabulary

    vocabulary = read_vocabulary(FLAGS.vocab)
    tokenizer = BertTokenizer(vocabulary, lower_case=FLAGS.lower_case)

    def examples(path, seed):
        corpus = pretraining_data.CorpusExamples(
            [path], tokenizer, sequence_length=FLAGS.sequence_length
        )
        inputs, labels = corpus.arrays(seed)
        return segment_sets(inputs, labels), labels["next_sentence_label"] == 1

    train_pairs, train_random = examples(FLAGS.corpus, FLAGS.seed)
    eval_pairs, eval_random = examples(FLAGS.eval_corpus, FLAGS.eval_seed)
    idf = inverse_document_frequency(train_pairs, len(vocabulary))
    threshold, train_accuracy = fit_threshold(overlap_scores(train_pairs, idf), train_random)
    eval_accuracy = float(np.mean((overlap_scores(eval_pairs, idf) < threshold) == eval_random))
    results = {
        "train_examples": len(train_pairs),
        "eval_examples": len(eval_pairs),
        "threshold": threshold,
        "train_accuracy": train_accuracy,
        "eval_accuracy": eval_accuracy,
        "max_seq_length": FLAGS.sequence_length,
    }
    print(json.dumps(results, indent=1))
    if FLAGS.output:
        model_dir.write_json(FLAGS.output, results)


if __name__ == "__main__":
    define_flags()
    cli.run(main, input_flags=("vocab", "corpus", "eval_corpus"), check=_check_flags)
