"""The markdown tables, the PNG chart and the console summary of a benchmark run."""

import os

from keras_bert.utils import atomic

# Each machine's section sits between its own markers, so that runs on other
# machines add sections instead of replacing this one.
BEGIN = "<!-- benchmark results {}: begin (written by python -m benchmarks.run) -->"
END = "<!-- benchmark results {}: end -->"

# The targets: (mode, dtype, minimum keras_bert / keras_hub ratio).
RATIO_TARGETS = (("train", "float32", 1.0), ("train", "mixed_bfloat16", 1.3), ("predict", "mixed_bfloat16", 1.2))
PEAK_FRACTION_TARGET = 0.6

DATA_NAMES = {"full": "full length", "sst2": "SST-2, padded"}


def _jit(value):
    return "XLA" if value else "no XLA"


def _runs(results, **match):
    return [r for r in results["runs"] if all(r.get(k) == v for k, v in match.items())]


def _one(results, **match):
    found = _runs(results, **match)
    return found[0] if found else None


def _ratio(results, **match):
    for ratio in results["ratios"]:
        if all(ratio.get(k) == v for k, v in match.items()):
            return ratio
    return None


def caption(results):
    """One line naming the machine, the versions and the settings."""
    machine, versions, settings = results["machine"], results["versions"], results["settings"]
    return (
        f"{results['machine_name']} ({machine['cpu']}, {machine['logical_cpus']} logical CPUs, "
        f"{'/'.join(machine['instruction_sets'])}); TF {versions['tensorflow']}, Keras {versions['keras']}, "
        f"keras-hub {versions['keras_hub']}, keras_bert {versions['keras_bert']} ({versions['git_commit']}); "
        f"{settings['preset']}, batch {settings['batch_size']}, length {settings['sequence_length']}, "
        f"{settings['optimizer']}, inter-op threads {settings['inter_op_threads'] or 'default'}"
    )


