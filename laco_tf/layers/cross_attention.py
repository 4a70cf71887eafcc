"""Document-label cross attention, CA (paper 3.3.1, eqs. 1-2)."""

import tensorflow as tf
import tf_keras


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

  Call args:
    doc_states: [batch, m, d] token states H_D (any tokens past the mask are ignored).
    label_states: [batch, n, d] label-token states H_Y.
    doc_mask: [batch, m] 1 for real document words, 0 elsewhere.
  Returns:
    (c [batch, d] after dropout, word weights [batch, m]).
  """

  def __init__(self, num_labels: int, window_size: int = 10, dropout_rate: float = 0.1,
               **kwargs):
    super().__init__(**kwargs)
    self.num_labels = num_labels
    self.window_size = window_size
    self.dropout_rate = dropout_rate
    self.conv = tf_keras.layers.Conv2D(num_labels, (window_size, window_size), padding="same",
                                       activation="relu", name="label_phrase_conv")
    self.dropout = tf_keras.layers.Dropout(dropout_rate)

  def call(self, doc_states, label_states, doc_mask, training=None):
    mask = tf.cast(doc_mask, doc_states.dtype)
    h_d = tf.math.l2_normalize(doc_states, axis=-1) * mask[..., tf.newaxis]
    h_y = tf.math.l2_normalize(label_states, axis=-1)
    m = tf.einsum("bmd,bnd->bmn", h_d, h_y)                       # eq. 1
    scores = tf.reduce_max(self.conv(m[..., tf.newaxis]), axis=[2, 3])
    weights = tf.tanh(scores) * mask                               # Omega of eq. 2
    c = tf.einsum("bm,bmd->bd", weights, h_d)                      # eq. 2
    return self.dropout(c, training=training), weights

  def get_config(self):
    return {**super().get_config(), "num_labels": self.num_labels,
            "window_size": self.window_size, "dropout_rate": self.dropout_rate}
