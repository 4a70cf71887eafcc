"""Optimisers and the learning-rate schedule (paper 4.4: Adam, lr 5e-5).

Our extensions, each off or neutral unless asked for:
- linear warmup then linear decay to 0 (``--warmup_proportion``, as in Google BERT's
  `run_classifier.py`);
- a separate learning rate for the newly initialised layers (``--head_learning_rate``),
  because heads that start from random weights learn too slowly at a fine-tuning rate;
- decoupled weight decay (``--weight_decay``, AdamW of Loshchilov & Hutter, ICLR 2019, as
  BERT fine-tuning uses it: ``w -= lr * wd * w``, never on biases or LayerNorm);
- layer-wise learning-rate decay (``--layer_decay``, ELECTRA's recipe, which LACO's
  release used with 0.8): the encoder's top layer trains at ``--learning_rate``, each layer
  below at ``layer_decay`` times the one above, the embeddings last.
"""

import re
from typing import Sequence, Tuple

import tensorflow as tf
import tf_keras

# Variables that never get weight decay (Google BERT's optimization.py excludes the same).
NO_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")
# A Transformer block's variables in `BertEncoder`: ".../bert_encoder/layer_3/...".
_LAYER = re.compile(r"/layer_(\d+)/")
_EMBEDDINGS = "/embeddings/"


class WarmupLinearDecay(tf_keras.optimizers.schedules.LearningRateSchedule):
  """lr * step / warmup_steps while warming up, then linear decay to 0 at total_steps.

  With warmup_steps = 0 and decay off, the rate is constant.
  """

  def __init__(self, learning_rate: float, total_steps: int, warmup_steps: int,
               decay: bool = True):
    self.learning_rate = learning_rate
    self.total_steps = total_steps
    self.warmup_steps = warmup_steps
    self.decay = decay

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    lr = tf.constant(self.learning_rate, tf.float32)
    if self.decay:
      span = float(max(self.total_steps - self.warmup_steps, 1))
      lr = lr * tf.maximum(0.0, 1.0 - (step - self.warmup_steps) / span)
    if self.warmup_steps > 0:
      lr = tf.where(step < self.warmup_steps,
                    self.learning_rate * step / float(self.warmup_steps), lr)
    return lr

  def get_config(self):
    return {"learning_rate": self.learning_rate, "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps, "decay": self.decay}


def make_schedule(learning_rate: float, total_steps: int,
                  warmup_proportion: float) -> WarmupLinearDecay:
  """warmup_proportion = 0 keeps the paper's constant rate."""
  return WarmupLinearDecay(learning_rate, total_steps,
                           int(round(total_steps * warmup_proportion)),
                           decay=warmup_proportion > 0)


def layer_depths(names: Sequence[str]) -> list:
  """Depth of each encoder variable by name: embeddings 0, Transformer layer i -> i + 1,
  anything else the top, L = number of layers."""
  layers = [int(m.group(1)) for m in map(_LAYER.search, names) if m]
  top = max(layers) + 1 if layers else 0
  depths = []
  for name in names:
    m = _LAYER.search(name)
    depths.append(int(m.group(1)) + 1 if m else 0 if _EMBEDDINGS in name else top)
  return depths


def layerwise_multipliers(names: Sequence[str], layer_decay: float) -> list:
  """Learning-rate factor of each encoder variable: layer_decay ** (L - depth), so the top
  layer trains at the full rate and the embeddings at layer_decay ** L."""
  depths = layer_depths(names)
  top = max(depths) if depths else 0
  return [float(layer_decay) ** (top - d) for d in depths]


class AdamW(tf_keras.optimizers.Adam):
  """Adam (epsilon 1e-6, as BERT) with decoupled weight decay and a learning-rate factor
  per variable.

  With ``weight_decay=0`` and every factor 1 it computes exactly `tf_keras` Adam's update;
  its slots are Adam's, so checkpoints of either load into the other.

  Args:
    learning_rate: a float or schedule.
    weight_decay: decoupled decay per unit of learning rate (0 disables it).
    lr_multipliers: (variable, factor) pairs of variables whose rate and decay are scaled.
  """

  def __init__(self, learning_rate, weight_decay: float = 0.0,
               lr_multipliers: Sequence[Tuple[tf.Variable, float]] = (),
               name: str = "AdamW"):
    super().__init__(learning_rate, epsilon=1e-6, name=name,
                     weight_decay=weight_decay if weight_decay > 0 else None)
    if weight_decay > 0:
      self.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    self._factors = {self._var_key(v): float(f) for v, f in lr_multipliers
                     if f != 1.0}

  def _factor(self, variable) -> float:
    return self._factors.get(self._var_key(variable), 1.0)

  def _apply_weight_decay(self, variables):
    if self.weight_decay is None:
      return

    def apply(distribution, variables):
      def decay(variable):
        if self._use_weight_decay(variable):
          lr = tf.cast(self.learning_rate, variable.dtype) * self._factor(variable)
          variable.assign_sub(variable * tf.cast(self.weight_decay, variable.dtype) * lr)
      for variable in variables:
        distribution.extended.update(variable, decay, group=False)

    tf.__internal__.distribute.interim.maybe_merge_call(apply, self._distribution_strategy,
                                                        variables)

  def update_step(self, gradient, variable):
    """tf_keras Adam's update (no amsgrad) with the variable's learning-rate factor."""
    lr = tf.cast(self.learning_rate, variable.dtype) * self._factor(variable)
    local_step = tf.cast(self.iterations + 1, variable.dtype)
    beta_1_power = tf.pow(tf.cast(self.beta_1, variable.dtype), local_step)
    beta_2_power = tf.pow(tf.cast(self.beta_2, variable.dtype), local_step)
    index = self._index_dict[self._var_key(variable)]
    m, v = self._momentums[index], self._velocities[index]
    alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    if isinstance(gradient, tf.IndexedSlices):
      m.assign_add(-m * (1 - self.beta_1))
      m.scatter_add(tf.IndexedSlices(gradient.values * (1 - self.beta_1), gradient.indices))
      v.assign_add(-v * (1 - self.beta_2))
      v.scatter_add(tf.IndexedSlices(tf.square(gradient.values) * (1 - self.beta_2),
                                     gradient.indices))
    else:
      m.assign_add((gradient - m) * (1 - self.beta_1))
      v.assign_add((tf.square(gradient) - v) * (1 - self.beta_2))
    variable.assign_sub((m * alpha) / (tf.sqrt(v) + self.epsilon))


def make_optimizer(schedule: WarmupLinearDecay, name: str, weight_decay: float = 0.0,
                   variables: Sequence[tf.Variable] = (),
                   layer_decay: float = 1.0) -> AdamW:
  """The optimiser of one group of variables; `layer_decay` < 1 scales `variables` by depth."""
  multipliers = ()
  if layer_decay != 1.0:
    multipliers = list(zip(variables, layerwise_multipliers([v.name for v in variables],
                                                            layer_decay)))
  return AdamW(schedule, weight_decay=weight_decay, lr_multipliers=multipliers, name=name)
