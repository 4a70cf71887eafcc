"""Training loop: strategy-correct steps, dev evaluation, early stopping, resume.

Under any `tf.distribute` strategy: variables are created in its scope by the caller,
each replica's loss is normalised by the global batch (`losses.reduce_per_example`),
gradients are summed across replicas before clipping, and the global batch is split by
`experimental_distribute_dataset`.

Speed (our extensions, none of which changes the model): `precision` (see
`precision.py`), `jit_compile` (XLA for the forward/backward pass and prediction;
batches are padded to a multiple of `XLA_PAD_MULTIPLE` so few shapes compile),
`steps_per_loop` (N steps inside one `tf.function` call, as Orbit's `steps_per_loop`;
evaluations and checkpoints stay on their step boundaries), `length_bucketing`
(`pipeline.py`) and `microbatch_size` (`microbatches.py`).

Checkpoints: ``OUTPUT_DIR/checkpoints`` (latest, for resuming: model, optimisers,
step, best score, the weight average of `ema_decay`) and ``OUTPUT_DIR/best`` (weights at
the best dev score of `early_stopping_metric`, micro-F1 by default; with `ema_decay`, the
averaged weights, `weight_averaging.py`). A rerun
of the same command resumes from the latest checkpoint, at the same place in the
same epoch's shuffled order, with the same dropout masks (`layers/stateless_dropout.py`).
A checkpoint that is gone or unreadable is refused, never silently replaced by training
from step 0, and a failed save leaves nothing behind (`checkpoint_files.py`).

Preemption: SIGTERM (what cloud schedulers send) or SIGINT is noted by a handler
(`preemption.py`) and acted on at the next step boundary (after the running
`steps_per_loop` call): a checkpoint of the current step is saved and `PreemptedError` is
raised. Between dev batches it stops the evaluation; the step it judges is then not saved,
and the rerun retrains it from the previous checkpoint. TF's
`PreemptionCheckpointHandler` does this for multi-worker jobs, but it owns the step loop
and the checkpoint numbering; a single process only needs the handler.

best/ is saved after checkpoints/, so that it never holds a step beyond the latest
checkpoint; a resume reconciles the two (`_reconcile_best`).
"""

import json
import math
import os
import time
from typing import Optional

import numpy as np
import tensorflow as tf

from laco_tf import results
from laco_tf import progress as progress_lib
from laco_tf.data import pipeline
from laco_tf.errors import InputError, NonFiniteError
from laco_tf.modeling import losses, precision
from laco_tf.training import (checkpoint_files, distribution, evaluation, metrics,
                              microbatches, optimization, preemption, tensorboard_logs,
                              weight_averaging)
from laco_tf.training.history import (HISTORY, read_history, truncate_event_logs,
                                      truncate_history)
# TrainConfig and the shape constants live in train_config.py; imported from here too.
from laco_tf.training.train_config import (BUCKET_PAD_MULTIPLE, XLA_PAD_MULTIPLE,  # noqa: F401
                                           TrainConfig)

SHAPE_KEY = "input_shape"
GRAD_NORM = "gradient_norm"  # global norm of a step's gradients, before clipping


