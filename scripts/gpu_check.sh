#!/usr/bin/env bash
# The CUDA path on a GPU machine whose Python already has torch (no network):
# wheels for what it lacks travel in .whl/ (torch-fidelity, prdc). Runs the CUDA
# tests and the benchmark against torch-fidelity on the GPU; results under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 GANDIAG_OFFLINE=1
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c 'import torch, torch_fidelity; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "torch-fidelity", torch_fidelity.__version__)'
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py ${GPU_TESTS:-} 2>&1 | tee "$OUT/pytest_cuda.txt" | tail -15
python3 benchmarks/bench_vs_torch_fidelity.py --device cuda --images "${BENCH_IMAGES:-2000}" --n-stats "${BENCH_N:-50000}" \
    --json "$OUT/bench_cuda.json" 2>&1 | tee "$OUT/bench_cuda.txt" | grep -v Warning
# k-NN metrics at 10k and 50k per set, and each --compute-precision mode against strict, on the GPU
python3 benchmarks/bench_knn.py --device cuda --n "${KNN_N:-10000,50000}" --data clouds,manifold --out "$OUT" 2>&1 | tail -8
python3 benchmarks/compute_precision.py --device cuda --out "$OUT" 2>&1 | grep -v Warning | tail -30
