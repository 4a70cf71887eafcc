"""Multi-seed aggregation and the paired significance test (paper 5.1, Table 3)."""

import json
import math
import os
import subprocess
import sys

import pytest

from laco_tf import multi_seed
from laco_tf.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fake_seeds(base, scores):
  for seed, f1 in scores.items():
    d = base / f"seed_{seed}"
    d.mkdir(parents=True)
    (d / "eval_results_test.json").write_text(json.dumps({"micro_f1": f1, "threshold": 0.5,
                                                          "checkpoint": "ckpt-1"}))


def test_aggregate_gives_mean_and_sample_std(tmp_path):
  _fake_seeds(tmp_path, {1: 0.70, 2: 0.74, 3: 0.72})
  summary = multi_seed.aggregate(multi_seed.seed_dirs(str(tmp_path)), "test")
  assert summary["micro_f1"]["mean"] == pytest.approx(0.72)
  assert summary["micro_f1"]["std"] == pytest.approx(0.02)  # ddof=1
  assert "checkpoint" not in summary


def test_paired_t_test_matches_the_closed_form_for_three_seeds():
  # Differences 0.1, 0.3, 0.2: t = 0.2 / (0.1 / sqrt 3) = sqrt 12; with 2 degrees of
  # freedom the two-sided p-value is 1 - t / sqrt(t^2 + 2).
  result = multi_seed.paired_test([1.1, 2.3, 3.2], [1.0, 2.0, 3.0])
  assert result["t"] == pytest.approx(math.sqrt(12))
  assert result["p_value"] == pytest.approx(1 - math.sqrt(12) / math.sqrt(14))
  with pytest.raises(InputError, match="same seeds on both sides"):
    multi_seed.paired_test([1.0], [1.0])


def test_compare_command_pairs_common_seeds(tmp_path):
  _fake_seeds(tmp_path / "a", {1: 1.1, 2: 2.3, 3: 3.2, 4: 9.0})
  _fake_seeds(tmp_path / "b", {1: 1.0, 2: 2.0, 3: 3.0})
  result = subprocess.run([sys.executable, "-m", "laco_tf.multi_seed", "compare",
                           f"--runs_a={tmp_path / 'a'}", f"--runs_b={tmp_path / 'b'}"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
  out = json.loads(result.stdout)
  assert out["seeds"] == [1, 2, 3]
  assert out["p_value"] == pytest.approx(1 - math.sqrt(12) / math.sqrt(14))


def test_run_command_trains_each_seed_and_summarises(tmp_path, tiny_bert, tiny_corpus):
  base = tmp_path / "base"
  result = subprocess.run(
      [sys.executable, "-m", "laco_tf.multi_seed", "run", "--seeds=1,2",
       f"--output_dir={base}", "--", f"--data_dir={tiny_corpus}", f"--bert_model={tiny_bert}",
       "--task=mltc", "--max_steps=2", "--max_seq_length=48", "--do_train", "--do_predict"],
      capture_output=True, text=True, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
  assert result.returncode == 0, result.stderr[-2000:]
  with open(base / "seeds_summary.json") as f:
    summary = json.load(f)
  assert sorted(summary["test"]["micro_f1"]["values"]) == ["1", "2"]
  with open(base / "seed_2" / "run_config.json") as f:
    assert json.load(f)["seed"] == 2
