"""Multi-seed aggregation and the paired significance test (paper 5.1, Table 3)."""

import json
import math
import os
import subprocess
import sys

import pytest

from laco_tf.study import multi_seed
from laco_tf.errors import InputError
from tests.conftest import write_jsonl_corpus

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
  result = subprocess.run([sys.executable, "-m", "laco_tf.study.multi_seed", "compare",
                           f"--runs_a={tmp_path / 'a'}", f"--runs_b={tmp_path / 'b'}"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
  out = json.loads(result.stdout[:result.stdout.rindex("}") + 1])
  assert out["seeds"] == [1, 2, 3]
  assert out["p_value"] == pytest.approx(1 - math.sqrt(12) / math.sqrt(14))


def test_compare_draws_the_paired_scores(tmp_path):
  _fake_seeds(tmp_path / "a", {1: 0.71, 2: 0.74})
  _fake_seeds(tmp_path / "b", {1: 0.70, 2: 0.72})
  figure = tmp_path / "paired.png"
  result = subprocess.run([sys.executable, "-m", "laco_tf.study.multi_seed", "compare",
                           f"--runs_a={tmp_path / 'a'}", f"--runs_b={tmp_path / 'b'}",
                           f"--plot_file={figure}"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
  assert f"Figure written to {figure}" in result.stdout
  import matplotlib.image  # pylint: disable=import-outside-toplevel
  assert matplotlib.image.imread(str(figure)).shape[:2] == (400, 500)  # 5 x 4 in at 100 dpi
  assert not list(tmp_path.glob("*.tmp.png"))


def test_summarize_covers_every_seed_directory_present(tmp_path):
  _fake_seeds(tmp_path, {0: 0.70, 1: 0.74})
  (tmp_path / "later" / "seed_x").mkdir(parents=True)  # Not a seed_S name: ignored.
  result = subprocess.run([sys.executable, "-m", "laco_tf.study.multi_seed", "summarize",
                           f"--output_dir={tmp_path}"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
  assert "seeds [0, 1]" in result.stdout
  with open(tmp_path / "seeds_summary.json") as f:
    summary = json.load(f)
  assert summary["test"]["micro_f1"]["values"] == {"0": 0.70, "1": 0.74}
  assert summary["test"]["micro_f1"]["mean"] == pytest.approx(0.72)
  with pytest.raises(InputError, match="no seed_S directories"):
    multi_seed.summarize(str(tmp_path / "later"))


def test_run_command_trains_each_seed_on_one_dev_split_and_summarises(tmp_path, tiny_bert):
  # No dev split: each run carves one. --dev_split_seed=0 must give both seeds the same
  # carve, so their corpus fingerprints (which hash every split) are equal.
  corpus = write_jsonl_corpus(tmp_path / "corpus", {"train": 96, "test": 32}, seed=1,
                              labels={"markets", "rates", "energy", "sports"})
  base = tmp_path / "base"
  result = subprocess.run(
      [sys.executable, "-m", "laco_tf.study.multi_seed", "run", "--seeds=1,2",
       f"--output_dir={base}", "--", f"--data_dir={corpus}", f"--bert_model={tiny_bert}",
       "--task=mltc", "--max_steps=2", "--max_seq_length=48", "--dev_split_seed=0",
       "--do_train", "--do_predict"],
      capture_output=True, text=True, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.count("carve seed 0") == 2
  with open(base / "seeds_summary.json") as f:
    summary = json.load(f)
  assert sorted(summary["test"]["micro_f1"]["values"]) == ["1", "2"]
  configs = []
  for seed in (1, 2):
    with open(base / f"seed_{seed}" / "run_config.json") as f:
      configs.append(json.load(f))
  assert [c["seed"] for c in configs] == [1, 2]
  assert configs[0]["corpus"] == configs[1]["corpus"]
