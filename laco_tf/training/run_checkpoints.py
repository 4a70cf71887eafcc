"""A run's two checkpoints: the latest (for resuming) and the best dev step (Model Garden's
checkpoint "actions"; our extension of the paper's "best dev checkpoint", section 4.4).

``OUTPUT_DIR/checkpoints`` keeps the latest step: model, optimisers, step, best score and,
with `ema_decay`, the weight average. ``OUTPUT_DIR/best`` keeps the weights of the best
dev step (with `ema_decay`, the averaged weights). A checkpoint that is gone or unreadable
is refused, never silently replaced by training from step 0, and a failed save leaves
nothing behind (`checkpoint_files.py`). best/ is saved after checkpoints/, so that it
never holds a step beyond the latest checkpoint; a resume reconciles the two
(`reconcile_best`).
"""

import os

import tensorflow as tf

from laco_tf.errors import InputError
from laco_tf.training import checkpoint_files
from laco_tf.training.train_step import TrainStep


# transformers' TF BERT model (the encoder before `BertEncoder`) tracked its weights under a
# main layer of its own, `bert`: "model/bert/bert/embeddings/...".
_TRANSFORMERS_ENCODER_KEY = "model/bert/bert/"


def refuse_transformers_encoder(path: str) -> None:
  """One error line for a checkpoint whose encoder is transformers' TF BERT model: its
  variables do not map onto `BertEncoder`'s, and restoring it partially would score a
  randomly initialised encoder."""
  if any(name.startswith(_TRANSFORMERS_ENCODER_KEY) for name, _ in tf.train.list_variables(path)):
    raise InputError(f"{path}: a checkpoint of transformers' TF BERT encoder, which this "
                     "LACO-TF (with its own BERT encoder) does not read; resume or score it "
                     "with laco-tf 0.1 (transformers 4.54), or train it again in a new "
                     "--output_dir")


class RunCheckpoints:
  """checkpoints/ and best/ of one output directory (on a non-chief worker, of its scratch
  directory: every worker saves, TF's multi-worker pattern; only the chief's are kept)."""

  def __init__(self, steps: TrainStep, best_score: tf.Variable, best_step: tf.Variable):
    config = steps.config
    self._steps, self.best_score, self.best_step = steps, best_score, best_step
    self.output_dir = config.output_dir
    self.chief = config.scratch_dir is None
    self._write_root = config.output_dir if self.chief else config.scratch_dir
    average = {"weight_average": steps.average} if steps.average else {}
    # best_f1: the name from when micro-F1 was the only score that chose best/.
    self.checkpoint = tf.train.Checkpoint(
        model=steps.model, encoder_optimizer=steps.encoder_optimizer,
        head_optimizer=steps.head_optimizer, step=steps.step, best_f1=best_score,
        best_step=best_step, **average)
    # A failed save removes what it wrote (checkpoint_files.CheckpointManager).
    self.manager = checkpoint_files.CheckpointManager(
        self.checkpoint, os.path.join(self._write_root, "checkpoints"), max_to_keep=1)
    self.best_manager = self._best_manager()
    self.saved_step = 0  # step of the latest checkpoint on disk (0: none)
    self.restored = None  # the restore status of the latest checkpoint, once restored

  def _best_manager(self):
    return checkpoint_files.CheckpointManager(
        tf.train.Checkpoint(model=self._steps.model), os.path.join(self._write_root, "best"),
        max_to_keep=1)

  def _dirs(self):
    """(checkpoints/, best/) of the output directory, each with what to do when the
    checkpoint there is unreadable."""
    latest, best = (os.path.join(self.output_dir, "checkpoints"),
                    os.path.join(self.output_dir, "best"))
    return ((latest, f"restore it from a copy, or delete {latest} to train again from "
                     "step 0"),
            (best, f"restore it from a copy, or delete {best} and {latest} to train again"))

  def kept(self) -> str:
    """What is on disk, for messages of a run that stops."""
    return (f"the checkpoints on disk are those of step {self.saved_step}"
            if self.saved_step else "no checkpoint was saved")

  def restore_latest(self) -> int:
    """Restores the latest checkpoint (refusing one that is gone or unreadable, rather
    than training again from step 0); returns its step (0: none)."""
    (directory, remedy), (best, _) = self._dirs()
    if self.chief:
      checkpoint_files.remove_stale(directory)
      checkpoint_files.remove_stale(best)
    # Workers resume from the chief's checkpoint: theirs are deleted after each run.
    latest = checkpoint_files.latest(directory, remedy)
    step = self._steps.step
    if latest:
      refuse_transformers_encoder(latest)
      self.restored = self.checkpoint.restore(latest).assert_existing_objects_matched()
      self.saved_step = int(step.numpy())
      print(f"Resumed from {latest} at step {int(step.numpy())}")
    return int(step.numpy())

  def restore_best(self) -> str:
    """Puts the best weights (else the latest checkpoint's) in the model; returns the path."""
    latest, best = self._dirs()
    path = checkpoint_files.latest(*best) or checkpoint_files.latest(*latest)
    if not path:
      raise InputError(f"--output_dir={self.output_dir} holds no trained model "
                       "(run with --do_train first)")
    refuse_transformers_encoder(path)
    steps = self._steps
    if steps.average is not None and os.path.dirname(path).endswith("checkpoints"):
      # No dev score was ever "best": the latest checkpoint's average stands in for it.
      tf.train.Checkpoint(model=steps.model, weight_average=steps.average).restore(
          path).expect_partial()
      steps.average.swap(steps.averaged)
    else:
      tf.train.Checkpoint(model=steps.model).restore(path).expect_partial()
    return path

  def save_latest(self, step: int) -> None:
    self.manager.save(checkpoint_number=step)
    self.saved_step = step

  def save_best(self, step: int) -> None:
    """Saves the current weights (with `ema_decay`, their average) as best/ of `step`."""
    with self._steps.averaged_weights():
      self.best_manager.save(checkpoint_number=step)

  def reconcile_best(self) -> None:
    """Makes best/ hold the best step the restored checkpoint records.

    A kill between the latest checkpoint and its best/ save leaves best/ one best behind:
    the restored weights are the best ones, saved now. best/ of any other step (a step
    beyond the checkpoint, from a trajectory that a resume need not retrace, e.g. saved
    before checkpoints/ by older code, or checkpoints/ deleted) is discarded, and the best
    score is judged afresh from the restored step.
    """
    step, best = int(self._steps.step.numpy()), int(self.best_step.numpy())
    best_dir = os.path.join(self.output_dir, "best")
    path = tf.train.latest_checkpoint(best_dir)
    held = int(path.rsplit("-", 1)[1]) if path else None
    judged = self.best_score.numpy() >= 0
    if (held == best and judged) or (held is None and not judged):
      return
    held_text = f"step {held}" if path else "no checkpoint"
    if judged and best == step:
      print(f"{best_dir} holds {held_text}, not step {step}, which the resumed checkpoint "
            "records as the best: saving its weights there")
    else:
      print(f"{best_dir} holds {held_text}, not the best step ({best}) that the resumed "
            f"checkpoint of step {step} records: discarded; the best dev score is judged "
            f"afresh from step {step}")
      if self.chief and path:
        for name in os.listdir(best_dir):  # the files of its CheckpointManager
          if os.path.isfile(os.path.join(best_dir, name)):
            os.remove(os.path.join(best_dir, name))
      self.best_score.assign(-1.0)
      self.best_step.assign(0)
    self.best_manager = self._best_manager()
    if self.best_score.numpy() >= 0:
      self.save_best(step)
