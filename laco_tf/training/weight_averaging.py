"""An exponential moving average of the trained weights (our extension, not in the paper).

The paper trains with Adam at a constant 5e-5 and monitors dev micro-F1 (section 4.4); a
constant rate leaves the weights moving around a minimum, and an average of the recent
weights is a standard way to read a quieter point of that path (Polyak averaging;
`tf.train.ExponentialMovingAverage` with `num_updates`). With `--ema_decay=d > 0`, after
each training step t (1, 2, ...):

    decay_t = min(d, (1 + t) / (10 + t))
    average <- decay_t * average + (1 - decay_t) * weights

The cap (1 + t) / (10 + t) is TensorFlow's `num_updates` rule: early on, the average
forgets the pretrained starting point quickly; later it spans about the last t / 9 steps
or 1 / (1 - d) steps, whichever is fewer (with d = 0.999 the cap binds for the first
~9,000 steps). The weights' updates never read the average: their trajectory is that of
the same run without it. Dev evaluation (and so the best checkpoint and early stopping),
predictions and the export use the averaged weights (`swap` puts them in the model and
back). A step that fp16's loss scaling skips leaves the weights as they were and still
counts as a step of the average.
"""

from typing import Sequence

import tensorflow as tf

# TensorFlow's num_updates rule: decay_t <= (1 + t) / (WARMUP + t).
WARMUP = 10.0


def decay_at(decay: float, step) -> tf.Tensor:
  """The decay used after training step `step` (1-based): min(decay, (1+t)/(10+t))."""
  step = tf.cast(step, tf.float32)
  return tf.minimum(tf.constant(decay, tf.float32), (1.0 + step) / (WARMUP + step))


class WeightAverage(tf.Module):
  """Averages of `variables`, each a float32 variable of its variable's shape.

  Create it in the strategy's scope (the averages are mirrored as the weights are) after
  the weights hold their starting values, and add it to the run's checkpoint so that a
  resumed run continues the same average. It keeps only the averages (the weights stay
  the model's alone in a checkpoint): `update` and `swap` take the same `variables` in the
  same order. Both run in cross-replica context (between `strategy.run` calls), where
  every replica holds the same weights.
  """

  def __init__(self, variables: Sequence[tf.Variable], decay: float, name="weight_average"):
    super().__init__(name=name)
    if not 0.0 < decay < 1.0:
      raise ValueError(f"decay={decay}: expected a number in (0, 1)")
    self.decay = float(decay)
    # Each device updates its own copy of a mirrored average from its own copy of the
    # weight (no copies between devices); the default strategy outside any scope.
    self._strategy = tf.distribute.get_strategy()
    with self.name_scope:
      self.averages = [tf.Variable(tf.identity(v), trainable=False,
                                   name=v.name.split(":")[0].replace("/", "_") + "_average")
                       for v in variables]

  def _pairs(self, variables):
    variables = list(variables)
    if len(variables) != len(self.averages):
      raise ValueError(f"{len(variables)} variables for {len(self.averages)} averages")
    return zip(self.averages, variables)

  def update(self, variables: Sequence[tf.Variable], step) -> None:
    """Moves each average toward its weight after training step `step` (1-based)."""
    d = decay_at(self.decay, step)

    def move(average, weight):
      return average.assign(d * average + (1.0 - d) * tf.convert_to_tensor(weight))

    for average, variable in self._pairs(variables):
      self._strategy.extended.update(average, move, args=(variable,))

  def swap(self, variables: Sequence[tf.Variable]) -> None:
    """Exchanges the weights and their averages (twice: back where they were).

    Eager: it runs twice per dev evaluation (47 ms for MiniLM on a CPU, BENCHMARKS.md),
    and a `tf.function` taking the variables as arguments is traced anew on each call."""
    for average, variable in self._pairs(variables):
      held = tf.identity(variable)
      variable.assign(average)
      average.assign(held)
