"""BERT's exact GELU through float32 erf: the same function and gradient as tf_keras' gelu."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import ndtr

from laco_tf.modeling.gelu import erf_gelu, use_erf_gelu
from tests.conftest import tiny_vocab, write_tiny_bert

# Both tails, zero, and the bulk where BERT's pre-activations live.
X = np.concatenate([np.linspace(-12.0, 12.0, 2401), [-40.0, -1e-4, 0.0, 1e-4, 40.0]])


def _stock_gelu():
  from transformers.activations_tf import get_tf_activation
  return get_tf_activation("gelu")


def _value_and_grad(fn, x):
  x = tf.constant(x)
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = fn(x)
  return y.numpy(), tape.gradient(y, x, output_gradients=tf.ones_like(y)).numpy()


def test_float32_value_and_gradient_match_the_float64_formula_and_tf_keras_gelu():
  x32 = X.astype(np.float32)
  x64 = x32.astype(np.float64)
  value, grad = _value_and_grad(erf_gelu, x32)
  pdf = np.exp(-0.5 * x64 ** 2) / np.sqrt(2 * np.pi)
  assert value.dtype == grad.dtype == np.float32
  np.testing.assert_allclose(value, x64 * ndtr(x64), rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(grad, ndtr(x64) + x64 * pdf, rtol=1e-6, atol=1e-6)
  stock_value, stock_grad = _value_and_grad(_stock_gelu(), x32)
  np.testing.assert_allclose(value, stock_value, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(grad, stock_grad, rtol=1e-5, atol=1e-6)


def test_bfloat16_output_is_the_exact_value_rounded_once():
  xb = tf.cast(tf.constant(X, tf.float32), tf.bfloat16)
  x64 = tf.cast(xb, tf.float64).numpy()
  value, grad = _value_and_grad(erf_gelu, xb)
  assert value.dtype == grad.dtype == tf.bfloat16.as_numpy_dtype
  exact = tf.cast(tf.constant(x64 * ndtr(x64), tf.float32), tf.bfloat16).numpy()
  # float32 arithmetic can land a hair either side of a bfloat16 rounding boundary: then
  # the neighbour, one bfloat16 step (2**-7 relative at most) away.
  np.testing.assert_allclose(value.astype(np.float64), exact.astype(np.float64),
                             rtol=2 ** -7, atol=1e-6)
  # Where GELU is at least 1e-5 (1 + erf cancels in float32 further out), 97.7% of the
  # values are the exact one rounded once; the rest sit one step away (checked above).
  bulk = np.abs(exact.astype(np.float64)) >= 1e-5
  assert bulk.sum() > 1500 and np.mean(value[bulk] == exact[bulk]) > 0.97


def test_every_feed_forward_layer_of_a_gelu_bert_uses_it_and_outputs_agree(tmp_path):
  from transformers import TFBertModel
  bert = TFBertModel.from_pretrained(write_tiny_bert(tmp_path, tiny_vocab()))
  ids = tf.constant([[2, 30, 31, 40, 3]])
  before = bert(input_ids=ids, training=False).last_hidden_state.numpy()
  assert use_erf_gelu(bert) == 2
  assert all(l.intermediate.intermediate_act_fn is erf_gelu for l in bert.bert.encoder.layer)
  after = bert(input_ids=ids, training=False).last_hidden_state.numpy()
  np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("act", ["gelu_new", "relu"])
def test_other_activations_are_left_alone(tmp_path, act):
  from transformers import BertConfig, TFBertModel
  bert = TFBertModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=16, hidden_act=act))
  stock = bert.bert.encoder.layer[0].intermediate.intermediate_act_fn
  assert use_erf_gelu(bert) == 0
  assert bert.bert.encoder.layer[0].intermediate.intermediate_act_fn is stock


def test_the_laco_model_sets_it_on_its_encoder(tmp_path):
  from transformers import TFBertModel
  from laco_tf.modeling.model import LacoModel
  bert = TFBertModel.from_pretrained(write_tiny_bert(tmp_path, tiny_vocab()))
  LacoModel(bert, num_labels=3)
  assert all(l.intermediate.intermediate_act_fn is erf_gelu for l in bert.bert.encoder.layer)
