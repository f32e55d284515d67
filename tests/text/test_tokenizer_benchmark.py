"""The tokenizer benchmark still runs (its figures are not checked here)."""

import subprocess
import sys
from pathlib import Path

from tests.text.shared_data import requires_shared

REPO = Path(__file__).resolve().parents[2]


@requires_shared
def test_smoke_run():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.tokenizer_benchmark", "--smoke"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "keras_bert:" in result.stdout and "tf_text:" in result.stdout
    assert "keras_bert / tf_text:" in result.stdout
