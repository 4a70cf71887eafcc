"""laco_tf.study.facets_table: per-facet, present-label and frequency-group scores of runs."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from sklearn import metrics as skm

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LABELS = ["topics:acq", "topics:earn", "places:usa", "places:uk", "plain"]
_COUNTS = {"topics:acq": 9, "topics:earn": 7, "places:usa": 5, "places:uk": 3, "plain": 1}
_GOLD = np.array([[1, 0, 1, 0, 0], [0, 1, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 1, 1, 0]], bool)
_PRED = np.array([[1, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 1, 0, 0, 0], [0, 0, 1, 1, 1]], bool)


def _run_dir(tmp_path):
  d = tmp_path / "run"
  d.mkdir()
  (d / "labels.txt").write_text("".join(l + "\n" for l in _LABELS))
  (d / "train_label_counts.json").write_text(json.dumps(_COUNTS))
  rng = np.random.default_rng(0)
  lines = []
  for i, (g, p) in enumerate(zip(_GOLD, _PRED)):
    probs = rng.random(len(_LABELS))
    lines.append(json.dumps({
        "id": str(i), "labels": [l for l, x in zip(_LABELS, g) if x],
        "predicted": [l for l, x in zip(_LABELS, p) if x],
        "probabilities": dict(zip(_LABELS, probs.tolist()))}) + "\n")
  for split in ("dev", "test"):
    (d / f"predictions_{split}.jsonl").write_text("".join(lines))
  return d


def _table(*args):
  return subprocess.run([sys.executable, "-m", "laco_tf.study.facets_table", *args], cwd=_ROOT,
                        capture_output=True, text=True, check=False)


def test_scores_per_facet_present_labels_and_groups_match_scikit_learn(tmp_path):
  d, out = _run_dir(tmp_path), tmp_path / "out"
  result = _table("--run", f"m={d}", f"--output_dir={out}")
  assert result.returncode == 0, result.stderr
  (row,) = json.loads((out / "facets.json").read_text())
  (seed,) = row["seeds"]
  test = seed["test"]
  assert seed["facets"] == ["-", "places", "topics"]

  def f1(cols, average):
    return 100 * skm.f1_score(_GOLD[:, cols], _PRED[:, cols], average=average, zero_division=0)
  assert test["micro_f1"] == pytest.approx(f1(list(range(5)), "micro"))
  assert test["macro_f1"] == pytest.approx(f1(list(range(5)), "macro"))
  # "plain" has no gold story: left out of the present-label macro-F1.
  assert test["macro_f1_present"] == pytest.approx(f1([0, 1, 2, 3], "macro"))
  assert test["topics/micro_f1"] == pytest.approx(f1([0, 1], "micro"))
  assert test["places/macro_f1"] == pytest.approx(f1([2, 3], "macro"))
  assert test["-/micro_f1"] == 0.0
  # Four frequency groups of five labels: [acq, earn], [usa], [uk], [plain].
  assert seed["group_sizes"] == [2, 1, 1, 1]
  assert test["group_1/macro_f1"] == pytest.approx(f1([0, 1], "macro"))
  assert test["group_3/macro_f1"] == pytest.approx(100 * skm.f1_score(_GOLD[:, 3], _PRED[:, 3]))
  assert "| m | 1 |" in result.stdout and (out / "facets.png").stat().st_size > 0


def test_a_run_without_predictions_is_one_line_naming_the_file(tmp_path):
  d = _run_dir(tmp_path)
  (d / "predictions_test.jsonl").unlink()
  result = _table("--run", f"m={d}", f"--output_dir={tmp_path / 'out'}")
  assert result.returncode != 0
  assert result.stderr.strip().splitlines() == [
      f"laco_tf.study.facets_table: error: {d / 'predictions_test.jsonl'} is missing or "
      "unreadable: "
      "No such file or directory (run with --do_predict)"]


def test_keep_adds_a_later_seed_to_its_model_and_keeps_seeds_whose_runs_are_gone(tmp_path):
  first, out = _run_dir(tmp_path), tmp_path / "out"
  assert _table("--run", f"m={first}", "--run", f"other={first}",
                f"--output_dir={out}").returncode == 0
  kept = json.loads((out / "facets.json").read_text())
  # The first run is gone; its stored seed is doctored so that a rescore would show.
  kept[0]["seeds"][0]["test"]["micro_f1"] = 12.5
  stored = tmp_path / "kept.json"
  stored.write_text(json.dumps(kept))
  shutil.rmtree(first)
  (tmp_path / "later").mkdir()
  later_run = _run_dir(tmp_path / "later")
  result = _table("--run", f"m={later_run}", f"--keep={stored}", f"--output_dir={out}")
  assert result.returncode == 0, result.stderr
  rows = json.loads((out / "facets.json").read_text())
  assert [r["model"] for r in rows] == ["m", "other"]
  assert rows[0]["dirs"] == [str(first), str(later_run)]
  assert [s["test"]["micro_f1"] for s in rows[0]["seeds"]] == [
      12.5, kept[1]["seeds"][0]["test"]["micro_f1"]]
  assert rows[1] == kept[1]
  assert "| m | 2 |" in result.stdout and "| other | 1 |" in result.stdout


def test_keep_rescores_a_directory_named_again_in_place(tmp_path):
  d, out = _run_dir(tmp_path), tmp_path / "out"
  assert _table("--run", f"m={d}", f"--output_dir={out}").returncode == 0
  kept = json.loads((out / "facets.json").read_text())
  kept[0]["seeds"][0]["test"]["micro_f1"] = 12.5
  stored = tmp_path / "kept.json"
  stored.write_text(json.dumps(kept))
  # The same directory spelled with a trailing separator is the same seed.
  result = _table("--run", f"m={d}{os.sep}", f"--keep={stored}", f"--output_dir={out}")
  assert result.returncode == 0, result.stderr
  (row,) = json.loads((out / "facets.json").read_text())
  assert row["dirs"] == [str(d)]
  assert row["seeds"][0]["test"]["micro_f1"] == pytest.approx(
      100 * skm.f1_score(_GOLD, _PRED, average="micro"))


def test_a_keep_file_that_is_not_a_facets_table_is_one_line(tmp_path):
  d, bad = _run_dir(tmp_path), tmp_path / "bad.json"
  bad.write_text(json.dumps([{"model": "m"}]))
  result = _table("--run", f"m={d}", f"--keep={bad}", f"--output_dir={tmp_path / 'out'}")
  assert result.returncode != 0
  (line,) = result.stderr.strip().splitlines()
  assert line.startswith(f"laco_tf.study.facets_table: error: --keep={bad}: expected a "
                         "facets.json written by this tool")
  assert not (tmp_path / "out").exists()
