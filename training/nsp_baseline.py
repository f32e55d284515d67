"""How much next-sentence signal a corpus carries, measured without a network.

Builds next-sentence examples exactly as `training.pretrain` does (same builder and
preprocessor, same evaluation seed), then scores every pair by the IDF-weighted overlap of the word pieces of
its two segments,

    overlap(A, B) = sum(idf(t) for t in A & B) / min(sum(idf(t) for t in A), sum(idf(t) for t in B))

(IDF over the training examples), fits one threshold on the training corpus and reports the
accuracy of "random next when the overlap is under the threshold" on both corpora. This is the
topic signal a pretrained model can use for next-sentence prediction; it shows what the data
allows, as a reference for the accuracy a short pretraining run reaches.

With `--encoder` (a pretrained encoder, e.g. the `encoder` directory `training.pretrain`
writes) it also scores every pair by the cosine similarity of the encoder's mean final-layer
representations of its two segments, on the same inputs the next-sentence head sees (masked),
and fits a threshold the same way. Set beside the model's own next-sentence accuracy, this
says whether the encoder's representations already carry the signal that its `[CLS]` head has
not learned to read yet. Two linear probes of the frozen encoder go further (logistic
regression, L2-regularised, fitted on `--probe_passes` passes of the training corpus): one on the
final `[CLS]` vector, what the next-sentence head reads, one on the product and absolute
difference of the two segment means. The first says whether `[CLS]` holds the signal at all.

Example:

    python -m training.nsp_baseline --vocab=/tmp/bert_mini/vocab.txt \
        --corpus=../shared/data/wikitext2/valid.txt --eval_corpus=../shared/data/wikitext2/test.txt \
        --encoder=/tmp/bert_mini/encoder
"""

import json
import os

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
    flags.DEFINE_string(
        "encoder", None,
        "Optional encoder checkpoint (anything keras_bert.load_encoder reads): also score the "
        "pairs by the cosine of its mean representations of the two segments.",
    )
    flags.DEFINE_integer(
        "probe_passes", 3,
        "Passes of --corpus (new pairs and masks each) the linear probes of --encoder are "
        "fitted on.",
    )
    flags.register_validator("probe_passes", lambda value: value > 0, "must be positive.")
    flags.DEFINE_integer("batch_size", 64, "Batch size of the encoder's forward passes.")
    flags.register_validator("batch_size", lambda value: value > 0, "must be positive.")
    flags.DEFINE_string("output", None, "Optional JSON file for the results.")


def _check_flags(argv):
    """The checks of the flags that read the disk."""
    del argv  # main refuses positional arguments
    cli.check_paths(files=["vocab", "corpus", "eval_corpus"])
    if FLAGS.encoder is not None and not os.path.exists(FLAGS.encoder):
        raise cli.FlagError("encoder", FLAGS.encoder, "does not exist.")


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
    in_first, in_second = segment_masks(inputs)
    return [
        (set(ids[first].tolist()), set(ids[second].tolist()))
        for ids, first, second in zip(token_ids, in_first, in_second)
    ]


def segment_masks(inputs):
    """Where segment A and segment B are, without `[CLS]` and the two `[SEP]`.

    The positions `SegmentPairHead` averages over (`segment_pair_masks`), as numpy.

    Args:
        inputs: dict of numpy arrays `segment_ids` and `padding_mask`
            (`(num_examples, sequence_length)`), packed as `[CLS] A [SEP] B [SEP]`.

    Returns:
        Two boolean numpy arrays `(num_examples, sequence_length)`: A's positions, B's.
    """
    from keras_bert.layers.segment_pair_head import segment_pair_masks

    masks = segment_pair_masks(np.asarray(inputs["segment_ids"]), np.asarray(inputs["padding_mask"]))
    return tuple(np.asarray(mask) > 0 for mask in masks)


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


def encoder_features(encoder, inputs, batch_size=64):
    """The encoder's final `[CLS]` vector and its mean representation of each segment.

    The means are over the final-layer `sequence_output` at `segment_masks`' positions.

    Args:
        encoder: `keras_bert.BertEncoder`.
        inputs: dict of numpy arrays `token_ids`, `segment_ids`, `padding_mask`
            (`(num_examples, sequence_length)`), as the next-sentence head sees them.
        batch_size: int. Examples per forward pass.

    Returns:
        Three float64 numpy arrays `(num_examples, hidden_dim)`: `sequence_output` at
        `[CLS]`, the mean over segment A, the mean over segment B.
    """
    from keras_bert.layers.segment_pair_head import masked_mean

    in_first, in_second = segment_masks(inputs)
    outputs = ([], [], [])
    for start in range(0, len(in_first), batch_size):
        rows = slice(start, start + batch_size)
        batch = {name: np.asarray(inputs[name][rows]) for name in
                 ("token_ids", "segment_ids", "padding_mask")}
        sequence = np.asarray(encoder(batch, training=False)["sequence_output"], np.float64)
        outputs[0].append(sequence[:, 0])
        for output, mask in zip(outputs[1:], (in_first[rows], in_second[rows])):
            output.append(np.asarray(masked_mean(sequence, mask.astype(np.float64))))
    return tuple(np.concatenate(output) for output in outputs)


def segment_mean_cosines(encoder, inputs, batch_size=64):
    """Cosine similarity of the encoder's mean representations of each pair's two segments.

    Args: those of `encoder_features`.

    Returns:
        numpy array `(num_examples,)` of cosines in [-1, 1].
    """
    _, first, second = encoder_features(encoder, inputs, batch_size)
    return _cosines(first, second)


def _cosines(first, second):
    norms = np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)
    return np.sum(first * second, axis=1) / np.maximum(norms, 1e-12)


