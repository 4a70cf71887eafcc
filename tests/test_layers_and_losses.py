"""CA, the PLCP/CLCP heads and the losses against hand-written numpy versions."""

import numpy as np
import pytest
import tensorflow as tf

from laco_tf.modeling import losses
from laco_tf.modeling.layers import (ConditionalCooccurrenceHead, DocumentLabelCrossAttention,
                            LabelStateTransform, PairwiseCooccurrenceHead)


def _l2n(x):
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)


def _conv2d_same(m, kernel, bias):
  """numpy Conv2D, 'same' padding as TensorFlow pads it (extra row/col after)."""
  kh, kw, _, filters = kernel.shape
  ph, pw = (kh - 1) // 2, (kw - 1) // 2
  padded = np.pad(m, ((ph, kh - 1 - ph), (pw, kw - 1 - pw)))
  out = np.zeros(m.shape + (filters,))
  for i in range(m.shape[0]):
    for j in range(m.shape[1]):
      out[i, j] = np.tensordot(padded[i:i + kh, j:j + kw], kernel[:, :, 0, :], axes=2) + bias
  return out


def _numpy_cross_attention(h_d, h_y, mask, kernel, bias):
  hd = _l2n(h_d) * mask[:, None]
  m = hd @ _l2n(h_y).T
  weights = np.tanh(np.maximum(_conv2d_same(m, kernel, bias), 0).max(axis=(1, 2))) * mask
  return weights @ hd, weights


@pytest.mark.parametrize("window", [1, 3, 4])
def test_cross_attention_matches_equations_1_and_2(window):
  rng = np.random.RandomState(window)
  h_d, h_y = rng.randn(2, 7, 5), rng.randn(2, 4, 5)
  mask = np.array([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0, 0]], np.float32)
  layer = DocumentLabelCrossAttention(num_labels=4, window_size=window, dropout_rate=0.5)
  c, w = layer(tf.constant(h_d, tf.float32), tf.constant(h_y, tf.float32), mask, training=False)
  kernel, bias = [v.numpy() for v in layer.conv.weights]
  for b in range(2):
    want_c, want_w = _numpy_cross_attention(h_d[b], h_y[b], mask[b], kernel, bias)
    np.testing.assert_allclose(w[b].numpy(), want_w, atol=1e-5)
    np.testing.assert_allclose(c[b].numpy(), want_c, atol=1e-5)


def test_cross_attention_ignores_padding_and_masked_tokens():
  rng = np.random.RandomState(0)
  h_d, h_y = rng.randn(1, 6, 8).astype(np.float32), rng.randn(1, 3, 8).astype(np.float32)
  layer = DocumentLabelCrossAttention(num_labels=3, window_size=4)
  c, w = layer(h_d, h_y, np.array([[1, 1, 1, 1, 1, 1]], np.float32))
  # The same six words followed by ten positions of junk states, masked out.
  junk = np.concatenate([h_d, 50 * rng.randn(1, 10, 8).astype(np.float32)], axis=1)
  mask = np.array([[1] * 6 + [0] * 10], np.float32)
  c2, w2 = layer(junk, h_y, mask)
  np.testing.assert_allclose(c2.numpy(), c.numpy(), atol=1e-6)
  np.testing.assert_allclose(w2.numpy()[:, :6], w.numpy(), atol=1e-6)
  assert np.all(w2.numpy()[:, 6:] == 0)


def _conv2d_then_max(m, kernel, bias):
  """CA's score before this project chunked it: Conv2D + ReLU over [b, m, n, n], then max."""
  return tf.reduce_max(tf.nn.relu(tf.nn.conv2d(m[..., tf.newaxis], kernel, 1, "SAME") + bias),
                       axis=[2, 3])


