"""LACO-TF: label-correlation-aware multi-label text classification in TensorFlow.

Implements Zhang et al., "Enhancing Label Correlation Feedback in Multi-Label Text
Classification via Multi-Task Learning" (Findings of ACL 2021). The paper's section
numbers and equations are cited in each module's docstrings.
"""

__version__ = "0.2.0"


def __getattr__(name):
  """The public API, imported on first use (importing `laco_tf` stays free of TensorFlow).

  TensorFlow's C++ start-up lines are kept off stderr (`quiet_start`) unless
  TF_CPP_MIN_LOG_LEVEL is set in the environment, which then decides what TensorFlow shows.
  """
  if name in ("Classifier", "RunOptions", "train"):
    import os  # pylint: disable=import-outside-toplevel
    from laco_tf import quiet_start  # pylint: disable=import-outside-toplevel
    quiet_start.start_tensorflow(quiet="TF_CPP_MIN_LOG_LEVEL" not in os.environ)
  if name == "Classifier":
    from laco_tf.serving.classifier import Classifier  # pylint: disable=import-outside-toplevel
    return Classifier
  if name == "RunOptions":
    from laco_tf.run_settings import RunOptions  # pylint: disable=import-outside-toplevel
    return RunOptions
  if name == "train":
    from laco_tf.runner import run  # pylint: disable=import-outside-toplevel
    return run
  raise AttributeError(f"module 'laco_tf' has no attribute {name!r}")
