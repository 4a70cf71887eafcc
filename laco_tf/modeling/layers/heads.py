"""Auxiliary label co-occurrence heads, PLCP and CLCP (paper 3.4.1-3.4.2)."""

import tensorflow as tf
import tf_keras


class LabelStateTransform(tf_keras.layers.Layer):
  """Dense + GELU + LayerNorm over label states, as the authors' release does before its
  CLCP classifier. Our choice: each head has its own, so the auxiliary tasks do not
  reshape H_Y for the main task directly.

  Input [..., d] -> output [..., hidden_size].
  """

  def __init__(self, hidden_size: int, **kwargs):
    super().__init__(**kwargs)
    self.hidden_size = hidden_size
    self.dense = tf_keras.layers.Dense(hidden_size, activation="gelu")
    self.norm = tf_keras.layers.LayerNormalization(epsilon=1e-12)

  def call(self, states):
    return self.norm(self.dense(states))

  def get_config(self):
    return {**super().get_config(), "hidden_size": self.hidden_size}


class PairwiseCooccurrenceHead(tf_keras.layers.Layer):
  """PLCP (eq. 5): is the label pair [y_i, y_j] IsCo-occur for this document?

  The two (transformed) label states are concatenated and a binary classifier gives
  the logit of p_ij = p(y_j | D, y_i).

  Call args:
    label_states: [batch, n, d]; pairs: [batch, k, 2] int label indices.
  Returns:
    logits [batch, k].
  """

  def __init__(self, hidden_size: int, **kwargs):
    super().__init__(**kwargs)
    self.hidden_size = hidden_size
    self.transform = LabelStateTransform(hidden_size, name="transform")
    self.classifier = tf_keras.layers.Dense(1, name="classifier", dtype="float32")

  def call(self, label_states, pairs):
    states = self.transform(label_states)
    first = tf.gather(states, pairs[..., 0], batch_dims=1)
    second = tf.gather(states, pairs[..., 1], batch_dims=1)
    return tf.squeeze(self.classifier(tf.concat([first, second], axis=-1)), -1)

  def get_config(self):
    return {**super().get_config(), "hidden_size": self.hidden_size}


class ConditionalCooccurrenceHead(tf_keras.layers.Layer):
  """CLCP (eq. 6): given Y^G, is each other label relevant too?

  h_{y^G} is the mean of the given labels' states; it is concatenated to every label's
  state and a sigmoid classifier gives p(y_i | D, Y^G). As in the authors' release, given
  and candidate states pass through separate transforms. Logits are returned for all n
  labels; the loss keeps only the non-given ones (E_Y = 1).

  Call args:
    label_states: [batch, n, d]; given: [batch, n] 1.0 for labels in Y^G.
  Returns:
    logits [batch, n].
  """

  def __init__(self, hidden_size: int, **kwargs):
    super().__init__(**kwargs)
    self.hidden_size = hidden_size
    self.given_transform = LabelStateTransform(hidden_size, name="given_transform")
    self.candidate_transform = LabelStateTransform(hidden_size, name="candidate_transform")
    self.classifier = tf_keras.layers.Dense(1, name="classifier", dtype="float32")

  def call(self, label_states, given):
    given = tf.cast(given, label_states.dtype)
    count = tf.maximum(tf.reduce_sum(given, axis=1, keepdims=True), 1.0)
    h_given = tf.einsum("bn,bnd->bd", given, self.given_transform(label_states)) / count
    candidates = self.candidate_transform(label_states)
    h_given = tf.broadcast_to(h_given[:, tf.newaxis, :], tf.shape(candidates))
    return tf.squeeze(self.classifier(tf.concat([candidates, h_given], axis=-1)), -1)

  def get_config(self):
    return {**super().get_config(), "hidden_size": self.hidden_size}
