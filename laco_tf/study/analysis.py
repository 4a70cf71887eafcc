"""The paper's Section 5 analyses as tested functions (numpy only).

* Low-frequency labels (5.3, Figure 2): labels sorted by training frequency (most
  frequent first, ties by name) and cut into `n_groups` groups of equal size (the first
  groups take one extra label when the count does not divide), macro-F1 per group.
* Label correlation (5.4, Table 5, eq. 8): KL(P^g || P^p) of p(y_b | y_a) =
  #(y_a, y_b) / #(y_a) between gold and predicted label sets, summed over ordered pairs
  a != b. Pairs with p^g = 0 add nothing (0 log 0 = 0); labels never gold-relevant have
  no p^g row and add nothing; a p^p of 0 (or an undefined one, when y_a is never
  predicted) is floored at `eps` = 1e-6 so the divergence stays finite.
* Label combination diversity (5.5, Table 6): C, the number of distinct label sets
  (the empty set counts as one when it occurs).
"""

from typing import Dict, List, Sequence

import numpy as np

from laco_tf.training import metrics


def frequency_groups(counts: Dict[str, int], n_groups: int = 4) -> List[List[str]]:
  ordered = sorted(counts, key=lambda l: (-counts[l], l))
  return [list(g) for g in np.array_split(np.array(ordered, dtype=object), n_groups)]


def group_macro_f1(gold, pred, labels: Sequence[str], groups) -> List[float]:
  index = {l: i for i, l in enumerate(labels)}
  out = []
  for group in groups:
    cols = [index[l] for l in group]
    out.append(metrics.multilabel_metrics(np.asarray(gold)[:, cols],
                                          np.asarray(pred)[:, cols])["macro_f1"]
               if cols else float("nan"))
  return out


def conditional_cooccurrence(y) -> np.ndarray:
  """[N, n] 0/1 -> [n, n] p(y_b | y_a) (row a, column b); NaN rows where #(y_a) = 0."""
  y = np.asarray(y, np.float64)
  joint = y.T @ y
  single = np.diag(joint).copy()
  with np.errstate(invalid="ignore", divide="ignore"):
    p = joint / single[:, None]
  p[single == 0] = np.nan
  np.fill_diagonal(p, np.nan)
  return p


def conditional_kl(gold, pred, eps: float = 1e-6) -> float:
  """Eq. 8: sum over a != b of p^g(b|a) log(p^g(b|a) / p^p(b|a))."""
  p_g, p_p = conditional_cooccurrence(gold), conditional_cooccurrence(pred)
  take = np.nan_to_num(p_g) > 0
  p_pred = np.maximum(np.nan_to_num(p_p), eps)
  return float(np.sum(p_g[take] * np.log(p_g[take] / p_pred[take])))


def label_set_count(y) -> int:
  return len({tuple(np.flatnonzero(row)) for row in np.asarray(y)})
