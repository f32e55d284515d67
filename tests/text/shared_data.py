"""Paths to ../shared and helpers for the text tests (fixtures are in conftest.py)."""

import json
from pathlib import Path

import pytest

from tests.test_case import SHARED_DIR

SHARED = Path(SHARED_DIR)
MINILM = SHARED / "models" / "all-MiniLM-L6-v2"
MINILM_GOOGLE = SHARED / "models" / "all-MiniLM-L6-v2-google-ckpt"
GOLDEN_CASES = SHARED / "golden" / "tokenizer_cases.jsonl"
WIKITEXT = SHARED / "data" / "wikitext2"

requires_shared = pytest.mark.skipif(not MINILM.is_dir(), reason="../shared is not available")


def golden_cases():
    if not GOLDEN_CASES.is_file():
        return []
    with open(GOLDEN_CASES, encoding="utf-8") as cases:
        return [json.loads(line) for line in cases if line.strip()]
