#!/usr/bin/env bash
# The GPU measurements of the throughput work, as one prepared run for a lent CUDA machine
# (about 8 minutes on one GPU); nothing here runs without one.  Logs go to $OUT (default
# /tmp/gpu_check): the CUDA tests, bench_step --peers on CUDA with torch.compile's default mode
# and with mode="reduce-overhead" (CUDA graphs), and the seconds of two MNIST epochs of
# specs/mnist_m2.gvae on the device (when the MNIST files are under $GRAPHVAE_DATA/mnist or
# shared/data/mnist), then the same two epochs under torchrun with one process (DDP over NCCL,
# world size 1: the distributed path on CUDA) and its figures beside the plain run's.
#
#     OUT=/tmp/gpu_check bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/gpu_check}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python -c "import torch; assert torch.cuda.is_available(), 'CUDA is not available'; \
print('torch', torch.__version__, torch.cuda.get_device_name())" 2>&1 | tee "$out/env.txt" || exit 2
python -m pip install -q --no-deps -e . >/dev/null 2>&1 || echo "warning: pip install -e . failed; using the tree as is"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
timeout 120 python -m pytest -q -p no:cacheprovider -k "cuda or device" tests/ 2>&1 | tee "$out/tests.txt" | tail -3
for mode in default reduce-overhead; do
  timeout 170 python benchmarks/bench_step.py --peers --device cuda --batches 16,64,256 --repeats 5 \
    --compile-mode "$mode" 2>&1 | tee "$out/peers_cuda_$mode.txt" | tail -12
done
data="${GRAPHVAE_DATA:-shared/data}"
if [ -f "$data/mnist/train-images-idx3-ubyte.gz" ]; then
  rm -rf /tmp/gpu_check_mnist
  GRAPHVAE_DATA="$data" timeout 150 python -m graphvae train specs/mnist_m2.gvae --device cuda --epochs 2 \
    --out /tmp/gpu_check_mnist --no-progress 2>&1 | tee "$out/mnist_epochs.txt" | tail -4
  cp /tmp/gpu_check_mnist/metrics.jsonl "$out/mnist_metrics.jsonl" 2>/dev/null
  rm -rf /tmp/gpu_check_ddp
  GRAPHVAE_DATA="$data" timeout 150 torchrun --standalone --nproc_per_node 1 -m graphvae train specs/mnist_m2.gvae \
    --device cuda --epochs 2 --out /tmp/gpu_check_ddp --no-progress 2>&1 | tee "$out/mnist_ddp1.txt" | tail -4
  cp /tmp/gpu_check_ddp/metrics.jsonl "$out/mnist_ddp1_metrics.jsonl" 2>/dev/null
else
  echo "no MNIST files under $data/mnist: the epoch timing is skipped" | tee "$out/mnist_epochs.txt"
fi
