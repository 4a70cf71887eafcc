"""The training step's maths under any `tf.distribute` strategy (Model Garden's "task").

One step: the forward pass, the loss of eq. 7 (L_mlc of eq. 4 plus the PLCP and CLCP
terms of eqs. 5 and 6, weighted by `losses.task_weights`), its gradients, fp16 loss
scaling, the cross-replica sum, clipping to the global norm, and the two Adam optimisers
(encoder and heads, paper section 4.4). `run` takes `steps_per_loop` steps in one
`tf.function` call, as Orbit does.

Each replica's loss is normalised by the documents of the global batch
(`losses.reduce_per_example`), so the summed gradients are the single-device gradients
of the whole batch whatever the replica count. With `ema_decay`, each step also updates
the weight average (`weight_averaging.py`, our extension).
"""

import contextlib

import tensorflow as tf

from laco_tf.modeling import losses, precision
from laco_tf.training import microbatches, optimization, weight_averaging
from laco_tf.training.train_config import BUCKET_PAD_MULTIPLE, TrainConfig

SHAPE_KEY = "input_shape"
GRAD_NORM = "gradient_norm"  # global norm of a step's gradients, before clipping


class TrainStep:
  """Owns the optimisers, the step counter and the weight average of one model."""

  def __init__(self, model, strategy, config: TrainConfig):
    self.model, self.strategy, self.config = model, strategy, config
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
      # --ema_decay: dev, the best checkpoint and everything after training read the average.
      self.averaged = model.encoder_variables() + model.head_variables()
      self.average = (weight_averaging.WeightAverage(self.averaged, config.ema_decay)
                      if config.ema_decay > 0 else None)
    # Dropout masks are a function of (seed, step): with the step in the checkpoint, a
    # resumed run draws what the uninterrupted one drew.
    model.set_dropout_step(self.step)
    if config.microbatch_size > 0 and config.jit_compile:
      raise ValueError("micro-batches have lengths XLA cannot compile once; use one or the "
                       "other")
    if config.jit_compile:
      # The global counts are all-reduced outside the compiled function: a collective
      # inside it cannot reach the other replicas' devices.
      compiled = tf.function(self.loss_and_gradients, jit_compile=True)
      self._grad_fn = lambda batch: compiled(batch, self._counts(batch))
    else:
      self._grad_fn = (self._microbatched_loss_and_gradients if config.microbatch_size > 0
                       else self.loss_and_gradients)
    self.loop_fn = None  # the traced `run` loop; None re-traces it on the next call

  def terms(self) -> list:
    """The loss terms a step reports, in order."""
    return [k for k in ("mlc", "plcp", "clcp") if self.weights[k] > 0] + ["total"]

  @contextlib.contextmanager
  def averaged_weights(self):
    """The weight average in the model for the block's length (no-op without one)."""
    if self.average is None:
      yield
      return
    self.average.swap(self.averaged)
    try:
      yield
    finally:
      self.average.swap(self.averaged)

  def loss_and_gradients(self, batch, counts=None):
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
    """`loss_and_gradients` of the batch, run in length-sorted micro-batches
    (`microbatches.py`)."""
    counts = self._counts(batch)
    return microbatches.run_in_microbatches(
        lambda chunk: self.loss_and_gradients(chunk, counts), batch,
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

  def run(self, iterator, num_steps: int) -> dict:
    """Takes `num_steps` steps from `iterator` in one `tf.function` call.

    Returns each loss term and GRAD_NORM per step ([num_steps]) and, under SHAPE_KEY, the
    [batch, length] input shape of each step's first replica ([num_steps, 2]).
    """
    if self.loop_fn is None:
      keys = self.terms() + [GRAD_NORM]

      def loop(iterator, num_steps):
        arrays = {k: tf.TensorArray(tf.float32, size=num_steps) for k in keys}
        shapes = tf.TensorArray(tf.int32, size=num_steps)
        for i in tf.range(num_steps):
          batch = next(iterator)
          self.step.assign_add(1)  # the step being taken, which seeds its dropout
          per_replica = self.strategy.run(self._replica_step, args=(batch,))
          if self.average is not None:
            self.average.update(self.averaged, self.step)
          # Loss terms are per-replica shares of the global mean; the norm is global.
          arrays = {k: arrays[k].write(i, self.strategy.reduce(
              tf.distribute.ReduceOp.MEAN if k == GRAD_NORM else tf.distribute.ReduceOp.SUM,
              per_replica[k], axis=None)) for k in keys}
          first = self.strategy.experimental_local_results(batch["input_ids"])[0]
          shapes = shapes.write(i, tf.shape(first))
        return {**{k: a.stack() for k, a in arrays.items()}, SHAPE_KEY: shapes.stack()}
      self.loop_fn = tf.function(loop)
    return self.loop_fn(iterator, tf.constant(num_steps, tf.int32))


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
