"""The base of the task preprocessors: the tokenizer, the one `BertPacker`, their config."""

import keras
import tensorflow as tf

from keras_bert.text.bert_packer import BertPacker

# The tokenizer attributes of the special tokens a preprocessor may need, and their tokens.
_SPECIAL_TOKENS = {"cls_token_id": "[CLS]", "sep_token_id": "[SEP]", "mask_token_id": "[MASK]"}


class Preprocessor(keras.layers.Layer):
    """Base class of the task preprocessors: owns the tokenizer and a `BertPacker`.

    A subclass is the one road from its task's text to the model's dict inputs: it tokenizes
    with `tokenizer` and packs only with `packer`. It validates its own arguments, calls
    `super().__init__(tokenizer, sequence_length, **kwargs)`, and adds its settings to
    `get_config`. Inputs (strings, ragged ids) are left as they are, as keras-hub's layers do.

    Args:
        tokenizer: `keras_bert.text.BertTokenizer`. Its vocabulary gives the special token ids.
        sequence_length: int or None. The packed length (see `BertPacker`).
    """

    # Tokenizer attributes a subclass needs (a `ValueError` names the first that is missing).
    required_special_tokens = ("cls_token_id", "sep_token_id")

    def __init__(self, tokenizer, sequence_length, **kwargs):
        super().__init__(**kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        for name in self.required_special_tokens:
            if getattr(tokenizer, name, None) is None:
                tokens = [_SPECIAL_TOKENS[required] for required in self.required_special_tokens]
                listed = ", ".join(tokens[:-1]) + " and " + tokens[-1]
                raise ValueError(
                    f"`tokenizer` must have {listed} in its vocabulary, but its `{name}` is None."
                )
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.packer = BertPacker(
            sequence_length=sequence_length,
            cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id,
            pad_token_id=tokenizer.pad_token_id,
            name="packer",
        )
        self.built = True

    def tokenize_batch(self, texts, name="texts"):
        """Token ids of a batch of texts, without special tokens.

        Args:
            texts: string `Tensor` of shape `(batch_size,)`, or a list of str.
            name: str. The argument named by the error for another shape.

        Returns:
            int32 `tf.RaggedTensor` of shape `(batch_size, None)`.
        """
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        if texts.shape.rank != 1:
            raise ValueError(
                f"`{name}` must be a string tensor of shape (batch_size,), received shape "
                f"{texts.shape}."
            )
        return self.tokenizer.tokenize(texts)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
                "sequence_length": self.sequence_length,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("tokenizer"), dict):
            config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)
