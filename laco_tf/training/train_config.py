"""TrainConfig: the settings of one training run, and the shape rounding they imply."""

import dataclasses
import math
from typing import Optional

import numpy as np

from laco_tf.data import pipeline

# Sequence lengths are padded to a multiple of this under XLA (one compilation per shape).
XLA_PAD_MULTIPLE = 32
# ... and of this under length bucketing without XLA: oneDNN keeps kernels for every shape
# it has run, and a bucketed epoch has a new length almost every batch (RSS grew by
# about 9 MiB per new length, BENCHMARKS.md); 16 bounds the shapes at ~25 for 400 positions
# for about 3% more padded positions. Micro-batches (each its own length) are rounded too.
BUCKET_PAD_MULTIPLE = 16


@dataclasses.dataclass
class TrainConfig:
  """Training settings; see flags.py for each one's meaning and default."""
  output_dir: str
  train_file: str
  dev_file: str
  num_train_examples: int
  num_labels: int
  task: str = "clcp"
  alpha: float = 0.5
  train_batch_size: int = 16
  eval_batch_size: int = 64
  learning_rate: float = 5e-5
  head_learning_rate: float = 1e-3
  warmup_proportion: float = 0.0
  weight_decay: float = 0.0
  layer_decay: float = 1.0
  mlc_loss: str = "bce"
  ema_decay: float = 0.999  # > 0: dev and "best" use an average of the weights; 0: off
  label_counts: tuple = ()  # training documents per label, for mlc_loss="db"
  label_names: tuple = ()  # for TensorBoard's per-label PR curves (default: indices)
  hparams: dict = dataclasses.field(default_factory=dict)  # for TensorBoard's HParams
  hparam_types: dict = dataclasses.field(default_factory=dict)  # name -> bool/int/float/str
  num_train_epochs: float = 3.0
  max_steps: int = 0
  eval_every_steps: int = 0
  save_checkpoints_steps: int = 0  # 0: the latest checkpoint is saved at evaluations only
  early_stopping_patience: int = 0  # 0: never stop early
  early_stopping_metric: str = "micro_f1"  # the dev score that chooses best/ (SELECTION_METRICS)
  threshold: float = 0.5
  clip_norm: float = 1.0
  seed: int = 0
  precision: str = "fp32"
  jit_compile: bool = False
  steps_per_loop: int = 1
  length_bucketing: bool = True
  microbatch_size: int = 0  # 0: each replica's batch runs whole
  max_seq_length: int = 0  # caps XLA's rounded-up lengths; 0: no cap
  # Set on a worker other than the chief of a multi-worker run: where its own checkpoint
  # copies go (it reads the chief's in output_dir and writes no history or logs).
  scratch_dir: Optional[str] = None
  aux: pipeline.AuxSampling = dataclasses.field(default_factory=pipeline.AuxSampling)
  # --slot_negatives=shortlist: [training documents, K] first-stage candidates of each
  # training document, best first (modeling/shortlist.py); None: uniform negatives.
  slot_candidates: Optional[np.ndarray] = None

  @property
  def steps_per_epoch(self) -> int:
    return max(1, math.ceil(self.num_train_examples / self.train_batch_size))

  @property
  def total_steps(self) -> int:
    if self.max_steps > 0:
      return self.max_steps
    return max(1, int(round(self.num_train_epochs * self.steps_per_epoch)))

  @property
  def eval_interval(self) -> int:
    return self.eval_every_steps if self.eval_every_steps > 0 else self.steps_per_epoch

  @property
  def pad_to_multiple(self) -> int:
    if self.jit_compile:
      return XLA_PAD_MULTIPLE
    return BUCKET_PAD_MULTIPLE if self.length_bucketing else 1
