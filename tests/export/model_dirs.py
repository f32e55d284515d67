"""Fine-tuned model directories in the `training.finetune` layout, for export tests and trials.

The layout (the contract between fine-tuning and export):

    DIR/model.keras               a `keras_bert.models.BertClassifier`
    DIR/label_map.json            {"task": "classification", "labels": ["0", "1"],
                                   "regression": false}
    DIR/tokenizer/vocab.txt       the WordPiece vocabulary
    DIR/tokenizer/tokenizer_config.json   {"do_lower_case": true}
    DIR/finetune_config.json      {"task", "max_seq_length", "text_column", "pair_column", ...}
    DIR/metrics.json

`write_tiny_model_dir` makes a small random classifier over the first 3,000 tokens of the MiniLM
vocabulary (the special tokens, single characters and the most frequent words): a second to build.

Run as a script, it fine-tunes the real MiniLM on SST-2 rows, the model the acceptance figures of
issue 6 are measured on (about 10 minutes on two cores):

    flock /tmp/keras_bert_heavy.lock python -m tests.export.model_dirs \\
        --out=/tmp/minilm_sst2 --num_train=8000
"""

import argparse
import csv
import os

import keras
import numpy as np

import keras_bert
from keras_bert.models import BertClassifier
from keras_bert.models import model_dir as library_model_dir
from keras_bert.text import BertTokenizer
from keras_bert.text import TextClassifierPreprocessor
from keras_bert.text.bert_tokenizer import read_vocabulary
from tests.test_case import shared_path

TINY_VOCABULARY_SIZE = 3000


def read_tsv(path, limit=None):
    """`(sentences, labels)` of a `sentence<TAB>label` file."""
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            texts.append(row["sentence"])
            labels.append(int(row["label"]))
            if limit is not None and len(texts) >= limit:
                break
    return texts, np.asarray(labels, np.int32)


def save_model_dir(directory, classifier, vocabulary, lower_case=True, sequence_length=128,
                   init="random", metrics=None, pair_column=None):
    """Writes `classifier` and its tokenizer files in the fine-tuning layout."""
    tokenizer = BertTokenizer(vocabulary, lower_case=lower_case)
    labels = [str(i) for i in range(classifier.num_classes)]
    config = {
        "task": "classification",
        library_model_dir.SEQUENCE_LENGTH_KEY: sequence_length,
        "text_column": "sentence1" if pair_column else "sentence",
        "pair_column": pair_column,
        "label_column": "label",
        "init": init,
    }
    library_model_dir.write_assets(directory, "classification", labels, tokenizer, config)
    library_model_dir.save_model(
        classifier, os.path.join(directory, library_model_dir.MODEL_FILE)
    )
    library_model_dir.write_json(
        os.path.join(directory, library_model_dir.METRICS_FILE), metrics or {}
    )
    return directory


def _fit(classifier, tokenizer, texts, labels, learning_rate, epochs, batch_size, sequence_length):
    inputs = TextClassifierPreprocessor(tokenizer, sequence_length).pack_numpy(texts)
    classifier.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    classifier.fit(inputs, labels, batch_size=batch_size, epochs=epochs, verbose=0)


def evaluate(classifier, tokenizer, texts, labels, sequence_length=128):
    inputs = TextClassifierPreprocessor(tokenizer, sequence_length).pack_numpy(texts)
    logits = classifier.predict(inputs, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def write_tiny_model_dir(directory, seed=0, sequence_length=128, pair_column=None):
    """A small random classifier directory (2 blocks, hidden 64, 3,000-token vocabulary).

    Untrained, but initialised wide enough that logits are of order one and differ between
    texts, so that exported files can be compared with it number for number.
    """
    keras.utils.set_random_seed(seed)
    vocabulary = read_vocabulary(
        shared_path("models", "all-MiniLM-L6-v2", "vocab.txt")
    )[:TINY_VOCABULARY_SIZE]
    encoder = keras_bert.BertEncoder(
        vocabulary_size=len(vocabulary), num_layers=2, num_heads=2, hidden_dim=64,
        intermediate_dim=256, max_sequence_length=sequence_length,
        dropout=0.0, initializer_range=0.1,
    )
    classifier = BertClassifier(encoder, num_classes=2, dropout=0.0, initializer_range=1.0)
    # Centre the logits on real text so that both classes are predicted.
    texts, _ = read_tsv(shared_path("data", "sst2", "train.tsv"), limit=256)
    tokenizer = BertTokenizer(vocabulary, lower_case=True)
    logits = classifier.predict(
        TextClassifierPreprocessor(tokenizer, sequence_length=64).pack_numpy(texts), verbose=0
    )
    head = classifier.get_layer("logits")
    head.bias.assign(keras.ops.convert_to_numpy(head.bias) - np.median(logits, axis=0))
    return save_model_dir(directory, classifier, vocabulary, sequence_length=sequence_length,
                          pair_column=pair_column)


def write_minilm_model_dir(directory, num_train=8000, epochs=1, seed=0):
    """MiniLM fine-tuned on the first `num_train` SST-2 training rows."""
    keras.utils.set_random_seed(seed)
    checkpoint = shared_path("models", "all-MiniLM-L6-v2")
    tokenizer = keras_bert.load_tokenizer(checkpoint)
    encoder = keras_bert.load_encoder(checkpoint)
    classifier = BertClassifier(encoder, num_classes=2)
    texts, labels = read_tsv(shared_path("data", "sst2", "train.tsv"), limit=num_train)
    _fit(classifier, tokenizer, texts, labels, 5e-5, epochs, 32, 64)
    test_texts, test_labels = read_tsv(shared_path("data", "sst2", "test.tsv"))
    accuracy = evaluate(classifier, tokenizer, test_texts, test_labels)
    print(f"test accuracy {accuracy:.4f}")
    return save_model_dir(
        directory, classifier, tokenizer.get_vocabulary(), lower_case=tokenizer.lower_case,
        init=checkpoint, metrics={"test_accuracy": accuracy, "num_train": num_train},
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="Directory to write.")
    parser.add_argument("--num_train", type=int, default=8000, help="SST-2 rows to train on.")
    parser.add_argument("--epochs", type=int, default=1, help="Training epochs.")
    args = parser.parse_args()
    write_minilm_model_dir(args.out, args.num_train, args.epochs)


if __name__ == "__main__":
    main()
