import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_bert.text import BertTokenizer
from keras_bert.text.wordpiece_vocabulary import SPECIAL_TOKENS
from keras_bert.text.wordpiece_vocabulary import WordSplitter
from keras_bert.text.wordpiece_vocabulary import learn_vocabulary
from keras_bert.text.wordpiece_vocabulary import write_vocabulary
from tests.text.shared_data import WIKITEXT

REPO = Path(__file__).resolve().parents[2]


def test_word_splitter_follows_the_tokenizer_rules():
    splitter = WordSplitter(lower_case=True)
    words = splitter("Héllo, WORLD!\u200b 東京 ﬁ")
    assert words == ["hello", ",", "world", "!", "東", "京", "ﬁ"]


def test_learns_special_tokens_first(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "\n".join(["the cat sat on the mat", "the dog sat on the log", "cats and dogs"] * 50),
        encoding="utf-8",
    )
    vocabulary = learn_vocabulary([str(corpus)], 60, show_progress=False)
    assert vocabulary[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert len(vocabulary) <= 60 and len(set(vocabulary)) == len(vocabulary)
    assert "the" in vocabulary and "##s" in vocabulary
    path = tmp_path / "vocab.txt"
    write_vocabulary(vocabulary, str(path))
    assert os.stat(path).st_mode & 0o044  # Readable like a normal file, not mkstemp's 0600.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "vocab.txt"]
    tokenizer = BertTokenizer(str(path))
    ids = tokenizer.tokenize(["The cats sat"]).to_list()[0]
    assert tokenizer.unknown_token_id not in ids
    with pytest.raises(ValueError, match="`vocabulary_size`"):
        learn_vocabulary([str(corpus)], 3, show_progress=False)


def test_command_line(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello world\nhello there\n" * 20, encoding="utf-8")
    out = tmp_path / "nested" / "vocab.txt"
    result = subprocess.run(
        [sys.executable, "-m", "keras_bert.text.build_vocab", f"--corpus={corpus}",
         "--vocabulary_size=40", f"--out={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.read_text(encoding="utf-8").split("\n")[:5] == list(SPECIAL_TOKENS)
    assert "learning" in result.stderr  # The progress bar.


@pytest.mark.slow
@pytest.mark.skipif(not WIKITEXT.is_dir(), reason="../shared is not available")
def test_wikitext_vocabulary_has_under_one_percent_unknown(tmp_path):
    vocabulary = learn_vocabulary([str(WIKITEXT / "valid.txt")], 8000, show_progress=False)
    tokenizer = BertTokenizer(vocabulary, lower_case=True)
    with open(WIKITEXT / "test.txt", encoding="utf-8") as test_file:
        lines = [line.strip() for line in test_file if line.strip()]
    ids = tokenizer.tokenize(lines).flat_values.numpy()
    unknown_rate = float(np.mean(ids == tokenizer.unknown_token_id))
    print(f"vocabulary {len(vocabulary)}, {ids.size} tokens, [UNK] rate {unknown_rate:.4%}")
    assert unknown_rate < 0.01
