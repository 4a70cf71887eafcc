"""laco_tf/study/heldout_table.py: decision rules scored from saved probabilities, kept rows."""

import json
import os
import subprocess
import sys

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_COMMAND = [sys.executable, "-m", "laco_tf.study.heldout_table"]

# Two labels; the first document's probabilities clear no 0.5 threshold.
_ROWS = [{"id": "1", "labels": ["a"], "predicted": [], "probabilities": {"a": 0.4, "b": 0.1}},
         {"id": "2", "labels": ["b"], "predicted": ["a", "b"],
          "probabilities": {"a": 0.7, "b": 0.6}}]


def _run_dir(tmp_path, name="run"):
  d = tmp_path / name
  d.mkdir()
  (d / "labels.txt").write_text("a\nb\n")
  for split in ("dev", "test"):
    (d / f"predictions_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _ROWS))
  return d


def _table(*args):
  return subprocess.run([*_COMMAND, *args], capture_output=True, text=True, check=False,
                        cwd=_ROOT)


def test_rules_from_saved_probabilities_match_hand_computed_scores(tmp_path):
  d = _run_dir(tmp_path)
  out = tmp_path / "out"
  result = _table("--run", f"m={d}", "--rules=fixed,fixed+alo", f"--out={out}")
  assert result.returncode == 0, result.stderr
  rows = {r["rule"]: r for r in json.loads((out / "heldout.json").read_text())}
  # fixed 0.5: TP b, FP a (doc 2), FN a (doc 1): micro P = R = 1/2; label a F1 0, b F1 1.
  assert rows["fixed"]["test_micro_f1"] == pytest.approx([50.0])
  assert rows["fixed"]["test_macro_f1"] == pytest.approx([50.0])
  # at least one: doc 1 gets its top label a (a hit): micro P 2/3, R 1 -> F1 0.8;
  # label a: P 1/2, R 1 -> 2/3; label b: 1 -> macro 5/6.
  assert rows["fixed, at least one"]["test_micro_f1"] == pytest.approx([80.0])
  assert rows["fixed, at least one"]["test_macro_f1"] == pytest.approx([100 * 5 / 6])
  assert rows["fixed"]["seeds"] == 1 and (out / "heldout.png").is_file()


def test_kept_rows_stay_in_order_and_recomputed_rows_replace_them(tmp_path):
  d = _run_dir(tmp_path)
  kept = [{"model": "old", "rule": "fixed", "seeds": 1, "dev_micro_f1": [1.0],
           "dev_macro_f1": [2.0], "test_micro_f1": [3.0], "test_macro_f1": [4.0]},
          {"model": "m", "rule": "fixed", "seeds": 1, "dev_micro_f1": [0.0],
           "dev_macro_f1": [0.0], "test_micro_f1": [0.0], "test_macro_f1": [0.0]}]
  keep = tmp_path / "kept.json"
  keep.write_text(json.dumps(kept))
  out = tmp_path / "out"
  result = _table("--run", f"m={d}", "--rules=fixed,fixed+alo", f"--keep={keep}", f"--out={out}")
  assert result.returncode == 0, result.stderr
  rows = json.loads((out / "heldout.json").read_text())
  assert [(r["model"], r["rule"]) for r in rows] == [
      ("old", "fixed"), ("m", "fixed"), ("m", "fixed, at least one")]
  assert rows[0] == kept[0] and rows[1]["test_micro_f1"] == pytest.approx([50.0])


def test_a_prediction_line_without_every_probability_is_a_one_line_error(tmp_path):
  d = _run_dir(tmp_path)
  with open(d / "predictions_test.jsonl", "a", encoding="utf-8") as f:
    f.write(json.dumps({"id": "3", "labels": [], "probabilities": {"a": 0.1}}) + "\n")
  result = _table("--run", f"m={d}", "--rules=fixed", f"--out={tmp_path / 'out'}")
  assert result.returncode != 0
  assert "predictions_test.jsonl:3: expected a prediction line" in result.stderr
  assert not (tmp_path / "out" / "heldout.json").exists()
