#!/usr/bin/env bash
# The prepared GPU check of issue 17 (benchmarks/gpu.py): at most 8 minutes on one GPU.
#
#   bash benchmarks/gpu_check.sh prepare   # here, once, with pip access: the wheels the GPU
#                                          # image lacks, into .whl/ (ignored by git)
#   bash benchmarks/gpu_check.sh [ARGS]    # on the GPU machine (carry .whl), ARGS go to
#                                          # benchmarks.gpu, e.g. --steps 200 or --skip-tests
#
# With the device tool: run(command="bash benchmarks/gpu_check.sh", carry=[".whl"],
# timeout_s=540). Results: benchmarks/results/gpu.md/.json, also copied to $OUT with the log.
set -u -o pipefail
cd "$(dirname "$0")/.."

WHEELS=(array-api-compat==1.16.0 array-api-extra==0.11.5 array-api-strict==2.6.1)

if [ "${1:-}" = prepare ]; then
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "${WHEELS[@]}"
    exit $?
fi

if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="$PWD:/tmp/site"
else
    export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
OUT_DIR="${OUT:-/tmp/gpu_check}"
mkdir -p "$OUT_DIR"
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
python3 -c "import torch, array_api_compat; print('torch', torch.__version__, 'cuda',
torch.cuda.is_available())" || exit 1

# 200 s for the tests (inside gpu.py), the timings after: 480 s in all
timeout 480 python3 -m benchmarks.gpu "$@" 2>&1 | tee "$OUT_DIR/gpu_log.txt"
status=$?
cp benchmarks/results/gpu.md benchmarks/results/gpu.json "$OUT_DIR"/ 2>/dev/null
exit $status
