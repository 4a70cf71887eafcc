"""--ema_decay: the average's values, its swap, mirrored replicas, and a run that uses it."""

import json

import numpy as np
import pytest
import tensorflow as tf

from laco_tf import run_dir, run_settings, runner
from laco_tf.errors import InputError
from laco_tf.training import distribution, weight_averaging
from tests.test_end_to_end import tiny_options
from tests.test_flags import _mark_trained


def _by_hand(start, trajectory, decay):
  """The average after each step of `trajectory`, by the module docstring's formula."""
  average, out = np.array(start, np.float64), []
  for t, weights in enumerate(trajectory, start=1):
    d = min(decay, (1 + t) / (10 + t))
    average = d * average + (1 - d) * np.asarray(weights, np.float64)
    out.append(average.copy())
  return out


def test_average_follows_the_capped_decay_step_by_step():
  rng = np.random.default_rng(0)
  start = rng.normal(size=(3, 2)).astype(np.float32)
  trajectory = rng.normal(size=(30, 3, 2)).astype(np.float32)
  variable = tf.Variable(start)
  average = weight_averaging.WeightAverage([variable], decay=0.75)
  expected = _by_hand(start, trajectory, 0.75)
  for t, weights in enumerate(trajectory, start=1):
    variable.assign(weights)
    average.update([variable], t)
    np.testing.assert_allclose(average.averages[0].numpy(), expected[t - 1], rtol=1e-5,
                               atol=1e-6)
  # The cap binds early on (2/11 after step 1), the decay from step 26 on (27/36 = 0.75).
  np.testing.assert_allclose([float(weight_averaging.decay_at(0.75, t)) for t in (1, 25, 27)],
                             [2 / 11, 26 / 35, 0.75], rtol=1e-6)


def test_swap_exchanges_weights_and_averages_and_twice_restores_both():
  weights = tf.Variable([1.0, 2.0])
  average = weight_averaging.WeightAverage([weights], decay=0.5)
  weights.assign([5.0, 6.0])
  average.swap([weights])
  np.testing.assert_array_equal(weights.numpy(), [1.0, 2.0])
  np.testing.assert_array_equal(average.averages[0].numpy(), [5.0, 6.0])
  average.swap([weights])
  np.testing.assert_array_equal(weights.numpy(), [5.0, 6.0])
  np.testing.assert_array_equal(average.averages[0].numpy(), [1.0, 2.0])


def test_decay_outside_zero_one_is_refused():
  with pytest.raises(ValueError, match=r"decay=1.0: expected a number in \(0, 1\)"):
    weight_averaging.WeightAverage([tf.Variable(1.0)], decay=1.0)


def test_mirrored_replicas_hold_the_same_average_as_one_device():
  strategy = distribution.mirrored_strategy(["/cpu:0", "/cpu:1"])
  with strategy.scope():
    variable = tf.Variable([1.0, -1.0])
    average = weight_averaging.WeightAverage([variable], decay=0.9)

  @tf.function
  def step(t, value):
    variable.assign(value)
    average.update([variable], t)

  for t, value in enumerate(([3.0, 0.0], [2.0, 4.0], [0.5, 0.5]), start=1):
    step(tf.constant(t, tf.int64), tf.constant(value))
  expected = _by_hand([1.0, -1.0], [[3.0, 0.0], [2.0, 4.0], [0.5, 0.5]], 0.9)[-1]
  replicas = strategy.experimental_local_results(average.averages[0])
  assert len(replicas) == 2
  for value in replicas:
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-6)


def _checkpoint_values(directory, prefix):
  """{name: value} of the variables under `prefix` in the latest checkpoint of `directory`."""
  path = tf.train.latest_checkpoint(directory)
  return {name: tf.train.load_variable(path, name)
          for name, _ in tf.train.list_variables(path) if name.startswith(prefix)}


def _model_weights(directory):
  return _checkpoint_values(directory, "model/")


