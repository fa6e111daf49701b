#!/bin/sh
# A second, shorter device call (see on_gpu.sh): the GPU tests (nvJPEG against the CPU decoders), the GPU-decoded
# vs CPU-decoded vectors end to end, and where the driver's time goes in one `lookalike --device cuda index`.
set -u
COUNT=${1:-1000}
OUT=${OUT:-/tmp/on-gpu-out}
mkdir -p "$OUT"
export PYTHONPATH=/tmp/site:$PWD/src:$PWD PYTHONUNBUFFERED=1
WORK=/tmp/lookalike-gpu-bench
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/indexer/test_device_jpeg.py tests/indexer/test_gpu.py 2>&1 | tail -15
python3 -c "from pathlib import Path; from benchmarks.gpu_throughput import corpus; corpus(Path('$WORK/photos-$COUNT'), $COUNT)"
timeout 150 python3 -m benchmarks.gpu_throughput --work "$WORK" --count "$COUNT" --no-forward --timeout 50 \
  --models efficientnet_lite0 2>&1 | tee "$OUT/gpu_throughput_check.log"
timed() { python3 -c "import subprocess, sys, time; t = time.perf_counter(); subprocess.run(sys.argv[1:], \
  stdout=subprocess.DEVNULL); print(f'start-up: {time.perf_counter() - t:.2f} s for', ' '.join(sys.argv[1:]))" "$@"; }
timed python3 -m lookalike.cli.main --help
timed python3 -c "import torch; torch.zeros(1, device='cuda')"
timeout 90 python3 -m cProfile -o "$OUT/index.prof" -m lookalike.cli.main --home /tmp/prof-home --device cuda \
  index "$WORK/photos-$COUNT" --batch-size 128 2>&1 | tail -2
python3 -c "import pstats; p = pstats.Stats('$OUT/index.prof'); p.sort_stats('cumulative').print_stats(35); p.sort_stats('tottime').print_stats(20)" \
  > "$OUT/index_profile.txt" 2>&1
head -c 6000 "$OUT/index_profile.txt"