@pytest.mark.parametrize("labels,window", [(5, 3), (37, 10), (40, 4)])
def test_chunked_cross_attention_equals_conv2d_then_max_in_value_and_gradient(labels, window):
  # 37 and 40 labels span several FILTER_CHUNK chunks; 10 and 4 are even windows, which
  # TensorFlow pads unevenly.
  rng = np.random.RandomState(labels)
  h_d = tf.constant(rng.randn(3, 23, 16), tf.float32)
  h_y = tf.constant(rng.randn(3, labels, 16), tf.float32)
  mask = tf.constant((np.arange(23)[None] < np.array([[23], [17], [5]])).astype(np.float32))
  layer = DocumentLabelCrossAttention(num_labels=labels, window_size=window, dropout_rate=0.0)
  layer(h_d, h_y, mask)
  layer.conv.bias.assign(rng.randn(labels).astype(np.float32) * 0.3)
  upstream = tf.constant(rng.randn(3, 16), tf.float32)

  def reference(h_d, h_y):
    # The previous layer's computation, with the same weights, differentiated by autodiff.
    hd = tf.math.l2_normalize(h_d, axis=-1) * mask[..., None]
    m = tf.einsum("bmd,bnd->bmn", hd, tf.math.l2_normalize(h_y, axis=-1))
    weights = tf.tanh(_conv2d_then_max(m, layer.conv.kernel, layer.conv.bias)) * mask
    return tf.einsum("bm,bmd->bd", weights, hd), weights

  results = []
  for fn in (reference, lambda a, b: layer(a, b, mask)):
    with tf.GradientTape() as tape:
      tape.watch([h_d, h_y])
      c, w = fn(h_d, h_y)
      loss = tf.reduce_sum(c * upstream)
    results.append([c, w] + tape.gradient(loss, [h_d, h_y, layer.conv.kernel,
                                                 layer.conv.bias]))
  for want, got in zip(*results):
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)


def test_chunked_max_convolution_sums_its_bfloat16_gradients_in_float32():
  from laco_tf.modeling.layers.cross_attention import max_conv_scores  # pylint: disable=import-outside-toplevel
  rng = np.random.RandomState(0)
  # One label and one filter, so every word's maximum has the same unique winner, and the
  # filter's gradient sums 8 x 400 positive terms: a bfloat16 running sum cannot hold
  # that (it stalls near 256 times one term); only the inputs' rounding may differ.
  m = tf.constant(np.abs(rng.randn(8, 400, 1)), tf.float32)
  kernel = tf.constant(np.abs(rng.randn(3, 3, 1, 1)) * 0.1, tf.float32)
  bias = tf.constant(np.zeros(1), tf.float32)
  grads = {}
  for dtype in (tf.float32, tf.bfloat16):
    args = [tf.cast(x, dtype) for x in (m, kernel, bias)]
    with tf.GradientTape() as tape:
      tape.watch(args)
      total = tf.reduce_sum(max_conv_scores(*args))
    grads[dtype] = [tf.cast(g, tf.float32).numpy() for g in tape.gradient(total, args)]
  for low, exact in zip(grads[tf.bfloat16][1:], grads[tf.float32][1:]):  # kernel, bias
    np.testing.assert_allclose(low, exact, rtol=0.02)


def test_cross_attention_under_bfloat16_keeps_float32_outputs_close_to_float32():
  rng = np.random.RandomState(0)
  h_d, h_y = rng.randn(2, 12, 16).astype(np.float32), rng.randn(2, 20, 16).astype(np.float32)
  mask = np.ones([2, 12], np.float32)
  exact = DocumentLabelCrossAttention(num_labels=20, window_size=3, dropout_rate=0.0)
  c32, w32 = exact(h_d, h_y, mask)
  low = DocumentLabelCrossAttention(num_labels=20, window_size=3, dropout_rate=0.0,
                                    dtype="mixed_bfloat16")
  low(h_d, h_y, mask)
  low.set_weights(exact.get_weights())
  c16, w16 = low(h_d, h_y, mask)
  assert c16.dtype == w16.dtype == tf.float32
  np.testing.assert_allclose(w16.numpy(), w32.numpy(), atol=3e-2)
  np.testing.assert_allclose(c16.numpy(), c32.numpy(), atol=3e-2)


def test_layers_round_trip_their_config():
  layer = DocumentLabelCrossAttention(num_labels=5, window_size=3, dropout_rate=0.2, name="ca")
  assert DocumentLabelCrossAttention.from_config(layer.get_config()).get_config() == \
      layer.get_config()
  for cls in (LabelStateTransform, PairwiseCooccurrenceHead, ConditionalCooccurrenceHead):
    assert cls.from_config(cls(7).get_config()).hidden_size == 7


