"""TrainConfig: the settings of one training run, and the shape rounding they imply."""

import dataclasses
import math
from typing import Optional

import numpy as np

from laco_tf import options
from laco_tf.data import pipeline

# Sequence lengths are padded to a multiple of this under XLA (one compilation per shape).
XLA_PAD_MULTIPLE = 32
# ... and of this under length bucketing without XLA: oneDNN keeps kernels for every shape
# it has run, and a bucketed epoch has a new length almost every batch (RSS grew by
# about 9 MiB per new length, BENCHMARKS.md); 16 bounds the shapes at ~25 for 400 positions
# for about 3% more padded positions. Micro-batches (each its own length) are rounded too.
BUCKET_PAD_MULTIPLE = 16
_DEFAULT = options.DEFAULTS


@dataclasses.dataclass
class TrainConfig:
  """Training settings. A field named as an option (laco_tf/options.py) means what the
  option means and takes its default; `from_options` copies them from a RunOptions."""
  output_dir: str
  train_file: str
  dev_file: str
  num_train_examples: int
  num_labels: int
  task: str = _DEFAULT["task"]
  alpha: float = _DEFAULT["alpha"]
  train_batch_size: int = _DEFAULT["train_batch_size"]
  eval_batch_size: int = _DEFAULT["eval_batch_size"]
  learning_rate: float = _DEFAULT["learning_rate"]
  head_learning_rate: float = _DEFAULT["head_learning_rate"]
  warmup_proportion: float = _DEFAULT["warmup_proportion"]
  weight_decay: float = _DEFAULT["weight_decay"]
  layer_decay: float = _DEFAULT["layer_decay"]
  mlc_loss: str = _DEFAULT["mlc_loss"]
  ema_decay: float = _DEFAULT["ema_decay"]
  label_counts: tuple = ()  # training documents per label, for mlc_loss="db"
  label_names: tuple = ()  # for TensorBoard's per-label PR curves (default: indices)
  hparams: dict = dataclasses.field(default_factory=dict)  # for TensorBoard's HParams
  hparam_types: dict = dataclasses.field(default_factory=dict)  # name -> bool/int/float/str
  num_train_epochs: float = _DEFAULT["num_train_epochs"]
  max_steps: int = _DEFAULT["max_steps"]
  eval_every_steps: int = _DEFAULT["eval_every_steps"]
  save_checkpoints_steps: int = _DEFAULT["save_checkpoints_steps"]
  early_stopping_patience: int = _DEFAULT["early_stopping_patience"]
  early_stopping_metric: str = _DEFAULT["early_stopping_metric"]
  threshold: float = _DEFAULT["threshold"]
  clip_norm: float = 1.0
  seed: int = _DEFAULT["seed"]
  precision: str = "fp32"  # resolved: never "auto"
  jit_compile: bool = _DEFAULT["jit_compile"]
  steps_per_loop: int = _DEFAULT["steps_per_loop"]
  length_bucketing: bool = _DEFAULT["length_bucketing"]
  microbatch_size: int = _DEFAULT["microbatch_size"]
  max_seq_length: int = 0  # caps XLA's rounded-up lengths; 0: no cap
  # Set on a worker other than the chief of a multi-worker run: where its own checkpoint
  # copies go (it reads the chief's in output_dir and writes no history or logs).
  scratch_dir: Optional[str] = None
  aux: pipeline.AuxSampling = dataclasses.field(default_factory=pipeline.AuxSampling)
  # --slot_negatives=shortlist: [training documents, K] first-stage candidates of each
  # training document, best first (modeling/shortlist.py); None: uniform negatives.
  slot_candidates: Optional[np.ndarray] = None

  @classmethod
  def from_options(cls, opts, **settings) -> "TrainConfig":
    """The options' values of the fields named as options, then `settings` (the fields
    the run derives, and resolved values such as a concrete precision)."""
    named = {f.name: getattr(opts, f.name) for f in dataclasses.fields(cls)
             if f.name in options.DEFAULTS and f.name not in settings}
    return cls(**named, **settings)

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
