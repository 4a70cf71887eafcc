"""One replica's loss and gradients of a batch, run in length-sorted micro-batches.

Our extension (`--microbatch_size`), not the paper's. A batch is padded to its longest
document, so a short document costs as much as the longest one. Here the batch's
documents are sorted by length and cut into micro-batches of `size` documents, each
padded to its own longest; their losses (each divided by the *whole* batch's counts of
contributing documents) and gradients are summed. That is the batch's loss and gradient
up to float rounding: the same batches and the same updates as without micro-batches,
computed over fewer padded positions. Only dropout differs: each micro-batch draws its
own masks (`StatelessDropout` folds the micro-batch index in).

Gradients are summed densely (an embedding's sparse rows become a full matrix): the
optimisers' updates read a dense gradient with zero rows as the sparse one.
"""

from typing import Callable, Sequence

import tensorflow as tf

from laco_tf.data import pipeline

def run_in_microbatches(loss_and_gradients: Callable, batch: dict, size: int,
                        variables: Sequence[tf.Variable], set_index: Callable,
                        pad_to_multiple: int = 1):
  """(loss terms, gradients) of `batch`, summed over its micro-batches of `size`.

  Args:
    loss_and_gradients: (micro-batch dict) -> (dict of scalar loss terms, gradients in
      the order of `variables`, None for a variable the loss does not reach). Each term
      must already be divided by the whole batch's counts.
    batch: one replica's batch: a dict of batch-major tensors with [batch, length]
      `pipeline.SEQUENCE_KEYS`, padded with attention_mask 0.
    size: documents per micro-batch (the last one may hold fewer).
    variables: the variables whose gradients are returned.
    set_index: called with each micro-batch's scalar index before it runs, and with None
      after the last (the model's dropout draws per micro-batch).
    pad_to_multiple: each micro-batch's length is rounded up to a multiple of this (but
      not past the batch's): every micro-batch has its own length, and oneDNN keeps
      kernels for each shape it has run (see train_config.BUCKET_PAD_MULTIPLE).
  """
  lengths = tf.reduce_sum(batch["attention_mask"], axis=1)
  order = tf.argsort(lengths, stable=True)
  num_docs = tf.shape(order)[0]
  num_parts = (num_docs + size - 1) // size

  def part(index):
    rows = order[index * size:tf.minimum((index + 1) * size, num_docs)]
    chunk = {key: tf.gather(value, rows) for key, value in batch.items()}
    # At least 1: a replica's share of a short last batch may be empty.
    width = tf.maximum(tf.reduce_max(tf.gather(lengths, rows)), 1)
    width = tf.minimum((width + pad_to_multiple - 1) // pad_to_multiple * pad_to_multiple,
                       tf.shape(batch["input_ids"])[1])
    for key in pipeline.SEQUENCE_KEYS:
      chunk[key] = chunk[key][:, :width]
    set_index(index)
    terms, grads = loss_and_gradients(chunk)
    return terms, [dense(g, v) for g, v in zip(grads, variables)]

  def body(index, totals, sums):
    more, grads = part(index)
    return (index + 1, {k: totals[k] + more[k] for k in totals},
            [s + grads[i] for s, i in zip(sums, used)])

  try:
    # The first micro-batch (always run) shows which variables get gradients.
    terms, grads = part(tf.constant(0))
    used = [i for i, g in enumerate(grads) if g is not None]
    # One micro-batch at a time: in parallel, each would hold its activations and a dense
    # copy of the embedding gradients at once.
    _, terms, sums = tf.while_loop(lambda index, *_: index < num_parts, body,
                                   (tf.constant(1), terms, [grads[i] for i in used]),
                                   parallel_iterations=1)
  finally:
    set_index(None)
  summed = [None] * len(variables)
  for i, s in zip(used, sums):
    summed[i] = s
  return terms, summed


def dense(grad, variable):
  """A gradient as a dense tensor of its variable's shape (None stays None)."""
  if isinstance(grad, tf.IndexedSlices):
    return tf.math.unsorted_segment_sum(grad.values, grad.indices, variable.shape[0])
  return grad
