"""Per-example losses of eqs. 4-7 and their strategy-correct batch reduction.

Each function returns one value per document; `reduce_per_example` divides the
replica's sum by the number of contributing documents in the *global* batch (all
replicas), so summing the replicas' gradients gives the global-batch mean.
"""

import tensorflow as tf

TASKS = ("mltc", "plcp", "clcp", "both")


def _bce(targets, logits):
  return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(targets, logits.dtype),
                                                 logits=logits)


def mlc_loss(labels, logits):
  """Eq. 4: BCE summed over the n labels. [batch, n] -> [batch]."""
  return tf.reduce_sum(_bce(labels, logits), axis=-1)


def plcp_loss(targets, logits):
  """Eq. 5: BCE of each sampled pair, averaged over a document's pairs. [batch, k] -> [batch]."""
  return tf.reduce_mean(_bce(targets, logits), axis=-1)


def clcp_loss(labels, logits, given):
  """Eq. 6: BCE summed over the n - s labels not in Y^G. [batch, n] -> [batch]."""
  return tf.reduce_sum(_bce(labels, logits) * (1.0 - tf.cast(given, logits.dtype)), axis=-1)


def task_weights(task: str, alpha: float) -> dict:
  """Eq. 7 per --task: weights of L_mlc, L_plcp and L_clcp."""
  if task not in TASKS:
    raise ValueError(f"unknown task {task!r}")
  return {"mlc": 1.0,
          "plcp": alpha if task in ("plcp", "both") else 0.0,
          "clcp": (1.0 - alpha) if task in ("clcp", "both") else 0.0}


def reduce_per_example(per_example, mask=None):
  """Sum over this replica's documents / number of contributing documents globally."""
  per_example = tf.cast(per_example, tf.float32)
  mask = tf.ones_like(per_example) if mask is None else tf.cast(mask, tf.float32)
  count = tf.reduce_sum(mask)
  ctx = tf.distribute.get_replica_context()
  if ctx is not None and ctx.num_replicas_in_sync > 1:
    count = ctx.all_reduce(tf.distribute.ReduceOp.SUM, count)
  return tf.reduce_sum(per_example * mask) / tf.maximum(count, 1.0)
