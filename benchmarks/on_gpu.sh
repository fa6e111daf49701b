#!/bin/sh
# The GPU figures of RESULTS.md, on a machine lent through the workplace's device tool: the Ray engine with one
# embed actor per GPU (benchmarks.ray_scale), then indexing on the GPU (benchmarks.gpu_throughput), on one corpus
# of distinct 1600 px JPEG photos. lookalike's dependencies that the machine lacks travel as xz'd site-packages
# (.whl/*.tar.xz, unpacked into /tmp/site by the call that carries them). Logs go to $OUT.
#
#   sh benchmarks/on_gpu.sh [COUNT]
set -u
COUNT=${1:-1000}
OUT=${OUT:-/tmp/on-gpu-out}
mkdir -p "$OUT" /tmp/site
export PYTHONPATH=/tmp/site:$PWD/src:$PWD PYTHONUNBUFFERED=1
nvidia-smi -L
WORK=/tmp/lookalike-gpu-bench
python3 -c "from pathlib import Path; from benchmarks.gpu_throughput import corpus; corpus(Path('$WORK/photos-$COUNT'), $COUNT)"
timeout 270 python3 -m benchmarks.ray_scale --photos "$WORK/photos-$COUNT" --actors 1 --work /tmp/ray-scale 2>&1 \
  | grep -v -E "WARNING|network_util|core_worker.cc" | tee "$OUT/ray_scale.log"
timeout 270 python3 -m benchmarks.gpu_throughput --work "$WORK" --count "$COUNT" --seconds 2 --timeout 50 2>&1 \
  | tee "$OUT/gpu_throughput.log"
