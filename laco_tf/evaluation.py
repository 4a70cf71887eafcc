"""Predicts a split, scores it and writes the results (data-flow step: model -> metrics).

Files (each written under a temporary name, then renamed):
``eval_results_{split}.json`` (metrics of `metrics.multilabel_metrics`) and
``predictions_{split}.jsonl`` (one line per document, in input order: id, gold labels,
predicted labels, probability of every label).
"""

import json
import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from laco_tf import metrics


def make_predict_fn(model, strategy):
  """Returns f(distributed batch) -> (example_index [N], probabilities [N, n]) as numpy."""
  compiled = {}

  def replica_fn(batch):
    logits = model(batch, training=False)["mlc_logits"]
    return batch["example_index"], tf.sigmoid(tf.cast(logits, tf.float32))

  def predict(dist_batch, spec):
    if "fn" not in compiled:
      compiled["fn"] = tf.function(lambda b: strategy.run(replica_fn, args=(b,)),
                                   input_signature=[spec])
    index, probs = compiled["fn"](dist_batch)
    index = tf.concat(strategy.experimental_local_results(index), axis=0)
    probs = tf.concat(strategy.experimental_local_results(probs), axis=0)
    return index.numpy(), probs.numpy()
  return predict


def predict_probabilities(predict, strategy, dataset: tf.data.Dataset) -> np.ndarray:
  """[N, n] probabilities of every record of `dataset`, in record order."""
  dist = strategy.experimental_distribute_dataset(dataset)
  indices, probs = [], []
  for batch in dist:
    i, p = predict(batch, dist.element_spec)
    indices.append(i)
    probs.append(p)
  if not indices:
    return np.zeros([0, 0], np.float32)
  order = np.argsort(np.concatenate(indices), kind="stable")
  return np.concatenate(probs)[order]


def _write_atomically(path: str, text: str) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(text)
  os.replace(tmp, path)


def write_results(output_dir: str, split: str, examples: Sequence, labels: Sequence[str],
                  gold: np.ndarray, probs: np.ndarray, threshold: float,
                  extra: dict = None) -> dict:
  """Scores `probs > threshold` against `gold`, writes both files, returns the metrics."""
  pred = probs > threshold
  result = metrics.multilabel_metrics(gold, pred)
  result.update({"num_documents": int(gold.shape[0]), "num_labels": len(labels),
                 "threshold": threshold, "predicted_label_sets":
                 len({tuple(np.flatnonzero(r)) for r in pred})}, **(extra or {}))
  _write_atomically(os.path.join(output_dir, f"eval_results_{split}.json"),
                    json.dumps(result, indent=1) + "\n")
  lines = []
  for e, g, p, pr in zip(examples, gold, pred, probs):
    lines.append(json.dumps({
        "id": e.guid,
        "labels": [labels[j] for j in np.flatnonzero(g)],
        "predicted": [labels[j] for j in np.flatnonzero(p)],
        "probabilities": {l: round(float(x), 7) for l, x in zip(labels, pr)},
    }))
  _write_atomically(os.path.join(output_dir, f"predictions_{split}.jsonl"),
                    "\n".join(lines) + ("\n" if lines else ""))
  return result
