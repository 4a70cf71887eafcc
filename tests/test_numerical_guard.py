"""Numerical guards: non-finite flags refused, a diverging run stops with one line and
leaves no result file, export or "best" checkpoint made from NaN weights."""

import os

import numpy as np
import pytest

from laco_tf import results, run_settings, runner
from laco_tf.errors import InputError, NonFiniteError
from tests.test_end_to_end import tiny_options


@pytest.mark.parametrize("flag", ["learning_rate", "head_learning_rate", "gamma", "threshold",
                                  "weight_decay"])
@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_finite_flag_values_are_refused(flag, value):
  opts = run_settings.RunOptions(data_dir="d", output_dir="o", **{flag: value})
  with pytest.raises(InputError, match=rf"^--{flag}={value}: expected a finite number$"):
    run_settings.validate(opts)


def test_diverging_run_stops_at_the_step_without_saving_or_exporting(tmp_path, tiny_bert,
                                                                     tiny_corpus):
  opts = tiny_options(tiny_corpus, tiny_bert, tmp_path, task="mltc", learning_rate=1e30,
                      head_learning_rate=1e30, max_steps=12, eval_every_steps=6,
                      do_export=True)
  with pytest.raises(NonFiniteError, match=r"^step \d+: training diverged \(mlc loss .*"
                     r"gradient norm .*\); stopped without saving, no checkpoint was saved; "
                     r"lower --learning_rate / --head_learning_rate$"):
    runner.run(opts)
  assert not os.path.exists(tmp_path / "checkpoints")
  assert not os.path.exists(tmp_path / "best")
  assert not os.path.exists(tmp_path / "export")
  assert not any(n.startswith(("eval_results", "predictions")) for n in os.listdir(tmp_path))


def test_result_files_refuse_non_finite_probabilities(tmp_path):
  probs = np.array([[0.2, np.nan]])
  with pytest.raises(NonFiniteError, match=r"^dev: non-finite probabilities"):
    results.write_results(str(tmp_path), "dev", [None], ["a", "b"], np.zeros((1, 2)), probs,
                          0.5)
  assert os.listdir(tmp_path) == []
