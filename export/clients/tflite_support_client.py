"""Runs the LiteRT (TFLite) Task Library's text APIs on a `.tflite` file, as an app would.

Stand-alone: run by the Python of `.venv-tflite-support` (scripts/setup_clients.sh), it
imports only `tflite_support` and the standard library, so nothing of ours stands between the
client and the file. `export/core/clients.py` runs it:

    .venv-tflite-support/bin/python export/clients/tflite_support_client.py REQUEST.json RESULT.json

REQUEST: {"model": path, "task": "bert_nl_classifier", "texts": [str, ...]} or
{"model": path, "task": "bert_question_answerer", "questions": [{"question", "context"}, ...]}.
RESULT: {"client": "tflite-support", "client_version", "task", "load_seconds",
"elapsed_seconds", "results": [...]}, one result per input:
`{"categories": [{"index", "name", "score"}, ...]}` (as the classifier returns them) or
`{"answers": [{"text", "start", "end", "logit"}, ...]}` (best first; `start` and `end` index
the logits, positions in the packed `[CLS] question [SEP] context [SEP]`; `logit` is
`start_logits[start] + end_logits[end]`; `text` is whole space-separated words of the context).
"""

import importlib.metadata
import json
import sys
import time

from tflite_support.task import text

TASKS = ("bert_nl_classifier", "bert_question_answerer")


def _classify(classifier, request):
    results = []
    for item in request["texts"]:
        classification = classifier.classify(item).classifications[0]
        results.append({"categories": [
            {"index": c.index, "name": c.category_name, "score": c.score}
            for c in classification.categories
        ]})
    return results


def _answer(answerer, request):
    results = []
    for item in request["questions"]:
        answers = answerer.answer(item["context"], item["question"]).answers
        results.append({"answers": [
            {"text": a.text, "start": a.pos.start, "end": a.pos.end, "logit": a.pos.logit}
            for a in answers
        ]})
    return results


def run(request):
    task = request["task"]
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {TASKS}")
    started = time.perf_counter()
    if task == "bert_nl_classifier":
        api = text.BertNLClassifier.create_from_file(request["model"])
        run_inputs = _classify
    else:
        api = text.BertQuestionAnswerer.create_from_file(request["model"])
        run_inputs = _answer
    loaded = time.perf_counter()
    results = run_inputs(api, request)
    return {
        "client": "tflite-support",
        "client_version": importlib.metadata.version("tflite-support"),
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
