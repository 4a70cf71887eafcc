"""Multi-label metrics of paper 4.2 and Table 6, one implementation for every caller.

Precision, recall and F1 with no predicted (or no gold) positives count as 0, as
scikit-learn does with ``zero_division=0``.
"""

import numpy as np


def _safe_div(num, den):
  num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
  return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _f1(p, r):
  return _safe_div(2 * p * r, p + r)


def multilabel_metrics(gold, pred) -> dict:
  """Scores [N, n] 0/1 predictions against [N, n] 0/1 gold labels.

  Returns hamming_loss, micro/macro precision, recall, f1 and subset_accuracy.
  Macro averages are over all n labels, including labels with no gold positives.
  """
  gold, pred = np.asarray(gold).astype(bool), np.asarray(pred).astype(bool)
  if gold.shape != pred.shape or gold.ndim != 2:
    raise ValueError(f"gold {gold.shape} and pred {pred.shape} must be equal [N, n] shapes")
  tp = (gold & pred).sum(0)
  fp = (~gold & pred).sum(0)
  fn = (gold & ~pred).sum(0)
  micro_p = float(_safe_div(tp.sum(), tp.sum() + fp.sum()))
  micro_r = float(_safe_div(tp.sum(), tp.sum() + fn.sum()))
  per_p, per_r = _safe_div(tp, tp + fp), _safe_div(tp, tp + fn)
  n_docs = max(gold.shape[0], 1)
  return {
      "hamming_loss": float((gold != pred).mean()) if gold.size else 0.0,
      "micro_precision": micro_p,
      "micro_recall": micro_r,
      "micro_f1": float(_f1(micro_p, micro_r)),
      "macro_precision": float(per_p.mean()) if per_p.size else 0.0,
      "macro_recall": float(per_r.mean()) if per_r.size else 0.0,
      "macro_f1": float(_f1(per_p, per_r).mean()) if per_p.size else 0.0,
      "subset_accuracy": float((gold == pred).all(1).sum() / n_docs),
  }


RANKING_KS = (1, 3, 5)

# Dev scores that may choose the best checkpoint and stop training early (higher is better).
SELECTION_METRICS = ("micro_f1", "macro_f1", "subset_accuracy",
                     *(f"{m}_at_{k}" for m in ("precision", "recall", "ndcg") for k in RANKING_KS))


def ranking_metrics(gold, scores, ks=RANKING_KS) -> dict:
  """Precision@k, recall@k and nDCG@k of [N, n] scores against [N, n] 0/1 gold labels,
  averaged over documents (the extreme-classification definitions, as LibMultiLabel
  reports them; our addition to the paper's metrics).

  The top k of a document are its k highest scores, equal scores in label order.
  P@k = hits / k; R@k = hits / |gold| (0 without gold labels); nDCG@k = sum over hits at
  rank r of 1 / log2(r + 1), divided by the same sum over ranks 1..min(k, |gold|) (0 without
  gold labels). Keys: ``precision_at_K``, ``recall_at_K``, ``ndcg_at_K`` for each K in ks.
  """
  gold, scores = np.asarray(gold).astype(bool), np.asarray(scores, np.float64)
  if gold.shape != scores.shape or gold.ndim != 2:
    raise ValueError(f"gold {gold.shape} and scores {scores.shape} must be equal [N, n] shapes")
  out = {}
  if gold.shape[0] == 0:
    return {f"{m}_at_{k}": 0.0 for k in ks for m in ("precision", "recall", "ndcg")}
  order = np.argsort(-scores, axis=1, kind="stable")[:, :max(ks)]
  hits = np.take_along_axis(gold, order, axis=1)            # [N, max k], rank order
  discounts = 1.0 / np.log2(np.arange(2, order.shape[1] + 2))
  relevant = gold.sum(1)
  for k in ks:
    found = hits[:, :k].sum(1)
    ideal = np.array([discounts[:min(k, r)].sum() for r in relevant])
    out[f"precision_at_{k}"] = float((found / k).mean())
    out[f"recall_at_{k}"] = float(_safe_div(found, relevant).mean())
    out[f"ndcg_at_{k}"] = float(_safe_div((hits[:, :k] * discounts[:k]).sum(1), ideal).mean())
  return out
