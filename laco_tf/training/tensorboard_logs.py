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
from tensorboard.plugins.pr_curve import summary as pr_summary

PR_THRESHOLDS = 51
HPARAM_METRICS = ("metrics/micro_f1", "metrics/macro_f1")


def dev_bce(gold: np.ndarray, probs: np.ndarray) -> float:
  """Eq. 4 on dev from probabilities: BCE summed over labels, averaged over documents."""
  p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
  return float(np.mean(np.sum(-(gold * np.log(p) + (1 - gold) * np.log(1 - p)), axis=1)))


def write_dev_evaluation(writer, step: int, scores: dict, gold: np.ndarray,
                         probs: np.ndarray, label_names, bce: bool) -> None:
  """Scalars, the eq.-4 loss when training uses it (`bce`), and per-label PR curves."""
  with writer.as_default(step=step):
    for name, value in scores.items():
      tf.summary.scalar(f"metrics/{name}", value)
    if bce:
      tf.summary.scalar("loss/mlc", dev_bce(gold, probs))
    for j, name in enumerate(label_names):
      summary = pr_summary.pb(f"pr_curve/{name}", gold[:, j].astype(bool),
                              probs[:, j].astype(np.float32), num_thresholds=PR_THRESHOLDS)
      tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)
  writer.flush()


def write_hparams(log_dir: str, hparams: dict) -> None:
  """The run's settings (scalars only) for the HParams dashboard, in `log_dir` itself."""
  values = {k: v for k, v in hparams.items()
            if isinstance(v, (bool, int, float, str)) and v is not None}
  writer = tf.summary.create_file_writer(log_dir)
  with writer.as_default():
    hp.hparams_config(hparams=[hp.HParam(k) for k in sorted(values)],
                      metrics=[hp.Metric(m, group="dev", display_name=m.split("/")[1])
                               for m in HPARAM_METRICS])
    hp.hparams(values, trial_id=log_dir)
  writer.close()
