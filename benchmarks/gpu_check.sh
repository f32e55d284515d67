#!/usr/bin/env bash
# The benchmark on one NVIDIA GPU, in under 5 minutes: keras_bert vs keras-hub,
# float32 and mixed_float16 (with loss scaling), with and without XLA, full-length
# bert_small sequences, and the GPU's matmul peak per dtype.
#
#   benchmarks/gpu_check.sh                 # virtualenv at .venv
#   VENV=/path/to/venv benchmarks/gpu_check.sh --rounds=5   # extra flags go to benchmarks.run
#
# Needs a TensorFlow build that sees the GPU (e.g. `pip install tensorflow[and-cuda]==2.21.0`
# in the virtualenv); the script stops if TensorFlow lists no GPU. Writes
# benchmarks/results/<gpu>-1gpu.{json,png} and a results section in BENCHMARKS.md.
#
# Not run yet: no GPU machine was available when it was written (see BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
python=$venv/bin/python
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$python" - <<'PY'
import sys
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
print("TensorFlow", tf.__version__, "GPUs:", gpus)
sys.exit(0 if gpus else "TensorFlow sees no GPU: install a CUDA build of TensorFlow in the virtualenv.")
PY

# bfloat16 needs Ampere or newer; float16 with loss scaling runs on every tensor-core GPU.
# Batch 32: GPU steps are short, so a larger batch keeps launch overhead out of the figures.
exec timeout 290 "$python" -m benchmarks.run \
  --dtypes=float32,mixed_float16 \
  --jit_compile=false,true \
  --data=full \
  --batch_size=32 \
  --rounds=3 \
  --train_steps=5 \
  --predict_steps=10 \
  --inter_op_threads=0 \
  --notokenizer \
  "$@"
