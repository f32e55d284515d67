"""`keras_bert.utils.cpu`: the int8 features and group, from cpuinfo texts in the kernel's format."""

import os

import pytest

from keras_bert.utils import cpu

# A backslash at a line's end continues it: each `flags` and `Features` entry is one line, as
# the kernel prints it.

# Two processors of an Intel Xeon (Sapphire Rapids: AVX-512 VNNI, AVX-VNNI and AMX), as Linux
# 6.x prints them (flags cut to a real subset in the kernel's order).
XEON_AMX = """\
processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
stepping\t: 8
cpu MHz\t\t: 2699.998
cache size\t: 107520 KB
physical id\t: 0
siblings\t: 2
core id\t\t: 0
cpu cores\t: 1
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 \
clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl \
xtopology nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 \
x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch \
ssbd ibrs ibpb stibp ibrs_enhanced fsgsbase tsc_adjust bmi1 hle avx2 smep bmi2 erms invpcid \
rtm avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw \
avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 arat avx512vbmi umip pku ospke \
waitpkg avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq la57 \
rdpid cldemote movdiri movdir64b fsrm md_clear serialize tsxldtrk amx_bf16 avx512_fp16 \
amx_tile amx_int8 arch_capabilities
bugs\t\t: spectre_v1 spectre_v2 spec_store_bypass swapgs
bogomips\t: 5399.99
address sizes\t: 52 bits physical, 57 bits virtual
power management:

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu vme de pse tsc msr avx2 avx512f avx512_vnni avx_vnni avx512_bf16 amx_bf16 \
amx_tile amx_int8
power management:

"""

# Cascade Lake: AVX-512 VNNI, no AMX, no AVX-VNNI.
XEON_VNNI = """\
processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
model name\t: Intel(R) Xeon(R) CPU @ 2.80GHz
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep sse sse2 ssse3 fma cx16 sse4_1 \
sse4_2 avx f16c avx2 bmi2 avx512f avx512dq avx512cd avx512bw avx512vl xsaveopt avx512_vnni \
md_clear arch_capabilities
bogomips\t: 5600.00

"""

# AMD EPYC (Zen 2) in a cloud VM: AVX2, no AVX-512, no VNNI.
EPYC_ZEN2 = """\
processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 23
model\t\t: 49
model name\t: AMD EPYC 7B12
stepping\t: 0
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush \
mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl \
nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 movbe \
popcnt aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a \
misalignsse 3dnowprefetch osvw topoext ssbd ibrs ibpb stibp vmmcall fsgsbase tsc_adjust bmi1 \
avx2 smep bmi2 rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 clzero xsaveerptr \
arat npt nrip_save umip rdpid
bugs\t\t: sysret_ss_attrs null_seg spectre_v1 spectre_v2 spec_store_bypass retbleed
bogomips\t: 4499.99
TLB size\t: 3072 4K pages
address sizes\t: 48 bits physical, 48 bits virtual
power management:

"""

# Skylake-SP: AVX-512 without VNNI.
XEON_SKYLAKE = """\
processor\t: 0
model name\t: Intel(R) Xeon(R) CPU @ 2.00GHz
flags\t\t: fpu sse sse2 avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl

"""

# AWS Graviton2 (Neoverse-N1, Armv8.2 with the dot product), as arm64 Linux prints it.
GRAVITON2 = """\
processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm \
lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1

processor\t: 1
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm \
lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1

"""

# Raspberry Pi 3 (Cortex-A53, Armv8.0: no dot product).
RASPBERRY_PI_3 = """\
processor\t: 0
BogoMIPS\t: 38.40
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd03
CPU revision\t: 4

Hardware\t: BCM2835
Revision\t: a02082
Model\t\t: Raspberry Pi 3 Model B Rev 1.2
"""

# A big.LITTLE phone whose big cores (Cortex-X2) have i8mm and bf16 and little ones
# (Cortex-A510 here shown without them): only the common features count.
BIG_LITTLE = """\
processor\t: 0
Features\t: fp asimd asimddp sve
CPU implementer\t: 0x41
CPU part\t: 0xd46

processor\t: 1
Features\t: fp asimd asimddp sve i8mm bf16
CPU implementer\t: 0x41
CPU part\t: 0xd48

"""