def test_a_run_with_ema_trains_the_same_weights_and_keeps_their_average_as_best(
    tmp_path, tiny_bert, tiny_corpus):
  # A low threshold: dev scores above 0 (and a "best") after a few steps. The decay 0.5
  # binds from step 8 on (9/18), so that its value, not only the cap, is exercised.
  options = dict(task="clcp", max_steps=12, eval_every_steps=12, do_predict=False,
                 threshold=0.2, ema_decay=0.5)
  plain_dir, ema_dir, resumed_dir = tmp_path / "plain", tmp_path / "ema", tmp_path / "resumed"
  runner.run(tiny_options(tiny_corpus, tiny_bert, plain_dir, **{**options, "ema_decay": 0.0}))
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, ema_dir, **options))
  # Training never reads the average: the weights after 12 steps are the plain run's.
  plain = _model_weights(str(plain_dir / "checkpoints"))
  trained = _model_weights(str(ema_dir / "checkpoints"))
  assert plain.keys() == trained.keys() and len(plain) > 10
  for name, value in plain.items():
    np.testing.assert_array_equal(trained[name], value, err_msg=name)
  # The only evaluation (step 12) is "best", and "best" holds the average, not the weights.
  assert summary["train"]["best_step"] == 12
  averages = _checkpoint_values(str(ema_dir / "checkpoints"), "weight_average/")
  best = _model_weights(str(ema_dir / "best"))
  assert len(averages) > 10
  for name, average in averages.items():
    assert any(np.shape(w) == np.shape(average) and np.array_equal(w, average)
               for w in best.values()), name
  changed = [n for n in best if not np.array_equal(best[n], trained[n])]
  assert len(changed) > 10  # the average is not the last step's weights
  # Dev was scored with the averaged weights: evaluating "best" again gives its score.
  with open(ema_dir / "history.jsonl") as f:
    scored = json.loads(f.readlines()[-1])["dev"]
  again = runner.run(tiny_options(tiny_corpus, tiny_bert, ema_dir,
                                  **{**options, "do_train": False}))
  assert again["eval_dev"]["micro_f1"] == pytest.approx(scored["micro_f1"], abs=1e-12)
  # Eleven steps, then the twelfth on a resume: step 12 moved the average of step 11
  # halfway (decay 0.5) toward the weights of step 12, and gave the average of the run
  # that took twelve steps in one go.
  first = runner.run(tiny_options(tiny_corpus, tiny_bert, resumed_dir,
                                  **{**options, "max_steps": 11}))
  assert first["train"]["best_step"] == 11
  average_11 = _model_weights(str(resumed_dir / "best"))
  runner.run(tiny_options(tiny_corpus, tiny_bert, resumed_dir, **options))
  for name, value in best.items():
    np.testing.assert_allclose(value, 0.5 * average_11[name] + 0.5 * trained[name],
                               rtol=1e-5, atol=1e-7, err_msg=name)
  resumed = _checkpoint_values(str(resumed_dir / "checkpoints"), "weight_average/")
  for name, value in averages.items():
    np.testing.assert_array_equal(resumed[name], value, err_msg=name)
  with open(resumed_dir / "run_config.json") as f:
    assert json.load(f)["ema_decay"] == 0.5
  with pytest.raises(Exception, match=r"ema_decay: 0.5 -> 0.9"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, resumed_dir, **{**options, "ema_decay": 0.9}))


def test_a_run_recorded_before_the_average_resumes_only_without_it(tmp_path):
  opts = run_settings.RunOptions(data_dir="d", output_dir=str(tmp_path))
  assert opts.ema_decay == 0.999  # the default
  run_dir.claim_output_dir(opts, {"corpus": "abc"})
  _mark_trained(tmp_path)
  path = tmp_path / run_settings.RUN_CONFIG
  recorded = json.loads(path.read_text())
  del recorded["ema_decay"]  # as written before the option existed: no average was kept
  path.write_text(json.dumps(recorded))
  with pytest.raises(InputError, match=r"\(ema_decay: 0.0 -> 0.999\); to continue it, pass "
                     r"--ema_decay=0.0; "):
    run_dir.claim_output_dir(opts, {"corpus": "abc"})
  run_dir.claim_output_dir(run_settings.RunOptions(data_dir="d", output_dir=str(tmp_path),
                                                        ema_decay=0.0), {"corpus": "abc"})
