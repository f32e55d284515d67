"""The CPU's instruction-set features that decide int8 speed, read from /proc/cpuinfo.

    from keras_bert.utils import cpu

    info = cpu.read_cpu_info()
    print(cpu.describe(info))
    # AMD EPYC (x86_64, 2 processors); int8 features: avx2; AVX2 only, no int8 dot products: ...

LiteRT's dynamic-range int8 kernels (XNNPACK) are fast only where the CPU has int8 dot-product
instructions: AVX-512 VNNI, AVX-VNNI or AMX on x86, the dot-product extension (`asimddp`, and
`i8mm`) on arm64. Without them an int8 multiply-accumulate takes several instructions and the
int8 file is no faster than float32. Measured on this project's machines (MiniLM-L6, batch 1):
dynamic int8 was 2.5-3x faster than float32 at 128 tokens on Xeons with VNNI or AMX, and
0.96x (1 thread) and 1.04x (2 threads) on an AVX2-only AMD EPYC (Zen 2), 1.6-1.7x there at 16
tokens. So every latency figure names its CPU, and `describe` says which group the CPU is in.

NumPy-free and TensorFlow-free: the benchmark's timed processes may import it.
"""

import os
import platform

# x86 `flags` that matter for int8 and bfloat16 kernels (Linux's spelling).
X86_FEATURES = (
    "avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
    "avx512_bf16",
)
# arm64 `Features`: asimddp is the dot-product extension (SDOT/UDOT), i8mm the int8 matrix
# multiply, bf16 and sve.
ARM64_FEATURES = ("asimddp", "i8mm", "bf16", "sve")
# Any one of these gives the int8 dot products that make dynamic int8 faster than float32.
INT8_DOT_PRODUCT_FEATURES = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")

# The int8 group of a CPU -> the one-line summary the reports print.
INT8_GROUPS = {
    "int8_dot_product": (
        "int8 dot products (VNNI/AMX/arm64 dotprod): dynamic int8 expected ~2.5-3x faster "
        "than float32 at 128 tokens"
    ),
    "avx2_only": (
        "AVX2 only, no int8 dot products: dynamic int8 about as fast as float32 at 128 tokens"
    ),
    "avx512_without_vnni": (
        "AVX-512 without VNNI, no int8 dot products: dynamic int8 speed-up not measured on "
        "this project's machines"
    ),
    "no_int8_dot_product": (
        "no int8 dot products (no AVX2, or arm64 without dotprod): dynamic int8 speed-up not "
        "measured on this project's machines"
    ),
    "unknown": "instruction set unknown (no readable /proc/cpuinfo): int8 speed-up unknown",
}

# arm64 /proc/cpuinfo names no model, only MIDR fields: a few common parts of ARM Ltd
# (implementer 0x41), for a readable name.
_ARM_PARTS = {
    0xD03: "Cortex-A53", 0xD05: "Cortex-A55", 0xD07: "Cortex-A57", 0xD08: "Cortex-A72",
    0xD0B: "Cortex-A76", 0xD0C: "Neoverse-N1", 0xD0D: "Cortex-A77", 0xD40: "Neoverse-V1",
    0xD41: "Cortex-A78", 0xD44: "Cortex-X1", 0xD46: "Cortex-A510", 0xD47: "Cortex-A710",
    0xD48: "Cortex-X2", 0xD49: "Neoverse-N2", 0xD4F: "Neoverse-V2",
}


def _processor_blocks(text):
    """The `key: value` dicts of the blank-line-separated blocks of a cpuinfo text."""
    blocks, block = [], {}
    for line in text.splitlines():
        if not line.strip():
            if block:
                blocks.append(block)
            block = {}
            continue
        key, separator, value = line.partition(":")
        if separator:
            block[key.strip()] = value.strip()
    if block:
        blocks.append(block)
    return blocks


def _arm64_model(block):
    implementer = block.get("CPU implementer")
    part = block.get("CPU part")
    if implementer is None or part is None:
        return None
    try:
        implementer_value, part_value = int(implementer, 16), int(part, 16)
    except ValueError:
        return f"arm64 CPU (implementer {implementer}, part {part})"
    if implementer_value == 0x41 and part_value in _ARM_PARTS:
        return _ARM_PARTS[part_value]
    return f"arm64 CPU (implementer 0x{implementer_value:02x}, part 0x{part_value:03x})"


def int8_group(architecture, features):
    """The key of `INT8_GROUPS` for a CPU with `features` (names as in `X86_FEATURES` and
    `ARM64_FEATURES`)."""
    features = set(features)
    if architecture is None:
        return "unknown"
    if features & set(INT8_DOT_PRODUCT_FEATURES):
        return "int8_dot_product"
    if architecture == "x86_64" and "avx512f" in features:
        return "avx512_without_vnni"
    if architecture == "x86_64" and "avx2" in features:
        return "avx2_only"
    return "no_int8_dot_product"


def parse_cpuinfo(text):
    """The int8-relevant facts of a Linux /proc/cpuinfo text (x86 or arm64).

    A feature counts only when every processor listed has it (a big.LITTLE phone lists its
    cores separately; a thread may run on any of them).

    Args:
        text: str. The contents of /proc/cpuinfo.

    Returns:
        dict: `architecture` (`"x86_64"`, `"arm64"` or None when the text has neither x86
        `flags` nor arm64 `Features`), `model_name` (str or None), `num_processors` (int),
        `features` (the sorted names of `X86_FEATURES` or `ARM64_FEATURES` present),
        `int8_group` (a key of `INT8_GROUPS`) and `summary` (its sentence).
    """
    blocks = [block for block in _processor_blocks(text) if "processor" in block]
    if not blocks:
        blocks = _processor_blocks(text)
    if any("flags" in block for block in blocks):
        architecture, key, known = "x86_64", "flags", X86_FEATURES
    elif any("Features" in block for block in blocks):
        architecture, key, known = "arm64", "Features", ARM64_FEATURES
    else:
        architecture, key, known = None, None, ()
    present = None
    for block in blocks:
        if key in block:
            words = set(block[key].split())
            present = words if present is None else present & words
    features = sorted(set(known) & (present or set()))
    model_name = None
    for block in blocks:
        model_name = block.get("model name") or (
            _arm64_model(block) if architecture == "arm64" else None
        )
        if model_name:
            break
    group = int8_group(architecture, features)
    return {
        "architecture": architecture,
        "model_name": model_name,
        "num_processors": sum("processor" in block for block in blocks),
        "features": features,
        "int8_group": group,
        "summary": INT8_GROUPS[group],
    }


def read_cpu_info(path="/proc/cpuinfo"):
    """`parse_cpuinfo` of this machine's `path`; the `unknown` group when it is unreadable
    (macOS, Windows), with the model from `platform.processor()`."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            info = parse_cpuinfo(f.read())
    except OSError:
        info = parse_cpuinfo("")
        info["model_name"] = platform.processor() or None
    info["num_processors"] = info["num_processors"] or os.cpu_count()
    return info


def describe(info):
    """One line naming the CPU, its int8 features and its int8 group's summary.

    Example: `CPU: AMD EPYC (x86_64, 2 processors); int8 features: avx2; AVX2 only, no int8
    dot products: dynamic int8 about as fast as float32 at 128 tokens`.
    """
    machine = info["architecture"] or platform.machine() or "unknown architecture"
    features = ", ".join(info["features"]) or "none"
    return (
        f"CPU: {info['model_name'] or 'unknown model'} ({machine}, "
        f"{info['num_processors']} processors); int8 features: {features}; {info['summary']}"
    )