@pytest.mark.parametrize(
    "text, architecture, model_name, processors, features, group",
    [
        (XEON_AMX, "x86_64", "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", 2,
         ["amx_bf16", "amx_int8", "amx_tile", "avx2", "avx512_bf16", "avx512_vnni", "avx512f",
          "avx_vnni"], "int8_dot_product"),
        (XEON_VNNI, "x86_64", "Intel(R) Xeon(R) CPU @ 2.80GHz", 1,
         ["avx2", "avx512_vnni", "avx512f"], "int8_dot_product"),
        (EPYC_ZEN2, "x86_64", "AMD EPYC 7B12", 1, ["avx2"], "avx2_only"),
        (XEON_SKYLAKE, "x86_64", "Intel(R) Xeon(R) CPU @ 2.00GHz", 1, ["avx2", "avx512f"],
         "avx512_without_vnni"),
        (GRAVITON2, "arm64", "Neoverse-N1", 2, ["asimddp"], "int8_dot_product"),
        (RASPBERRY_PI_3, "arm64", "Cortex-A53", 1, [], "no_int8_dot_product"),
        (BIG_LITTLE, "arm64", "Cortex-A510", 2, ["asimddp", "sve"], "int8_dot_product"),
        ("", None, None, 0, [], "unknown"),
    ],
)
def test_parse_cpuinfo(text, architecture, model_name, processors, features, group):
    info = cpu.parse_cpuinfo(text)
    assert info == {
        "architecture": architecture,
        "model_name": model_name,
        "num_processors": processors,
        "features": features,
        "int8_group": group,
        "summary": cpu.INT8_GROUPS[group],
    }


def test_summaries_state_the_measured_speed_ups():
    assert cpu.parse_cpuinfo(XEON_AMX)["summary"] == (
        "int8 dot products (VNNI/AMX/arm64 dotprod): dynamic int8 expected ~2.5-3x faster "
        "than float32 at 128 tokens"
    )
    assert cpu.parse_cpuinfo(EPYC_ZEN2)["summary"] == (
        "AVX2 only, no int8 dot products: dynamic int8 about as fast as float32 at 128 tokens"
    )


def test_unknown_arm64_part_is_named_by_its_midr_fields():
    text = (
        "processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\nCPU implementer\t: 0x61\n"
        "CPU part\t: 0x022\n"
    )
    info = cpu.parse_cpuinfo(text)
    assert info["model_name"] == "arm64 CPU (implementer 0x61, part 0x022)"
    assert info["features"] == ["asimddp", "i8mm"]


def test_describe():
    line = cpu.describe(cpu.parse_cpuinfo(EPYC_ZEN2))
    assert line == (
        "CPU: AMD EPYC 7B12 (x86_64, 1 processors); int8 features: avx2; AVX2 only, no int8 "
        "dot products: dynamic int8 about as fast as float32 at 128 tokens"
    )
    assert "int8 features: none;" in cpu.describe(cpu.parse_cpuinfo(RASPBERRY_PI_3))


def test_read_cpu_info_of_this_machine():
    info = cpu.read_cpu_info()
    if not os.path.isfile("/proc/cpuinfo"):
        assert info["int8_group"] == "unknown"
        return
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        text = f.read()
    assert info == dict(cpu.parse_cpuinfo(text), num_processors=info["num_processors"])
    assert info["architecture"] in ("x86_64", "arm64")
    assert info["model_name"]
    assert info["num_processors"] >= 1
    words = set(text.split())
    assert info["features"] == sorted(
        words & set(cpu.X86_FEATURES if info["architecture"] == "x86_64" else cpu.ARM64_FEATURES)
    )
    # The group follows from the features alone.
    assert info["int8_group"] == cpu.int8_group(info["architecture"], info["features"])


def test_read_cpu_info_without_the_file(tmp_path):
    info = cpu.read_cpu_info(str(tmp_path / "missing"))
    assert info["int8_group"] == "unknown" and info["architecture"] is None
    assert info["num_processors"] == os.cpu_count()
