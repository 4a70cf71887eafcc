"""BERT's exact GELU, computed fast (our extension: speed, not a new model).

BERT's feed-forward layers apply GELU(x) = x * Phi(x) = x/2 * (1 + erf(x / sqrt(2)))
(Hendrycks & Gimpel 2016; BERT's ``hidden_act: "gelu"``, the paper's encoder, Section 3.2).
tf_keras' gelu (transformers' TF "gelu" too) computes x/2 * erfc(-x / sqrt(2)) in the
layer's compute type. Under the ``mixed_bfloat16`` policy that is TensorFlow's bfloat16
erfc kernel, which this CPU runs 5x slower than float32 erfc and 10x slower than float32
erf; it took a fifth of a served request's op time (BENCHMARKS.md, "BERT's GELU").

`exact_gelu` computes the same function in float32 (the exact GELU of PyTorch, which
all-MiniLM was trained with), rounds once to the input's type, and differentiates by hand
(Phi(x) + x * pdf(x)), so that backpropagation keeps only its input (tf_keras' gelu,
differentiated automatically, keeps three tensors). Forward and backward each run as one
XLA-compiled loop (our extension: op by op they were a dozen passes over the
activations); `exact_gelu_op_by_op` is the same with TensorFlow's kernels, for lengths that
are not bucketed. In float32 it equals tf_keras' gelu to 1e-6; in bfloat16 it is the float32
value rounded once, where tf_keras' rounds after every op.
`GeluIntermediate` (the feed-forward expansion of `bert_encoder.BertEncoder`) uses it for
training and a fused kernel for inference.
"""

import math

import tensorflow as tf
import tf_keras

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def cdf_by_erf(x32):
  """Phi(x) = (1 + erf(x / sqrt 2)) / 2. TensorFlow's float32 erf kernel gives exactly -1
  far below zero and runs twice as fast as its erfc (BENCHMARKS "BERT's GELU")."""
  return 0.5 * (1.0 + tf.math.erf(x32 * _SQRT_HALF))


def cdf_by_erfc(x32):
  """Phi(x) = erfc(-x / sqrt 2) / 2, for XLA: its erf leaves 1 + erf(x) off by about 2e-7
  far below zero (GELU(-12) came out -1.1e-6), while its erfc keeps float32's relative
  accuracy in both tails."""
  return 0.5 * tf.math.erfc(-x32 * _SQRT_HALF)


def gelu_forward(x, cdf):
  """GELU(x) = x * Phi(x) in float32, rounded once to x's dtype. Shape kept."""
  x32 = tf.cast(x, tf.float32)
  return tf.cast(x32 * cdf(x32), x.dtype)


def gelu_backward(x, dy, cdf):
  """dy * GELU'(x) = dy * (Phi(x) + x * pdf(x)) in float32, rounded once to x's dtype."""
  x32 = tf.cast(x, tf.float32)
  pdf = _INV_SQRT_2PI * tf.exp(-0.5 * tf.square(x32))
  return tf.cast(tf.cast(dy, tf.float32) * (cdf(x32) + x32 * pdf), x.dtype)


# Each chain above is a dozen elementwise passes over a [tokens, intermediate] tensor when
# TensorFlow runs it op by op (a tenth of a bf16 training step here). XLA compiles each
# into one loop that reads its inputs once (1.5-2.2x as fast on this CPU, BENCHMARKS "XLA
# for the elementwise chains"), once per input shape: worth it where lengths are bucketed.
@tf.function(jit_compile=True)
def gelu_forward_xla(x):
  return gelu_forward(x, cdf_by_erfc)


@tf.function(jit_compile=True)
def gelu_backward_xla(x, dy):
  return gelu_backward(x, dy, cdf_by_erfc)


@tf.custom_gradient
def exact_gelu(x):
  """GELU(x) = x * Phi(x), any float dtype in and out, computed in float32. Shape kept.

  Forward and backward each run as one XLA-compiled loop; the backward pass recomputes
  Phi from x, so only x is kept."""
  return gelu_forward_xla(x), lambda dy: gelu_backward_xla(x, dy)


@tf.custom_gradient
def exact_gelu_op_by_op(x):
  """`exact_gelu` with TensorFlow's own kernels, op by op: for
  batches of arbitrary length, where XLA would compile for every new one."""
  return gelu_forward(x, cdf_by_erf), lambda dy: gelu_backward(x, dy, cdf_by_erf)


class GeluIntermediate(tf_keras.layers.Layer):
  """GELU(x W + b), BERT's feed-forward expansion (our extension: the same function as
  tf_keras' exact gelu after a Dense, faster).

  Holds its `Dense` as ``dense`` (variables ``.../intermediate/dense/kernel``, ``bias``).
  Training applies `exact_gelu` (or `exact_gelu_op_by_op`) to the Dense output.
  Inference (``training`` false or unset: dev evaluation, prediction, the SavedModel)
  computes the same function as one [tokens, hidden] x [hidden, intermediate] matrix
  product with its bias and tf_keras' exact gelu, the pattern TensorFlow's graph optimiser
  fuses into one oneDNN kernel on CPU (``_MklNativeFusedMatMul``: the product accumulated,
  biased and activated in float32 and rounded once; the profiler shows no other op but
  casts) inside a tf.function; eager calls, GPUs and XLA (--jit_compile) get the same ops
  unfused or fused their own way.

  Args: dense: the layer's Dense (hidden -> intermediate); hidden_size: its input width;
    compiled: training applies `exact_gelu` (XLA, one compile per input shape) rather than
    `exact_gelu_op_by_op`.
  Call args: hidden_states [batch, length, hidden]. Returns [batch, length, intermediate].
  """

  def __init__(self, dense: tf_keras.layers.Dense, hidden_size: int, compiled: bool = True,
               **kwargs):
    super().__init__(**kwargs)
    self.dense = dense
    self.hidden_size = hidden_size
    self.compiled = compiled

  def build(self, input_shape=None):
    if not self.dense.built:  # Under its own name scope: ``.../dense/kernel``.
      with tf.name_scope(self.dense.name):
        self.dense.build([None, None, self.hidden_size])
    super().build(input_shape)

  def call(self, hidden_states, training=None):
    if training:
      gelu = exact_gelu if self.compiled else exact_gelu_op_by_op
      return gelu(self.dense(hidden_states))
    kernel = tf.cast(self.dense.kernel, self.compute_dtype)
    bias = tf.cast(self.dense.bias, self.compute_dtype)
    states = tf.cast(hidden_states, self.compute_dtype)
    flat = tf.reshape(states, [-1, tf.shape(kernel)[0]])
    out = tf.nn.gelu(tf.nn.bias_add(tf.matmul(flat, kernel), bias), approximate=False)
    return tf.reshape(out, tf.concat([tf.shape(states)[:-1], tf.shape(kernel)[1:]], axis=0))
