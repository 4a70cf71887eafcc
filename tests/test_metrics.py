"""Metrics against scikit-learn on random cases, including labels with no positives."""

import numpy as np
import pytest
from sklearn import metrics as skm

from laco_tf.training.metrics import multilabel_metrics, ranking_metrics


@pytest.mark.parametrize("seed", range(6))
def test_metrics_match_scikit_learn(seed):
  rng = np.random.RandomState(seed)
  n_docs, n_labels = rng.randint(1, 40), rng.randint(1, 12)
  gold = (rng.rand(n_docs, n_labels) < 0.3).astype(int)
  pred = (rng.rand(n_docs, n_labels) < 0.3).astype(int)
  gold[:, 0] = 0  # A label with no gold positive.
  if n_labels > 1:
    pred[:, -1] = 0  # A label never predicted.
  ours = multilabel_metrics(gold, pred)
  for avg in ("micro", "macro"):
    assert ours[f"{avg}_precision"] == pytest.approx(
        skm.precision_score(gold, pred, average=avg, zero_division=0), abs=1e-12)
    assert ours[f"{avg}_recall"] == pytest.approx(
        skm.recall_score(gold, pred, average=avg, zero_division=0), abs=1e-12)
    assert ours[f"{avg}_f1"] == pytest.approx(
        skm.f1_score(gold, pred, average=avg, zero_division=0), abs=1e-12)
  assert ours["hamming_loss"] == pytest.approx(skm.hamming_loss(gold, pred), abs=1e-12)
  assert ours["subset_accuracy"] == pytest.approx(skm.accuracy_score(gold, pred), abs=1e-12)


def test_all_negative_prediction_scores_zero_f1_and_hamming_equal_to_density():
  gold = np.array([[1, 0, 0], [0, 1, 0]])
  result = multilabel_metrics(gold, np.zeros_like(gold))
  assert result["micro_f1"] == 0.0 and result["macro_f1"] == 0.0
  assert result["hamming_loss"] == pytest.approx(2 / 6)


def test_shape_mismatch_is_rejected():
  with pytest.raises(ValueError, match="must be equal"):
    multilabel_metrics(np.zeros([2, 3]), np.zeros([2, 4]))


def test_dev_loss_for_tensorboard_is_eq4_bce_summed_over_labels_like_sklearn():
  from sklearn.metrics import log_loss  # pylint: disable=import-outside-toplevel
  from laco_tf.training import tensorboard_logs  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  gold = rng.integers(0, 2, size=(20, 5))
  probs = rng.uniform(0.01, 0.99, size=(20, 5))
  expected = sum(log_loss(gold[:, j], probs[:, j], labels=[0, 1]) for j in range(5))
  assert tensorboard_logs.dev_bce(gold, probs) == pytest.approx(expected, rel=1e-9)


def _brute_force_ranking(gold, scores, k):
  """P@k, R@k, nDCG@k by sorting each document's (score, label) pairs by hand."""
  p, r, ndcg = [], [], []
  for g, s in zip(gold, scores):
    ranked = sorted(range(len(s)), key=lambda j: (-s[j], j))[:k]
    hits = [int(g[j]) for j in ranked]
    relevant = int(sum(g))
    p.append(sum(hits) / k)
    r.append(sum(hits) / relevant if relevant else 0.0)
    dcg = sum(h / np.log2(i + 2) for i, h in enumerate(hits))
    ideal = sum(1 / np.log2(i + 2) for i in range(min(k, relevant)))
    ndcg.append(dcg / ideal if ideal else 0.0)
  return np.mean(p), np.mean(r), np.mean(ndcg)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_metrics_match_a_brute_force_reference_and_scikit_learn_ndcg(seed):
  rng = np.random.default_rng(seed)
  gold = rng.random((40, 9)) < 0.25
  gold[0] = False  # a document without gold labels scores 0 in recall and nDCG
  scores = rng.random((40, 9))
  scores[1, :4] = 0.5  # ties: label order decides
  got = ranking_metrics(gold, scores)
  for k in (1, 3, 5):
    p, r, ndcg = _brute_force_ranking(gold, scores, k)
    assert got[f"precision_at_{k}"] == pytest.approx(p, abs=1e-12)
    assert got[f"recall_at_{k}"] == pytest.approx(r, abs=1e-12)
    assert got[f"ndcg_at_{k}"] == pytest.approx(ndcg, abs=1e-12)
    untied = np.delete(np.arange(40), 1)  # scikit-learn averages over ties instead
    assert ranking_metrics(gold[untied], scores[untied], ks=(k,))[f"ndcg_at_{k}"] == pytest.approx(
        skm.ndcg_score(gold[untied], scores[untied], k=k), abs=1e-12)


def test_ranking_metrics_of_a_hand_computed_document():
  # Gold {0, 2}; ranking 2, 1, 0: a hit at ranks 1 and 3.
  got = ranking_metrics([[1, 0, 1]], [[0.2, 0.5, 0.9]], ks=(1, 3))
  ideal = 1 + 1 / np.log2(3)
  assert got == pytest.approx({"precision_at_1": 1.0, "recall_at_1": 0.5, "ndcg_at_1": 1.0,
                               "precision_at_3": 2 / 3, "recall_at_3": 1.0,
                               "ndcg_at_3": (1 + 1 / np.log2(4)) / ideal})