class Trainer:
  """Owns the optimisers, checkpoints and logs of one model in one output directory."""

  def __init__(self, model, strategy, config: TrainConfig, gold_dev: np.ndarray):
    self.model, self.strategy, self.config = model, strategy, config
    self.gold_dev = gold_dev
    self._prior_seconds, self._t0 = 0.0, time.time()
    self._best_dev = None  # the best checkpoint's dev scores, once known
    self.weights = losses.task_weights(config.task, config.alpha)
    self._mlc_loss = losses.make_mlc_loss(config.mlc_loss, config.label_counts,
                                          config.num_train_examples)
    self.schedules = {
        name: optimization.make_schedule(lr, config.total_steps, config.warmup_proportion)
        for name, lr in (("encoder", config.learning_rate),
                         ("heads", config.head_learning_rate))}
    with strategy.scope():
      self.encoder_optimizer = optimization.make_optimizer(
          self.schedules["encoder"], "encoder_adam", config.weight_decay,
          model.encoder_variables(), config.layer_decay)
      self.head_optimizer = optimization.make_optimizer(
          self.schedules["heads"], "head_adam", config.weight_decay)
      # fp16: both get a dynamic loss scale. Clipping turns every gradient non-finite when
      # one is, so both see the same finiteness and their scales move in step: the
      # encoder's scales the loss, each unscales its own gradients. The checkpoint keeps
      # the inner optimisers, so any precision resumes any other; a resumed fp16 run
      # starts its loss scale afresh (it settles within a few steps).
      self._scaled = {"encoder": precision.wrap_optimizer(self.encoder_optimizer,
                                                          config.precision),
                      "heads": precision.wrap_optimizer(self.head_optimizer,
                                                        config.precision)}
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
      # The best dev score of --early_stopping_metric (named when micro-F1 was the only
      # one: checkpoints keep the name).
      self.best_f1 = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_f1")
      self.best_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_step")
      # --ema_decay: dev, the best checkpoint and everything after training read the average.
      self._averaged = model.encoder_variables() + model.head_variables()
      self.average = (weight_averaging.WeightAverage(self._averaged, config.ema_decay)
                      if config.ema_decay > 0 else None)
    # Dropout masks are a function of (seed, step): with the step in the checkpoint, a
    # resumed run draws what the uninterrupted one drew.
    model.set_dropout_step(self.step)
    self.checkpoint = tf.train.Checkpoint(
        model=model, encoder_optimizer=self.encoder_optimizer,
        head_optimizer=self.head_optimizer, step=self.step, best_f1=self.best_f1,
        best_step=self.best_step, **({"weight_average": self.average} if self.average else {}))
    # Every worker saves (TF's multi-worker pattern); only the chief's copies are kept.
    self._chief = config.scratch_dir is None
    write_root = config.output_dir if self._chief else config.scratch_dir
    # A failed save removes what it wrote (checkpoint_files.CheckpointManager).
    self.manager = checkpoint_files.CheckpointManager(
        self.checkpoint, os.path.join(write_root, "checkpoints"), max_to_keep=1)
    self.best_manager = checkpoint_files.CheckpointManager(
        tf.train.Checkpoint(model=model), os.path.join(write_root, "best"), max_to_keep=1)
    self._train_fn = None
    if config.microbatch_size > 0 and config.jit_compile:
      raise ValueError("micro-batches have lengths XLA cannot compile once; use one or the "
                       "other")
    if config.jit_compile:
      # The global counts are all-reduced outside the compiled function: a collective
      # inside it cannot reach the other replicas' devices.
      compiled = tf.function(self._loss_and_gradients, jit_compile=True)
      self._grad_fn = lambda batch: compiled(batch, self._counts(batch))
    else:
      self._grad_fn = (self._microbatched_loss_and_gradients if config.microbatch_size > 0
                       else self._loss_and_gradients)
    self._shapes_seen = set()
    self._saved_step = 0  # step of the latest checkpoint on disk (0: none)
    self._signals = None  # the run's preemption.StopSignals while training
    self._restored = None  # the restore status of the latest checkpoint, once restored
    # Across workers, each predicts dev whole on its own devices (one replica): sharding it
    # would need every worker's predictions gathered; the chief's score is then shared.
    self._eval_strategy = (tf.distribute.get_strategy()
                           if distribution.is_multi_worker(strategy) else strategy)
    self._predict = evaluation.make_predict_fn(model, self._eval_strategy, config.jit_compile)

  # -- one step ---------------------------------------------------------------------------

  def _loss_and_gradients(self, batch, counts=None):
    """Forward and backward pass of one replica (XLA-compiled under `jit_compile`).

    Each loss term is a sum over the batch's documents divided by the documents that
    contribute to it in the global batch, `counts[term]` when given (see `_counts`).
    """
    model = self.model
    counts = counts or {}
    with tf.GradientTape() as tape:
      out = model(batch, training=True)
      terms = {"mlc": losses.reduce_per_example(
          self._mlc_loss(batch["labels"], out["mlc_logits"]), count=counts.get("mlc"))}
      if self.weights["plcp"] > 0:
        terms["plcp"] = losses.reduce_per_example(
            losses.plcp_loss(batch["plcp_targets"], out["plcp_logits"]), batch["plcp_mask"],
            count=counts.get("plcp"))
      if self.weights["clcp"] > 0:
        terms["clcp"] = losses.reduce_per_example(
            losses.clcp_loss(batch["labels"], out["clcp_logits"], batch["clcp_given"]),
            batch["clcp_mask"], count=counts.get("clcp"))
      total = tf.add_n([self.weights[k] * v for k, v in terms.items()])
      scaled = (self._scaled["encoder"].get_scaled_loss(total)
                if self.config.precision == "fp16" else total)
    grads = tape.gradient(scaled, model.encoder_variables() + model.head_variables())
    terms["total"] = total
    return terms, grads

  def _counts(self, batch) -> dict:
    """Documents contributing to each loss term in the global batch."""
    counts = {"mlc": losses.global_count(tf.ones_like(batch["doc_length"]))}
    for term in ("plcp", "clcp"):
      if self.weights[term] > 0:
        counts[term] = losses.global_count(batch[f"{term}_mask"])
    return counts

  def _microbatched_loss_and_gradients(self, batch):
    """`_loss_and_gradients` of the batch, run in length-sorted micro-batches
    (`microbatches.py`)."""
    counts = self._counts(batch)
    return microbatches.run_in_microbatches(
        lambda chunk: self._loss_and_gradients(chunk, counts), batch,
        self.config.microbatch_size,
        self.model.encoder_variables() + self.model.head_variables(),
        self.model.set_dropout_microbatch, pad_to_multiple=BUCKET_PAD_MULTIPLE)

  def _replica_step(self, batch):
    cfg, model = self.config, self.model
    terms, grads = self._grad_fn(batch)
    groups = [(self._scaled["encoder"], model.encoder_variables()),
              (self._scaled["heads"], model.head_variables())]
    if cfg.precision == "fp16":
      size = len(groups[0][1])
      grads = (self._scaled["encoder"].get_unscaled_gradients(grads[:size]) +
               self._scaled["heads"].get_unscaled_gradients(grads[size:]))
    all_vars = [v for _, vs in groups for v in vs]
    # Variables the loss does not reach (e.g. BERT's unused pooler) get no update.
    used = [(g, v) for g, v in zip(grads, all_vars) if g is not None]
    ctx = tf.distribute.get_replica_context()
    summed = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [g for g, _ in used])
    clipped, norm = tf.clip_by_global_norm([_merge_rows(g) for g in summed], cfg.clip_norm)
    by_var = {id(v): g for (_, v), g in zip(used, clipped)}
    for optimizer, variables in groups:
      pairs = [(by_var[id(v)], v) for v in variables if id(v) in by_var]
      optimizer.apply_gradients(pairs, skip_gradients_aggregation=True)
    # The global norm of the summed gradients: the same on every replica. Under fp16 a
    # non-finite norm is a skipped step of the loss scale, not a failure.
    terms[GRAD_NORM] = (tf.where(tf.math.is_finite(norm), norm, 0.0)
                        if cfg.precision == "fp16" else norm)
    return terms

  def _train_steps(self, iterator, num_steps: int) -> dict:
    """Runs `num_steps` steps in one `tf.function` call.

    Returns each loss term per step ([num_steps]) and, under SHAPE_KEY, the [batch,
    length] input shape of each step's first replica ([num_steps, 2]).
    """
    if self._train_fn is None:
      keys = [k for k in ("mlc", "plcp", "clcp") if self.weights[k] > 0] + ["total", GRAD_NORM]

      def loop(iterator, num_steps):
        arrays = {k: tf.TensorArray(tf.float32, size=num_steps) for k in keys}
        shapes = tf.TensorArray(tf.int32, size=num_steps)
        for i in tf.range(num_steps):
          batch = next(iterator)
          self.step.assign_add(1)  # the step being taken, which seeds its dropout
          per_replica = self.strategy.run(self._replica_step, args=(batch,))
          if self.average is not None:
            self.average.update(self._averaged, self.step)
          # Loss terms are per-replica shares of the global mean; the norm is global.
          arrays = {k: arrays[k].write(i, self.strategy.reduce(
              tf.distribute.ReduceOp.MEAN if k == GRAD_NORM else tf.distribute.ReduceOp.SUM,
              per_replica[k], axis=None)) for k in keys}
          first = self.strategy.experimental_local_results(batch["input_ids"])[0]
          shapes = shapes.write(i, tf.shape(first))
        return {**{k: a.stack() for k, a in arrays.items()}, SHAPE_KEY: shapes.stack()}
      self._train_fn = tf.function(loop)
    return self._train_fn(iterator, tf.constant(num_steps, tf.int32))

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

  def _kept(self) -> str:
    return (f"the checkpoints on disk are those of step {self._saved_step}"
            if self._saved_step else "no checkpoint was saved")

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
                          f"of step {step}, before saving it; " + self._kept() +
                          "; rerun the same command to continue from them")
    # Decided together: a worker that alone raised would leave the others waiting.
    if distribution.any_worker(self.strategy, not np.all(np.isfinite(probs))):
      raise NonFiniteError(f"step {int(self.step.numpy())}: non-finite dev probabilities; "
                           + self._kept())
    scores = metrics.multilabel_metrics(self.gold_dev, probs > self.config.threshold)
    scores.update(metrics.ranking_metrics(self.gold_dev, probs))
    return scores, probs

  # -- the loop -----------------------------------------------------------------------------

  def _checkpoint_dirs(self):
    """(checkpoints/, best/) of the output directory, each with what to do when the
    checkpoint there is unreadable."""
    root = self.config.output_dir
    latest, best = os.path.join(root, "checkpoints"), os.path.join(root, "best")
    return ((latest, f"restore it from a copy, or delete {latest} to train again from "
                     "step 0"),
            (best, f"restore it from a copy, or delete {best} and {latest} to train again"))

  def restore_latest(self) -> int:
    """Restores the latest checkpoint (refusing one that is gone or unreadable, rather
    than training again from step 0); returns its step (0: none)."""
    (directory, remedy), (best, _) = self._checkpoint_dirs()
    if self._chief:
      checkpoint_files.remove_stale(directory)
      checkpoint_files.remove_stale(best)
    # Workers resume from the chief's checkpoint: theirs are deleted after each run.
    latest = checkpoint_files.latest(directory, remedy)
    if latest:
      self._restored = self.checkpoint.restore(latest).assert_existing_objects_matched()
      self._saved_step = int(self.step.numpy())
      print(f"Resumed from {latest} at step {int(self.step.numpy())}")
    return int(self.step.numpy())

  def restore_best(self) -> str:
    latest, best = self._checkpoint_dirs()
    path = checkpoint_files.latest(*best) or checkpoint_files.latest(*latest)
    if not path:
      raise InputError(f"--output_dir={self.config.output_dir} holds no trained model "
                       "(run with --do_train first)")
    if self.average is not None and os.path.dirname(path).endswith("checkpoints"):
      # No dev score was ever "best": the latest checkpoint's average stands in for it.
      tf.train.Checkpoint(model=self.model, weight_average=self.average).restore(
          path).expect_partial()
      self.average.swap(self._averaged)
    else:
      tf.train.Checkpoint(model=self.model).restore(path).expect_partial()
    return path

  def _stopped_early(self) -> bool:
    return (self.config.early_stopping_patience > 0 and self.best_f1.numpy() >= 0 and
            int(self.step.numpy()) - int(self.best_step.numpy()) >=
            self.config.early_stopping_patience)

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

  def _stop_if_terminated(self, step: int) -> None:
    # A SIGTERM to any worker stops them all at the same step (each saves it).
    signals = self._signals
    if not distribution.any_worker(self.strategy, signals.received is not None):
      return
    if self._saved_step != step:
      self.manager.save(checkpoint_number=step)
      self._saved_step = step
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

  def _train(self) -> dict:
    cfg = self.config
    start = self.restore_latest()
    self._reconcile_best()
    if distribution.any_worker(self.strategy,
                               distribution.chief_value(self.strategy, start) != start):
      raise InputError(f"step {start}: the workers resumed from different checkpoints of "
                       f"{cfg.output_dir}; every worker must see the chief's files as they "
                       "are (a shared file system without stale caches)")
    kept = (truncate_history(cfg.output_dir, start) if self._chief else
            [r for r in read_history(cfg.output_dir) if r["step"] <= start])
    self._check_threshold(kept, start)
    # The best checkpoint's dev scores, for TensorBoard's best/ tags (HParams dashboard).
    self._best_dev = next((r["dev"] for r in reversed(kept) if r.get("best") and
                           r["step"] == int(self.best_step.numpy())), None)
    if self._chief:
      truncate_event_logs(os.path.join(cfg.output_dir, "logs"), start)
    # Time already spent on the kept checkpoints counts: a resumed run reports its total.
    self._prior_seconds = float(kept[-1].get("train_seconds", 0.0)) if kept else 0.0
    writers = {s: (tf.summary.create_file_writer(os.path.join(cfg.output_dir, "logs", s))
                   if self._chief else tf.summary.create_noop_writer())
               for s in ("train", "dev")}
    if cfg.hparams and self._chief:
      tensorboard_logs.write_hparams(os.path.join(cfg.output_dir, "logs"), cfg.hparams,
                                     cfg.hparam_types)
    step, running = start, {}
    self._t0 = time.time()
    progress = progress_lib.progress_bar(cfg.total_steps, unit_name="step")
    progress.update(step)
    while step < cfg.total_steps and not self._stopped_early():
      epoch, skip = divmod(step, cfg.steps_per_epoch)
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
      iterator = iter(self.strategy.experimental_distribute_dataset(ds))
      epoch_end = min((epoch + 1) * cfg.steps_per_epoch, cfg.total_steps)
      while step < epoch_end:
        # A loop ends at the next evaluation or checkpoint, the epoch's end or
        # steps_per_loop steps.
        count = min(cfg.steps_per_loop, _next_multiple(step, cfg.eval_interval) - step,
                    epoch_end - step)
        if cfg.save_checkpoints_steps > 0:
          count = min(count, _next_multiple(step, cfg.save_checkpoints_steps) - step)
        per_step = {k: v.numpy() for k, v in self._train_steps(iterator, count).items()}
        self._shapes_seen.update(map(tuple, per_step.pop(SHAPE_KEY).tolist()))
        for i in range(count):
          step += 1
          terms = {k: float(v[i]) for k, v in per_step.items()}
          norm = terms.pop(GRAD_NORM)
          if not all(map(math.isfinite, [norm, *terms.values()])):
            raise NonFiniteError(
                f"step {step}: training diverged (" + ", ".join(
                    f"{k} loss {v:.4g}" for k, v in terms.items()) + f", gradient norm "
                f"{norm:.4g}); stopped without saving, " + self._kept() +
                "; lower --learning_rate / --head_learning_rate")
          for k, v in terms.items():
            running.setdefault(k, []).append(v)
          with writers["train"].as_default(step=step):
            for k, v in terms.items():
              tf.summary.scalar(f"loss/{k}", v)
            tf.summary.scalar("gradient_norm", norm)
            for name, schedule in self.schedules.items():
              tf.summary.scalar(f"learning_rate/{name}", schedule(step - 1))
        # As Keras shows it: the mean loss since the last evaluation, not one noisy step's.
        progress.update(step, [("loss", float(np.mean(running["total"])))])
        if step % cfg.eval_interval == 0 or step == cfg.total_steps:
          self._evaluate_and_save(step, running, writers["dev"])
          running = {}
          if self._stopped_early():
            print(f"Early stopping at step {step}: no dev {cfg.early_stopping_metric} gain for "
                  f"{step - int(self.best_step.numpy())} steps")
            break
        elif cfg.save_checkpoints_steps > 0 and step % cfg.save_checkpoints_steps == 0:
          self.manager.save(checkpoint_number=step)
          self._saved_step = step
        self._stop_if_terminated(step)
    if step == start and self._restored is not None:
      # Nothing trained: the Adam slots, created by the first update, were never needed.
      # Without this, TF warns about each unrestored slot value (hundreds of lines).
      self._restored.expect_partial()
    summary = {"steps": step, "trained_steps": step - start,
               "seconds": self._prior_seconds + time.time() - self._t0,
               "best_step": int(self.best_step.numpy()),
               f"best_dev_{cfg.early_stopping_metric}": float(self.best_f1.numpy()),
               # Documents per replica: the global batch split over the replicas.
               "largest_replica_batch": max((s[0] for s in self._shapes_seen), default=0),
               # The distinct padded lengths this invocation trained on (bounded under
               # XLA and bucketing by the multiples above).
               "batch_lengths": sorted({int(s[1]) for s in self._shapes_seen})}
    if cfg.jit_compile:
      # XLA compiles the step once per distinct input shape.
      summary["xla_batch_shapes"] = len(self._shapes_seen)
      print(f"XLA: the training step compiled for {len(self._shapes_seen)} batch shape(s)")
    return summary

  def _evaluate_and_save(self, step: int, running: dict, writer) -> None:
    if self.average is None:
      dev, dev_loss, improved = self._judge_dev(step, writer)
    else:
      # Dev judges, and "best" keeps, the averaged weights; training goes on from its own,
      # which the latest checkpoint keeps beside the average.
      self.average.swap(self._averaged)
      try:
        dev, dev_loss, improved = self._judge_dev(step, writer)
      finally:
        self.average.swap(self._averaged)
    # checkpoints/ first, then best/: a kill between the two leaves best/ behind the
    # trajectory (repaired on resume, `_reconcile_best`), never ahead of it.
    self.manager.save(checkpoint_number=step)
    self._saved_step = step
    if improved:
      self._save_best(step)
    if not self._chief:
      return
    record = {"step": step, "train_loss": {k: float(np.mean(v)) for k, v in running.items()},
              "dev": dev, "dev_loss": dev_loss, "best": bool(improved),
              "threshold": self.config.threshold,
              "train_seconds": self._prior_seconds + time.time() - self._t0}
    with results.open_to_append(os.path.join(self.config.output_dir, HISTORY)) as f:
      f.write(json.dumps(record) + "\n")
    metric = self.config.early_stopping_metric
    chosen = "" if metric in ("micro_f1", "macro_f1") else f" {metric} {dev[metric]:.4f}"
    print(f"step {step}: dev micro-F1 {dev['micro_f1']:.4f} macro-F1 {dev['macro_f1']:.4f} "
          f"hamming {dev['hamming_loss']:.4f}{chosen}" + (" (best)" if improved else ""))

  def _judge_dev(self, step: int, writer):
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
    improved = score > max(self.best_f1.numpy(), 0.0)
    if improved:
      self.best_f1.assign(score)
      self.best_step.assign(step)
      self._best_dev = dev
    best = ({**self._best_dev, "step": int(self.best_step.numpy())}
            if self._best_dev is not None else {})
    names = self.config.label_names or [str(j) for j in range(self.config.num_labels)]
    tensorboard_logs.write_dev_evaluation(writer, step, dev, self.gold_dev, probs, names,
                                          dev_loss, best)
    return dev, dev_loss, improved

  def _save_best(self, step: int) -> None:
    """Saves the current weights (with `ema_decay`, their average) as best/ of `step`."""
    if self.average is not None:
      self.average.swap(self._averaged)
    try:
      self.best_manager.save(checkpoint_number=step)
    finally:
      if self.average is not None:
        self.average.swap(self._averaged)

  def _reconcile_best(self) -> None:
    """Makes best/ hold the best step the restored checkpoint records.

    A kill between the latest checkpoint and its best/ save leaves best/ one best behind:
    the restored weights are the best ones, saved now. best/ of any other step (a step
    beyond the checkpoint, from a trajectory that a resume need not retrace, e.g. saved
    before checkpoints/ by older code, or checkpoints/ deleted) is discarded, and the best
    score is judged afresh from the restored step.
    """
    step, best = int(self.step.numpy()), int(self.best_step.numpy())
    best_dir = os.path.join(self.config.output_dir, "best")
    path = tf.train.latest_checkpoint(best_dir)
    held = int(path.rsplit("-", 1)[1]) if path else None
    judged = self.best_f1.numpy() >= 0
    if (held == best and judged) or (held is None and not judged):
      return
    held_text = f"step {held}" if path else "no checkpoint"
    if judged and best == step:
      print(f"{best_dir} holds {held_text}, not step {step}, which the resumed checkpoint "
            "records as the best: saving its weights there")
    else:
      print(f"{best_dir} holds {held_text}, not the best step ({best}) that the resumed "
            f"checkpoint of step {step} records: discarded; the best dev score is judged "
            f"afresh from step {step}")
      if self._chief and path:
        for name in os.listdir(best_dir):  # the files of its CheckpointManager
          if os.path.isfile(os.path.join(best_dir, name)):
            os.remove(os.path.join(best_dir, name))
      self.best_f1.assign(-1.0)
      self.best_step.assign(0)
    write_root = self.config.output_dir if self._chief else self.config.scratch_dir
    self.best_manager = checkpoint_files.CheckpointManager(
        tf.train.Checkpoint(model=self.model), os.path.join(write_root, "best"),
        max_to_keep=1)
    if self.best_f1.numpy() >= 0:
      self._save_best(step)


def _next_multiple(step: int, interval: int) -> int:
  return (step // interval + 1) * interval


def _merge_rows(grad):
  """Sums an IndexedSlices' repeated rows, so that its norm is the true gradient's norm.

  Embedding gradients hold one row per token occurrence ([CLS], [SEP] and every label
  token occur in every document), and a cross-replica sum concatenates them.
  """
  if not isinstance(grad, tf.IndexedSlices):
    return grad
  rows, position = tf.unique(grad.indices)
  return tf.IndexedSlices(tf.math.unsorted_segment_sum(grad.values, position, tf.shape(rows)[0]),
                          rows, grad.dense_shape)
