"""laco_tf/study/by_length.py: held-out micro-F1 per whole-text length bin."""

import json
import os
import subprocess
import sys

import numpy as np

from laco_tf.study import by_length

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_COMMAND = [sys.executable, "-m", "laco_tf.study.by_length"]


def test_bins_split_at_the_edges_and_score_micro_f1_within_each():
  gold = [[1, 0], [1, 1], [0, 1], [1, 0]]
  pred = [[1, 0], [1, 0], [1, 1], [0, 0]]
  lengths = [3, 4, 5, 9]  # edges 4, 8: {3, 4} | {5} | {9}
  (n0, f0), (n1, f1), (n2, f2) = by_length.micro_f1_by_length(gold, pred, lengths, [4, 8])
  assert (n0, n1, n2) == (2, 1, 1)
  assert f0 == 2 * 2 / (2 * 2 + 0 + 1)      # tp 2, fp 0, fn 1
  assert f1 == 2 * 1 / (2 * 1 + 1 + 0)      # tp 1, fp 1, fn 0
  assert f2 == 0.0                          # tp 0, fn 1
  assert by_length.micro_f1_by_length(gold, pred, lengths, [100])[1] == (0, None)
  assert by_length.bin_names([4, 8]) == ["<= 4", "5-8", "> 8"]


def _corpus_and_run(tmp_path, recorded_micro_f1):
  data = tmp_path / "data"
  data.mkdir()
  docs = [("a1", "cat", ["x"]), ("a2", "cat cat cat", ["y"]), ("a3", "dog dog dog dog", ["x"])]
  (data / "train.jsonl").write_text(
      "".join(json.dumps({"id": i, "text": t, "labels": l}) + "\n" for i, t, l in docs))
  vocab = tmp_path / "vocab.txt"
  vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\ncat\ndog\n")
  run = tmp_path / "run"
  run.mkdir()
  (run / "labels.txt").write_text("x\ny\n")
  predicted = {"a1": ["x"], "a2": ["x"], "a3": ["x"]}
  (run / "predictions_test.jsonl").write_text("".join(
      json.dumps({"id": i, "labels": l, "predicted": predicted[i]}) + "\n" for i, _, l in docs))
  (run / "eval_results_test.json").write_text(json.dumps({"micro_f1": recorded_micro_f1}))
  return data, vocab, run


def test_the_command_counts_wordpieces_of_each_story_and_checks_the_recorded_score(tmp_path):
  # Whole run: tp 2 (a1, a3), fp 1 (a2's x), fn 1 (a2's y): micro-F1 4/6.
  data, vocab, run = _corpus_and_run(tmp_path, 4 / 6)
  out = tmp_path / "out"
  done = subprocess.run([*_COMMAND, f"--data_dir={data}", "--data_format=jsonl",
                         f"--vocab={vocab}", "--edges=1,3", f"--run=M={run}", f"--out={out}"],
                        capture_output=True, text=True, check=False, cwd=_ROOT)
  assert done.returncode == 0, done.stderr
  result = json.loads((out / "by_length.json").read_text())
  assert result["bins"] == ["<= 1", "2-3", "> 3"]
  bins = result["rows"][0]["bins"]
  assert [b["documents"] for b in bins] == [1, 1, 1]   # 1, 3 and 4 wordpieces
  np.testing.assert_allclose([b["mean"] for b in bins], [100.0, 0.0, 100.0])
  assert (out / "by_length.png").stat().st_size > 0
  # A prediction file that does not give the run's recorded score is refused, not binned.
  (run / "eval_results_test.json").write_text(json.dumps({"micro_f1": 0.9}))
  done = subprocess.run([*_COMMAND, f"--data_dir={data}", "--data_format=jsonl",
                         f"--vocab={vocab}", f"--run=M={run}", f"--out={out}"],
                        capture_output=True, text=True, check=False, cwd=_ROOT)
  assert done.returncode != 0
  assert done.stderr.strip().splitlines()[-1] == (
      f"by_length.py: error: {run}: its predictions score 0.666667 micro-F1, its "
      "eval_results_test.json 0.900000")
