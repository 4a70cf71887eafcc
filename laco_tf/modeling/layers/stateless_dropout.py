"""Dropout drawn from (seed, training step, layer, replica): our extension, not the paper's.

The paper trains with BERT's dropout (3.2) and dropout on CA's output; it says nothing
about where the random numbers come from. Keras' `Dropout` draws them from a random state
that no checkpoint holds, so a run stopped and resumed drew other masks than the
uninterrupted run and ended elsewhere (issue #13). `StatelessDropout` derives each
mask from a stateless Philox draw seeded by (run seed, layer salt) folded with the
training step and the replica id: a resumed run (the step lives in the checkpoint)
draws the very masks the uninterrupted run drew, and replicas draw different ones.

It is also cheaper. BERT's attention dropout draws one number per attention weight
([batch, heads, L, L], a fifth of a bf16 step here). Here each 32-bit Philox output gives
two 16-bit draws compared with round(rate * 2**16), and the backward pass keeps a
1-byte mask instead of a float one. The rate is thus rounded to a multiple of 2**-16
(0.1 becomes 0.100006).
"""

from typing import Optional

import tensorflow as tf
import tf_keras

_BITS = 16  # bits per draw


class DropoutSeed:
  """Shared by a model's dropout layers: the run seed and the step counter.

  `step` is a scalar integer variable that training advances before each step (the
  trainer's checkpointed global step). It is a plain attribute of this plain object,
  so no layer tracks it as a weight. With no step set, layers draw as Keras' Dropout.
  `microbatch` (a scalar integer tensor, or None) is set while a step runs its batch in
  micro-batches (`--microbatch_size`): each micro-batch then draws its own masks.
  """

  def __init__(self, seed: int = 0):
    self.seed = int(seed)
    self.step: Optional[tf.Variable] = None
    self.microbatch = None


class StatelessDropout(tf_keras.layers.Layer):
  """Inverted dropout whose mask is a function of (seed, step, salt, replica).

  Args:
    rate: fraction of inputs zeroed, in [0, 1).
    salt: distinguishes this layer's draws from the other layers' of one model.
    seed_source: the model's `DropoutSeed` (a private one when omitted).
    compiled: mask with one XLA-compiled loop (`apply_dropout_mask`; one compile per input
      shape), else with TensorFlow's kernels.
  Call: inputs [..., k] of any float type (rank >= 1), `training`; returns the same shape
  and dtype, inputs * 1/(1 - rate) where kept and 0 elsewhere when training.
  """

  def __init__(self, rate: float, salt: int = 0, seed_source: Optional[DropoutSeed] = None,
               seed: int = 0, compiled: bool = True, **kwargs):
    super().__init__(**kwargs)
    self.compiled = bool(compiled)
    if not 0.0 <= rate < 1.0:
      raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
    self.rate, self.salt = float(rate), int(salt)
    self.seed_source = seed_source if seed_source is not None else DropoutSeed(seed)
    self.supports_masking = True

  @property
  def threshold(self) -> int:
    """Draws below this (out of 2**16) are dropped."""
    return int(round(self.rate * 2 ** _BITS))

  def call(self, inputs, training=None):
    if training is None:
      training = tf_keras.backend.learning_phase()
    if self.rate == 0.0:
      return tf.identity(inputs)
    if isinstance(training, (bool, int)):
      return self._drop(inputs) if training else tf.identity(inputs)
    return tf.cond(tf.cast(training, tf.bool), lambda: self._drop(inputs),
                   lambda: tf.identity(inputs))

  def _seed(self):
    source = self.seed_source
    seed = tf.random.experimental.stateless_fold_in(
        tf.constant([source.seed, self.salt], tf.int64), tf.cast(source.step, tf.int64))
    if source.microbatch is not None:
      seed = tf.random.experimental.stateless_fold_in(seed,
                                                      tf.cast(source.microbatch, tf.int64))
    replica = tf.distribute.get_replica_context()
    if replica is not None:
      seed = tf.random.experimental.stateless_fold_in(
          seed, tf.cast(replica.replica_id_in_sync_group, tf.int64))
    return seed

  def _drop(self, inputs):
    if self.seed_source.step is None:
      return tf.nn.dropout(inputs, self.rate)
    shape = tf.shape(inputs)
    last = shape[-1]
    pairs = (last + 1) // 2
    words = tf.random.stateless_uniform(tf.concat([shape[:-1], [pairs]], 0), self._seed(),
                                        minval=None, maxval=None, dtype=tf.uint32)
    draws = tf.reshape(tf.bitcast(words, tf.uint16), tf.concat([shape[:-1], [2 * pairs]], 0))
    keep = draws[..., :last] >= tf.constant(self.threshold, tf.uint16)
    scale = tf.constant(1.0 / (1.0 - self.rate), inputs.dtype)
    return apply_dropout_mask(inputs, keep, scale, self.compiled)

  def get_config(self):
    return {**super().get_config(), "rate": self.rate, "salt": self.salt,
            "seed": self.seed_source.seed, "compiled": self.compiled}


def keep_scaled(x, keep, scale):
  """x * scale where `keep`, 0 elsewhere (shapes of x and keep equal; scale a scalar)."""
  return tf.where(keep, x * scale, tf.zeros_like(x))


# One XLA-compiled loop instead of three TensorFlow kernels (a product, a tensor of zeros,
# a select) over BERT's [batch, heads, L, L] attention weights: 1.6-1.8x as fast here, the
# same values bit for bit (BENCHMARKS "XLA for the elementwise chains"). The random draws
# stay with TensorFlow's Philox kernel: XLA's is 50x slower on this CPU, with equal bits.
keep_scaled_xla = tf.function(keep_scaled, jit_compile=True)


def apply_dropout_mask(inputs, keep, scale, compiled: bool = True):
  """Inverted dropout with a given boolean mask: inputs * scale where kept, else 0.

  Its gradient is the same masking of the incoming gradient. `compiled`: value and
  gradient each one XLA loop, keeping only the 1-byte mask for the backward pass; else
  TensorFlow's kernels, differentiated by TensorFlow (for lengths that are not bucketed,
  where XLA would compile for every new one)."""
  if not compiled:
    return keep_scaled(inputs, keep, scale)

  @tf.custom_gradient
  def masked(x):
    return keep_scaled_xla(x, keep, scale), lambda dy: keep_scaled_xla(dy, keep, scale)

  return masked(inputs)


def replace_keras_dropout(root: tf_keras.layers.Layer, seed_source: DropoutSeed,
                          first_salt: int = 0, compiled: bool = True) -> int:
  """Swaps every `tf_keras.layers.Dropout` held as an attribute by `root` or its sublayers
  (e.g. the cross attention's and the pooled vector's) for a `StatelessDropout` of the same rate, name and
  dtype policy (`compiled` as StatelessDropout's). Salts count up from `first_salt` in a
  fixed traversal order. Returns the number replaced. Dropout holds no weights, so
  checkpoints are unaffected.
  """
  salt = first_salt
  for layer in [root, *root.submodules]:
    if not isinstance(layer, tf_keras.layers.Layer):
      continue
    for name, value in sorted(vars(layer).items()):
      if type(value) is not tf_keras.layers.Dropout:  # pylint: disable=unidiomatic-typecheck
        continue
      if value.noise_shape is not None:
        raise ValueError(f"{layer.name}.{name}: dropout with a noise_shape is not supported")
      setattr(layer, name, StatelessDropout(value.rate, salt, seed_source, compiled=compiled,
                                            name=value.name, dtype=value.dtype_policy))
      salt += 1
  return salt - first_salt
