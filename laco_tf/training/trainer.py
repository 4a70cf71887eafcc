"""The training loop (Model Garden's "trainer"): steps, dev evaluation, early stopping,
resume and preemption, composed of `train_step.TrainStep` (the step maths under any
`tf.distribute` strategy), `run_checkpoints.RunCheckpoints` (checkpoints/ and best/) and
`run_log.RunLog` (TensorBoard, history.jsonl and progress).

Speed (our extensions, none of which changes the model): `precision` (see
`precision.py`), `jit_compile` (XLA for the forward/backward pass and prediction; batches
are padded to a multiple of `train_config.XLA_PAD_MULTIPLE` so few shapes compile),
`steps_per_loop` (N steps inside one `tf.function` call, as Orbit's `steps_per_loop`;
evaluations and checkpoints stay on their step boundaries), `length_bucketing`
(`pipeline.py`) and `microbatch_size` (`microbatches.py`).

Dev evaluation at --threshold chooses the best checkpoint by `early_stopping_metric`
(micro-F1, as the paper's section 4.4, by default). A rerun of the same command resumes
from the latest checkpoint, at the same place in the same epoch's shuffled order, with the
same dropout masks (`layers/stateless_dropout.py`).

Preemption: SIGTERM (what cloud schedulers send) or SIGINT is noted by a handler
(`preemption.py`) and acted on at the next step boundary (after the running
`steps_per_loop` call): a checkpoint of the current step is saved and `PreemptedError` is
raised. Between dev batches it stops the evaluation; the step it judges is then not saved,
and the rerun retrains it from the previous checkpoint. TF's
`PreemptionCheckpointHandler` does this for multi-worker jobs, but it owns the step loop
and the checkpoint numbering; a single process only needs the handler.
"""

import math
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from laco_tf.data import pipeline
from laco_tf.errors import InputError, NonFiniteError
from laco_tf.training import distribution, evaluation, metrics, preemption, tensorboard_logs
from laco_tf.training.run_checkpoints import RunCheckpoints
from laco_tf.training.run_log import RunLog
from laco_tf.training.train_config import TrainConfig
from laco_tf.training.train_step import GRAD_NORM, SHAPE_KEY, TrainStep


