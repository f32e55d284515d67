"""The normalization table and word-splitting fixes against the reference, per code point."""

import pytest

from keras_bert.text import reference_normalization
from tests.text.shared_data import MINILM
from tests.text.shared_data import requires_shared

ALL_CODE_POINTS = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]


@pytest.mark.parametrize("lower_case", [True, False])
def test_table_matches_reference_normalizer_on_every_code_point(lower_case):
    normalizers = pytest.importorskip("tokenizers.normalizers")
    reference = normalizers.BertNormalizer(lowercase=lower_case)
    table = reference_normalization.normalization_table(lower_case)
    mismatches = []
    for code_point in ALL_CODE_POINTS:
        char = chr(code_point)
        expected = reference.normalize_str(char)
        if reference_normalization.is_reference_cjk(code_point):
            expected = expected.strip()  # The word splitter isolates CJK ideographs.
        if table.get(code_point, char) != expected:
            mismatches.append(f"U+{code_point:04X}")
    assert not mismatches, mismatches[:20]


@pytest.mark.slow
@requires_shared
@pytest.mark.parametrize("lower_case", [True, False])
def test_every_code_point_tokenizes_like_the_reference(reference_tokenizer, lower_case):
    """Each code point between two letters: same normalization, same word splitting."""
    from tokenizers import normalizers

    from keras_bert.text import load_tokenizer

    tokenizer = load_tokenizer(MINILM, lower_case=lower_case)
    reference_tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lower_case)
    texts = [f"x{chr(code_point)}y" for code_point in ALL_CODE_POINTS]
    mismatches = []
    try:
        for start in range(0, len(texts), 50_000):
            batch = texts[start : start + 50_000]
            got = tokenizer.tokenize(batch).to_list()
            expected = [e.ids[1:-1] for e in reference_tokenizer.encode_batch(batch)]
            mismatches += [t for t, g, e in zip(batch, got, expected) if g != e]
    finally:
        reference_tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    assert not mismatches, [f"U+{ord(t[1]):04X}" for t in mismatches[:20]]
