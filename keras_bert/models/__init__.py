"""Trainable task models built on `BertEncoder`, and the fine-tuned model directory.

- `BertClassifier`: sentence (pair) classification or regression on `[CLS]`.
- `BertSpanLabeler`: extractive QA, start/end logits per position.
- `BertTokenClassifier`: one label per token (NER).
- `BertTextEmbedder`: sentence embeddings (mean or `[CLS]` pooling, L2-normalised).
- `load_model_dir(model_dir)`: model, tokenizer, preprocessor, label map and config of a
  directory written by `training.finetune` (see `keras_bert.models.model_dir`, the only
  reader and writer of that layout).
- `best_span(...)`: the best answer span from `BertSpanLabeler` logits.
"""

# The saved task models name `BertEncoder` in their configs: importing this package
# registers it, so `keras.saving.load_model(path, safe_mode=True)` works after
# `import keras_bert.models`.
import keras_bert.bert_encoder  # noqa: F401
from keras_bert.models.bert_classifier import BertClassifier
from keras_bert.models.bert_span_labeler import BertSpanLabeler
from keras_bert.models.bert_text_embedder import BertTextEmbedder
from keras_bert.models.bert_token_classifier import BertTokenClassifier
from keras_bert.models.model_dir import ModelDir, load_model_dir
from keras_bert.models.span_decoding import best_span

__all__ = [
    "BertClassifier",
    "BertSpanLabeler",
    "BertTextEmbedder",
    "BertTokenClassifier",
    "ModelDir",
    "best_span",
    "load_model_dir",
]
from keras_bert.models.bert_pretrainer import BertPretrainer  # noqa: E402
__all__ += ["BertPretrainer"]
