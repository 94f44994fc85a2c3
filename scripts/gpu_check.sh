#!/usr/bin/env bash
# The CUDA path on a GPU machine whose Python already has torch (no network):
# wheels for what it lacks travel in .whl/ (torch-fidelity, prdc). Runs the CUDA
# tests and the benchmark against torch-fidelity on the GPU; results under $OUT.
# Before the call, here: .venv/bin/pip download -q --no-deps -d .whl torch-fidelity==0.4.0 prdc==0.2
# and pass carry=[".whl"] to the device tool's run.
# GPU_STEPS picks steps (default all; one call may run 10 minutes at most): tests modes bench knn precision
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 GANDIAG_OFFLINE=1
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c 'import torch, torch_fidelity; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "torch-fidelity", torch_fidelity.__version__)'
STEPS=" ${GPU_STEPS:-tests modes bench knn precision} "
step() { [[ "$STEPS" == *" $1 "* ]]; }
step tests && python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py ${GPU_TESTS:-} 2>&1 | tee "$OUT/pytest_cuda.txt" | tail -15
# Inception's speed in each way it could run on this GPU (eager, channels_last, cuDNN autotuning, compiled,
# CUDA graphs; fp32 and TF32) and each one's feature difference: the data for the GPU compile default
step modes && python3 benchmarks/extractor_modes.py --device cuda --out "$OUT" 2>&1 | grep -v Warning | tail -14
step bench && python3 benchmarks/bench_vs_torch_fidelity.py --device cuda --images "${BENCH_IMAGES:-2000}" --n-stats "${BENCH_N:-50000}" \
    --json "$OUT/bench_cuda.json" 2>&1 | tee "$OUT/bench_cuda.txt" | grep -v Warning
# k-NN metrics at 10k and 50k per set, and each --compute-precision mode against strict, on the GPU
step knn && python3 benchmarks/bench_knn.py --device cuda --n "${KNN_N:-10000,50000}" --data clouds,manifold --out "$OUT" 2>&1 | tail -8
step precision && python3 benchmarks/compute_precision.py --device cuda --out "$OUT" 2>&1 | grep -v Warning | tail -30
