"""Per-document draws for the auxiliary tasks, run inside `tf.data` (paper 3.4).

All draws use stateless random ops, so a (seed, epoch, example) triple always gives the
same sample, and a new epoch gives a new one: nothing is frozen into the TFRecords.
"""

import tensorflow as tf

_NEG_INF = -1e9


def example_seed(seed: int, epoch, example_index) -> tf.Tensor:
  """A [2] int64 stateless seed for one example in one epoch."""
  base = tf.constant([seed, 0x1ac0], tf.int64)
  return tf.random.experimental.stateless_fold_in(
      tf.random.experimental.stateless_fold_in(base, tf.cast(epoch, tf.int64)),
      tf.cast(example_index, tf.int64))


def _gumbel_order(scores_shape, allowed: tf.Tensor, seed) -> tf.Tensor:
  """Uniform scores in [0, 1) where `allowed`, a large negative number elsewhere."""
  u = tf.random.stateless_uniform(scores_shape, seed=seed)
  return tf.where(allowed, u, _NEG_INF)


def sample_plcp_pairs(labels: tf.Tensor, seed, num_pairs: int, gamma: float):
  """Draws label pairs for PLCP (paper 3.4.1, eq. 5).

  Each of the `num_pairs` pairs is IsCo-occur (both labels from Y+, target 1) with
  probability gamma / (1 + gamma), else NotCo-occur (one label from Y+, one from Y-,
  target 0), so IsCo-occur : NotCo-occur = gamma in expectation. The two labels of a
  pair are in random order. A document that cannot supply both kinds (|Y+| < 2 or
  |Y-| = 0) is masked out of the loss.

  Args:
    labels: [n] multi-hot gold labels (any numeric dtype).
    seed: [2] int stateless seed.
  Returns:
    pairs [num_pairs, 2] int32 label indices, targets [num_pairs] float32, mask []
    float32 (1.0 if the document takes part).
  """
  n = tf.shape(labels)[0]
  positive = tf.cast(labels, tf.bool)
  seeds = tf.random.experimental.stateless_split(seed, 5)
  is_co = tf.random.stateless_uniform([num_pairs], seed=seeds[0]) < gamma / (1.0 + gamma)
  pos = tf.broadcast_to(positive, [num_pairs, n])
  # IsCo-occur: the two best-scoring positives are a uniform draw of two distinct labels.
  _, top_pos = tf.math.top_k(_gumbel_order([num_pairs, n], pos, seeds[1]), k=2)
  one_pos = tf.argmax(_gumbel_order([num_pairs, n], pos, seeds[2]), axis=1, output_type=tf.int32)
  one_neg = tf.argmax(_gumbel_order([num_pairs, n], ~pos, seeds[3]), axis=1,
                      output_type=tf.int32)
  swap = tf.random.stateless_uniform([num_pairs], seed=seeds[4]) < 0.5
  not_co = tf.where(swap[:, None], tf.stack([one_neg, one_pos], 1),
                    tf.stack([one_pos, one_neg], 1))
  pairs = tf.where(is_co[:, None], top_pos, not_co)
  num_pos = tf.reduce_sum(tf.cast(positive, tf.int32))
  mask = tf.cast((num_pos >= 2) & (num_pos < n), tf.float32)
  return pairs, tf.cast(is_co, tf.float32), mask


def sample_clcp_given(labels: tf.Tensor, seed, num_given: int):
  """Draws Y^G for CLCP (paper 3.4.2, eq. 6): `num_given` labels uniformly from Y+.

  Every label not in Y^G is a target (1 if in Y+). A document with fewer than
  `num_given` relevant labels is masked out of the loss.

  Returns:
    given [n] float32 (1.0 for labels in Y^G), mask [] float32.
  """
  n = tf.shape(labels)[0]
  positive = tf.cast(labels, tf.bool)
  _, chosen = tf.math.top_k(_gumbel_order([n], positive, seed), k=num_given)
  num_pos = tf.reduce_sum(tf.cast(positive, tf.int32))
  mask = tf.cast(num_pos >= num_given, tf.float32)
  given = tf.reduce_sum(tf.one_hot(chosen, n), axis=0) * mask
  return given, mask


def sample_label_slots(labels: tf.Tensor, seed, num_slots: int,
                       candidates: tf.Tensor = None) -> tf.Tensor:
  """Chooses the K labels a training sequence carries (``--label_slots``, our extension
  of paper 3.2 towards Section 6's "scheduled label sampling").

  Every relevant label is carried, then negatives fill the other slots: drawn uniformly
  from Y-, or with `candidates` (the document's first-stage shortlist, best first,
  `modeling/shortlist.py`) its wrong labels in rank order first, the way shortlist
  inference carries them, and uniform draws for any slot left. A document with more than K relevant labels carries a uniform draw of K of
  them (its others are left out of this epoch's losses; each epoch draws anew). The
  chosen labels are returned in label order, the order full JE packs them in.

  Args:
    labels: [n] multi-hot gold labels; seed: [2] int stateless seed; num_slots: K <= n;
    candidates: optional [m] int label indices, best first.
  Returns:
    [K] int32 label indices, ascending.
  """
  n = tf.shape(labels)[0]
  u = tf.random.stateless_uniform([n], seed=seed)
  # Positives score in [2, 3), other labels below 2: the K best are every positive (or K
  # random positives), then the negatives.
  positive = tf.cast(labels, tf.bool)
  scores = u
  if candidates is not None:
    # Candidates score in (1, 2) by rank, above every uniform draw.
    m = tf.shape(candidates)[0]
    rank_scores = 1.0 + tf.cast(m - tf.range(m), tf.float32) / tf.cast(m + 1, tf.float32)
    hard = tf.tensor_scatter_nd_max(tf.zeros([n]), tf.cast(candidates, tf.int32)[:, None],
                                    rank_scores)
    scores = tf.maximum(scores, hard)
  scores = tf.where(positive, u + 2.0, scores)
  _, chosen = tf.math.top_k(scores, k=num_slots)
  return tf.sort(tf.cast(chosen, tf.int32))
