"""Numeric precision of training and prediction (`--precision`; our extension, operational).

The Keras mixed-precision policy (`tf_keras.mixed_precision`) decides each layer's
compute type when the layer is built: `fp32` computes in float32; `bf16`
(`mixed_bfloat16`) and `fp16` (`mixed_float16`) compute in the low type while variables
stay float32. Whatever the policy, the model keeps these in float32: the L2
normalisation, M and weighting of CA, the classifier and auxiliary logits (their Dense
layers are float32), sigmoid, the losses and the metrics. fp16's narrow range needs
dynamic loss scaling (`LossScaleOptimizer`); bf16 has float32's range and needs none.
"""

import contextlib

from laco_tf import options

PRECISIONS = tuple(p for p in options.BY_NAME["precision"].choices if p != "auto")
_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def policy_name(precision: str) -> str:
  if precision not in _POLICIES:
    raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
  return _POLICIES[precision]


@contextlib.contextmanager
def policy_scope(precision: str):
  """Layers built inside take `precision`'s policy; the previous global policy comes back."""
  import tf_keras  # pylint: disable=import-outside-toplevel
  previous = tf_keras.mixed_precision.global_policy()
  tf_keras.mixed_precision.set_global_policy(policy_name(precision))
  try:
    yield
  finally:
    tf_keras.mixed_precision.set_global_policy(previous)


def wrap_optimizer(optimizer, precision: str):
  """fp16: dynamic loss scaling around `optimizer`; other precisions: `optimizer` itself."""
  if precision != "fp16":
    return optimizer
  import tf_keras  # pylint: disable=import-outside-toplevel
  return tf_keras.mixed_precision.LossScaleOptimizer(optimizer)


def _cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
  """Whether the CPU computes bf16 natively (AVX-512 BF16 or AMX), from its flags."""
  try:
    with open(cpuinfo, encoding="utf-8", errors="replace") as f:
      flags = {w for line in f if line.startswith("flags") for w in line.split()}
  except OSError:
    return False
  return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve(precision: str) -> str:
  """`auto` -> the measured-fastest safe precision of this machine (see --precision in laco_tf/options.py)."""
  if precision != "auto":
    policy_name(precision)
    return precision
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  gpus = tf.config.list_physical_devices("GPU")
  if gpus:
    capability = tf.config.experimental.get_device_details(gpus[0]).get(
        "compute_capability", (0, 0))
    return "bf16" if tuple(capability) >= (8, 0) else "fp16"
  return "bf16" if _cpu_has_bf16() else "fp32"
