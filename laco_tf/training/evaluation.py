"""Predicts a split with a model under a `tf.distribute` strategy (model -> probabilities)."""

from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from laco_tf import progress as progress_lib


def make_predict_fn(model, strategy, jit_compile: bool = False):
  """Returns f(distributed batch) -> (example_index [N], probabilities [N, n]) as numpy.

  `jit_compile` compiles the model's forward pass with XLA.
  """
  compiled = {}

  def forward(batch):
    return tf.sigmoid(tf.cast(model(batch, training=False)["mlc_logits"], tf.float32))

  if jit_compile:
    forward = tf.function(forward, jit_compile=True)

  def replica_fn(batch):
    return batch["example_index"], forward(batch)

  def predict(dist_batch, spec):
    if "fn" not in compiled:
      compiled["fn"] = tf.function(lambda b: strategy.run(replica_fn, args=(b,)),
                                   input_signature=[spec])
    index, probs = compiled["fn"](dist_batch)
    index = tf.concat(strategy.experimental_local_results(index), axis=0)
    probs = tf.concat(strategy.experimental_local_results(probs), axis=0)
    return index.numpy(), probs.numpy()
  return predict


def predict_probabilities(predict, strategy, dataset: tf.data.Dataset, num_labels: int,
                          progress_total: Optional[int] = None,
                          stop: Optional[Callable[[], bool]] = None,
                          progress_title: str = "") -> Optional[np.ndarray]:
  """[N, n] probabilities of every record of `dataset`, in record order; None when
  `stop()`, asked after each batch, says to stop.

  `progress_total` (the number of records) shows a progress display on stderr, headed by
  `progress_title`.
  """
  dist = strategy.experimental_distribute_dataset(dataset)
  progress = (progress_lib.progress_bar(progress_total, unit_name="document",
                                        title=progress_title)
              if progress_total else None)
  indices, probs, done = [], [], 0
  for batch in dist:
    i, p = predict(batch, dist.element_spec)
    indices.append(i)
    probs.append(p)
    if progress:
      done += len(i)
      progress.update(done)
    if stop is not None and stop():
      return None
  if not indices:
    return np.zeros([0, num_labels], np.float32)
  order = np.argsort(np.concatenate(indices), kind="stable")
  return np.concatenate(probs)[order]
