"""Decision rules: which probabilities become predicted labels (our extension).

The paper predicts label i when p_i > 0.5 (eq. 3). Tuning the threshold on dev is the
usual next step for multi-label classifiers, and rare labels gain most from it:

* ``fixed``: every label uses ``--threshold`` (the paper's rule at 0.5).
* ``global``: one threshold for every label, the grid value with the best dev micro-F1.
* ``per_label``: each label with at least ``MIN_DEV_POSITIVES`` dev positives gets the
  grid value with its best dev F1; the others keep the global threshold, because a
  threshold fitted to one or two positives is noise.

``at_least_one`` additionally gives every document its most probable label when no
probability clears its threshold (most corpora have no empty label sets). Tuning scores
every candidate under the rule that will be served: with ``at_least_one`` a document's
forced label depends on every label's threshold, so ``per_label`` then changes one
label's threshold at a time while the dev macro-F1 under the rule improves (coordinate
ascent, stopping where no single change improves it), from the thresholds tuned one label
at a time and from the global one, and keeps the better (`_under_rule`).

Ties between grid values go to the one closest to ``--threshold``, so that with no signal
the rule stays the paper's.
"""

import numbers

import numpy as np

from laco_tf import options
from laco_tf.errors import InputError
from laco_tf.training import metrics

STRATEGIES = options.BY_NAME["threshold_strategy"].choices
THRESHOLD_RANGE = "a number in (0, 1)"
GRID = np.round(np.arange(0.02, 0.99, 0.02), 2)   # 0.02, 0.04, ..., 0.98
MIN_DEV_POSITIVES = 5


def valid_threshold(value) -> bool:
  """Whether `value` is a threshold --threshold and `Classifier.predict` accept: a real
  number in (0, 1) (0 or below predicts every label, 1 or above none, NaN none)."""
  return (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and 0 < value < 1)


def check_threshold(value, name: str) -> None:
  """Raises an InputError naming `name` unless `valid_threshold(value)`."""
  if not valid_threshold(value):
    raise InputError(f"{name}={value!r}: expected {THRESHOLD_RANGE}")


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
    tunable = np.flatnonzero(gold.sum(0) >= min_positives)
    for j in tunable:
      chosen[j] = _best(GRID, per_value[:, j], threshold)
    if at_least_one:
      chosen = _under_rule(gold, np.asarray(probs), chosen, tunable, threshold,
                           tune(gold, probs, "global", threshold, True)[0])
  return chosen


MAX_SWEEPS = 20


def _under_rule(gold, probs, independent, tunable, prefer: float, global_t: float):
  """Per-label thresholds for the at-least-one rule: coordinate ascent from two starts
  (the thresholds tuned one label at a time, and the global one for every tunable label),
  the one with the better dev macro-F1 under the rule (a tie: the first)."""
  start = independent.copy()
  start[tunable] = global_t
  candidates = [_ascend_under_rule(gold, probs, t, tunable, prefer)
                for t in (independent, start)]
  scores = [_label_f1(gold, decide(probs, t, True)).sum() for t in candidates]
  return candidates[int(np.argmax(scores))]


def _ascend_under_rule(gold, probs, chosen, tunable, prefer: float) -> np.ndarray:
  """Coordinate ascent of dev macro-F1 under the at-least-one rule: each sweep gives each
  tunable label the grid value best for the sum of all labels' F1 with the other
  thresholds held (ties: closest to `prefer`), until a sweep changes nothing."""
  chosen = chosen.copy()
  top = np.zeros(gold.shape, bool)
  top[np.arange(len(probs)), probs.argmax(axis=1)] = True
  for _ in range(MAX_SWEEPS):
    changed = False
    for j in tunable:
      value = _best(GRID, _macro_over_grid(gold, probs, chosen, j, top), prefer)
      changed |= value != chosen[j]
      chosen[j] = value
    if not changed:
      break
  return chosen


def _macro_over_grid(gold, probs, chosen, j, top) -> np.ndarray:
  """[grid] sum of every label's F1 under the at-least-one rule, label j's threshold set
  to each grid value and the others to `chosen`: exactly `decide(..., True)`'s decisions,
  counted for all grid values at once."""
  cleared = probs > chosen.astype(probs.dtype)                       # [N, n], as `decide`
  alone = cleared.sum(axis=1) - cleared[:, j] == 0                    # nothing else clears
  cand = probs[:, j][np.newaxis] > GRID.astype(probs.dtype)[:, np.newaxis]   # [grid, N]
  forced = (~cand[:, alone]).astype(np.float64)       # [grid, alone docs]: top label given
  cleared[:, j] = False
  tp = (cleared & gold).sum(0) + forced @ (top & gold)[alone]        # [grid, n]
  predicted = cleared.sum(0) + forced @ top[alone]
  tp[:, j] += (cand & gold[:, j]).sum(axis=1)
  predicted[:, j] += cand.sum(axis=1)
  denominator = predicted + gold.sum(0)
  f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
  return f1.sum(axis=1)


def describe(thresholds: np.ndarray, labels, strategy: str, at_least_one: bool) -> dict:
  """The decision rule as written to thresholds.json, the results and the export."""
  return {"strategy": strategy, "at_least_one": at_least_one,
          "thresholds": {l: float(t) for l, t in zip(labels, thresholds)}}