def _transform(layer, x):
  kernel, bias, gamma, beta = [v.numpy() for v in layer.weights]
  h = x @ kernel + bias
  h = 0.5 * h * (1 + np.vectorize(__import__("math").erf)(h / np.sqrt(2)))  # exact GELU
  mean, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
  return (h - mean) / np.sqrt(var + 1e-12) * gamma + beta


def test_plcp_head_concatenates_the_pair_and_classifies():
  rng = np.random.RandomState(1)
  states = rng.randn(2, 4, 6).astype(np.float32)
  pairs = np.array([[[0, 3], [2, 1]], [[1, 1], [3, 0]]], np.int32)
  head = PairwiseCooccurrenceHead(5)
  logits = head(states, pairs).numpy()
  t = _transform(head.transform, states)
  w, b = [v.numpy() for v in head.classifier.weights]
  for i in range(2):
    for k in range(2):
      x = np.concatenate([t[i, pairs[i, k, 0]], t[i, pairs[i, k, 1]]])
      assert logits[i, k] == pytest.approx(float(x @ w[:, 0] + b[0]), abs=1e-4)


def test_clcp_head_concatenates_mean_of_given_labels_to_each_label():
  rng = np.random.RandomState(2)
  states = rng.randn(2, 4, 6).astype(np.float32)
  given = np.array([[1, 0, 1, 0], [0, 0, 0, 1]], np.float32)
  head = ConditionalCooccurrenceHead(5)
  logits = head(states, given).numpy()
  t_given = _transform(head.given_transform, states)
  t_cand = _transform(head.candidate_transform, states)
  w, b = [v.numpy() for v in head.classifier.weights]
  for i in range(2):
    h_g = (given[i][:, None] * t_given[i]).sum(0) / given[i].sum()
    for j in range(4):
      want = np.concatenate([t_cand[i, j], h_g]) @ w[:, 0] + b[0]
      assert logits[i, j] == pytest.approx(float(want), abs=1e-4)


def _bce(q, logit):
  p = 1 / (1 + np.exp(-logit))
  return -(q * np.log(p) + (1 - q) * np.log(1 - p))


def test_losses_match_equations_4_5_6():
  labels = np.array([[1, 0, 1], [0, 0, 1]], np.float32)
  logits = np.array([[2.0, -1.0, 0.5], [0.3, -0.2, -3.0]], np.float32)
  np.testing.assert_allclose(losses.mlc_loss(labels, logits).numpy(),
                             _bce(labels, logits).sum(1), rtol=1e-5)
  targets = np.array([[1, 0], [0, 0]], np.float32)
  pair_logits = np.array([[1.5, 0.2], [-0.7, 2.0]], np.float32)
  np.testing.assert_allclose(losses.plcp_loss(targets, pair_logits).numpy(),
                             _bce(targets, pair_logits).mean(1), rtol=1e-5)
  given = np.array([[1, 0, 0], [0, 0, 1]], np.float32)
  np.testing.assert_allclose(losses.clcp_loss(labels, logits, given).numpy(),
                             (_bce(labels, logits) * (1 - given)).sum(1), rtol=1e-5)
  # Hand-computed: BCE(q=1, logit=0) = ln 2.
  assert float(losses.mlc_loss(tf.constant([[1.0]]), tf.constant([[0.0]]))[0]) == pytest.approx(np.log(2), rel=1e-6)


def test_masked_reduction_averages_over_contributing_documents_only():
  per_example = tf.constant([2.0, 4.0, 100.0])
  assert float(losses.reduce_per_example(per_example, [1.0, 1.0, 0.0])) == pytest.approx(3.0)
  assert float(losses.reduce_per_example(per_example, [0.0, 0.0, 0.0])) == 0.0
  assert float(losses.reduce_per_example(per_example)) == pytest.approx(106 / 3)


@pytest.mark.parametrize("task,weights", [
    ("mltc", {"mlc": 1.0, "plcp": 0.0, "clcp": 0.0}),
    ("plcp", {"mlc": 1.0, "plcp": 0.3, "clcp": 0.0}),
    ("clcp", {"mlc": 1.0, "plcp": 0.0, "clcp": 0.7}),
    ("both", {"mlc": 1.0, "plcp": 0.3, "clcp": 0.7}),
])
def test_task_weights_follow_equation_7(task, weights):
  assert losses.task_weights(task, 0.3) == pytest.approx(weights)
