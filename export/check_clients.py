"""Runs the Android clients on exported `.tflite` files and compares them with `training.predict`.

    # The SST-2 classifier, float32 and dynamic int8, on every sentence of test.tsv.
    python -m export.check_clients runs/tflite/model_float32.tflite \\
        runs/tflite/model_dynamic.tflite --model_dir=runs/sst2_model \\
        --eval=../shared/data/sst2/test.tsv --report=runs/clients

    # A sentence-embedding file against the checkpoint it came from.
    python -m export.check_clients runs/minilm_embedding.tflite \\
        --init=../shared/models/all-MiniLM-L6-v2 --task=text_embedding --eval=sentences.tsv

    # A question-answering file on SQuAD v1.1 questions.
    python -m export.check_clients runs/squad.tflite --model_dir=runs/squad_model \\
        --eval=../shared/data/squad/dev-v1.1-2articles.json

Each client runs in its own virtualenv (`scripts/setup_clients.sh`, which `scripts/test.sh` and
`scripts/main.sh` run) and imports nothing of ours: it reads the tokenizer, labels and tensor
roles from the file's TFLite Model Metadata, exactly as on a phone (the same C++ core):

| task (manifest) | clients |
|---|---|
| `classification` (single sentences) | MediaPipe `TextClassifier`, LiteRT Task Library `BertNLClassifier` |
| `text_embedding` | MediaPipe `TextEmbedder` |
| `qa` | LiteRT Task Library `BertQuestionAnswerer` |

The reference is the Keras model of the model directory, through the task's own prediction
(`task.predict_texts`, what `training.predict` prints). Classifiers: label agreement, and every
disagreement with our token ids and the ids the clients' tokenizer gives (it lower-cases ASCII
but keeps accents, where the uncased reference strips them: `cliché`). Embeddings: cosine per
text, judged on the texts the client tokenizes as we do (the others are listed with both id
sequences and their cosine; no file can give them our embedding). Question answering: the client's top answer against ours widened to whole space-separated
words of the context (the client shows whole words, e.g. `three-region` where the span is
`three`), white space collapsed; the report also gives exact and SQuAD-normalised text agreement.

Writes `REPORT.json` and `REPORT.md` with `--report`; exits 1 when a file misses its threshold
(`--min_agreement`, `--min_cosine`; quantized files: `--quantized_min_agreement`,
`--quantized_min_cosine`; question answering: `--min_answer_agreement`).
"""

import os
import sys

import numpy as np
from absl import flags

from export.core import clients
from export.core import evaluation
from export.core import graphs
from export.core import litert
from keras_bert.models import model_dir as model_dir_lib
from keras_bert.utils import cli

FLAGS = flags.FLAGS

# manifest task -> ((client, client task), ...).
CLIENTS_FOR_TASK = {
    "classification": (("mediapipe", "text_classifier"), ("tflite_support", "bert_nl_classifier")),
    "text_embedding": (("mediapipe", "text_embedder"),),
    "qa": (("tflite_support", "bert_question_answerer"),),
}


def define_flags():
    """Defines the command-line flags (only when run as a program)."""
    flags.DEFINE_string(
        "model_dir", None, "The model directory the files were exported from (the reference). "
        "Default: the manifest's `source_model_dir`.",
    )
    graphs.define_init_flags()
    flags.DEFINE_string(
        "eval", None, "Inputs: a TSV/CSV/JSONL of sentences (classification, embeddings) or a "
        "SQuAD v1.1 JSON (qa).", required=True,
    )
    flags.DEFINE_integer("eval_limit", None, "Use at most this many --eval examples.")
    flags.DEFINE_string("report", None, "Write REPORT.json and REPORT.md.")
    flags.DEFINE_float("min_agreement", 0.998, "Float files: least label/answer agreement.")
    flags.DEFINE_float("quantized_min_agreement", 0.99, "Quantized files: least agreement.")
    flags.DEFINE_float("min_cosine", 0.9999, "Float embedding files: least cosine per text.")
    flags.DEFINE_float("quantized_min_cosine", 0.99, "Quantized embedding files: least cosine.")
    flags.DEFINE_float(
        "min_answer_agreement", 0.99, "Question answering: least share of questions whose top "
        "answer is ours (the client decodes its own way: top 5 starts and ends, its own span "
        "length rule, whole words).",
    )


def _check_flags(argv):
    if not argv[1:]:
        raise cli.FlagError("files", None, "name one or more .tflite files.")
    for path in argv[1:]:
        if not os.path.isfile(path):
            raise cli.FlagError("files", path, "no such .tflite file.")
        if litert.read_manifest(path) is None:
            raise cli.FlagError("files", path, "has no manifest beside it (written by "
                                "export.tflite).")
    cli.check_paths(files=["eval"])


