"""Runs MediaPipe Tasks' text APIs on a `.tflite` file, as an Android app's code would.

Stand-alone: run by the Python of `.venv-mediapipe` (scripts/setup_clients.sh), it imports
only `mediapipe` and the standard library, so nothing of ours stands between the client and
the file. `export/core/clients.py` runs it:

    .venv-mediapipe/bin/python export/clients/mediapipe_client.py REQUEST.json RESULT.json

REQUEST: {"model": path, "task": "text_classifier" | "text_embedder", "texts": [str, ...]}.
RESULT: {"client": "mediapipe", "client_version", "task", "load_seconds", "elapsed_seconds",
"results": [...]}, one result per text: `{"categories": [{"index", "name", "score"}, ...]}`
(every category, best first, as the classifier returns them) or `{"embedding": [float, ...]}`.
"""

import importlib.metadata
import json
import sys
import time

from mediapipe.tasks.python import text
from mediapipe.tasks.python.core.base_options import BaseOptions

TASKS = ("text_classifier", "text_embedder")


def _classify(classifier, texts):
    results = []
    for item in texts:
        classification = classifier.classify(item).classifications[0]
        results.append({"categories": [
            {"index": c.index, "name": c.category_name, "score": c.score}
            for c in classification.categories
        ]})
    return results


def _embed(embedder, texts):
    return [
        {"embedding": [float(v) for v in embedder.embed(item).embeddings[0].embedding]}
        for item in texts
    ]


def run(request):
    task = request["task"]
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {TASKS}")
    base_options = BaseOptions(model_asset_path=request["model"])
    started = time.perf_counter()
    if task == "text_classifier":
        api = text.TextClassifier.create_from_options(
            text.TextClassifierOptions(base_options=base_options))
        run_texts = _classify
    else:
        api = text.TextEmbedder.create_from_options(
            text.TextEmbedderOptions(base_options=base_options))
        run_texts = _embed
    loaded = time.perf_counter()
    try:
        results = run_texts(api, request["texts"])
    finally:
        # Without close(), the object's __del__ raises a TypeError at interpreter exit.
        api.close()
    return {
        "client": "mediapipe",
        "client_version": importlib.metadata.version("mediapipe"),
        "task": task,
        "load_seconds": loaded - started,
        "elapsed_seconds": time.perf_counter() - loaded,
        "results": results,
    }


def main(argv):
    if len(argv) != 3:
        sys.exit(f"usage: {argv[0]} REQUEST.json RESULT.json")
    with open(argv[1], encoding="utf-8") as f:
        request = json.load(f)
    result = run(request)
    with open(argv[2], "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv)
