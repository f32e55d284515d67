"""Latency, size and memory of `.tflite` classifiers, per sequence length and thread count.

    # Every file in one run, so that the numbers compare (wrap long runs in the heavy-job lock).
    flock /tmp/keras_bert_heavy.lock python -m export.benchmark \\
        exported/model.tflite exported/model_dynamic.tflite exported/model_int8.tflite \\
        --out=exported/benchmark

    # A quick look: two lengths, one thread, 20 timed calls each.
    python -m export.benchmark model.tflite --lengths=16,128 --threads=1 --runs=20

Each file runs in its own fresh process (so its peak memory is its own): an interpreter per
thread count, then for each length `--warmup` untimed and `--runs` timed calls of one example
(batch 1) at exactly that length. Token-id files are also timed on a `--padded_tokens`-token input
padded to the largest length (what a fixed-shape model would pay). String files get a text of
repeated one-token words that packs to the length.

Files of every task are timed alike (classification, token classification, sentence
embeddings, question answering): only the inputs matter, the outputs are ignored. A token-id
file whose inputs have a fixed length (question answering's `(1, sequence_length)`) runs at that
length only: full, and with `--padded_tokens` real tokens padded to it; the other `--lengths`
are skipped, and its entry says so (`skipped_lengths`, `note`).

The speed of int8 files depends on the CPU's int8 dot-product instructions (see
`keras_bert/utils/cpu.py`): the output starts with a line naming the CPU, its int8 features and what
they mean for dynamic int8, and `OUT.json`'s `machine` records them.

Writes `OUT.json` (per file: size, peak and baseline resident memory, p50/p90/p99/mean latency in
milliseconds per length and thread count, speed-ups, and the load average before and after, which
shows whether other work competed for the cores) and `OUT.png` (p50 latency against length, one
line per file and thread count, and file sizes; titled with the CPU).
"""

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app
from absl import flags

from export.core import arm64_runner
from keras_bert.utils import cpu
from keras_bert.inputs import INPUT_NAMES
from keras_bert.utils import cli

FLAGS = flags.FLAGS


def define_flags():
    """Defines the command-line flags (only when run as a program, so that the modules of
    `export/` can be imported together)."""
    flags.DEFINE_string(
        "out", "benchmark", "Output path prefix: writes OUT.json and OUT.png."
    )
    flags.DEFINE_list(
        "lengths", ["16", "32", "64", "128"], "Sequence lengths (tokens, with [CLS] and [SEP])."
    )
    flags.DEFINE_list("threads", ["1", "2"], "Interpreter thread counts.")
    flags.DEFINE_integer("runs", 100, "Timed calls per length and thread count.")
    flags.DEFINE_integer("warmup", 10, "Untimed calls before timing.")
    flags.DEFINE_integer(
        "padded_tokens", 16,
        "Also time token-id files on this many real tokens padded to the largest length (0: off).",
    )
    flags.DEFINE_list(
        "names", None, "Display names for the files, in order. Default: the file names."
    )
    for name in ("lengths", "threads"):
        flags.register_validator(
            name, lambda values: all(value.isdigit() for value in values),
            "must be positive integers separated by commas.",
        )
    flags.register_validator("runs", lambda value: value >= 1, "must be positive.")
    flags.register_validator("warmup", lambda value: value >= 0, "must be >= 0.")
    flags.register_validator("padded_tokens", lambda value: value >= 0, "must be >= 0 (0: off).")


def _check_arguments(argv):
    """The `.tflite` files named on the command line must exist."""
    if not argv[1:]:
        raise app.UsageError("Pass one or more .tflite files.")
    from export.core import litert  # pylint: disable=import-outside-toplevel

    for path in argv[1:]:
        if not os.path.isfile(path):
            raise app.UsageError(f"The .tflite file {path!r} does not exist.")
        manifest = litert.read_manifest(path)
        if manifest is not None and manifest.get("input_kind") != "text":
            vocabulary = os.path.join(os.path.dirname(os.path.abspath(path)), manifest["vocab"])
            try:
                litert.check_vocabulary(vocabulary, manifest, litert.manifest_path(path))
            except ValueError as error:
                raise app.UsageError(f"{path}: {error}") from None




def _rss_bytes():
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def _percentiles(seconds):
    milliseconds = 1000.0 * np.asarray(seconds)
    return {
        "p50_ms": float(np.percentile(milliseconds, 50)),
        "p90_ms": float(np.percentile(milliseconds, 90)),
        "p99_ms": float(np.percentile(milliseconds, 99)),
        "mean_ms": float(milliseconds.mean()),
    }


