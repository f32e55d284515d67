"""keras_bert: BERT on Keras 3 with the TensorFlow backend.

Public API:
  - `keras_bert.BertEncoder`: the functional encoder network (`from_preset`, `from_config`).
  - `keras_bert.load_encoder(path)`: a `BertEncoder` from a Hugging Face or Google BERT checkpoint.
  - `keras_bert.load_tokenizer(path)`: the WordPiece tokenizer of a checkpoint or `vocab.txt`.

Names are resolved lazily so that `import keras_bert.text` does not build models.
"""

import importlib
import os

# Keras 3 must run on TensorFlow; this has to happen before keras is first imported.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

_PUBLIC_NAMES = {
    "BertClassifier": "keras_bert.models",
    "BertEncoder": "keras_bert.bert_encoder",
    "load_encoder": "keras_bert.checkpoints",
    "load_tokenizer": "keras_bert.text",
}

__all__ = sorted(_PUBLIC_NAMES)


def __getattr__(name):
    module_name = _PUBLIC_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'keras_bert' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
