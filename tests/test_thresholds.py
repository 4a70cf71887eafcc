"""Decision rules: tuned thresholds against a brute-force search, and their use everywhere."""

import itertools
import json

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import f1_score

from laco_tf import runner
from laco_tf.training import thresholds
from tests.test_end_to_end import tiny_options


def _data(seed=0, docs=200, labels=6):
  rng = np.random.default_rng(seed)
  gold = rng.random((docs, labels)) < np.linspace(0.02, 0.4, labels)
  # Informative but imperfect probabilities, each label on its own scale.
  probs = np.clip(0.35 * gold + rng.random((docs, labels)) * np.linspace(0.3, 0.9, labels),
                  0, 1)
  return gold, probs


def _closest_best(values, scores, prefer=0.5):
  best = max(scores)
  return min((abs(v - prefer), v) for v, s in zip(values, scores) if s == best)[1]


def test_global_threshold_is_the_grid_value_with_the_best_dev_micro_f1():
  gold, probs = _data()
  got = thresholds.tune(gold, probs, "global")
  scores = [f1_score(gold, probs > t, average="micro", zero_division=0)
            for t in thresholds.GRID]
  assert np.all(got == _closest_best(thresholds.GRID, scores))
  assert f1_score(gold, probs > got, average="micro") >= f1_score(gold, probs > 0.5,
                                                                  average="micro")


def test_per_label_thresholds_maximise_each_label_f1_and_rare_labels_keep_the_global_one():
  gold, probs = _data(seed=1)
  gold[:, 0] = False
  gold[:3, 0] = True  # 3 dev positives: below MIN_DEV_POSITIVES, so label 0 is not tuned.
  got = thresholds.tune(gold, probs, "per_label")
  global_t = thresholds.tune(gold, probs, "global")[0]
  assert got[0] == global_t
  for j in range(1, gold.shape[1]):
    scores = [f1_score(gold[:, j], probs[:, j] > t, zero_division=0) for t in thresholds.GRID]
    assert got[j] == _closest_best(thresholds.GRID, scores), j
  assert f1_score(gold, probs > got, average="macro", zero_division=0) >= \
      f1_score(gold, probs > global_t, average="macro", zero_division=0)


@pytest.mark.parametrize("seed", [4, 6, 31])
def test_per_label_thresholds_with_at_least_one_match_a_brute_force_search_under_the_rule(
    seed, monkeypatch):
  """Tuned for the decision that is served: on a small grid, the per-label thresholds give
  the best dev macro-F1 under the at-least-one rule of all grid combinations (thresholds
  tuned label by label without the rule fall short on these cases)."""
  grid = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
  monkeypatch.setattr(thresholds, "GRID", grid)
  rng = np.random.default_rng(seed)
  gold = rng.random((25, 3)) < 0.35
  gold[np.arange(25), rng.integers(0, 3, 25)] = True  # every document has a label
  probs = np.clip(0.3 * gold + rng.random((25, 3)) * 0.6, 0, 1).astype(np.float32)

  def served_macro_f1(t):
    return f1_score(gold, thresholds.decide(probs, t, at_least_one=True), average="macro",
                    zero_division=0)
  brute = max(served_macro_f1(np.array(t)) for t in itertools.product(grid, repeat=3))
  got = thresholds.tune(gold, probs, "per_label", at_least_one=True, min_positives=1)
  assert served_macro_f1(got) == pytest.approx(brute, abs=1e-12)
  without_rule = thresholds.tune(gold, probs, "per_label", min_positives=1)
  assert served_macro_f1(without_rule) < brute - 0.01


def test_fixed_keeps_the_threshold_and_no_signal_keeps_the_paper_rule():
  gold, probs = _data()
  assert np.all(thresholds.tune(gold, probs, "fixed", threshold=0.3) == 0.3)
  # Every threshold scores the same (no positives predicted or present): 0.5 stays.
  assert np.all(thresholds.tune(np.zeros((4, 3)), np.zeros((4, 3)), "per_label") == 0.5)
  with pytest.raises(ValueError, match="threshold strategy"):
    thresholds.tune(gold, probs, "best")


def test_at_least_one_gives_an_empty_document_its_most_probable_label_only():
  probs = np.array([[0.1, 0.4, 0.3], [0.9, 0.2, 0.7], [0.0, 0.0, 0.0]])
  plain = thresholds.decide(probs, 0.5)
  assert plain.tolist() == [[False, False, False], [True, False, True], [False] * 3]
  forced = thresholds.decide(probs, [0.5, 0.5, 0.5], at_least_one=True)
  assert forced.tolist() == [[False, True, False], [True, False, True], [True, False, False]]


@pytest.mark.slow
def test_a_run_writes_its_rule_and_predictions_and_the_export_use_it(tmp_path, tiny_bert,
                                                                     tiny_corpus):
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task="mltc",
                                    max_steps=4, threshold_strategy="per_label",
                                    at_least_one_label=True, do_export=True))
  with open(tmp_path / "thresholds.json") as f:
    rule = json.load(f)
  assert rule["strategy"] == "per_label" and rule["at_least_one"] is True
  labels = (tmp_path / "labels.txt").read_text().split()
  assert list(rule["thresholds"]) == labels
  t = np.array([rule["thresholds"][l] for l in labels])
  assert summary["decision_rule"] == {"strategy": "per_label", "at_least_one": True}
  for split in ("dev", "test"):
    with open(tmp_path / f"predictions_{split}.jsonl") as f:
      rows = [json.loads(line) for line in f]
    probs = np.array([[r["probabilities"][l] for l in labels] for r in rows])
    want = thresholds.decide(probs, t, at_least_one=True)
    assert [sorted(r["predicted"]) for r in rows] == \
        [sorted(l for l, x in zip(labels, w) if x) for w in want]
    assert all(r["predicted"] for r in rows)  # at least one label each
  with open(tiny_corpus + "/test.jsonl") as f:
    texts = [json.loads(line)["text"] for line in f]
  out = tf.saved_model.load(summary["export_dir"]).signatures["serving_default"](
      text=tf.constant(texts))
  np.testing.assert_array_equal(
      out["labels"].numpy(),
      thresholds.decide(out["scores"].numpy(), t.astype(np.float32), True))
  assert out["labels"].dtype == tf.bool and out["labels"].shape == (len(texts), len(labels))
