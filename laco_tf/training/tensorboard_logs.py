"""What a run shows in TensorBoard beyond the loss scalars (our extension).

- Dev scalars under the tags the training side uses (``loss/mlc``) or Keras-like
  ``metrics/*``, written to ``logs/dev`` beside ``logs/train``, so TensorBoard overlays the
  two runs as it does Keras' train and validation.
- The run's settings and best dev scores for the HParams dashboard (one session per
  output directory: point TensorBoard at a folder of runs to compare seeds and ablations).
- A precision-recall curve per label on dev at each evaluation (the PR-curve dashboard).
"""

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.pr_curve import summary as pr_summary

PR_THRESHOLDS = 51
# The best checkpoint's scores (what --do_eval and the export use), not the last evaluation's.
HPARAM_METRICS = ("best/micro_f1", "best/macro_f1", "best/step")


def dev_bce(gold: np.ndarray, probs: np.ndarray) -> float:
  """Eq. 4 on dev from probabilities: BCE summed over labels, averaged over documents."""
  p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
  return float(np.mean(np.sum(-(gold * np.log(p) + (1 - gold) * np.log(1 - p)), axis=1)))


def write_dev_evaluation(writer, step: int, scores: dict, gold: np.ndarray,
                         probs: np.ndarray, label_names, dev_loss: dict, best: dict) -> None:
  """Scalars, the dev losses (`dev_loss`, e.g. {"mlc": eq. 4}), the scores of the best
  checkpoint so far (`best`, under ``best/``: what the HParams dashboard reports), and
  per-label PR curves."""
  with writer.as_default(step=step):
    for name, value in scores.items():
      tf.summary.scalar(f"metrics/{name}", value)
    for name, value in dev_loss.items():
      tf.summary.scalar(f"loss/{name}", value)
    for name, value in best.items():
      tf.summary.scalar(f"best/{name}", value)
    for j, name in enumerate(label_names):
      summary = pr_summary.pb(f"pr_curve/{name}", gold[:, j].astype(bool),
                              probs[:, j].astype(np.float32), num_thresholds=PR_THRESHOLDS)
      tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)
  writer.flush()


class _TypeOnly(hp.Domain):
  """A hyperparameter's type with no bounds: each run logs its own value, and TensorBoard
  gathers the values of every run it shows (a domain fixed by one run would hide others)."""

  _TYPES = {bool: api_pb2.DATA_TYPE_BOOL, int: api_pb2.DATA_TYPE_FLOAT64,
            float: api_pb2.DATA_TYPE_FLOAT64, str: api_pb2.DATA_TYPE_STRING}

  def __init__(self, dtype: type):
    self._dtype = dtype

  @property
  def dtype(self):
    return self._dtype

  def sample_uniform(self, rng=None):
    raise NotImplementedError("a type-only domain has no values to sample")

  def update_hparam_info(self, hparam_info):
    hparam_info.type = self._TYPES[self._dtype]


def write_hparams(log_dir: str, hparams: dict, types: dict) -> None:
  """The run's settings for the HParams dashboard, in `log_dir` itself: each of `types`
  (name -> bool, int, float or str) declared with its type, and the values of `hparams`
  that are set (None, an unset option, is left out of this run's session)."""
  values = {k: v for k, v in hparams.items() if isinstance(v, (bool, int, float, str))}
  writer = tf.summary.create_file_writer(log_dir)
  with writer.as_default():
    hp.hparams_config(hparams=[hp.HParam(k, _TypeOnly(types[k])) for k in sorted(types)],
                      metrics=[hp.Metric(m, group="dev", display_name=m.replace("/", " "))
                               for m in HPARAM_METRICS])
    hp.hparams(values, trial_id=log_dir)
  writer.close()
