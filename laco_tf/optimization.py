"""Optimisers and the learning-rate schedule (paper 4.4: Adam, lr 5e-5).

Our extensions, each off or neutral unless asked for: linear warmup then linear decay
to 0 (``--warmup_proportion``, as in Google BERT's `run_classifier.py`), and a separate
learning rate for the newly initialised layers (``--head_learning_rate``), because
heads that start from random weights learn too slowly at a fine-tuning rate.
"""

import tensorflow as tf
import tf_keras


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


def make_optimizer(schedule: WarmupLinearDecay, name: str) -> tf_keras.optimizers.Adam:
  return tf_keras.optimizers.Adam(schedule, epsilon=1e-6, name=name)