class Trainer:
  """Trains one model in one output directory, and predicts with it."""

  def __init__(self, model, strategy, config: TrainConfig, gold_dev: np.ndarray):
    self.model, self.strategy, self.config = model, strategy, config
    self.gold_dev = gold_dev
    self.steps = TrainStep(model, strategy, config)
    self.step = self.steps.step
    with strategy.scope():
      self.best_score = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_f1")
      self.best_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_step")
    self.checkpoints = RunCheckpoints(self.steps, self.best_score, self.best_step)
    self._chief = self.checkpoints.chief
    self.log = RunLog(config, self._chief, self.steps.schedules)
    self._best_dev = None  # the best checkpoint's dev scores, once known
    self._shapes_seen = set()
    self._signals = None  # the run's preemption.StopSignals while training
    # Across workers, each predicts dev whole on its own devices (one replica): sharding it
    # would need every worker's predictions gathered; the chief's score is then shared.
    self._eval_strategy = (tf.distribute.get_strategy()
                           if distribution.is_multi_worker(strategy) else strategy)
    self._predict = evaluation.make_predict_fn(model, self._eval_strategy, config.jit_compile)

  # -- evaluation ---------------------------------------------------------------------------

  def predict(self, path: str, progress_total: Optional[int] = None,
              stop=None, progress_title: str = "") -> Optional[np.ndarray]:
    """[N, n] probabilities of the records in `path`; progress on stderr when
    `progress_total` is given; None when `stop()` says to stop (asked between batches)."""
    # Length order always: it changes no prediction (outputs return to record order).
    ds = pipeline.make_dataset(path, self.config.num_labels, self.config.eval_batch_size,
                               training=False, bucketing=True,
                               pad_to_multiple=self.config.pad_to_multiple,
                               max_length=self.config.max_seq_length)
    return evaluation.predict_probabilities(self._predict, self._eval_strategy, ds,
                                            self.config.num_labels, progress_total, stop,
                                            progress_title)

  def evaluate_dev(self):
    """(scores at --threshold with P@k, R@k and nDCG@k, probabilities) of dev."""
    signals = self._signals
    probs = self.predict(self.config.dev_file, progress_total=len(self.gold_dev),
                         stop=signals and (lambda: signals.received is not None),
                         progress_title="dev: ")
    # A signal stops the evaluation between batches: the step is not saved (the rerun
    # retrains it from the previous checkpoint, then evaluates it).
    if distribution.any_worker(self.strategy, probs is None):
      step = int(self.step.numpy())
      raise signals.error(f"step {step}: stopped by {signals.name} during the dev evaluation "
                          f"of step {step}, before saving it; " + self.checkpoints.kept() +
                          "; rerun the same command to continue from them")
    # Decided together: a worker that alone raised would leave the others waiting.
    if distribution.any_worker(self.strategy, not np.all(np.isfinite(probs))):
      raise NonFiniteError(f"step {int(self.step.numpy())}: non-finite dev probabilities; "
                           + self.checkpoints.kept())
    scores = metrics.multilabel_metrics(self.gold_dev, probs > self.config.threshold)
    scores.update(metrics.ranking_metrics(self.gold_dev, probs))
    return scores, probs

  def restore_best(self) -> str:
    """Puts the best checkpoint's weights in the model (`RunCheckpoints.restore_best`)."""
    return self.checkpoints.restore_best()

  # -- the loop -----------------------------------------------------------------------------

  def train(self) -> dict:
    """Trains until total steps or early stopping; returns a summary dict.

    Raises PreemptedError after saving the current step when SIGTERM or SIGINT arrives
    (`preemption.py`)."""
    with preemption.deferred() as signals:
      self._signals = signals
      try:
        return self._train()
      finally:
        self._signals = None

  def _stopped_early(self) -> bool:
    return (self.config.early_stopping_patience > 0 and self.best_score.numpy() >= 0 and
            int(self.step.numpy()) - int(self.best_step.numpy()) >=
            self.config.early_stopping_patience)

  def _stop_if_terminated(self, step: int) -> None:
    # A SIGTERM to any worker stops them all at the same step (each saves it).
    signals = self._signals
    if not distribution.any_worker(self.strategy, signals.received is not None):
      return
    if self.checkpoints.saved_step != step:
      self.checkpoints.save_latest(step)
    raise signals.error(
        f"step {step}: stopped by {signals.name} after saving a checkpoint of step {step} in "
        f"{os.path.join(self.config.output_dir, 'checkpoints')}; rerun the same command to "
        "continue from it")

  def _check_threshold(self, kept: list, start: int) -> None:
    """Refuses to go on training under another --threshold than the dev scores so far
    (history.jsonl records each one's), which judged best/ and early stopping: the two
    rules' scores do not compare. Once training has finished the threshold is free."""
    judged = {r["threshold"] for r in kept if "threshold" in r}
    if (not judged or judged == {self.config.threshold} or
        start >= self.config.total_steps or self._stopped_early()):
      return
    previous = kept[-1].get("threshold", min(judged))
    raise InputError(
        f"--threshold={self.config.threshold}: the run in {self.config.output_dir} judged "
        f"its dev scores (best/, early stopping) at --threshold={previous} and has not "
        f"finished training (step {start} of {self.config.total_steps}); pass "
        f"--threshold={previous} to finish it (afterwards --threshold may change: it then "
        "only changes evaluation, prediction and export)")

  def _resume(self) -> int:
    """Restores the latest checkpoint and opens the logs at its step; returns the step."""
    cfg = self.config
    start = self.checkpoints.restore_latest()
    self.checkpoints.reconcile_best()
    if distribution.any_worker(self.strategy,
                               distribution.chief_value(self.strategy, start) != start):
      raise InputError(f"step {start}: the workers resumed from different checkpoints of "
                       f"{cfg.output_dir}; every worker must see the chief's files as they "
                       "are (a shared file system without stale caches)")
    kept = self.log.kept_history(start)
    self._check_threshold(kept, start)
    self.log.open(start, kept)
    # The best checkpoint's dev scores, for TensorBoard's best/ tags (HParams dashboard).
    self._best_dev = next((r["dev"] for r in reversed(kept) if r.get("best") and
                           r["step"] == int(self.best_step.numpy())), None)
    return start

  def _epoch_iterator(self, epoch: int, skip: int):
    """The distributed training batches of `epoch`, after its first `skip`."""
    cfg = self.config
    ds = pipeline.make_dataset(cfg.train_file, cfg.num_labels, cfg.train_batch_size,
                               training=True, seed=cfg.seed, epoch=epoch, aux=cfg.aux,
                               bucketing=cfg.length_bucketing,
                               pad_to_multiple=cfg.pad_to_multiple,
                               max_length=cfg.max_seq_length,
                               slot_candidates=cfg.slot_candidates).skip(skip)
    if distribution.is_multi_worker(self.strategy):
      # Each worker reads the whole (single) file and keeps its slice of each global
      # batch: global batch k is the single-process run's batch k.
      options = tf.data.Options()
      options.experimental_distribute.auto_shard_policy = (
          tf.data.experimental.AutoShardPolicy.DATA)
      ds = ds.with_options(options)
    return iter(self.strategy.experimental_distribute_dataset(ds))

  def _steps_to_take(self, step: int, epoch_end: int) -> int:
    """Steps of the next `steps_per_loop` call: it ends at the next evaluation or
    checkpoint, the epoch's end, or after steps_per_loop steps."""
    cfg = self.config
    count = min(cfg.steps_per_loop, _next_multiple(step, cfg.eval_interval) - step,
                epoch_end - step)
    if cfg.save_checkpoints_steps > 0:
      count = min(count, _next_multiple(step, cfg.save_checkpoints_steps) - step)
    return count

  def _record_steps(self, step: int, per_step: dict, running: dict) -> int:
    """Logs the steps after `step` that one call took (refusing a non-finite one); returns
    the step reached."""
    self._shapes_seen.update(map(tuple, per_step.pop(SHAPE_KEY).tolist()))
    for i in range(len(per_step[GRAD_NORM])):
      step += 1
      terms = {k: float(v[i]) for k, v in per_step.items()}
      norm = terms.pop(GRAD_NORM)
      if not all(map(math.isfinite, [norm, *terms.values()])):
        raise NonFiniteError(
            f"step {step}: training diverged (" + ", ".join(
                f"{k} loss {v:.4g}" for k, v in terms.items()) + f", gradient norm "
            f"{norm:.4g}); stopped without saving, " + self.checkpoints.kept() +
            "; lower --learning_rate / --head_learning_rate")
      for k, v in terms.items():
        running.setdefault(k, []).append(v)
      self.log.train_step(step, terms, norm)
    return step

  def _train(self) -> dict:
    cfg = self.config
    step = start = self._resume()
    running = {}
    while step < cfg.total_steps and not self._stopped_early():
      epoch, skip = divmod(step, cfg.steps_per_epoch)
      iterator = self._epoch_iterator(epoch, skip)
      epoch_end = min((epoch + 1) * cfg.steps_per_epoch, cfg.total_steps)
      while step < epoch_end:
        per_step = {k: v.numpy() for k, v in
                    self.steps.run(iterator, self._steps_to_take(step, epoch_end)).items()}
        step = self._record_steps(step, per_step, running)
        self.log.progress(step, running)
        if step % cfg.eval_interval == 0 or step == cfg.total_steps:
          self._evaluate_and_save(step, running)
          running = {}
          if self._stopped_early():
            print(f"Early stopping at step {step}: no dev {cfg.early_stopping_metric} gain for "
                  f"{step - int(self.best_step.numpy())} steps")
            break
        elif cfg.save_checkpoints_steps > 0 and step % cfg.save_checkpoints_steps == 0:
          self.checkpoints.save_latest(step)
        self._stop_if_terminated(step)
    if step == start and self.checkpoints.restored is not None:
      # Nothing trained: the Adam slots, created by the first update, were never needed.
      # Without this, TF warns about each unrestored slot value (hundreds of lines).
      self.checkpoints.restored.expect_partial()
    return self._summary(step, start)

  def _summary(self, step: int, start: int) -> dict:
    summary = {"steps": step, "trained_steps": step - start, "seconds": self.log.seconds(),
               "best_step": int(self.best_step.numpy()),
               f"best_dev_{self.config.early_stopping_metric}": float(self.best_score.numpy()),
               # Documents per replica: the global batch split over the replicas.
               "largest_replica_batch": max((s[0] for s in self._shapes_seen), default=0),
               # The distinct padded lengths this invocation trained on (bounded under
               # XLA and bucketing by the multiples above).
               "batch_lengths": sorted({int(s[1]) for s in self._shapes_seen})}
    if self.config.jit_compile:
      # XLA compiles the step once per distinct input shape.
      summary["xla_batch_shapes"] = len(self._shapes_seen)
      print(f"XLA: the training step compiled for {len(self._shapes_seen)} batch shape(s)")
    return summary

  def _evaluate_and_save(self, step: int, running: dict) -> None:
    # Dev judges, and "best" keeps, the averaged weights (with --ema_decay); training goes
    # on from its own, which the latest checkpoint keeps beside the average.
    with self.steps.averaged_weights():
      dev, dev_loss, improved = self._judge_dev(step)
    # checkpoints/ first, then best/: a kill between the two leaves best/ behind the
    # trajectory (repaired on resume, `reconcile_best`), never ahead of it.
    self.checkpoints.save_latest(step)
    if improved:
      self.checkpoints.save_best(step)
    self.log.evaluation(step, running, dev, dev_loss, improved)

  def _judge_dev(self, step: int):
    """Scores the model's weights on dev and keeps them as "best" if they are; returns
    (dev scores, dev losses, whether they improved).

    The dev loss is eq. 4 over every label, logged when training minimises it (with
    --label_slots, training's term covers only the carried labels).
    """
    dev, probs = self.evaluate_dev()
    dev_loss = ({"mlc": tensorboard_logs.dev_bce(self.gold_dev, probs)}
                if self.config.mlc_loss == "bce" else {})
    # A score of 0 (no correct label at all, e.g. all-negative collapse) is never "best".
    # Every worker takes the chief's decision, so that all save and stop at the same step.
    score = distribution.chief_value(self.strategy, dev[self.config.early_stopping_metric])
    improved = score > max(self.best_score.numpy(), 0.0)
    if improved:
      self.best_score.assign(score)
      self.best_step.assign(step)
      self._best_dev = dev
    best = ({**self._best_dev, "step": int(self.best_step.numpy())}
            if self._best_dev is not None else {})
    self.log.dev_scores(step, dev, probs, self.gold_dev, dev_loss, best)
    return dev, dev_loss, improved


def _next_multiple(step: int, interval: int) -> int:
  return (step // interval + 1) * interval