def _filler_token(manifest, vocabulary_path):
    """A whole-word token id and its text, for building inputs of a given length."""
    with open(vocabulary_path, encoding="utf-8") as f:
        vocabulary = [line.rstrip("\r\n") for line in f]
    for word in ("the", "good", "a"):
        if word in vocabulary:
            return vocabulary.index(word), word
    for i, token in enumerate(vocabulary):
        if token.isalpha() and token.islower() and i not in manifest["special_token_ids"].values():
            return i, token
    raise ValueError(f"{vocabulary_path} has no lower-case whole-word token to build inputs.")


def _time_calls(call, warmup, runs):
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def _cases(lengths, padded_tokens, is_text, fixed_length=None):
    """`(real_tokens, length)` of every timed input.

    A file of `fixed_length` runs at that length only: full, and with `padded_tokens` real
    tokens padded to it.
    """
    if fixed_length:
        cases = [(fixed_length, fixed_length)]
        if padded_tokens and padded_tokens < fixed_length:
            cases.append((padded_tokens, fixed_length))
        return cases
    cases = [(length, length) for length in lengths]
    if padded_tokens and not is_text:
        cases.append((padded_tokens, max(lengths)))
    return cases


def token_id_fixed_length(path, manifest):
    """The one input length of a token-id file, or None when it takes any length.

    From the manifest's `inputs` (what `export.tflite` records), else from the file's signature.
    """
    details = manifest.get("inputs") or arm64_runner.signature_input_details(path)
    return arm64_runner.fixed_length(details)


def _filler_text(word, real_tokens):
    """A text of one-token words that packs to `real_tokens` tokens with `[CLS]` and `[SEP]`."""
    return " ".join([word] * (real_tokens - 2)).encode()


def pack_token_id_feeds(path, lengths, padded_tokens):
    """The token-id inputs of every case of `path`, packed by the classifier's preprocessor.

    Runs in the parent process (it imports TensorFlow, which the timed process must not), from
    the same filler texts the string-input files get.

    Returns:
        dict `"{real}_{length}_{input name}" -> int32 array (1, length)`.
    """
    # pylint: disable=import-outside-toplevel
    from export.core import litert
    import keras_bert
    from keras_bert.text import TextClassifierPreprocessor

    manifest = litert.read_manifest(path)
    vocabulary = os.path.join(os.path.dirname(os.path.abspath(path)), manifest["vocab"])
    # Another vocabulary than the file was exported with would pack other ids.
    litert.check_vocabulary(vocabulary, manifest, litert.manifest_path(path))
    _, word = _filler_token(manifest, vocabulary)
    tokenizer = keras_bert.load_tokenizer(vocabulary, lower_case=manifest.get("lower_case"))
    feeds = {}
    fixed_length = token_id_fixed_length(path, manifest)
    for real, shape in _cases(lengths, padded_tokens, is_text=False, fixed_length=fixed_length):
        preprocessor = TextClassifierPreprocessor(tokenizer, sequence_length=shape)
        packed = preprocessor.pack_numpy([_filler_text(word, real).decode()])
        for name in INPUT_NAMES:
            feeds[f"{real}_{shape}_{name}"] = packed[name]
    return feeds


def benchmark_file(path, lengths, threads, runs, warmup, padded_tokens, feeds_path=None):
    """Times one file in this process; see the module docstring. Returns a dict.

    `feeds_path`: an `.npz` of `pack_token_id_feeds` (token-id files only).
    """
    from export.core import litert  # pylint: disable=import-outside-toplevel

    manifest = litert.read_manifest(path)
    if manifest is None:
        raise ValueError(f"{path} has no manifest beside it (written by export.tflite).")
    is_text = manifest["input_kind"] == "text"
    if is_text:
        # The kernels' registrar comes with all of TensorFlow in Python (an app links only the
        # kernels): count that import in the baseline, not in the model.
        import tensorflow_text  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    baseline_rss = _rss_bytes()
    vocabulary = os.path.join(os.path.dirname(os.path.abspath(path)), manifest["vocab"])
    _, word = _filler_token(manifest, vocabulary)
    fixed_length = None
    if not is_text:
        token_id_feeds = np.load(feeds_path)
        fixed_length = token_id_fixed_length(path, manifest)
    results = []
    for num_threads in threads:
        interpreter = litert.make_interpreter(path, num_threads=num_threads, custom_ops=is_text)
        runner = interpreter.get_signature_runner()
        for real, shape in _cases(lengths, padded_tokens, is_text, fixed_length):
            if is_text:
                feed = {"text": np.array([_filler_text(word, real)], dtype=object)}
            else:
                # Inputs by their role: a QA file may name them as its client does (`ids`).
                feed = {
                    name: token_id_feeds[
                        f"{real}_{shape}_{arm64_runner.input_role(name)}"
                    ].astype(detail["dtype"])
                    for name, detail in runner.get_input_details().items()
                }
            seconds = _time_calls(lambda feed=feed: runner(**feed), warmup, runs)
            results.append({
                "threads": num_threads, "length": shape, "real_tokens": real, "runs": runs,
                **_percentiles(seconds),
            })
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    skipped_lengths = [length for length in lengths if length != fixed_length]
    return {
        "path": os.path.abspath(path),
        "size_bytes": os.path.getsize(path),
        "task": manifest.get("task"),
        "quantization": manifest.get("quantization"),
        "input_kind": manifest.get("input_kind"),
        "fixed_length": fixed_length,
        "skipped_lengths": skipped_lengths if fixed_length else [],
        "note": (
            f"fixed input length {fixed_length}: timed at {fixed_length} only (full, and "
            f"{padded_tokens} real tokens padded to it); lengths {skipped_lengths} skipped"
            if fixed_length else None
        ),
        "baseline_rss_bytes": baseline_rss,
        "peak_rss_bytes": peak_rss,
        "model_peak_rss_bytes": peak_rss - baseline_rss if baseline_rss else None,
        "latency": results,
    }


