"""Property tests of the TSV/CSV/JSONL reader on arbitrary bytes (hypothesis).

Whatever the bytes, `read_examples` returns rows or raises `ValueError` naming the file
(never another exception); with `skip_bad_lines` every line is either read or reported.
The tokenizer, packer and masker are fuzzed in tests/text/test_properties.py. Examples per
property: 50 by default; nightly, e.g. KERAS_BERT_PROPERTY_EXAMPLES=1000.
"""

import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_bert.tasks import classification

SETTINGS = settings(
    max_examples=int(os.environ.get("KERAS_BERT_PROPERTY_EXAMPLES", "50")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Lines built from the pieces that break readers: tabs, commas, quotes, bad UTF-8, NULs.
pieces = st.sampled_from(
    [b"\t", b",", b'"', b"'", b"text", b"1", b"0", b"\xff", b"\xc3", b"\x00", b"\r", b" ", b"{",
     b"}", b'"sentence": ', b'"label": ', b"\xe6\x9d\xb1", b"\\", b"[", b"]"]
)
lines = st.one_of(st.binary(max_size=40), st.lists(pieces, max_size=10).map(b"".join))
headers = st.sampled_from([b"sentence\tlabel", b"sentence,label", b"label\tsentence", b"x\ty", b""])


def _read(content, extension, skip):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "data." + extension)
        with open(path, "wb") as f:
            f.write(content)
        try:
            return classification.read_examples(path, skip_bad_lines=skip), path
        except ValueError as error:
            assert "data." + extension in str(error), str(error)
            return None, path


@SETTINGS
@given(header=headers, body=st.lists(lines, max_size=8), extension=st.sampled_from(["tsv", "csv", "jsonl"]),
       skip=st.booleans())
def test_reader_returns_rows_or_a_value_error_naming_the_file(header, body, extension, skip):
    content = b"\n".join([header] + body) + b"\n"
    examples, _ = _read(content, extension, skip)
    if examples is None:
        return
    assert len(examples.texts) == len(examples.labels) == len(examples.line_numbers) > 0
    assert all(isinstance(text, str) and "\udcff" not in text for text in examples.texts)
    assert all(label.strip() == label and label for label in examples.labels)
    assert examples.line_numbers == sorted(set(examples.line_numbers))
    if not skip:
        assert examples.skipped_lines == []


@SETTINGS
@given(body=st.lists(st.tuples(st.text(alphabet=st.characters(blacklist_characters="\t\r\n",
                                                             blacklist_categories=("Cs",)),
                                       max_size=20),
                               st.sampled_from(["pos", "neg"]), st.booleans()),
                     min_size=1, max_size=10))
def test_skip_bad_lines_keeps_exactly_the_good_lines(body):
    """Good rows `text<TAB>label` and bad rows (a third column) interleaved."""
    rows = [b"sentence\tlabel"]
    good = []
    for line, (text, label, bad) in enumerate(body, start=2):
        row = f"{text}\t{label}" + ("\textra" if bad else "")
        rows.append(row.encode("utf-8"))
        if not bad:
            good.append((line, text, label))
    examples, _ = _read(b"\n".join(rows) + b"\n", "tsv", True)
    if not good:
        assert examples is None
        return
    assert examples.line_numbers == [line for line, _, _ in good]
    assert examples.texts == [text for _, text, _ in good]
    assert examples.labels == [label for _, _, label in good]
    assert len(examples.skipped_lines) == sum(bad for _, _, bad in body)


# === The SavedModel's string signature ===

# Any Unicode (control characters, NULs, combining marks, CJK, emoji, surrogate-free) and
# texts far longer than the model's sequence length.
texts = st.lists(
    st.one_of(
        st.text(max_size=60),
        st.text(alphabet=st.characters(codec="utf-8"), min_size=500, max_size=3000),
    ),
    min_size=1, max_size=4,
)


def test_saved_model_string_signature_on_any_text(saved_model_path, tiny_model_dir):
    """`serving_default` agrees with the Keras model on any texts; outputs are well formed."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  pylint: disable=unused-import  (the graph's text ops)

    from keras_bert.models import load_model_dir

    serve = tf.saved_model.load(saved_model_path).signatures["serving_default"]
    loaded = load_model_dir(tiny_model_dir)

    @SETTINGS
    @given(texts)
    def check(batch):
        outputs = serve(text=tf.constant(batch))
        logits = outputs["logits"].numpy()
        probabilities = outputs["probabilities"].numpy()
        assert logits.shape == (len(batch), 2) and np.isfinite(logits).all()
        np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(outputs["label"].numpy(), np.argmax(logits, axis=-1))
        packed = loaded.tokenizer.pack(batch, sequence_length=loaded.sequence_length)
        expected = np.asarray(loaded.model(packed))
        np.testing.assert_allclose(logits, expected, atol=1e-4)

    check()
