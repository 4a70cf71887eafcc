"""A trained model from Python: `Classifier.load(export_dir).predict(texts)`.

Wraps the exported SavedModel (`export.py`), so Python callers get exactly the served
decisions: the run's thresholds, the at-least-one rule if it used one. Texts are scored
in batches (bounded memory for any number of texts), with a progress line for long lists.
"""

import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from laco_tf import progress as progress_lib
from laco_tf import quiet_start
from laco_tf.errors import InputError
from laco_tf.training import thresholds


# `Classifier.predict`'s default for top_k: the run's decisions, not a ranking.
DECISIONS = object()


class Classifier:
  """Raw text -> labels, through a LACO-TF SavedModel.

  Example:
    clf = Classifier.load("OUT/export")   # the newest version, or a version folder
    clf.predict(["Oil prices rose as OPEC cut output."])
    # [[{"label": "crude", "score": 0.97}, ...]]
  """

  def __init__(self, serving_fn, label_names: Sequence[str]):
    self._serve = serving_fn
    self.label_names = list(label_names)

  @classmethod
  def load(cls, export_dir: str) -> "Classifier":
    """`export_dir`: an export base (its newest version is loaded) or one version folder."""
    import tensorflow_text  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    from laco_tf.serving import export_versions  # pylint: disable=import-outside-toplevel
    path = export_versions.resolve_export(export_dir)
    try:
      serving_fn = tf.saved_model.load(path).signatures["serving_default"]
      # The first call runs the graph's kernels once: their C++ notices (e.g. oneDNN's
      # fallback for int64 ops) go to /dev/null like TensorFlow's start-up lines.
      with quiet_start.quiet_stderr("TF_CPP_MIN_LOG_LEVEL" not in os.environ):
        names = serving_fn(text=tf.constant([""], tf.string))["classes"].numpy()[0]
    except (OSError, KeyError, IndexError, ValueError, tf.errors.OpError) as e:
      # A truncated or mixed-up export (variables of another save) fails deep in TF's
      # loader, with IndexError among others: one line naming the folder instead.
      reason = " ".join(str(e).split())[:200] or type(e).__name__
      raise InputError(f"{path}: not a complete LACO-TF SavedModel ({type(e).__name__}: "
                       f"{reason}); export it again") from None
    return cls(serving_fn, [n.decode("utf-8") for n in names])

  def _batches(self, texts: Sequence[str], batch_size: int, show_progress: Optional[bool]):
    if isinstance(texts, (str, bytes)):
      raise InputError("texts: expected a list of strings, got one string")
    if not hasattr(texts, "__len__") or not hasattr(texts, "__getitem__"):
      raise InputError(f"texts: expected a list of strings, got {type(texts).__name__}")
    for i, text in enumerate(texts):
      # One text per row: a nested list would be read as more texts than rows.
      if not isinstance(text, (str, bytes)):
        raise InputError(f"texts[{i}]: expected a string, got {type(text).__name__} (texts "
                         "must be a flat list of strings)")
    if batch_size < 1:
      raise InputError(f"batch_size={batch_size}: expected a positive integer")
    show = len(texts) > 10 * batch_size if show_progress is None else show_progress
    bar = progress_lib.progress_bar(len(texts), unit_name="text") if show else None
    for start in range(0, len(texts), batch_size):
      chunk = list(texts[start:start + batch_size])
      yield self._serve(text=tf.constant(chunk, tf.string))
      if bar:
        bar.update(start + len(chunk))

  def predict_proba(self, texts: Sequence[str], batch_size: int = 64,
                    show_progress: Optional[bool] = None) -> np.ndarray:
    """[len(texts), n] float32 probabilities, in label_names order."""
    out = [b["scores"].numpy() for b in self._batches(texts, batch_size, show_progress)]
    return (np.concatenate(out) if out else
            np.zeros((0, len(self.label_names)), np.float32))

  def predict(self, texts: Sequence[str], threshold: Optional[float] = None,
              batch_size: int = 64, show_progress: Optional[bool] = None,
              top_k=DECISIONS) -> List[List[Dict[str, float]]]:
    """Per text, labels as [{"label", "score"}], highest score first (equal scores in
    label_names order).

    By default, the predicted labels: threshold=None applies the run's decision rule
    (thresholds.json, as served); a number in (0, 1), as --threshold takes, predicts every
    label whose probability exceeds it. top_k=k instead gives the k highest-scoring labels
    whatever the thresholds, and top_k=None every label (as Hugging Face's
    `pipeline(..., top_k=None)`).
    """
    if threshold is not None:
      thresholds.check_threshold(threshold, "threshold")
    ranked = top_k is not DECISIONS
    if ranked and threshold is not None:
      raise InputError(f"threshold={threshold!r} and top_k={top_k!r}: give one of them "
                       "(top_k ranks labels whatever the thresholds)")
    if ranked and top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                                         or top_k < 1):
      raise InputError(f"top_k={top_k!r}: expected a positive integer, or None for every "
                       "label")
    result = []
    for batch in self._batches(texts, batch_size, show_progress):
      probs = batch["scores"].numpy()
      if ranked:
        chosen = np.ones_like(probs, bool)
      else:
        chosen = batch["labels"].numpy() if threshold is None else probs > threshold
      for p, c in zip(probs, chosen):
        order = sorted(np.flatnonzero(c), key=lambda j: -p[j])[:top_k if ranked else None]
        result.append([{"label": self.label_names[j], "score": float(p[j])} for j in order])
    return result
