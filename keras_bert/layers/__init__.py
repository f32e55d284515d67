"""Building blocks of BERT: embeddings, self-attention, the transformer block."""

from keras_bert.layers.bert_embeddings import BertEmbeddings
from keras_bert.layers.multi_head_self_attention import MultiHeadSelfAttention
from keras_bert.layers.transformer_block import TransformerBlock

__all__ = ["BertEmbeddings", "MultiHeadSelfAttention", "TransformerBlock"]
from keras_bert.layers.masked_lm_head import MaskedLMHead  # noqa: E402
__all__ += ["MaskedLMHead"]
from keras_bert.layers.segment_pair_head import SegmentPairHead  # noqa: E402
__all__ += ["SegmentPairHead"]
