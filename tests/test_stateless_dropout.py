"""Dropout drawn from (seed, step, layer, replica): exact masks, exact resume (issue #13)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from laco_tf import runner
from laco_tf.modeling.layers.stateless_dropout import (DropoutSeed, StatelessDropout,
                                                       apply_dropout_mask, keep_scaled_xla,
                                                       replace_keras_dropout)
from tests.conftest import tiny_vocab, write_tiny_bert
from tests.test_end_to_end import tiny_options


def _layer(rate, step=1, salt=0, seed=7):
  source = DropoutSeed(seed)
  source.step = tf.Variable(step, dtype=tf.int64)
  return StatelessDropout(rate, salt, source), source


def test_kept_inputs_are_scaled_dropped_ones_are_zero_and_the_rate_holds():
  layer, _ = _layer(0.1)
  x = tf.random.stateless_uniform([200, 999], [1, 2]) + 1.0  # odd last dimension
  y = layer(x, training=True).numpy()
  kept = y != 0
  np.testing.assert_allclose(y[kept], x.numpy()[kept] / 0.9, rtol=1e-6)
  # The rate is rounded to a multiple of 2**-16: 6554 / 65536 = 0.1000061.
  assert layer.threshold == 6554
  assert 1 - kept.mean() == pytest.approx(6554 / 65536, abs=0.003)
  np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())


def test_the_mask_is_a_function_of_seed_step_and_salt():
  x = tf.ones([64, 64])
  mask = lambda **kw: _layer(0.5, **kw)[0](x, training=True).numpy() != 0
  np.testing.assert_array_equal(mask(step=3), mask(step=3))
  for other in (dict(step=4), dict(step=3, salt=1), dict(step=3, seed=8)):
    assert (mask(step=3) != mask(**other)).mean() > 0.4, other
  # Advancing the shared step variable changes the next draw of the same layer.
  layer, source = _layer(0.5, step=3)
  first = layer(x, training=True).numpy() != 0
  source.step.assign(4)
  np.testing.assert_array_equal(layer(x, training=True).numpy() != 0, mask(step=4))
  assert (first != mask(step=4)).any()


def test_each_microbatch_of_a_step_draws_its_own_mask():
  x = tf.ones([64, 64])
  layer, source = _layer(0.5, step=3)
  whole = layer(x, training=True).numpy() != 0
  masks = []
  for index in (0, 1, 1):
    source.microbatch = tf.constant(index)
    masks.append(layer(x, training=True).numpy() != 0)
  source.microbatch = None
  np.testing.assert_array_equal(masks[1], masks[2])   # a function of the index
  assert (masks[0] != masks[1]).mean() > 0.4
  assert (masks[0] != whole).mean() > 0.4
  np.testing.assert_array_equal(layer(x, training=True).numpy() != 0, whole)


def test_the_gradient_is_the_scaled_mask_in_every_float_type():
  for dtype in (tf.float32, tf.bfloat16, tf.float16):
    source = DropoutSeed(7)
    source.step = tf.Variable(1, dtype=tf.int64)
    layer = StatelessDropout(0.25, 0, source, dtype=dtype.name)
    x = tf.ones([8, 33], dtype)
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = layer(x, training=True)
      total = tf.reduce_sum(tf.cast(y, tf.float32))
    grad = tape.gradient(total, x)
    assert grad.dtype == dtype
    np.testing.assert_array_equal(grad.numpy(), y.numpy())  # d(x*s*m)/dx = s*m = y at x=1


def test_the_compiled_masking_equals_tensorflows_select_bit_for_bit():
  # One XLA loop for value and gradient, against the three kernels it replaced (product,
  # zeros, select; what unbucketed runs use) differentiated by TensorFlow, with a random
  # incoming gradient.
  for dtype in (tf.float32, tf.bfloat16, tf.float16):
    x = tf.cast(tf.random.stateless_normal([4, 3, 17, 17], [1, 2]), dtype)
    dy = tf.cast(tf.random.stateless_normal(x.shape, [3, 4]), dtype)
    keep = tf.random.stateless_uniform(x.shape, [5, 6]) >= 0.1
    scale = tf.constant(1 / 0.9, dtype)
    results = []
    for compiled in (True, False):
      with tf.GradientTape() as tape:
        tape.watch(x)
        y = apply_dropout_mask(x, keep, scale, compiled=compiled)
      results.append((y.numpy(), tape.gradient(y, x, output_gradients=dy).numpy()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert np.count_nonzero(results[0][1] == 0) == np.count_nonzero(~keep.numpy())
  assert "fusion" in keep_scaled_xla.experimental_get_compiler_ir(x, keep, scale)(
      stage="optimized_hlo")


def test_without_a_step_it_draws_as_keras_dropout_and_config_round_trips():
  layer = StatelessDropout(0.3, salt=4, seed=9, compiled=False, name="d")
  y = layer(tf.ones([100, 100]), training=True).numpy()
  np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7], rtol=1e-6)
  clone = StatelessDropout.from_config(layer.get_config())
  assert (clone.rate, clone.salt, clone.seed_source.seed, clone.compiled, clone.name) == (
      0.3, 4, 9, False, "d")
  with pytest.raises(ValueError, match="rate"):
    StatelessDropout(1.0)


class _Block(tf_keras.layers.Layer):
  """Keras Dropouts held as attributes, one in a nested layer (as a model's heads hold them)."""

  def __init__(self, depth=1, **kwargs):
    super().__init__(**kwargs)
    self.dense = tf_keras.layers.Dense(8)
    self.drop_a, self.drop_b = tf_keras.layers.Dropout(0.1), tf_keras.layers.Dropout(0.3)
    self.inner = _Block(depth - 1) if depth else None

  def call(self, x, training=None):
    x = self.drop_b(self.drop_a(self.dense(x), training=training), training=training)
    return self.inner(x, training=training) if self.inner else x


def test_every_keras_dropout_of_a_layer_tree_is_replaced_and_its_outputs_are_kept():
  block = _Block()
  x = tf.random.stateless_normal([4, 8], [0, 1])
  before = block(x, training=False).numpy()
  source = DropoutSeed(0)
  assert replace_keras_dropout(block, source, first_salt=5) == 4
  assert [l for l in block.submodules if type(l) is tf_keras.layers.Dropout] == []
  replaced = [l for l in block.submodules if isinstance(l, StatelessDropout)]
  assert sorted(l.salt for l in replaced) == [5, 6, 7, 8]
  assert sorted(l.rate for l in replaced) == pytest.approx([0.1, 0.1, 0.3, 0.3])
  np.testing.assert_array_equal(block(x, training=False).numpy(), before)
  source.step = tf.Variable(1, dtype=tf.int64)
  a = block(x, training=True).numpy()
  np.testing.assert_array_equal(block(x, training=True).numpy(), a)
  assert not np.allclose(a, before)


@pytest.mark.slow
def test_a_run_with_dropout_stopped_and_resumed_equals_the_uninterrupted_run(tmp_path,
                                                                              tiny_corpus):
  bert = write_tiny_bert(tmp_path / "bert", tiny_vocab(), dropout=0.1)
  common = dict(task="both", eval_every_steps=10, do_predict=False, dropout_rate=0.3)
  # Exported from the process that trained it: the export holds no training step.
  full = runner.run(tiny_options(tiny_corpus, bert, tmp_path / "full", max_steps=20,
                                 do_export=True, **common))
  assert os.path.isfile(os.path.join(full["export_dir"], "saved_model.pb"))
  runner.run(tiny_options(tiny_corpus, bert, tmp_path / "parted", max_steps=10, **common))
  runner.run(tiny_options(tiny_corpus, bert, tmp_path / "parted", max_steps=20, **common))

  def read(run):
    with open(tmp_path / run / "history.jsonl") as f:
      losses = [json.loads(l)["train_loss"] for l in f]
    with open(tmp_path / run / "predictions_dev.jsonl") as f:
      probs = [list(json.loads(l)["probabilities"].values()) for l in f]
    return losses, np.array(probs)
  (full_losses, full), (parted_losses, parted) = read("full"), read("parted")
  assert full_losses[1] == pytest.approx(parted_losses[1], abs=1e-6)
  np.testing.assert_allclose(parted, full, atol=1e-6)
