"""Document-label cross attention, CA (paper 3.3.1, eqs. 1-2)."""

import tensorflow as tf
import tf_keras

# Filters convolved at once: the forward pass holds [batch, words, labels, chunk] values
# at a time, so CA's memory grows with the label count, not with its square.
FILTER_CHUNK = 16


class DocumentLabelCrossAttention(tf_keras.layers.Layer):
  """Builds the document vector c from word states weighted by label compatibility.

  Eq. 1: M = H_D H_Y^T over L2-normalised states (cosine compatibility, as in the
  authors' release). Eq. 2: Omega = a Conv2D over M with a `window_size` x
  `window_size` window (label-phrase blocks M_{i-r:i+r}), `num_labels` filters and
  ReLU, then max-pooling over labels and filters to one score per word, then tanh;
  c = sum_i Omega_i * h_i over the (normalised) word states, as in the release.

  Only real document words take part: rows of M at masked positions are zeroed before
  the convolution (so they look exactly like the convolution's own zero padding) and
  their weights are zero, which makes the output independent of batch padding.

  The convolution and its max are computed by `max_conv_scores` (same values as
  Conv2D + ReLU + max, memory linear in the label count, a backward pass through the
  winning window only). The L2 normalisation, M and the weighting run in float32 under
  a mixed-precision policy; the convolution runs in the policy's compute type.

  Call args:
    doc_states: [batch, m, d] token states H_D (any tokens past the mask are ignored).
    label_states: [batch, n, d] label-token states H_Y.
    doc_mask: [batch, m] 1 for real document words, 0 elsewhere.
  Returns:
    (c [batch, d] float32 after dropout, word weights [batch, m] float32).
  """

  def __init__(self, num_labels: int, window_size: int = 10, dropout_rate: float = 0.1,
               **kwargs):
    super().__init__(**kwargs)
    self.num_labels = num_labels
    self.window_size = window_size
    self.dropout_rate = dropout_rate
    # Holds the eq. 2 filters (kernel [w, w, 1, n], bias [n]); `call` convolves with them.
    self.conv = tf_keras.layers.Conv2D(num_labels, (window_size, window_size), padding="same",
                                       activation="relu", name="label_phrase_conv")
    self.dropout = tf_keras.layers.Dropout(dropout_rate, dtype="float32")

  def build(self, input_shape):
    self.conv.build([None, None, self.num_labels, 1])
    super().build(input_shape)

  def call(self, doc_states, label_states, doc_mask, training=None):
    mask = tf.cast(doc_mask, tf.float32)
    h_d = tf.math.l2_normalize(tf.cast(doc_states, tf.float32), axis=-1) * mask[..., tf.newaxis]
    h_y = tf.math.l2_normalize(tf.cast(label_states, tf.float32), axis=-1)
    m = tf.einsum("bmd,bnd->bmn", h_d, h_y)                       # eq. 1
    dtype = self.compute_dtype
    scores = max_conv_scores(tf.cast(m, dtype), tf.cast(self.conv.kernel, dtype),
                             tf.cast(self.conv.bias, dtype))
    weights = tf.tanh(tf.cast(scores, tf.float32)) * mask          # Omega of eq. 2
    c = tf.einsum("bm,bmd->bd", weights, h_d)                      # eq. 2
    return self.dropout(c, training=training), weights

  def get_config(self):
    return {**super().get_config(), "num_labels": self.num_labels,
            "window_size": self.window_size, "dropout_rate": self.dropout_rate}


def _same_padding(window: int):
  """Rows/columns Conv2D's "same" padding adds before and after (TF's rule)."""
  before = (window - 1) // 2
  return before, window - 1 - before


