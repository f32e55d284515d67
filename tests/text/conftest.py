"""Fixtures of the text tests: the MiniLM tokenizer and the Hugging Face reference."""

import os
import tempfile

import pytest

from tests.text.shared_data import MINILM

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Hypothesis caches Unicode tables on disk; keep them out of the working tree.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "keras_bert_hypothesis")
)


@pytest.fixture(scope="session")
def minilm_tokenizer():
    if not MINILM.is_dir():
        pytest.skip("../shared is not available")
    from keras_bert.text import load_tokenizer

    return load_tokenizer(MINILM)


@pytest.fixture(scope="session")
def reference_tokenizer():
    """The Hugging Face `tokenizers` reference for MiniLM, or skip when not installed."""
    tokenizers = pytest.importorskip("tokenizers")
    if not MINILM.is_dir():
        pytest.skip("../shared is not available")
    reference = tokenizers.Tokenizer.from_file(str(MINILM / "tokenizer.json"))
    reference.no_truncation()
    reference.no_padding()
    return reference
