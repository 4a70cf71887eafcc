"""Where a training run reports (our extension): TensorBoard, history.jsonl, the progress
display on stderr and one stdout line per dev evaluation.

A resumed run first drops what was logged after its checkpoint (`history.py`), so that
each step is logged once; its training time counts on from the kept records.
"""

import json
import os
import time

import numpy as np
import tensorflow as tf

from laco_tf import progress as progress_lib
from laco_tf import results, run_dir
from laco_tf.training import tensorboard_logs
from laco_tf.training.history import (HISTORY, read_history, truncate_event_logs,
                                      truncate_history)
from laco_tf.training.train_config import TrainConfig


class RunLog:
  """The logs of one run; only the chief writes files (other workers' writers do nothing)."""

  def __init__(self, config: TrainConfig, chief: bool, schedules: dict):
    self.config, self.chief, self._schedules = config, chief, schedules
    self._prior_seconds, self._t0 = 0.0, time.time()
    self._writers, self._progress = None, None

  def kept_history(self, start: int) -> list:
    """The history records up to step `start` (the chief drops later ones from the file)."""
    cfg = self.config
    return (truncate_history(cfg.output_dir, start) if self.chief else
            [r for r in read_history(cfg.output_dir) if r["step"] <= start])

  def open(self, start: int, kept: list) -> None:
    """Opens the logs at step `start`, after `kept` (`kept_history`)."""
    cfg = self.config
    logs = run_dir.log_dir(cfg.output_dir)
    if self.chief:
      truncate_event_logs(logs, start)
    # Time already spent on the kept checkpoints counts: a resumed run reports its total.
    self._prior_seconds = float(kept[-1].get("train_seconds", 0.0)) if kept else 0.0
    self._t0 = time.time()
    self._writers = {s: (tf.summary.create_file_writer(os.path.join(logs, s))
                         if self.chief else tf.summary.create_noop_writer())
                     for s in ("train", "dev")}
    if cfg.hparams and self.chief:
      tensorboard_logs.write_hparams(logs, cfg.hparams, cfg.hparam_types)
    self._progress = progress_lib.progress_bar(cfg.total_steps, unit_name="step")
    self._progress.update(start)

  def seconds(self) -> float:
    """Training time so far, summed over resumes."""
    return self._prior_seconds + time.time() - self._t0

  def train_step(self, step: int, terms: dict, grad_norm: float) -> None:
    with self._writers["train"].as_default(step=step):
      for k, v in terms.items():
        tf.summary.scalar(f"loss/{k}", v)
      tf.summary.scalar("gradient_norm", grad_norm)
      for name, schedule in self._schedules.items():
        tf.summary.scalar(f"learning_rate/{name}", schedule(step - 1))

  def progress(self, step: int, running: dict) -> None:
    # As Keras shows it: the mean loss since the last evaluation, not one noisy step's.
    self._progress.update(step, [("loss", float(np.mean(running["total"])))])

  def dev_scores(self, step: int, dev: dict, probs: np.ndarray, gold: np.ndarray,
                 dev_loss: dict, best: dict) -> None:
    """TensorBoard's dev scalars, PR curves and the best checkpoint's scores (`best`)."""
    names = self.config.label_names or [str(j) for j in range(self.config.num_labels)]
    tensorboard_logs.write_dev_evaluation(self._writers["dev"], step, dev, gold, probs, names,
                                          dev_loss, best)

  def evaluation(self, step: int, running: dict, dev: dict, dev_loss: dict,
                 improved: bool) -> None:
    """history.jsonl's record of the evaluation at `step`, and its stdout line."""
    if not self.chief:
      return
    cfg = self.config
    record = {"step": step, "train_loss": {k: float(np.mean(v)) for k, v in running.items()},
              "dev": dev, "dev_loss": dev_loss, "best": bool(improved),
              "threshold": cfg.threshold, "train_seconds": self.seconds()}
    with results.open_to_append(os.path.join(cfg.output_dir, HISTORY)) as f:
      f.write(json.dumps(record) + "\n")
    metric = cfg.early_stopping_metric
    chosen = "" if metric in ("micro_f1", "macro_f1") else f" {metric} {dev[metric]:.4f}"
    print(f"step {step}: dev micro-F1 {dev['micro_f1']:.4f} macro-F1 {dev['macro_f1']:.4f} "
          f"hamming {dev['hamming_loss']:.4f}{chosen}" + (" (best)" if improved else ""))