# === References and client runs, per task ===


# The LiteRT Task Library's last release (tflite-support 0.4.4) bundles a runtime older than the
# op versions of quantized files (e.g. "Didn't find op for builtin opcode 'FULLY_CONNECTED'
# version '12'"): it cannot load them, which is reported, not judged.
_OLD_RUNTIME_CLIENTS = ("tflite_support",)
_OLD_RUNTIME_ERROR = "Didn't find op for builtin opcode"


def _run(client, request, quantized):
    """The client's result, or for a quantized file its old runtime cannot load, an entry
    saying so (`unsupported`, `passed` None)."""
    try:
        return clients.run_client(client, request)
    except clients.ClientError as error:
        message = str(error)
        if not (quantized and client in _OLD_RUNTIME_CLIENTS and _OLD_RUNTIME_ERROR in message):
            raise
        reason = next(line.strip() for line in message.splitlines()
                      if _OLD_RUNTIME_ERROR in line)
        return {"client": client, "client_task": request["task"], "client_version": None,
                "examples": 0, "threshold": None, "passed": None, "unsupported": reason}


def _each_client(task_name, request, quantized, entries):
    """`(client, client_task, result)` of each client of `task_name` run on `request`; a
    client whose old runtime cannot load the quantized file adds its `unsupported` entry to
    `entries` instead."""
    for client, client_task in CLIENTS_FOR_TASK[task_name]:
        result = _run(client, dict(request, task=client_task), quantized)
        if "unsupported" in result:
            entries.append(result)
            continue
        yield client, client_task, result


def _read_sentences(info, path, limit):
    """The texts of `path` (its model directory's text column, else `sentence`, `text`, the
    first); the clients take single texts, so a pair model is refused."""
    if info.is_pair_task:
        raise ValueError(
            f"{info.path}: a sentence-pair classifier; the clients classify single texts."
        )
    return evaluation.read_sentences(path, info, limit)


def _classification(info, task, path, limit, file_path, quantized, thresholds):
    texts = _read_sentences(info, path, limit)
    ours = [result["label"] for result in task.predict_texts(info, texts)]
    token_ids = _TokenIds(info, texts)
    entries = []
    for client, client_task, result in _each_client(
            "classification", {"model": file_path, "texts": texts}, quantized, entries):
        theirs = [max(r["categories"], key=lambda c: c["score"])["name"]
                  for r in result["results"]]
        disagreements = [
            {"index": index, "text": texts[index], "keras_label": mine, "client_label": other,
             **token_ids.describe(index)}
            for index, (mine, other) in enumerate(zip(ours, theirs)) if mine != other
        ]
        agreement = 1.0 - len(disagreements) / max(1, len(texts))
        least = thresholds["quantized_min_agreement" if quantized else "min_agreement"]
        entries.append({
            "client": client, "client_task": client_task,
            "client_version": result["client_version"], "examples": len(texts),
            "label_agreement": agreement, "threshold": least, "passed": agreement >= least,
            "disagreements": disagreements, "client_seconds": result["elapsed_seconds"],
        })
    return entries


class _TokenIds:
    """Our token ids of each text and the ids the clients' tokenizer gives it, for the report."""

    def __init__(self, info, texts):
        self._texts = texts
        self._packed = info.preprocessor.pack_numpy(texts)
        self._client_tokenizer = _client_like_tokenizer(info)

    def ours(self, index):
        length = int(self._packed["padding_mask"][index].sum())
        return self._packed["token_ids"][index, :length].tolist()

    def differ(self, index):
        """Whether the client's tokenizer gives text `index` other ids than ours."""
        return self._client_tokenizer(self._texts[index]) != self.ours(index)

    def describe(self, index):
        """Both id sequences of text `index` and the likely cause of a difference."""
        client_ids = self._client_tokenizer(self._texts[index])
        return {
            "our_token_ids": self.ours(index), "client_token_ids": client_ids,
            "cause": ("tokenization (the client keeps accents)" if client_ids != self.ours(index)
                      else "numerics (same token ids)"),
        }


def _client_like_tokenizer(info):
    """Token ids as the clients' WordPiece gives them: ASCII lower-casing, accents kept.

    Our tokenizer without its own lower-casing (which also strips accents), on the text with
    only `A-Z` lower-cased; for the report of a disagreement, not a reference.
    """
    import keras_bert  # pylint: disable=import-outside-toplevel

    tokenizer = keras_bert.load_tokenizer(info.vocabulary_path, lower_case=False)
    table = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

    def token_ids(text):
        pieces = tokenizer.tokenize([text.translate(table)])[0]
        ids = [int(i) for i in np.asarray(pieces).reshape(-1)]
        return [tokenizer.cls_token_id, *ids[: info.sequence_length - 2],
                tokenizer.sep_token_id]

    return token_ids


