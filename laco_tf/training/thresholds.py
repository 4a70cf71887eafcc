"""Decision rules: which probabilities become predicted labels (our extension).

The paper predicts label i when p_i > 0.5 (eq. 3). Tuning the threshold on dev is the
usual next step for multi-label classifiers, and rare labels gain most from it:

* ``fixed``: every label uses ``--threshold`` (the paper's rule at 0.5).
* ``global``: one threshold for every label, the grid value with the best dev micro-F1.
* ``per_label``: each label with at least ``MIN_DEV_POSITIVES`` dev positives gets the
  grid value with its best dev F1; the others keep the global threshold, because a
  threshold fitted to one or two positives is noise.

``at_least_one`` additionally gives every document its most probable label when no
probability clears its threshold (most corpora have no empty label sets).

Ties between grid values go to the one closest to ``--threshold``, so that with no signal
the rule stays the paper's.
"""

import numpy as np

from laco_tf.training import metrics

STRATEGIES = ("fixed", "global", "per_label")
GRID = np.round(np.arange(0.02, 0.99, 0.02), 2)   # 0.02, 0.04, ..., 0.98
MIN_DEV_POSITIVES = 5


def decide(probs: np.ndarray, thresholds, at_least_one: bool = False) -> np.ndarray:
  """[N, n] probabilities -> [N, n] bool predictions (thresholds: a number or [n])."""
  probs = np.asarray(probs)
  pred = probs > np.asarray(thresholds, probs.dtype if probs.size else np.float64)
  if at_least_one and probs.size:
    empty = ~pred.any(axis=1)
    pred[np.flatnonzero(empty), probs[empty].argmax(axis=1)] = True
  return pred


def _best(values, scores, prefer: float) -> float:
  """The value with the highest score; among ties, the one closest to `prefer`."""
  scores = np.asarray(scores)
  ties = np.flatnonzero(scores == scores.max())
  return float(values[ties[np.argmin(np.abs(values[ties] - prefer))]])


def _label_f1(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
  """F1 of each column of [N, n] bool arrays (0 where undefined)."""
  tp = (gold & pred).sum(0).astype(np.float64)
  denominator = gold.sum(0) + pred.sum(0)
  return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


def tune(gold: np.ndarray, probs: np.ndarray, strategy: str, threshold: float = 0.5,
         at_least_one: bool = False, min_positives: int = MIN_DEV_POSITIVES) -> np.ndarray:
  """[n] thresholds chosen on (gold, probs) of dev by `strategy` (module doc)."""
  gold = np.asarray(gold).astype(bool)
  n = gold.shape[1]
  if strategy not in STRATEGIES:
    raise ValueError(f"threshold strategy must be one of {STRATEGIES}, got {strategy!r}")
  if strategy == "fixed" or gold.shape[0] == 0:
    return np.full(n, threshold)
  micro = [metrics.multilabel_metrics(gold, decide(probs, t, at_least_one))["micro_f1"]
           for t in GRID]
  chosen = np.full(n, _best(GRID, micro, threshold))
  if strategy == "per_label":
    per_value = np.stack([_label_f1(gold, decide(probs, t)) for t in GRID])   # [grid, n]
    for j in np.flatnonzero(gold.sum(0) >= min_positives):
      chosen[j] = _best(GRID, per_value[:, j], threshold)
  return chosen


def describe(thresholds: np.ndarray, labels, strategy: str, at_least_one: bool) -> dict:
  """The decision rule as written to thresholds.json, the results and the export."""
  return {"strategy": strategy, "at_least_one": at_least_one,
          "thresholds": {l: float(t) for l, t in zip(labels, thresholds)}}
