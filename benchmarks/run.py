"""keras_bert vs keras-hub: training and inference throughput, FLOP/s against the matmul peak.

One process measures, on the same machine, config and data, side by side:

* the dense matmul peak per dtype (best of several kernels and shapes, at the start and
  at the end of the run);
* `model.fit` and `model.predict` throughput of `keras_bert`'s `BertClassifier` and of
  keras-hub's `BertBackbone` with the same head, for every dtype policy x `jit_compile`
  setting, on full-length sequences (no padding) and on real SST-2 sentences padded to
  the sequence length;
* the achieved FLOP/s of the full-length runs as a fraction of that peak;
* tokenization throughput (`benchmarks/tokenizer_benchmark.py`) and, given `.tflite`
  files, LiteRT latency (`export/benchmark.py`).

The models alternate round by round (ABBA), so load from other work hits both alike;
throughput comes from the median step, ratios from medians of interleaved rounds.

Writes `benchmarks/results/<machine>.json`, `benchmarks/results/<machine>.png` and the
results section of `BENCHMARKS.md`.

Examples:

    # The full run (about 15 minutes on 2 cores); serialize heavy jobs on shared machines.
    flock /tmp/keras_bert_heavy.lock python -m benchmarks.run

    # Seconds: tiny model, one step each, writes to a temporary directory (CI).
    python -m benchmarks.run --smoke

    # One setting, more rounds.
    python -m benchmarks.run --dtypes=mixed_bfloat16 --jit_compile=false --rounds=10
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from absl import flags

from keras_bert.utils import cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from benchmarks import data as benchmark_data

REPOSITORY = Path(__file__).resolve().parents[1]

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "bert_small", "Encoder shape (a `BertEncoder` preset).")
flags.DEFINE_integer("batch_size", 16, "Sequences per step.")
flags.DEFINE_integer("sequence_length", 128, "Tokens per sequence.")
flags.DEFINE_list("dtypes", ["float32", "mixed_bfloat16"], "Keras dtype policies to measure.")
flags.DEFINE_list("jit_compile", ["false", "true"], "`jit_compile` settings to measure.")
flags.DEFINE_list(
    "data", ["full", "sst2"],
    "`full`: random tokens, no padding. `sst2`: SST-2 sentences padded to --sequence_length.",
)
flags.DEFINE_integer("rounds", 5, "Interleaved rounds per setting.")
flags.DEFINE_integer("train_steps", 3, "`fit` steps per model and round.")
flags.DEFINE_integer("predict_steps", 6, "`predict` steps per model and round.")
flags.DEFINE_integer(
    "inter_op_threads", 1,
    "TensorFlow inter-op threads for both models (0: TensorFlow's default). With 1, ops run "
    "one at a time, each on all cores.",
)
flags.DEFINE_string("machine", None, "Machine name for the result files. Default: from the CPU.")
flags.DEFINE_string("output_dir", None, "Where the JSON and PNG go. Default: benchmarks/results.")
flags.DEFINE_string("markdown", None, "Markdown file to update. Default: BENCHMARKS.md.")
flags.DEFINE_string("sst2", benchmark_data.DEFAULT_SST2, "SST-2 TSV.")
flags.DEFINE_string("vocabulary", benchmark_data.DEFAULT_VOCABULARY, "Tokenizer checkpoint or vocab.txt.")
flags.DEFINE_bool("tokenizer", True, "Also run benchmarks/tokenizer_benchmark.py.")
flags.DEFINE_list("tflite", [], "`.tflite` files to time with export/benchmark.py.")
flags.DEFINE_bool(
    "smoke", False,
    "A seconds-long check of the whole pipeline: bert_tiny, batch 2, length 16, float32 "
    "without XLA, one round of one step, no tokenizer or LiteRT runs, results in a "
    "temporary directory unless --output_dir is given.",
)


def _settings():
    settings = {
        "preset": FLAGS.preset,
        "batch_size": FLAGS.batch_size,
        "sequence_length": FLAGS.sequence_length,
        "dtypes": list(FLAGS.dtypes),
        "jit_compile": [value.lower() == "true" for value in FLAGS.jit_compile],
        "data": list(FLAGS.data),
        "rounds": FLAGS.rounds,
        "train_steps": FLAGS.train_steps,
        "predict_steps": FLAGS.predict_steps,
        "inter_op_threads": FLAGS.inter_op_threads,
        "optimizer": "Adam(1e-4)",
        "loss": "SparseCategoricalCrossentropy(from_logits=True)",
        "num_classes": 2,
        "activation": "gelu_approximate (both; keras-hub's BertBackbone fixes it)",
        "smoke": FLAGS.smoke,
    }
    if FLAGS.smoke:
        settings.update(
            preset="bert_tiny", batch_size=2, sequence_length=16, dtypes=["float32"],
            jit_compile=[False], rounds=1, train_steps=1, predict_steps=1,
        )
    return settings


def _peak_dtypes(settings):
    """float32, and the compute dtype of every policy measured."""
    import keras

    dtypes = {"float32"} | {keras.DTypePolicy(policy).compute_dtype for policy in settings["dtypes"]}
    return sorted(dtypes)


def _peak(settings, peak_shapes):
    from benchmarks import peak

    results = {}
    for dtype in _peak_dtypes(settings):
        entries = peak.measure_peak(dtype, shapes=peak_shapes, repeats=1 if settings["smoke"] else 3)
        results[dtype] = entries
    return results


def _merge_peaks(*measurements):
    """Per dtype, the best entry over all measurements, and every entry."""
    from benchmarks import peak

    merged = {}
    for dtype in measurements[0]:
        entries = [entry for measurement in measurements for entry in measurement[dtype]]
        merged[dtype] = {"best": peak.best(entries), "all": entries}
    return merged


def _data(settings, kind, num_examples, vocabulary_size):
    from benchmarks import data

    if kind == "full":
        return data.full_length_batches(num_examples, settings["sequence_length"], vocabulary_size)
    if kind == "sst2":
        return data.sst2_batches(FLAGS.sst2, FLAGS.vocabulary, num_examples, settings["sequence_length"])
    raise ValueError(f"`--data` must be `full` or `sst2`, received {kind!r}.")


def _measure_setting(settings, dtype, jit_compile, datasets, log):
    """Train and predict throughput of both models under one dtype and jit setting."""
    import keras

    from benchmarks import models
    from benchmarks import timing

    keras.backend.clear_session()
    batch_size = settings["batch_size"]
    built = {}
    for name in models.MODEL_NAMES:
        model = models.build(name, settings["preset"], 2, dtype)
        models.compile_for_training(model, dtype, jit_compile)
        built[name] = model
    warmup = {}
    for name, model in built.items():
        start = time.perf_counter()
        # Trace (and with XLA compile) the train and predict functions once.
        inputs, labels = next(iter(datasets.values()))["warmup"]
        timing.fit_steps(model, inputs, labels, batch_size)
        timing.predict_steps(model, inputs, batch_size)
        warmup[name] = time.perf_counter() - start
        log(f"  {name}: warm-up {warmup[name]:.1f} s")

    results = []
    for kind, dataset in datasets.items():
        train_examples = settings["train_steps"] * batch_size
        predict_examples = settings["predict_steps"] * batch_size

        def train_run(name):
            def run(round_index):
                inputs, labels = dataset["timed"]
                start = round_index * train_examples
                part = timing.slice_examples(inputs, labels, start, start + train_examples)
                return timing.fit_steps(built[name], *part, batch_size)
            return run

        def predict_run(name):
            def run(round_index):
                inputs, labels = dataset["timed"]
                start = round_index * predict_examples
                part, _ = timing.slice_examples(inputs, labels, start, start + predict_examples)
                return timing.predict_steps(built[name], part, batch_size)
            return run

        for mode, make_run in (("train", train_run), ("predict", predict_run)):
            seconds = timing.interleaved(
                {name: make_run(name) for name in built}, settings["rounds"]
            )
            for name in built:
                entry = {
                    "model": name,
                    "mode": mode,
                    "dtype": dtype,
                    "jit_compile": jit_compile,
                    "data": kind,
                    "step_seconds": seconds[name],
                    "warmup_s": warmup[name],
                }
                entry.update(timing.summarize(seconds[name], batch_size))
                results.append(entry)
                log(
                    f"  {mode:7s} {kind:4s} {name:10s}: {entry['sequences_per_s']:7.1f} seq/s "
                    f"(median step {entry['median_step_s'] * 1e3:.0f} ms, "
                    f"best {entry['min_step_s'] * 1e3:.0f} ms)"
                )
    del built
    return results


def _add_flops(settings, runs, peaks):
    """FLOP/s and fraction of the dtype's matmul peak, for full-length runs."""
    import keras

    from benchmarks import flops
    from keras_bert import BertEncoder

    config = BertEncoder.preset_config(settings["preset"])
    for run in runs:
        if run["data"] != "full":
            continue
        # keras_bert's last block computes only the [CLS] query for a classifier.
        last_block_queries = 1 if run["model"] == "keras_bert" else None
        forward = flops.classifier_forward_flops(
            settings["batch_size"], settings["sequence_length"], config["num_layers"],
            config["hidden_dim"], config["intermediate_dim"], 2, last_block_queries,
        )
        step_flops = flops.training_flops(forward) if run["mode"] == "train" else forward
        peak_dtype = keras.DTypePolicy(run["dtype"]).compute_dtype
        peak = peaks[peak_dtype]["best"]["gflops"]
        run["flops_per_step"] = step_flops
        run["gflops"] = step_flops / run["median_step_s"] / 1e9
        run["gflops_best"] = step_flops / run["min_step_s"] / 1e9
        run["peak_dtype"] = peak_dtype
        run["fraction_of_peak"] = run["gflops"] / peak
        run["fraction_of_peak_best"] = run["gflops_best"] / peak


