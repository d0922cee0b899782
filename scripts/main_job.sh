#!/usr/bin/env bash
# The README's main job: set up .venv (first run only), train a short real DDNMF run on
# Fashion-MNIST (offline: Debian's IDX files), score it and export it for TensorFlow Serving.
# Extra arguments go to train.run, e.g. `bash scripts/main_job.sh --epochs 20`.
source "$(dirname "$0")/env.sh"
python -m train.run --dataset fashion_mnist --epochs 5 --eval-every 1 --quiet \
  --run-dir "runs/fashion_mnist-$(date +%Y%m%d-%H%M%S)" --export-dir models/ddnmf "$@"
