"""Section 5 analyses against hand-computed cases."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from laco_tf.study import analysis


def test_frequency_groups_sort_by_count_then_name_in_equal_parts():
  counts = {"a": 5, "b": 9, "c": 1, "d": 5, "e": 2, "f": 7, "g": 3}
  assert analysis.frequency_groups(counts, 4) == [["b", "f"], ["a", "d"], ["g", "e"], ["c"]]


def test_group_macro_f1_scores_each_group_separately():
  gold = np.array([[1, 0, 1], [0, 1, 1]])
  pred = np.array([[1, 0, 0], [0, 0, 1]])
  # Label x: F1 1; y: F1 0; z: P 1 R 1/2 -> F1 2/3.
  assert analysis.group_macro_f1(gold, pred, ["x", "y", "z"], [["x"], ["y", "z"]]) == \
      pytest.approx([1.0, 1 / 3])


def test_conditional_cooccurrence_matches_counts():
  y = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]])
  p = analysis.conditional_cooccurrence(y)
  assert p[0, 1] == pytest.approx(2 / 3) and p[1, 0] == pytest.approx(1.0)
  assert p[2, 0] == pytest.approx(1.0) and p[0, 2] == pytest.approx(1 / 3)
  assert np.isnan(p[1, 1])


def test_conditional_kl_equation_8_by_hand():
  gold = np.array([[1, 1], [1, 0]])   # p^g(b|a) = 1/2, p^g(a|b) = 1.
  pred = np.array([[1, 1], [1, 1]])   # p^p = 1 both ways.
  assert analysis.conditional_kl(gold, pred) == pytest.approx(0.5 * math.log(0.5))
  never = np.array([[1, 0], [1, 0]])  # b never predicted: p^p(b|a) = 0 -> eps.
  want = 0.5 * math.log(0.5 / 1e-6) + 1.0 * math.log(1.0 / 1e-6)
  assert analysis.conditional_kl(gold, never) == pytest.approx(want)
  assert analysis.conditional_kl(gold, gold) == 0.0


def test_label_set_count_counts_distinct_sets_including_empty():
  y = np.array([[1, 0], [1, 0], [0, 0], [1, 1]])
  assert analysis.label_set_count(y) == 3


def _fake_run(directory, labels, counts, gold, pred, history=None):
  directory.mkdir(parents=True)
  (directory / "labels.txt").write_text("".join(f"{l}\n" for l in labels))
  (directory / "train_label_counts.json").write_text(json.dumps(dict(zip(labels, counts))))
  with open(directory / "predictions_test.jsonl", "w") as f:
    for i, (g, p) in enumerate(zip(gold, pred)):
      f.write(json.dumps({"id": str(i), "labels": [l for l, x in zip(labels, g) if x],
                          "predicted": [l for l, x in zip(labels, p) if x],
                          "probabilities": {}}) + "\n")
  if history:
    (directory / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))


def test_analyze_command_writes_report_and_figures(tmp_path):
  labels = ["a", "b", "c", "d"]
  gold = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 0, 0]])
  pred_x = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]])
  pred_y = gold.copy()
  _fake_run(tmp_path / "x", labels, [30, 20, 10, 5], gold, pred_x,
            [{"step": 10, "dev": {"micro_f1": 0.5}}, {"step": 20, "dev": {"micro_f1": 0.7}}])
  _fake_run(tmp_path / "y", labels, [30, 20, 10, 5], gold, pred_y)
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  subprocess.run([sys.executable, "-m", "laco_tf.study.analyze", f"--run_dir={tmp_path / 'x'}",
                  f"--compare_run_dir={tmp_path / 'y'}", f"--output_dir={tmp_path / 'r'}"],
                 check=True, cwd=root, capture_output=True)
  report = (tmp_path / "r" / "report.md").read_text()
  kl = analysis.conditional_kl(gold, pred_x)
  assert f"| x | n/a | n/a | {kl:.4f} |" in report and "| y | n/a | n/a | 0.0000 |" in report
  assert f"| x | test | {analysis.label_set_count(pred_x)} | 3 | 0.5000 |" in report
  groups = analysis.group_macro_f1(gold, pred_x, labels, [["a"], ["b"], ["c"], ["d"]])
  assert "| x | " + " | ".join(f"{v:.4f}" for v in groups) + " |" in report
  for png in ("label_frequency.png", "frequency_groups.png", "convergence.png"):
    assert (tmp_path / "r" / png).stat().st_size > 1000