def throughput_table(results, mode):
    settings = results["settings"]
    lines = [
        "| dtype | jit_compile | data | keras_bert seq/s | keras-hub seq/s | ratio (median) | ratio (best step) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for dtype in settings["dtypes"]:
        for jit_compile in settings["jit_compile"]:
            for data in settings["data"]:
                ours = _one(results, mode=mode, dtype=dtype, jit_compile=jit_compile, data=data, model="keras_bert")
                theirs = _one(results, mode=mode, dtype=dtype, jit_compile=jit_compile, data=data, model="keras_hub")
                ratio = _ratio(results, mode=mode, dtype=dtype, jit_compile=jit_compile, data=data)
                if ours is None or theirs is None:
                    continue
                lines.append(
                    f"| {dtype} | {jit_compile} | {DATA_NAMES.get(data, data)} | "
                    f"{ours['sequences_per_s']:.1f} | {theirs['sequences_per_s']:.1f} | "
                    f"**{ratio['ratio']:.2f}** | {ratio['ratio_best']:.2f} |"
                )
    return lines


def flops_table(results):
    lines = [
        "| model | mode | dtype | jit_compile | GFLOP/step | GFLOP/s (median) | of peak | GFLOP/s (best step) | of peak |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for run in results["runs"]:
        if "gflops" not in run:
            continue
        lines.append(
            f"| {run['model']} | {run['mode']} | {run['dtype']} | {run['jit_compile']} | "
            f"{run['flops_per_step'] / 1e9:.3g} | {run['gflops']:.0f} | {100 * run['fraction_of_peak']:.0f}% | "
            f"{run['gflops_best']:.0f} | {100 * run['fraction_of_peak_best']:.0f}% |"
        )
    return lines


def peak_table(results):
    lines = ["| dtype | peak GFLOP/s | kernel | m x k x n |", "|---|---:|---|---|"]
    for dtype, entry in results["peak"].items():
        best = entry["best"]
        lines.append(
            f"| {dtype} | {best['gflops']:.0f} | {best['kernel']} | {best['m']} x {best['k']} x {best['n']} |"
        )
    return lines


def best_training_fraction(results):
    candidates = [
        r for r in results["runs"] if r["model"] == "keras_bert" and r["mode"] == "train" and "gflops" in r
    ]
    return max(candidates, key=lambda r: r["fraction_of_peak"]) if candidates else None


def targets_table(results):
    lines = ["| target | required | measured (median) | met |", "|---|---:|---:|---|"]
    for mode, dtype, minimum in RATIO_TARGETS:
        for jit_compile in results["settings"]["jit_compile"]:
            ratio = _ratio(results, mode=mode, dtype=dtype, jit_compile=jit_compile, data="full")
            if ratio is None:
                continue
            lines.append(
                f"| {mode} {dtype}, {_jit(jit_compile)}, full length: keras_bert / keras-hub | "
                f"{minimum:.1f} | {ratio['ratio']:.2f} | {'yes' if ratio['ratio'] >= minimum else 'no'} |"
            )
    best = best_training_fraction(results)
    if best is not None:
        lines.append(
            f"| best keras_bert training FLOP/s / {best['peak_dtype']} matmul peak "
            f"({best['dtype']}, {_jit(best['jit_compile'])}) | {PEAK_FRACTION_TARGET:.0%} | "
            f"{best['fraction_of_peak']:.0%} | {'yes' if best['fraction_of_peak'] >= PEAK_FRACTION_TARGET else 'no'} |"
        )
    return lines


def tokenization_lines(results):
    tokenization = results.get("tokenization") or {}
    if "megabytes_per_s" not in tokenization:
        return [f"Not measured: {tokenization.get('skipped') or tokenization.get('error', 'unknown')}."]
    lines = ["| method | MB/s of UTF-8 text |", "|---|---:|"]
    for name, value in tokenization["megabytes_per_s"].items():
        lines.append(f"| {name} | {value:.2f} |")
    lines.append("")
    lines.append(f"Command: `{tokenization['command']}` (SST-2 + WikiText-2, batch 512, length 128).")
    return lines


def tflite_lines(results):
    tflite = results.get("tflite") or {}
    if "report" not in tflite:
        return [f"Not measured: {tflite.get('skipped') or tflite.get('error', 'unknown')}."]
    lines = [f"Command: `{tflite['command']}`", "", "```", _compact_json(tflite["report"]), "```"]
    return lines


def _compact_json(value, limit=4000):
    import json

    text = json.dumps(value, indent=1)
    return text if len(text) <= limit else text[:limit] + "\n... (see the JSON file)"


def results_section(results, json_path, chart_path, markdown_path):
    settings = results["settings"]
    relative = lambda path: os.path.relpath(path, os.path.dirname(os.path.abspath(markdown_path)))  # noqa: E731
    lines = [
        BEGIN.format(results["machine_name"]),
        f"### Results: {results['machine_name']}, {results['started']}",
        "",
        f"*{caption(results)}.*",
        "",
        f"Command: `{results['command']}`; {results['duration_s'] / 60:.1f} minutes; load average "
        f"{results['load_average_before']} before, {results['load_average_after']} after. "
        f"Raw numbers, every step time included: [`{relative(json_path)}`]({relative(json_path)}).",
        "",
    ]
    if chart_path is not None:
        lines += [f"![throughput]({relative(chart_path)})", ""]
    lines += ["#### Targets", ""] + targets_table(results) + [""]
    lines += ["#### Training throughput (`model.fit`)", ""] + throughput_table(results, "train") + [""]
    lines += ["#### Inference throughput (`model.predict`)", ""] + throughput_table(results, "predict") + [""]
    mean_tokens = results["data"].get("sst2", {}).get("mean_real_tokens")
    if mean_tokens is not None:
        lines += [
            f"SST-2 rows: sentences average {mean_tokens:.1f} real tokens of {settings['sequence_length']}; "
            "keras_bert's classifier drops the batch's all-padding tail in the graph (not under XLA, "
            "which needs static shapes); keras-hub computes all positions.",
            "",
        ]
    lines += ["#### Matmul peak (best kernel and shape, start and end of the run)", ""] + peak_table(results) + [""]
    lines += [
        "#### Achieved FLOP/s (full-length runs)",
        "",
        "Matmul FLOPs actually computed (`benchmarks/flops.py`: 2·m·k·n per product, attention "
        "products included, training = 3 × forward; keras_bert's last block computes only the "
        "`[CLS]` query, so it does fewer FLOPs per step than keras-hub), divided by the step time, "
        "as a fraction of the peak of the policy's compute dtype.",
        "",
    ] + flops_table(results) + [""]
    lines += ["#### Tokenization", ""] + tokenization_lines(results) + [""]
    lines += ["#### LiteRT latency", ""] + tflite_lines(results) + ["", END.format(results["machine_name"])]
    return "\n".join(lines)


DEFAULT_HEADER = """# Benchmarks

Reproduce: `flock /tmp/keras_bert_heavy.lock python -m benchmarks.run` (the full grid),
`python -m benchmarks.run --smoke` (seconds; what CI runs).

"""


def update_markdown(path, results, json_path, chart_path):
    """Replaces the results section of `path` (or writes the file) with this run's."""
    section = results_section(results, json_path, chart_path, path)
    begin, end = BEGIN.format(results["machine_name"]), END.format(results["machine_name"])
    text = DEFAULT_HEADER + section + "\n"
    if os.path.exists(path):
        with open(path, encoding="utf-8") as existing:
            old = existing.read()
        if begin in old and end in old:
            text = old[: old.index(begin)] + section + old[old.index(end) + len(end) :]
        else:
            text = old.rstrip("\n") + "\n\n" + section + "\n"
    with atomic.atomic_file(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(text)


def write_chart(results, path):
    """Grouped bars: seq/s of both models per setting, training and inference. False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    settings = results["settings"]
    figure, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    for axis, mode in zip(axes, ("train", "predict")):
        labels, ours, theirs = [], [], []
        for dtype in settings["dtypes"]:
            for jit_compile in settings["jit_compile"]:
                for data in settings["data"]:
                    a = _one(results, mode=mode, dtype=dtype, jit_compile=jit_compile, data=data, model="keras_bert")
                    b = _one(results, mode=mode, dtype=dtype, jit_compile=jit_compile, data=data, model="keras_hub")
                    if a is None or b is None:
                        continue
                    labels.append(f"{dtype.replace('mixed_', '')}\n{_jit(jit_compile)}\n{DATA_NAMES.get(data, data)}")
                    ours.append(a["sequences_per_s"])
                    theirs.append(b["sequences_per_s"])
        positions = range(len(labels))
        width = 0.38
        axis.bar([p - width / 2 for p in positions], ours, width, label="keras_bert")
        axis.bar([p + width / 2 for p in positions], theirs, width, label="keras-hub")
        for p, a, b in zip(positions, ours, theirs):
            axis.text(p, max(a, b), f"{a / b:.2f}x", ha="center", va="bottom", fontsize=8)
        axis.set_xticks(list(positions))
        axis.set_xticklabels(labels, fontsize=7)
        axis.set_ylabel("sequences / s (median step)")
        axis.set_title({"train": "Training (model.fit)", "predict": "Inference (model.predict)"}[mode])
        axis.legend()
    figure.suptitle(caption(results), fontsize=7, wrap=True)
    figure.tight_layout(rect=(0, 0, 1, 0.93))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def summary_lines(results):
    lines = [f"Targets ({results['machine_name']}):"]
    lines += ["  " + line for line in targets_table(results)[2:]]
    return lines