def _ratios(runs):
    """keras_bert / keras_hub throughput for each setting, from medians and from bests."""
    keyed = {(r["mode"], r["dtype"], r["jit_compile"], r["data"], r["model"]): r for r in runs}
    ratios = []
    for (mode, dtype, jit_compile, data, model), ours in keyed.items():
        if model != "keras_bert":
            continue
        theirs = keyed.get((mode, dtype, jit_compile, data, "keras_hub"))
        if theirs is None:
            continue
        ratios.append(
            {
                "mode": mode, "dtype": dtype, "jit_compile": jit_compile, "data": data,
                "ratio": ours["sequences_per_s"] / theirs["sequences_per_s"],
                "ratio_best": ours["sequences_per_s_best"] / theirs["sequences_per_s_best"],
            }
        )
    return ratios


def _tokenizer_benchmark(smoke):
    """Runs benchmarks/tokenizer_benchmark.py in a subprocess; returns MB/s per method."""
    command = [sys.executable, "-m", "benchmarks.tokenizer_benchmark"] + (["--smoke"] if smoke else [])
    completed = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True)
    if completed.returncode != 0:
        return {"error": completed.stderr[-2000:], "command": " ".join(command[1:])}
    throughput = {}
    for line in completed.stdout.splitlines():
        name, _, rest = line.partition(":")
        if rest.strip().endswith(")") and "MB/s" in rest:
            throughput[name.strip()] = float(rest.split("MB/s")[0])
    return {"megabytes_per_s": throughput, "output": completed.stdout, "command": "python -m benchmarks.tokenizer_benchmark"}


