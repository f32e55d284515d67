"""Text to `BertClassifier` inputs: tokenize one or two texts and pack them."""

import keras
import numpy as np

from keras_bert.inputs import INPUT_NAMES
from keras_bert.text.preprocessor import Preprocessor

# Texts tokenized per graph call by `pack_numpy`: large enough to amortise the call, small
# enough to bound the memory of the ragged intermediates.
_NUMPY_CHUNK = 8192


@keras.saving.register_keras_serializable(package="keras_bert")
class TextClassifierPreprocessor(Preprocessor):
    """Turns sentences or sentence pairs into the packed inputs of `BertClassifier`.

    Each text is tokenized by `tokenizer` (reference-exact WordPiece, no special tokens) and
    packed by a `BertPacker` as `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, truncated to
    `sequence_length` (pairs longest-first, as Hugging Face tokenizers do) and padded.
    `segment_ids` is 0 on `[CLS] A [SEP]` and 1 on `B [SEP]`; `padding_mask` is 1 on real
    tokens. This is the one road from text to classifier inputs: fine-tuning, `predict`, the
    SavedModel's text signature and the string-input `.tflite` all call it.

    Only graph ops that have TFLite kernels run (tensorflow-text's normalizer and word-piece
    ops, gathers and selects): the layer works eagerly, in `tf.data`, in a traced
    `tf.function` and in a converted `.tflite` file.

    Args:
        tokenizer: `keras_bert.text.BertTokenizer`. Its vocabulary gives the ids of `[CLS]`,
            `[SEP]` and `[PAD]`.
        sequence_length: int or None. Length of the packed sequences. `None` pads to the
            longest sequence of the batch and does not truncate. Defaults to `128`.

    Call arguments:
        texts: string `Tensor` of shape `(batch_size,)`, or a list of str.
        texts_pair: optional second texts, of the same shape as `texts`.

    Returns:
        dict of int32 `Tensor`s of shape `(batch_size, sequence_length)`: `token_ids`,
        `segment_ids`, `padding_mask`.

    Example:

    >>> tokenizer = keras_bert.load_tokenizer("all-MiniLM-L6-v2")
    >>> preprocessor = TextClassifierPreprocessor(tokenizer, sequence_length=8)
    >>> preprocessor(["Hello"], ["World"])["token_ids"].numpy()
    array([[ 101, 7592,  102, 2088,  102,    0,    0,    0]], dtype=int32)
    >>> dataset = tf.data.Dataset.from_tensor_slices(["a fine film", "dull"]).batch(2)
    >>> dataset = dataset.map(preprocessor)
    """

    def __init__(self, tokenizer, sequence_length=128, **kwargs):
        super().__init__(tokenizer, sequence_length, **kwargs)

    def call(self, texts, texts_pair=None):
        if (
            texts_pair is not None
            and isinstance(texts, (list, tuple))
            and isinstance(texts_pair, (list, tuple))
            and len(texts) != len(texts_pair)
        ):
            raise ValueError(
                f"`texts` ({len(texts)} texts) and `texts_pair` ({len(texts_pair)} texts) must "
                "have the same length."
            )
        first = self.tokenize_batch(texts, "texts")
        second = None if texts_pair is None else self.tokenize_batch(texts_pair, "texts_pair")
        return self.packer(first, second)

    def pack_numpy(self, texts, texts_pair=None):
        """The packed inputs of a list of texts (of any size), as numpy int32 arrays.

        Runs the layer on chunks of 8,192 texts, so that a whole data file goes through a
        few large graph calls.

        Args:
            texts: list of str.
            texts_pair: list of str or None. Second texts, as many as `texts`.

        Returns:
            dict of int32 arrays `(len(texts), sequence_length)`: `token_ids`, `segment_ids`,
            `padding_mask` (with `sequence_length=None`, the longest packed text).
        """
        texts = list(texts)
        if texts_pair is not None:
            texts_pair = list(texts_pair)
            if len(texts_pair) != len(texts):
                raise ValueError(
                    f"`texts` ({len(texts)} texts) and `texts_pair` ({len(texts_pair)} texts) "
                    "must have the same length."
                )
        chunks = []
        for start in range(0, len(texts), _NUMPY_CHUNK):
            end = start + _NUMPY_CHUNK
            packed = self(texts[start:end], None if texts_pair is None else texts_pair[start:end])
            chunks.append({name: np.asarray(packed[name], np.int32) for name in INPUT_NAMES})
        if not chunks:
            width = self.sequence_length or 0
            return {name: np.zeros((0, width), np.int32) for name in INPUT_NAMES}
        # Without a fixed `sequence_length`, chunks are as long as their own longest text.
        width = max(chunk["token_ids"].shape[1] for chunk in chunks)
        pad_values = {name: 0 for name in INPUT_NAMES}
        pad_values["token_ids"] = self.tokenizer.pad_token_id
        return {
            name: np.concatenate([
                np.pad(chunk[name], ((0, 0), (0, width - chunk[name].shape[1])),
                       constant_values=pad_values[name])
                for chunk in chunks
            ])
            for name in INPUT_NAMES
        }