def _text_embedding(info, task, path, limit, file_path, quantized, thresholds):
    texts = _read_sentences(info, path, limit)
    ours = np.asarray([r["embedding"] for r in task.predict_texts(info, texts)], np.float64)
    token_ids = _TokenIds(info, texts)
    # Texts the clients tokenize otherwise (accents) get another embedding whatever the file
    # computes: listed, and left out of the judged figure.
    same_ids = np.array([not token_ids.differ(i) for i in range(len(texts))], bool)
    entries = []
    for client, client_task, result in _each_client(
            "text_embedding", {"model": file_path, "texts": texts}, quantized, entries):
        theirs = np.asarray([r["embedding"] for r in result["results"]], np.float64)
        cosine = evaluation.cosine_similarities(ours, theirs)
        least = thresholds["quantized_min_cosine" if quantized else "min_cosine"]
        judged = cosine[same_ids] if same_ids.any() else np.ones(1)
        below = [{"index": int(i), "text": texts[i], "cosine": float(cosine[i]),
                  **token_ids.describe(i)}
                 for i in np.flatnonzero(cosine < least)]
        entries.append({
            "client": client, "client_task": client_task,
            "client_version": result["client_version"], "examples": len(texts),
            "min_cosine": float(judged.min()), "mean_cosine": float(judged.mean()),
            "texts_tokenized_otherwise": int((~same_ids).sum()),
            "min_cosine_all_texts": float(cosine.min()),
            "threshold": least, "passed": bool(judged.min() >= least), "below_threshold": below,
            "client_seconds": result["elapsed_seconds"],
        })
    return entries


def _question_answering(info, task, path, limit, file_path, quantized, thresholds):
    # pylint: disable=import-outside-toplevel
    from keras_bert.tasks import question_answering

    examples = question_answering.read_squad(path)[:limit]
    pairs = [(example.question, example.context) for example in examples]
    data = task.read_texts(info.preprocessor, pairs)
    answers = task.predict(info.load_model(), data)
    ours = [answers[example.qas_id].text for example in data.examples]
    # The client shows whole space-separated words of the context: ours, widened alike.
    ours_widened = [
        _whole_words(example.context, answers[example.qas_id].start,
                     answers[example.qas_id].end)
        for example in data.examples
    ]
    entries = []
    request = {"model": file_path,
               "questions": [{"question": q, "context": c} for q, c in pairs]}
    for client, client_task, result in _each_client("qa", request, quantized, entries):
        theirs = [r["answers"][0]["text"] if r["answers"] else "" for r in result["results"]]
        disagreements = [
            {"index": i, "question": pairs[i][0], "keras_answer": ours[i],
             "keras_answer_whole_words": mine, "client_answer": other}
            for i, (mine, other) in enumerate(zip(ours_widened, theirs))
            if " ".join(mine.split()) != " ".join(other.split())
        ]
        exact = sum(mine == other for mine, other in zip(ours, theirs)) / max(1, len(ours))
        normalized = sum(
            question_answering.normalize_answer(mine) == question_answering.normalize_answer(other)
            for mine, other in zip(ours, theirs)) / max(1, len(ours))
        agreement = 1.0 - len(disagreements) / max(1, len(ours))
        least = thresholds["min_answer_agreement"]
        entries.append({
            "client": client, "client_task": client_task,
            "client_version": result["client_version"], "examples": len(ours),
            "answer_agreement": agreement, "exact_text_agreement": exact,
            "squad_normalized_text_agreement": normalized,
            "threshold": least, "passed": agreement >= least, "disagreements": disagreements,
            "client_seconds": result["elapsed_seconds"],
        })
    return entries


def _whole_words(context, start, end):
    """`context[start:end]` widened to whole space-separated words (empty without a span)."""
    if start is None or start < 0:
        return ""
    while start > 0 and not context[start - 1].isspace():
        start -= 1
    while end < len(context) and not context[end].isspace():
        end += 1
    return context[start:end]


_CHECKS = {
    "classification": _classification,
    "text_embedding": _text_embedding,
    "qa": _question_answering,
}