def _child_main():
    """Entry of the per-file process: `python -c ... SPEC_JSON OUT_JSON`."""
    spec_path, out_path = sys.argv[1:3]
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    result = benchmark_file(**spec)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f)


def _run_in_fresh_process(spec):
    with tempfile.TemporaryDirectory(prefix="benchmark-") as scratch:
        from export.core import litert  # pylint: disable=import-outside-toplevel

        manifest = litert.read_manifest(spec["path"])
        if manifest is not None and manifest.get("input_kind") != "text":
            spec = dict(spec, feeds_path=os.path.join(scratch, "feeds.npz"))
            np.savez(spec["feeds_path"], **pack_token_id_feeds(
                spec["path"], spec["lengths"], spec["padded_tokens"]))
        spec_path = os.path.join(scratch, "spec.json")
        out_path = os.path.join(scratch, "out.json")
        with open(spec_path, "w", encoding="utf-8") as f:
            json.dump(spec, f)
        repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                   PYTHONPATH=os.pathsep.join([repository, os.environ.get("PYTHONPATH", "")]))
        command = [sys.executable, "-c", "from export import benchmark; benchmark._child_main()",
                   spec_path, out_path]
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"Benchmarking {spec['path']} failed (exit {result.returncode}):\n"
                f"{result.stderr[-3000:]}"
            )
        with open(out_path, encoding="utf-8") as f:
            return json.load(f)


def _p50(entry, threads, length, real_tokens=None):
    for row in entry["latency"]:
        if (row["threads"] == threads and row["length"] == length
                and row["real_tokens"] == (length if real_tokens is None else real_tokens)):
            return row["p50_ms"]
    return None


def _speedups(entries, lengths, threads, padded_tokens):
    """p50 ratios: each file against the first, and padded against exact length."""
    first = entries[0]
    for entry in entries:
        entry["p50_speedup_vs_first"] = {
            f"{n}threads_{length}": _ratio(_p50(first, n, length), _p50(entry, n, length))
            for n in threads for length in lengths
        }
        if padded_tokens and entry["input_kind"] == "token_ids" and not entry.get("fixed_length"):
            longest = max(lengths)
            entry["p50_speedup_exact_vs_padded"] = {
                f"{n}threads": _ratio(_p50(entry, n, longest, padded_tokens),
                                      _p50(entry, n, padded_tokens))
                for n in threads
            }