def _tflite_benchmark(files, output_dir, smoke):
    """Runs export/benchmark.py on `files`; returns its JSON, or why not."""
    if not files:
        return {"skipped": "no --tflite files given"}
    if not (REPOSITORY / "export" / "benchmark.py").exists():
        return {"skipped": "export/benchmark.py does not exist"}
    out = str(Path(output_dir) / "tflite_benchmark")
    command = [sys.executable, "-m", "export.benchmark", *files, f"--out={out}"]
    if smoke:
        command += ["--lengths=16", "--threads=1", "--runs=3", "--warmup=1"]
    completed = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True)
    if completed.returncode != 0:
        return {"error": completed.stderr[-2000:], "command": " ".join(command[1:])}
    with open(out + ".json", encoding="utf-8") as report:
        return {"report": json.load(report), "command": " ".join(["python"] + command[1:])}


def main(argv):
    del argv
    import tensorflow as tf

    from benchmarks import environment
    from benchmarks import peak
    from benchmarks import report

    from absl import logging

    # tf.function's retracing warnings (every peak kernel is its own function) are noise here.
    logging.set_verbosity(logging.ERROR)
    tf.get_logger().setLevel("ERROR")
    settings = _settings()
    if FLAGS.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
    machine = environment.machine()
    machine_name = FLAGS.machine or environment.default_machine_name(machine)
    if FLAGS.smoke and FLAGS.output_dir is None:
        output_dir = Path(tempfile.mkdtemp(prefix="keras_bert_benchmark_smoke_"))
    else:
        output_dir = Path(FLAGS.output_dir or REPOSITORY / "benchmarks" / "results")
    output_dir.mkdir(parents=True, exist_ok=True)
    markdown = Path(FLAGS.markdown or (output_dir / "BENCHMARKS.md" if FLAGS.smoke else REPOSITORY / "BENCHMARKS.md"))

    def log(message):
        print(message, flush=True)

    started = time.time()
    load_before = environment.load_average()
    peak_shapes = ((256, 256, 256),) if settings["smoke"] else peak.DEFAULT_SHAPES
    log(f"Machine {machine_name}: {machine}")
    log("Matmul peak (start of run) ...")
    peaks_start = _peak(settings, peak_shapes)

    from keras_bert import BertEncoder

    vocabulary_size = BertEncoder.preset_config(settings["preset"])["vocabulary_size"]
    batch_size = settings["batch_size"]
    datasets = {}
    for kind in settings["data"]:
        timed_examples = settings["rounds"] * batch_size * max(settings["train_steps"], settings["predict_steps"])
        inputs, labels = _data(settings, kind, timed_examples + 2 * batch_size, vocabulary_size)
        from benchmarks import timing

        datasets[kind] = {
            "warmup": timing.slice_examples(inputs, labels, 0, 2 * batch_size),
            "timed": timing.slice_examples(inputs, labels, 2 * batch_size, None),
            "mean_real_tokens": float(inputs["padding_mask"].sum(1).mean()),
        }
        log(f"Data {kind}: {timed_examples} examples, mean real tokens {datasets[kind]['mean_real_tokens']:.1f}")

    runs = []
    for dtype in settings["dtypes"]:
        for jit_compile in settings["jit_compile"]:
            log(f"{dtype}, jit_compile={jit_compile}")
            runs.extend(_measure_setting(settings, dtype, jit_compile, datasets, log))

    log("Matmul peak (end of run) ...")
    peaks = _merge_peaks(peaks_start, _peak(settings, peak_shapes))
    for dtype, entry in peaks.items():
        best = entry["best"]
        log(f"  peak {dtype}: {best['gflops']:.0f} GFLOP/s ({best['kernel']} {best['m']}x{best['k']}x{best['n']})")
    _add_flops(settings, runs, peaks)

    results = {
        "machine_name": machine_name,
        "machine": machine,
        "versions": environment.versions(),
        "settings": settings,
        "command": "python -m benchmarks.run " + " ".join(sys.argv[1:]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "duration_s": None,
        "load_average_before": load_before,
        "peak": peaks,
        "data": {kind: {"mean_real_tokens": d["mean_real_tokens"]} for kind, d in datasets.items()},
        "runs": runs,
        "ratios": _ratios(runs),
    }
    if FLAGS.tokenizer and not settings["smoke"]:
        log("Tokenizer benchmark ...")
        results["tokenization"] = _tokenizer_benchmark(smoke=False)
    else:
        results["tokenization"] = {"skipped": "smoke run" if settings["smoke"] else "--notokenizer"}
    results["tflite"] = _tflite_benchmark(FLAGS.tflite, output_dir, settings["smoke"])
    results["load_average_after"] = environment.load_average()
    results["duration_s"] = time.time() - started

    json_path = output_dir / f"{machine_name}.json"
    with open(json_path, "w", encoding="utf-8") as out:
        json.dump(results, out, indent=1)
    chart_path = output_dir / f"{machine_name}.png"
    chart_written = report.write_chart(results, chart_path)
    report.update_markdown(markdown, results, json_path, chart_path if chart_written else None)
    log(f"Wrote {json_path}, {chart_path if chart_written else '(no chart: matplotlib missing)'}, {markdown}")
    for line in report.summary_lines(results):
        log(line)


if __name__ == "__main__":
    cli.run(main)
