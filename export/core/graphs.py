"""The serving functions both exporters trace: text -> packed ids -> logits -> predictions.

Shape legend: B = batch, S = sequence length (at most `max_seq_length`), C = outputs.
"""

import tensorflow as tf

from keras_bert.text import BertPacker

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")
TEXT_INPUT = "text"
TEXT_PAIR_INPUT = "text_pair"


def token_id_signature(batch_size=None):
    """The int32 `(batch_size, None)` specs of `token_ids`, `segment_ids`, `padding_mask`."""
    return {name: tf.TensorSpec((batch_size, None), tf.int32, name=name) for name in INPUT_NAMES}


def text_signature(is_pair, batch_size=None):
    """String `(batch_size,)` specs of `text` (and `text_pair` for pair tasks)."""
    specs = {TEXT_INPUT: tf.TensorSpec((batch_size,), tf.string, name=TEXT_INPUT)}
    if is_pair:
        specs[TEXT_PAIR_INPUT] = tf.TensorSpec((batch_size,), tf.string, name=TEXT_PAIR_INPUT)
    return specs


class TextPacker:
    """Tokenizes and packs string tensors into the model's inputs, inside a graph.

    Texts are packed to `max_seq_length` (truncating as fine-tuning did), then cut to the
    longest packed row of the batch: the logits at real positions do not depend on padding,
    and short inputs do not pay for `max_seq_length` tokens.

    Only ops with TFLite kernels (builtins and tensorflow-text's) are used; with
    `batch_size=1` the packed tensors get a static batch axis, which the TFLite converter needs
    to lower the attention mask's `[:, None, None, :]` to a builtin.

    Args:
        tokenizer: `keras_bert.text.BertTokenizer`.
        max_seq_length: int. The longest packed sequence.
        batch_size: int or None. A static batch size to declare, or None.
    """

    def __init__(self, tokenizer, max_seq_length, batch_size=None):
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.packer = BertPacker(
            sequence_length=max_seq_length,
            cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )

    def _segments(self, texts):
        token_ids, row_splits = self.tokenizer.tokenize_flat(texts)
        return tf.RaggedTensor.from_row_splits(token_ids, row_splits, validate=False)

    def __call__(self, texts, texts_pair=None):
        """Dict of int32 `(B, S)` tensors `token_ids`, `segment_ids`, `padding_mask`."""
        pair = None if texts_pair is None else self._segments(texts_pair)
        packed = self.packer(self._segments(texts), pair)
        # (B, max_seq_length) -> (B, S), S = the longest real sequence of the batch.
        length = tf.reduce_max(tf.reduce_sum(packed["padding_mask"], axis=1))
        packed = {name: value[:, :length] for name, value in packed.items()}
        if self.batch_size is not None:
            shape = [self.batch_size, -1]
            packed = {name: tf.reshape(value, shape) for name, value in packed.items()}
        return packed


def predictions(logits, labels, regression):
    """The outputs of the serving signatures, from float32 `(B, C)` logits.

    Classification: `logits`, `probabilities` (softmax, `(B, C)`), `label` (int64 class index,
    `(B,)`) and `label_name` (string, `(B,)`). Regression: `logits` and `score` (`(B,)`).
    """
    logits = tf.cast(logits, tf.float32)
    if regression:
        return {"logits": logits, "score": logits[:, 0]}
    label = tf.argmax(logits, axis=-1, output_type=tf.int64)
    return {
        "logits": logits,
        "probabilities": tf.nn.softmax(logits, axis=-1),
        "label": label,
        "label_name": tf.gather(tf.constant(labels, tf.string), label),
    }
