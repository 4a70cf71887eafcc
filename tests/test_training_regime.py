"""Training-regime options: schedule values, AdamW, layer-wise decay, long-tail losses."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from laco_tf import runner
from laco_tf.modeling import losses
from laco_tf.training import optimization
from tests.test_end_to_end import tiny_options


def test_schedule_warms_up_linearly_then_decays_to_zero():
  schedule = optimization.make_schedule(1e-3, total_steps=100, warmup_proportion=0.1)
  values = [float(schedule(s)) for s in (0, 5, 10, 55, 100, 120)]
  np.testing.assert_allclose(values, [0.0, 5e-4, 1e-3, 5e-4, 0.0, 0.0], atol=1e-9)


def test_schedule_without_warmup_is_the_papers_constant_rate():
  schedule = optimization.make_schedule(5e-5, total_steps=100, warmup_proportion=0.0)
  np.testing.assert_allclose([float(schedule(s)) for s in (0, 50, 100)], [5e-5] * 3)


def _steps(optimizer, variables, grads_per_step):
  for grads in grads_per_step:
    optimizer.apply_gradients(zip(grads, variables))
  return [v.numpy() for v in variables]


def test_adamw_without_decay_or_factors_is_keras_adam_dense_and_sparse():
  rng = np.random.default_rng(0)
  start = [rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(5, 2)).astype(np.float32)]
  grads = [(tf.constant(rng.normal(size=(4, 3)), tf.float32),
            tf.IndexedSlices(tf.constant(rng.normal(size=(2, 2)), tf.float32),
                             tf.constant([1, 3]), tf.constant([5, 2])))
           for _ in range(3)]
  ours = _steps(optimization.AdamW(1e-2), [tf.Variable(s) for s in start], grads)
  keras = _steps(tf_keras.optimizers.Adam(1e-2, epsilon=1e-6),
                 [tf.Variable(s) for s in start], grads)
  for a, b in zip(ours, keras):
    np.testing.assert_array_equal(a, b)


def test_layer_depths_and_multipliers_follow_the_encoder_layers():
  from laco_tf.modeling.bert_encoder import BertEncoder, BertEncoderConfig
  encoder = BertEncoder(BertEncoderConfig(vocab_size=30, hidden_size=8, num_hidden_layers=2,
                                          num_attention_heads=2, intermediate_size=16))
  encoder.create_variables()
  names = [v.name for v in encoder.weights] + ["laco_model/cross_attention/kernel:0"]
  # 5 embedding variables, 16 per block, then a head: the top layer's rate.
  assert optimization.layer_depths(names) == [0] * 5 + [1] * 16 + [2] * 16 + [2]
  np.testing.assert_allclose(optimization.layerwise_multipliers(names, 0.8),
                             [0.64] * 5 + [0.8] * 16 + [1.0] * 17)


def test_layer_decay_scales_each_variables_first_adam_step():
  # Adam's first step moves a weight by lr * sqrt(1 - b2) / (1 - b1) * m / (sqrt(v) + eps)
  # with m = (1 - b1) g and v = (1 - b2) g^2: lr * factor * |g| / (|g| + eps / sqrt(1 - b2)).
  names = ["enc/embeddings/w", "enc/layer_0/w", "enc/layer_1/w"]
  variables = [tf.Variable(tf.zeros([3]), name=n) for n in names]
  optimizer = optimization.make_optimizer(optimization.make_schedule(1e-2, 10, 0.0), "adam",
                                          variables=variables, layer_decay=0.5)
  _steps(optimizer, variables, [[tf.fill([3], -2.0)] * 3])
  # (1 - b2 is rounded in float32, hence the loose absolute check; the ratios are exact.)
  moved = np.array([v.numpy()[0] for v in variables])
  np.testing.assert_allclose(moved, [2.5e-3, 5e-3, 1e-2], rtol=1e-4)
  np.testing.assert_allclose(moved / moved[-1], [0.25, 0.5, 1.0], rtol=1e-6)


def test_weight_decay_is_decoupled_scaled_by_the_factor_and_skips_bias_and_layernorm():
  # A zero gradient leaves Adam's step at 0, so only the decay w -= lr * f * wd * w moves.
  kernel = tf.Variable(tf.fill([2], 2.0), name="enc/layer_0/dense/kernel")
  top = tf.Variable(tf.fill([2], 2.0), name="enc/layer_1/dense/kernel")
  bias = tf.Variable(tf.fill([2], 2.0), name="enc/layer_1/dense/bias")
  norm = tf.Variable(tf.fill([2], 2.0), name="enc/layer_1/layer_norm/gamma")
  variables = [kernel, top, bias, norm]
  optimizer = optimization.make_optimizer(optimization.make_schedule(0.1, 10, 0.0), "adamw",
                                          weight_decay=0.5, variables=variables,
                                          layer_decay=0.5)
  _steps(optimizer, variables, [[tf.zeros([2])] * 4])
  np.testing.assert_allclose([v.numpy()[0] for v in variables],
                             [2.0 - 0.1 * 0.5 * 0.5 * 2.0, 2.0 - 0.1 * 0.5 * 2.0, 2.0, 2.0],
                             rtol=1e-6)


def _bce(y, z):
  return max(z, 0) - z * y + np.log1p(np.exp(-abs(z)))


def test_focal_loss_against_hand_computed_terms():
  labels = np.array([[1.0, 0.0]], np.float32)
  logits = np.array([[2.0, 1.0]], np.float32)
  p = 1 / (1 + np.exp(-logits[0]))
  expected = 0.5 * (1 - p[0]) ** 2 * -np.log(p[0]) + 0.5 * p[1] ** 2 * -np.log(1 - p[1])
  np.testing.assert_allclose(losses.focal_mlc_loss(labels, logits).numpy(), [expected],
                             rtol=1e-5)


def test_distribution_balanced_loss_against_hand_computed_terms():
  counts, num_train = [10.0, 40.0, 0.0], 100
  labels = np.array([[1.0, 1.0, 0.0]], np.float32)
  logits = np.array([[0.5, -1.0, 2.0]], np.float32)
  n = np.array([10.0, 40.0, 1.0])                 # a label never seen counts as 1
  r = (1 / n) / (1 / 10 + 1 / 40)                 # rebalancing ratio of each label
  weight = 1 / (1 + np.exp(-10 * (r - 0.05))) + 0.1
  z = logits[0] + 0.05 * np.log(n / (num_train - n)) / 2
  z[2] *= 2.0                                     # a negative: logit x lambda, weight / lambda
  weight[2] /= 2.0
  y = labels[0]
  terms = []
  for i in range(3):
    b = _bce(y[i], z[i])
    terms.append(0.5 * (1 - np.exp(-b)) ** 2 * b * weight[i])
  got = losses.distribution_balanced_loss(labels, logits, counts, num_train).numpy()
  np.testing.assert_allclose(got, [sum(terms)], rtol=1e-5)


def test_unknown_or_unfed_loss_is_refused():
  with pytest.raises(ValueError, match="needs the training label counts"):
    losses.make_mlc_loss("db")
  with pytest.raises(ValueError, match="unknown MLC loss 'x'"):
    losses.make_mlc_loss("x")


def test_regime_options_train_and_are_part_of_the_run(tmp_path, tiny_bert, tiny_corpus):
  options = dict(task="clcp", max_steps=3, do_predict=False, weight_decay=0.01,
                 layer_decay=0.8, mlc_loss="db")
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, **options))
  assert summary["train"]["trained_steps"] == 3
  with open(tmp_path / "history.jsonl") as f:
    losses_seen = [v for line in f for v in json.loads(line)["train_loss"].values()]
  assert losses_seen and np.all(np.isfinite(losses_seen))
  with open(tmp_path / "run_config.json") as f:
    config = json.load(f)
  assert (config["weight_decay"], config["layer_decay"], config["mlc_loss"]) == (0.01, 0.8, "db")
  # Provenance is recorded for people, never compared on a resume.
  assert config["provenance"]["versions"]["tensorflow"] == tf.__version__
  assert config["provenance"]["data_dir"] == os.path.abspath(tiny_corpus)
  with pytest.raises(Exception, match=r"mlc_loss: 'db' -> 'focal'"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, **{**options,
                                                                 "mlc_loss": "focal"}))