def check_files(files, model_dir, eval_path, eval_limit=None, thresholds=None):
    """Runs the clients of each file's task on `eval_path` and compares with the Keras model.

    Args:
        files: list of str. Token-id `.tflite` files with metadata (`export.tflite`).
        model_dir: str. The model directory they were exported from.
        eval_path: str. Sentences (classification, embeddings) or SQuAD v1.1 JSON (qa).
        eval_limit: int or None. Use at most this many examples.
        thresholds: dict with `min_agreement`, `quantized_min_agreement`, `min_cosine`,
            `quantized_min_cosine`; None: the flags' defaults.

    Returns:
        dict: `files` (per file: task, quantization, `clients` entries) and `passed`.

    Raises:
        ValueError: a file without metadata or of a task no client runs, or a manifest whose
            task differs from the model directory's.
    """
    thresholds = dict(_DEFAULT_THRESHOLDS, **(thresholds or {}))
    info = model_dir_lib.load_model_dir(model_dir, load_model=False)
    task = info.load_task()
    report = {"model_dir": os.path.abspath(model_dir), "eval_file": os.path.abspath(eval_path),
              "thresholds": thresholds, "files": []}
    for path in files:
        manifest = litert.read_manifest(path)
        if manifest is None:
            raise ValueError(f"{path}: no manifest beside it (written by export.tflite).")
        if manifest.get("task") != info.task:
            raise ValueError(f"{path}: exported for task {manifest.get('task')!r}, but "
                             f"{model_dir} is a {info.task!r} model directory.")
        if not manifest.get("metadata"):
            raise ValueError(f"{path}: has no TFLite Model Metadata (exported with "
                             "--nometadata?); the clients need it.")
        if info.task not in _CHECKS:
            raise ValueError(f"{path}: no Android client runs {info.task!r} models (clients: "
                             f"{', '.join(sorted(_CHECKS))}).")
        quantized = manifest.get("quantization", "none") != "none"
        entries = _CHECKS[info.task](info, task, eval_path, eval_limit, path, quantized,
                                     thresholds)
        report["files"].append({
            "file": os.path.abspath(path), "task": info.task,
            "quantization": manifest.get("quantization"), "clients": entries,
            # A client that cannot load a quantized file is reported, not judged.
            "passed": all(entry["passed"] is not False for entry in entries)
            and any(entry["passed"] for entry in entries),
        })
    report["passed"] = all(entry["passed"] for entry in report["files"])
    return report


_DEFAULT_THRESHOLDS = {"min_agreement": 0.998, "quantized_min_agreement": 0.99,
                       "min_cosine": 0.9999, "quantized_min_cosine": 0.99,
                       "min_answer_agreement": 0.99}


def markdown(report):
    """The report as a Markdown table, then every disagreement."""
    lines = [f"# Android clients on `{report['model_dir']}`", "",
             f"Inputs: `{report['eval_file']}`.", "",
             "| file | quantization | client | examples | agreement / min cosine | threshold | result |",
             "|---|---|---|---:|---:|---:|---|"]
    details = []
    for entry in report["files"]:
        for client in entry["clients"]:
            if "unsupported" in client:
                lines.append(
                    f"| {os.path.basename(entry['file'])} | {entry['quantization']} | "
                    f"{client['client_task']} ({client['client']}) | 0 | cannot load the file: "
                    f"{client['unsupported']} | | not judged |")
                continue
            figure = client.get("label_agreement", client.get("answer_agreement"))
            shown = (f"{100 * figure:.2f}%" if figure is not None
                     else f"{client['min_cosine']:.6f}")
            lines.append(
                f"| {os.path.basename(entry['file'])} | {entry['quantization']} | "
                f"{client['client_task']} ({client['client']} {client['client_version']}) | "
                f"{client['examples']} | {shown} | {client['threshold']} | "
                f"{'pass' if client['passed'] else 'FAIL'} |")
            for item in client.get("disagreements", []) + client.get("below_threshold", []):
                details.append(f"- {os.path.basename(entry['file'])}, {client['client_task']}: "
                               + ", ".join(f"{key}={value!r}" for key, value in item.items()))
    if details:
        lines += ["", "Disagreements:", ""] + details
    return "\n".join(lines) + "\n"


def main(argv):
    thresholds = {name: FLAGS[name].value for name in _DEFAULT_THRESHOLDS}
    if FLAGS.model_dir is None and FLAGS.init is None:
        manifest = litert.read_manifest(argv[1])
        FLAGS.model_dir = manifest.get("source_model_dir")
        if not FLAGS.model_dir or not os.path.isdir(FLAGS.model_dir):
            raise cli.FlagError("model_dir", None, f"required: the manifest of {argv[1]} names "
                                f"no existing source model directory ({FLAGS.model_dir!r}).")
    with graphs.model_dir_from_flags() as model_dir:
        report = check_files(argv[1:], model_dir, FLAGS.eval, FLAGS.eval_limit, thresholds)
    if FLAGS.report:
        evaluation.write_json(FLAGS.report + ".json", report)
        evaluation.write_text(FLAGS.report + ".md", markdown(report))
    print(markdown(report))
    if not report["passed"]:
        print("FAIL: a client missed its threshold (see above).", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    define_flags()
    cli.run(main, flag_for={"model_dir": "model_dir", "eval_path": "eval"},
            input_flags=("model_dir", "eval", "init"), check=_check_flags)
