"""BERT's exact GELU, computed through erf in float32 (our extension: speed, not a new model).

BERT's feed-forward layers apply GELU(x) = x * Phi(x) = x/2 * (1 + erf(x / sqrt(2)))
(Hendrycks & Gimpel 2016; BERT's ``hidden_act: "gelu"``, the paper's encoder, Section 3.2).
transformers' TF "gelu" is tf_keras' gelu, which computes x/2 * erfc(-x / sqrt(2)) in the
layer's compute type. Under the ``mixed_bfloat16`` policy that is TensorFlow's bfloat16
erfc kernel, which this CPU runs about 5x slower than float32 erfc and 9x slower than
float32 erf (``benchmarks/gelu_speed.py``); it took a fifth of a served request's op time.
`erf_gelu` computes the same function in float32 through erf (the formula of PyTorch's
exact GELU, which all-MiniLM was trained with), rounds once to the input's type, and
differentiates by hand (Phi(x) + x * phi(x)), so that backpropagation keeps only its
input, as tf_keras' gelu keeps one tensor. In float32 it equals tf_keras' gelu
to 1e-6 (absolute: 1 + erf cancels in the far negative tail, where GELU is below 1e-5);
in bfloat16 it is the float32 value rounded once, where tf_keras' rounds after
every op.
"""

import math

import tensorflow as tf

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@tf.custom_gradient
def erf_gelu(x):
  """GELU(x) = x * Phi(x), any float dtype in and out, computed in float32. Shape kept."""
  x32 = tf.cast(x, tf.float32)
  cdf = 0.5 * (1.0 + tf.math.erf(x32 * _SQRT_HALF))

  def grad(dy):
    x32 = tf.cast(x, tf.float32)  # Recomputed: only x is kept for the backward pass.
    cdf = 0.5 * (1.0 + tf.math.erf(x32 * _SQRT_HALF))
    pdf = _INV_SQRT_2PI * tf.exp(-0.5 * tf.square(x32))
    return tf.cast(tf.cast(dy, tf.float32) * (cdf + x32 * pdf), x.dtype)

  return tf.cast(x32 * cdf, x.dtype), grad


def use_erf_gelu(bert) -> int:
  """Sets `erf_gelu` as the activation of every feed-forward layer of a transformers
  `TFBertModel` whose config says ``hidden_act: "gelu"`` (the exact GELU; the tanh
  approximations "gelu_new"/"gelu_fast" and others are left as they are). Activations
  hold no weights, so checkpoints are unaffected. Returns the number of layers changed."""
  if bert.config.hidden_act != "gelu":
    return 0
  layers = bert.bert.encoder.layer
  for layer in layers:
    layer.intermediate.intermediate_act_fn = erf_gelu
  return len(layers)
