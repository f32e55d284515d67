"""Runs the Android-side clients on our `.tflite` files, each in its own virtualenv.

    from export.core import clients

    result = clients.run_client("mediapipe", {
        "model": "out/model.tflite", "task": "text_classifier", "texts": ["a gem"]})
    result["results"][0]["categories"]   # [{"index": 1, "name": "1", "score": 2.3}, ...]

`mediapipe` runs `export/clients/mediapipe_client.py` (tasks `text_classifier`, `text_embedder`) with
`.venv-mediapipe`; `tflite_support` runs `export/clients/tflite_support_client.py` (tasks
`bert_nl_classifier`, `bert_question_answerer`) with `.venv-tflite-support`. Both virtualenvs
are made by `scripts/setup_clients.sh`, which `scripts/test.sh` runs before pytest (`export.check_clients` and the tests use them). Each call is
a fresh process that imports only the client library: the request and the result travel as
JSON files.
"""

import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
# The stand-alone runner scripts, run by the clients' own Pythons (never imported here).
_SCRIPTS = os.path.join(ROOT, "export", "clients")

# name -> (virtualenv folder under the repository root, runner script, its tasks)
CLIENTS = {
    "mediapipe": (".venv-mediapipe", "mediapipe_client.py",
                  ("text_classifier", "text_embedder")),
    "tflite_support": (".venv-tflite-support", "tflite_support_client.py",
                       ("bert_nl_classifier", "bert_question_answerer")),
}
TIMEOUT_SECONDS = 600


class ClientError(RuntimeError):
    """The client is not installed, or it failed on the file."""


def client_python(name):
    """The Python of client `name`'s virtualenv; `ClientError` if it is not there."""
    if name not in CLIENTS:
        raise ValueError(f"`name` ({name!r}) must be one of {', '.join(CLIENTS)}.")
    python = os.path.join(ROOT, CLIENTS[name][0], "bin", "python")
    if not os.path.isfile(python):
        raise ClientError(
            f"The {name} client's virtualenv {CLIENTS[name][0]} is missing from {ROOT}: run "
            "scripts/test.sh (which creates it on first use) or scripts/setup_clients.sh."
        )
    return python


def run_client(name, request):
    """Runs client `name` on `request` (see the runner scripts) and returns its JSON result.

    Args:
        name: str. `"mediapipe"` or `"tflite_support"`.
        request: dict. `model` (path), `task` (one of the client's tasks), and `texts` or
            `questions`.

    Returns:
        dict: the runner's result: `client`, `client_version`, `task`, `load_seconds`,
        `elapsed_seconds`, `results` (one per input).

    Raises:
        ValueError: an unknown `name` or a task the client does not have.
        ClientError: the virtualenv is missing, or the client failed (its stderr's tail).
    """
    python = client_python(name)
    _, script, tasks = CLIENTS[name]
    if request.get("task") not in tasks:
        raise ValueError(
            f"`request['task']` ({request.get('task')!r}) must be one of {', '.join(tasks)} "
            f"for the {name} client."
        )
    request = dict(request, model=os.path.abspath(request["model"]))
    # The client's own packages only: nothing of this environment leaks into it.
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    with tempfile.TemporaryDirectory(prefix=f"client_{name}-") as scratch:
        request_path = os.path.join(scratch, "request.json")
        result_path = os.path.join(scratch, "result.json")
        with open(request_path, "w", encoding="utf-8") as f:
            json.dump(request, f)
        process = subprocess.run(
            [python, os.path.join(_SCRIPTS, script), request_path, result_path],
            cwd=scratch, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
            check=False,
        )
        if process.returncode != 0 or not os.path.isfile(result_path):
            tail = "\n".join((process.stderr or process.stdout).strip().splitlines()[-15:])
            raise ClientError(
                f"The {name} client failed on {request['model']} (exit status "
                f"{process.returncode}):\n{tail}"
            )
        with open(result_path, encoding="utf-8") as f:
            return json.load(f)


def main(argv):
    """`python -m export.core.clients NAME REQUEST.json`: prints the result (a trial aid)."""
    if len(argv) != 3:
        sys.exit("usage: python -m export.core.clients NAME REQUEST.json")
    with open(argv[2], encoding="utf-8") as f:
        print(json.dumps(run_client(argv[1], json.load(f)), indent=2))


if __name__ == "__main__":
    main(sys.argv)
