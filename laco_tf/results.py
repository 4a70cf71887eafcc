"""Scores predictions and writes a run's result files (data-flow step: metrics -> files).

Shared by `run_classifier.py` and the linear baselines, so both write the same files
(each under a temporary name, then renamed):
``eval_results_{split}.json`` (metrics of `metrics.multilabel_metrics`) and
``predictions_{split}.jsonl`` (one line per document, in input order: id, gold labels,
predicted labels, probability of every label).
"""

import errno
import json
import os
from typing import Sequence

import numpy as np

from laco_tf import disk
from laco_tf.training import metrics, thresholds
from laco_tf.errors import InputError, NonFiniteError


def open_new(path: str, mode: str = "w"):
  """Opens `path` as a new file, never through what is there: an entry of that name (a
  stale temporary file, a symbolic link planted to redirect the write) is unlinked first,
  and O_EXCL | O_NOFOLLOW refuse one planted in between."""
  try:
    os.unlink(path)
  except FileNotFoundError:
    pass
  fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
               0o666)
  return os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"}))


def open_to_append(path: str):
  """Opens `path` to append text, creating it; a symbolic link there is refused in one
  line, not followed."""
  try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o666)
  except OSError as e:
    if e.errno != errno.ELOOP:
      raise
    raise InputError(f"{path}: a symbolic link; a run never writes through one (remove "
                     "it)") from None
  return os.fdopen(fd, "a", encoding="utf-8")


def write_atomically(path: str, text: str) -> None:
  """Writes `text` to `path` through `path`.tmp and a rename: never half-written, and a
  symbolic link at either name is replaced, not written through. A failed write removes
  `path`.tmp; a full disk is a one-line `DiskFullError` (`disk.replacing`)."""
  with disk.replacing(path, len(text.encode("utf-8"))) as tmp:
    with open_new(tmp) as f:
      f.write(text)


def write_results(output_dir: str, split: str, examples: Sequence, labels: Sequence[str],
                  gold: np.ndarray, probs: np.ndarray, threshold,
                  extra: dict = None, at_least_one: bool = False) -> dict:
  """Scores the decisions `thresholds.decide(probs, threshold, at_least_one)` against
  `gold` (threshold: a number or one per label), writes both files, returns the metrics."""
  if not np.all(np.isfinite(probs)):
    raise NonFiniteError(f"{split}: non-finite probabilities (a diverged model); no result "
                         "file written")
  pred = thresholds.decide(probs, threshold, at_least_one)
  uniform = np.unique(np.asarray(threshold, np.float64)).size == 1
  result = metrics.multilabel_metrics(gold, pred)
  result.update(metrics.ranking_metrics(gold, probs))
  result.update({"num_documents": int(gold.shape[0]), "num_labels": len(labels),
                 "threshold": (float(np.asarray(threshold).flat[0]) if uniform else
                               "per label (thresholds.json)"),
                 "at_least_one": at_least_one, "predicted_label_sets":
                 len({tuple(np.flatnonzero(r)) for r in pred})}, **(extra or {}))
  write_atomically(os.path.join(output_dir, f"eval_results_{split}.json"),
                    json.dumps(result, indent=1, allow_nan=False) + "\n")
  lines = []
  for e, g, p, pr in zip(examples, gold, pred, probs):
    lines.append(json.dumps({
        "id": e.guid,
        "labels": [labels[j] for j in np.flatnonzero(g)],
        "predicted": [labels[j] for j in np.flatnonzero(p)],
        "probabilities": {l: round(float(x), 7) for l, x in zip(labels, pr)},
    }, allow_nan=False))
  write_atomically(os.path.join(output_dir, f"predictions_{split}.jsonl"),
                    "\n".join(lines) + ("\n" if lines else ""))
  return result