def _ratio(numerator, denominator):
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def write_chart(path, entries, title=None):
    """p50 latency against length, one line per file and thread count (a PNG), under `title`
    (the CPU, say)."""
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel

    figure, axes = pyplot.subplots(1, 2, figsize=(12, 4.5))
    colors = pyplot.get_cmap("tab20").colors
    styles = ("-", "--", ":", "-.")
    for i, entry in enumerate(entries):
        # One colour per file, one line style per thread count.
        thread_counts = sorted({row["threads"] for row in entry["latency"]})
        for j, n in enumerate(thread_counts):
            rows = [row for row in entry["latency"]
                    if row["threads"] == n and row["real_tokens"] == row["length"]]
            axes[0].plot([row["length"] for row in rows], [row["p50_ms"] for row in rows],
                         marker="o", color=colors[(2 * i) % len(colors)],
                         linestyle=styles[j % len(styles)], label=f"{entry['name']} ({n} thr)")
    axes[0].set_xlabel("sequence length (tokens)")
    axes[0].set_ylabel("p50 latency (ms, log scale)")
    axes[0].set_yscale("log")
    axes[0].set_title("Latency per example (batch 1)")
    axes[0].grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    names = [entry["name"] for entry in entries]
    axes[1].bar(range(len(entries)), [entry["size_bytes"] / 1e6 for entry in entries],
                color=[colors[(2 * i) % len(colors)] for i in range(len(entries))])
    axes[1].set_xticks(range(len(entries)), names, rotation=20, ha="right", fontsize=8)
    axes[1].set_ylabel("file size (MB)")
    axes[1].set_title("Size")
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def run(files, out="benchmark", lengths=(16, 32, 64, 128), threads=(1, 2), runs=100,
        warmup=10, padded_tokens=16, names=None, log=print):
    """Benchmarks `files` (each in a fresh process) and writes `out.json` and `out.png`.

    Args:
        files: list of str. `.tflite` files written by `export.tflite` (manifests beside them).
        out: str. Output path prefix.
        lengths: sequence of int. Sequence lengths to time.
        threads: sequence of int. Thread counts.
        runs, warmup: int. Timed and untimed calls per case.
        padded_tokens: int. Real tokens of the padded case (0: off).
        names: list of str or None. Display names.
        log: callable taking a str.

    Returns:
        The report dict written to `out.json`.
    """
    if not files:
        raise ValueError("`files` is empty: name at least one .tflite file.")
    for path in files:
        if not os.path.isfile(path):
            raise ValueError(f"{path!r} is not a file.")
    names = list(names) if names else [os.path.basename(path) for path in files]
    if len(names) != len(files):
        raise ValueError(f"{len(names)} `names` for {len(files)} files.")
    lengths = sorted(int(x) for x in lengths)
    threads = [int(x) for x in threads]
    if min(lengths) < 3 or (padded_tokens and not 3 <= padded_tokens <= max(lengths)):
        raise ValueError(
            f"`lengths` must be >= 3 and `padded_tokens` ({padded_tokens}) within them."
        )
    cpu_info = cpu.read_cpu_info()
    # The CPU first: int8 files are fast only with int8 dot products, so every figure needs it.
    log(cpu.describe(cpu_info))
    entries = []
    for path, name in zip(files, names):
        log(f"benchmark: {name}")
        load_before = os.getloadavg()[0]
        entry = _run_in_fresh_process({
            "path": path, "lengths": lengths, "threads": threads, "runs": runs,
            "warmup": warmup, "padded_tokens": padded_tokens,
        })
        # Other work on the machine skews the numbers: the one-minute load average, before and
        # after, shows it (about 1 for one benchmark thread on an otherwise idle machine).
        entry["load_average_before_after"] = [load_before, os.getloadavg()[0]]
        entries.append({"name": name, **entry})
    _speedups(entries, lengths, threads, padded_tokens)
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "cpu_model": cpu_info["model_name"],
                    "architecture": cpu_info["architecture"],
                    "int8_features": cpu_info["features"],
                    "int8_group": cpu_info["int8_group"],
                    "int8_summary": cpu_info["summary"],
                    "cpu_line": cpu.describe(cpu_info)},
        "settings": {"lengths": lengths, "threads": threads, "runs": runs, "warmup": warmup,
                     "padded_tokens": padded_tokens, "batch_size": 1},
        "files": entries,
    }
    from export.core import evaluation  # pylint: disable=import-outside-toplevel

    evaluation.write_json(out + ".json", report)
    write_chart(
        out + ".png", entries,
        title=f"{cpu_info['model_name'] or 'unknown CPU'}: {cpu_info['summary']}",
    )
    report["chart"] = out + ".png"
    return report


def _table(report):
    lines = [report["machine"]["cpu_line"], "",
             "| file | size MB | threads | length | real | p50 ms | p90 ms | p99 ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for entry in report["files"]:
        for row in entry["latency"]:
            lines.append(
                f"| {entry['name']} | {entry['size_bytes'] / 1e6:.1f} | {row['threads']} | "
                f"{row['length']} | {row['real_tokens']} | {row['p50_ms']:.2f} | "
                f"{row['p90_ms']:.2f} | {row['p99_ms']:.2f} |"
            )
    return "\n".join(lines)


def main(argv):
    files = argv[1:]
    report = run(
        files, out=FLAGS.out, lengths=FLAGS.lengths, threads=FLAGS.threads, runs=FLAGS.runs,
        warmup=FLAGS.warmup, padded_tokens=FLAGS.padded_tokens, names=FLAGS.names,
    )
    print(_table(report))
    for entry in report["files"]:
        print(entry["name"], "peak RSS MB", round(entry["peak_rss_bytes"] / 1e6, 1),
              "load", entry["load_average_before_after"],
              "speed-up vs first", json.dumps(entry["p50_speedup_vs_first"]),
              "exact vs padded", json.dumps(entry.get("p50_speedup_exact_vs_padded")))
        if entry.get("note"):
            print(entry["name"], entry["note"])


if __name__ == "__main__":
    define_flags()
    cli.run(
        main, flag_for={"names": "names", "lengths": "lengths", "padded_tokens": "padded_tokens"},
        check=_check_arguments,
    )