def segment_pair_features(first, second):
    """`[first * second, |first - second|]`, the features `SegmentPairHead` scores, as numpy.

    Args:
        first, second: numpy arrays `(num_examples, hidden_dim)`, the segment means.

    Returns:
        numpy array `(num_examples, 2 * hidden_dim)`.
    """
    from keras_bert.layers.segment_pair_head import segment_pair_features as features

    return np.asarray(features(first, second))


def linear_probe(train_features, train_labels, eval_features, eval_labels, l2=1.0,
                 max_iterations=100):
    """Accuracies of a logistic regression fitted on `train_features`.

    The features are standardised by the training set's mean and standard deviation; the
    weights minimise the summed log-loss plus `l2 / 2 * |w|^2` (the bias is not penalised),
    by Newton's method, which is deterministic.

    Args:
        train_features: numpy array `(num_train, num_features)`.
        train_labels: boolean or 0/1 numpy array `(num_train,)`.
        eval_features: numpy array `(num_eval, num_features)`.
        eval_labels: boolean or 0/1 numpy array `(num_eval,)`.
        l2: float. Weight of the penalty. Defaults to `1.0`.
        max_iterations: int. Newton steps at most. Defaults to `100`.

    Returns:
        `(train_accuracy, eval_accuracy)`, floats.
    """
    if l2 <= 0:
        raise ValueError(f"`l2` must be positive, received {l2}.")
    mean = train_features.mean(axis=0)
    scale = np.maximum(train_features.std(axis=0), 1e-12)

    def design(features):
        standard = (np.asarray(features, np.float64) - mean) / scale
        return np.concatenate([standard, np.ones((len(standard), 1))], axis=1)

    x = design(train_features)
    y = np.asarray(train_labels, np.float64)
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0
    weights = np.zeros(x.shape[1])
    for _ in range(max_iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ weights)))
        gradient = x.T @ (p - y) + penalty * weights
        hessian = (x * (p * (1.0 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.max(np.abs(step)) < 1e-8:
            break

    def accuracy(features, labels):
        return float(np.mean((design(features) @ weights > 0) == np.asarray(labels, bool)))

    return accuracy(train_features, train_labels), accuracy(eval_features, eval_labels)


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

    # Each corpus is read and tokenized once; the probes' extra passes reuse the training one.
    train_corpus, eval_corpus = (
        pretraining_data.CorpusExamples([path], tokenizer, sequence_length=FLAGS.sequence_length)
        for path in (FLAGS.corpus, FLAGS.eval_corpus)
    )
    train_inputs, train_labels = train_corpus.arrays(FLAGS.seed)
    eval_inputs, eval_labels = eval_corpus.arrays(FLAGS.eval_seed)
    train_pairs = segment_sets(train_inputs, train_labels)
    eval_pairs = segment_sets(eval_inputs, eval_labels)
    train_random = train_labels["next_sentence_label"] == 1
    eval_random = eval_labels["next_sentence_label"] == 1
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
    if FLAGS.encoder is not None:
        from keras_bert.checkpoints import load_encoder

        encoder = load_encoder(FLAGS.encoder)
        if encoder.vocabulary_size != len(vocabulary):
            raise cli.FlagError(
                "encoder", FLAGS.encoder,
                f"has a vocabulary of {encoder.vocabulary_size} pieces; --vocab has "
                f"{len(vocabulary)}.",
            )
        if encoder.max_sequence_length < FLAGS.sequence_length:
            raise cli.FlagError(
                "encoder", FLAGS.encoder,
                f"takes at most {encoder.max_sequence_length} tokens; --sequence_length is "
                f"{FLAGS.sequence_length}.",
            )
        # The probes are fitted on --probe_passes passes of the training corpus; the
        # threshold on the first, as the overlap's.
        passes = [(train_inputs, train_labels)] + [
            train_corpus.arrays(FLAGS.seed + index) for index in range(1, FLAGS.probe_passes)
        ]
        train_features = [encoder_features(encoder, inputs, FLAGS.batch_size)
                          for inputs, _ in passes]
        eval_features = encoder_features(encoder, eval_inputs, FLAGS.batch_size)
        encoder_threshold, encoder_train_accuracy = fit_threshold(
            _cosines(*train_features[0][1:]), train_random
        )
        results["encoder"] = {
            "path": FLAGS.encoder,
            "threshold": encoder_threshold,
            "train_accuracy": encoder_train_accuracy,
            "eval_accuracy": float(
                np.mean((_cosines(*eval_features[1:]) < encoder_threshold) == eval_random)
            ),
        }

        def probe_inputs(features):
            cls, first, second = features
            return {"cls_probe": cls, "segment_probe": segment_pair_features(first, second)}

        train_probe_inputs = [probe_inputs(features) for features in train_features]
        eval_probe_inputs = probe_inputs(eval_features)
        probe_labels = np.concatenate([labels["next_sentence_label"] == 1 for _, labels in passes])
        for name in ("cls_probe", "segment_probe"):
            probe_train_accuracy, probe_eval_accuracy = linear_probe(
                np.concatenate([inputs[name] for inputs in train_probe_inputs]), probe_labels,
                eval_probe_inputs[name], eval_random,
            )
            results["encoder"][name] = {
                "train_examples": len(probe_labels),
                "train_accuracy": probe_train_accuracy,
                "eval_accuracy": probe_eval_accuracy,
            }
    print(json.dumps(results, indent=1))
    if FLAGS.output:
        model_dir.write_json(FLAGS.output, results)


if __name__ == "__main__":
    define_flags()
    cli.run(main, input_flags=("vocab", "corpus", "eval_corpus"), check=_check_flags)
