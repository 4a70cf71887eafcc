"""Per-example losses of eqs. 4-7 and their strategy-correct batch reduction.

Each function returns one value per document; `reduce_per_example` divides the
replica's sum by the number of contributing documents in the *global* batch (all
replicas), so summing the replicas' gradients gives the global-batch mean.

Our extension for long-tailed label sets (``--mlc_loss``), replacing eq. 4's BCE only:
focal loss and the distribution-balanced loss, as Huang et al. (EMNLP 2021, "Balancing
methods for multi-label text classification with long-tailed class distribution") ran
them on Reuters-21578, with their released settings (ResampleLoss in Roche/BalancedLossNLP,
from Wu et al., ECCV 2020).
"""

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from laco_tf import options

TASKS = ("mltc", "plcp", "clcp", "both")
MLC_LOSSES = options.BY_NAME["mlc_loss"].choices
# Huang et al.'s released settings: focal gamma 2 with balance 0.5; DB's rebalancing map
# r_hat = sigmoid(beta (r - mu)) + alpha with alpha 0.1, beta 10, mu 0.05; negative-tolerant
# regularisation with kappa 0.05 (class-prior bias) and lambda 2 (negative scale).
FOCAL_GAMMA, FOCAL_BALANCE = 2.0, 0.5
DB_MAP_ALPHA, DB_MAP_BETA, DB_MAP_MU = 0.1, 10.0, 0.05
DB_KAPPA, DB_LAMBDA = 0.05, 2.0


def _bce(targets, logits):
  return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(targets, logits.dtype),
                                                 logits=logits)


def mlc_loss(labels, logits):
  """Eq. 4: BCE summed over the n labels. [batch, n] -> [batch]."""
  return tf.reduce_sum(_bce(labels, logits), axis=-1)


def focal_mlc_loss(labels, logits, weights=None, gamma: float = FOCAL_GAMMA,
                   balance: float = FOCAL_BALANCE):
  """Focal loss (Lin et al., ICCV 2017) per label, summed like eq. 4. [batch, n] -> [batch].

  balance * (1 - p_t) ** gamma * BCE, p_t the probability given to the true value; an
  optional [batch, n] `weights` multiplies each term.
  """
  logits = tf.cast(logits, tf.float32)
  bce = _bce(labels, logits)
  terms = balance * (1.0 - tf.exp(-bce)) ** gamma * bce
  if weights is not None:
    terms = terms * weights
  return tf.reduce_sum(terms, axis=-1)


def distribution_balanced_loss(labels, logits, label_counts, num_train: int):
  """Distribution-balanced loss (Wu et al., ECCV 2020) as Huang et al. ran it on Reuters.

  Rebalancing weight of label i in a document with label set Y: r = (1 / n_i) /
  sum_{j in Y} 1 / n_j, mapped to sigmoid(beta (r - mu)) + alpha. Negative-tolerant
  regularisation: the logit z becomes z + kappa b_i / lambda with b_i = log(n_i / (N -
  n_i)) (the class prior's logit; the released code's sign and scale), and a negative's
  logit is then multiplied by lambda and its weight divided by it. The result goes through
  the focal loss above. Counts are clipped to [1, N - 1] so labels absent from (or in
  every) training document stay finite. [batch, n] -> [batch].
  """
  counts = np.clip(np.asarray(label_counts, np.float64), 1.0, max(num_train - 1.0, 1.0))
  freq_inv = tf.constant(1.0 / counts, tf.float32)
  bias = tf.constant(DB_KAPPA * np.log(counts / (num_train - counts)) / DB_LAMBDA,
                     tf.float32)
  labels = tf.cast(labels, tf.float32)
  logits = tf.cast(logits, tf.float32)
  repeat = tf.reduce_sum(labels * freq_inv, axis=-1, keepdims=True)
  ratio = tf.math.divide_no_nan(tf.broadcast_to(freq_inv, tf.shape(labels)), repeat)
  weights = tf.sigmoid(DB_MAP_BETA * (ratio - DB_MAP_MU)) + DB_MAP_ALPHA
  logits = logits + bias
  logits = logits * labels + logits * (1.0 - labels) * DB_LAMBDA
  weights = weights * labels + weights * (1.0 - labels) / DB_LAMBDA
  return focal_mlc_loss(labels, logits, weights)


def make_mlc_loss(name: str, label_counts: Sequence[float] = (),
                  num_train: int = 0) -> Callable:
  """Eq. 4's loss, or a long-tail replacement: (labels, logits) -> [batch]."""
  if name == "bce":
    return mlc_loss
  if name == "focal":
    return focal_mlc_loss
  if name == "db":
    if not len(label_counts) or num_train < 2:
      raise ValueError("the distribution-balanced loss needs the training label counts")
    return lambda labels, logits: distribution_balanced_loss(labels, logits, label_counts,
                                                             num_train)
  raise ValueError(f"unknown MLC loss {name!r}: expected one of {', '.join(MLC_LOSSES)}")


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


def global_count(mask):
  """Number of contributing documents in the *global* batch: the sum of a [batch] mask over
  all replicas."""
  count = tf.reduce_sum(tf.cast(mask, tf.float32))
  ctx = tf.distribute.get_replica_context()
  if ctx is not None and ctx.num_replicas_in_sync > 1:
    count = ctx.all_reduce(tf.distribute.ReduceOp.SUM, count)
  return count


def reduce_per_example(per_example, mask=None, count=None):
  """Sum over this replica's documents / number of contributing documents globally.

  `count` gives that number when the documents are a part of the batch (a micro-batch):
  the parts' results then add up to the batch's.
  """
  per_example = tf.cast(per_example, tf.float32)
  mask = tf.ones_like(per_example) if mask is None else tf.cast(mask, tf.float32)
  if count is None:
    count = global_count(mask)
  return tf.reduce_sum(per_example * mask) / tf.maximum(count, 1.0)