def _running_max(m, kernel, bias):
  """(best, best_at): each word's maximum of Conv2D(M) + bias over labels and filters,
  [batch, words], and where it came from, [batch, words, 2] (label, filter); the filters
  are convolved `FILTER_CHUNK` at a time."""
  filters = kernel.shape[-1]
  image = m[..., tf.newaxis]
  best = best_at = None
  for start in range(0, filters, FILTER_CHUNK):
    stop = min(start + FILTER_CHUNK, filters)
    out = tf.nn.conv2d(image, kernel[..., start:stop], strides=1, padding="SAME")
    out = out + bias[start:stop]
    flat = tf.reshape(out, tf.concat([tf.shape(m)[:2], [-1]], axis=0))  # [b, m, n * chunk]
    value = tf.reduce_max(flat, axis=-1)
    where = tf.cast(tf.argmax(flat, axis=-1, output_type=tf.int32), tf.int32)
    label, filt = where // (stop - start), start + where % (stop - start)
    at = tf.stack([label, filt], axis=-1)
    if best is None:
      best, best_at = value, at
    else:
      better = value > best
      best_at = tf.where(better[..., tf.newaxis], at, best_at)
      best = tf.maximum(best, value)
  return best, best_at


def _window_index(label, window: int):
  """[batch, words, w, w, 3] gather_nd index, into M padded by `_same_padding`, of the
  w x w window around each word's winning (word, label) position."""
  shape = tf.shape(label)
  batch, words = shape[0], shape[1]
  offsets = tf.range(window, dtype=tf.int32)
  rows = tf.broadcast_to(tf.range(words)[tf.newaxis, :, tf.newaxis, tf.newaxis] +
                         offsets[:, tf.newaxis], [batch, words, window, window])
  cols = tf.broadcast_to(label[:, :, tf.newaxis, tf.newaxis] + offsets,
                         [batch, words, window, window])
  docs = tf.broadcast_to(tf.range(batch)[:, tf.newaxis, tf.newaxis, tf.newaxis],
                         [batch, words, window, window])
  return tf.stack([docs, rows, cols], axis=-1)


@tf.custom_gradient
def max_conv_scores(m, kernel, bias):
  """max over labels and filters of ReLU(Conv2D(M) + bias), one score per word.

  Equals `reduce_max(relu(conv2d(m[..., None], kernel, "SAME") + bias), [2, 3])`. The
  filters are convolved `FILTER_CHUNK` at a time with a running maximum, remembering
  where each word's maximum came from. The gradient of a maximum flows through that
  one (label, filter) window alone, so the backward pass gathers and scatters one
  window per word instead of back-propagating the whole convolution (which cost a
  third of a LACO training step on CPU). Where several windows tie for a word's maximum
  the first takes the whole gradient (reduce_max's autodiff splits it; both are
  gradients of the maximum). The backward pass sums in float32.

  Args:
    m: [batch, words, labels] word-label compatibility (eq. 1).
    kernel: [w, w, 1, filters] and bias: [filters], in m's dtype.
  Returns:
    [batch, words] scores in m's dtype.
  """
  window, filters = kernel.shape[0], kernel.shape[-1]
  best, best_at = _running_max(m, kernel, bias)
  scores = tf.nn.relu(best)

  def grad(upstream):
    # Sums over every word of the batch: in float32 whatever the compute type, as
    # Conv2D's own filter gradient accumulates (bf16 sums stall past ~256 terms).
    g = tf.cast(upstream, tf.float32) * tf.cast(best > 0, tf.float32)   # ReLU'
    label, filt = best_at[..., 0], best_at[..., 1]                 # [b, m]
    before, after = _same_padding(window)
    padded = tf.pad(tf.cast(m, tf.float32), [[0, 0], [before, after], [before, after]])
    shape = tf.shape(m)
    words = shape[1]
    index = _window_index(label, window)                           # [b, m, w, w, 3]
    windows = tf.gather_nd(padded, index)                          # [b, m, w, w]
    weighted = g[..., tf.newaxis, tf.newaxis] * windows
    d_kernel = tf.math.unsorted_segment_sum(weighted, filt, filters)  # [filters, w, w]
    d_kernel = tf.transpose(d_kernel, [1, 2, 0])[:, :, tf.newaxis, :]
    d_bias = tf.math.unsorted_segment_sum(g, filt, filters)
    filters32 = tf.transpose(tf.cast(kernel, tf.float32)[:, :, 0, :], [2, 0, 1])
    d_padded = tf.scatter_nd(index, g[..., tf.newaxis, tf.newaxis] * tf.gather(filters32, filt),
                             tf.shape(padded))
    d_m = d_padded[:, before:before + words, before:before + shape[2]]
    return tf.cast(d_m, m.dtype), tf.cast(d_kernel, kernel.dtype), tf.cast(d_bias, bias.dtype)

  return scores, grad
