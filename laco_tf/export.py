"""Exports a trained model as a SavedModel that serves raw text (data-flow's last step).

``serving_default``: ``text`` tf.string [batch] -> ``probabilities`` float32 [batch, n],
``labels`` bool [batch, n] (the run's decision rule: each label's threshold, and the
at-least-one rule if the run used it; see `thresholds.py`) and ``label_names`` tf.string
[n]. Tokenisation and JE packing run in the graph with the same `tokenization` and
`input_packing` functions as TFRecord conversion, so ids agree. An empty batch gives empty
outputs; a text without a wordpiece gets probability 0 and no label; invalid UTF-8 bytes
are read as U+FFFD.
Loading needs only ``import tensorflow as tf, tensorflow_text``. The label list and the
run metadata are also written to ``assets.extra/`` for people and tools.
"""

import json
import os
import shutil

import numpy as np
import tensorflow as tf

from laco_tf import input_packing, tokenization


class LacoServingModule(tf.Module):
  """Raw text in, per-label probabilities out."""

  def __init__(self, model, vocab_file: str, do_lower_case: bool, labels, label_token_ids,
               max_seq_length: int, thresholds=0.5, at_least_one: bool = False):
    super().__init__(name="laco_serving")
    self.model = model
    self.tokenizer = tokenization.make_tokenizer(vocab_file, do_lower_case)
    special = tokenization.special_token_ids(tokenization.read_vocab(vocab_file))
    self._cls, self._sep = special["cls"], special["sep"]
    self._label_token_ids = list(label_token_ids)
    self._max_seq_length = max_seq_length
    self.label_names = tf.constant(list(labels), tf.string)
    self.thresholds = tf.constant(np.broadcast_to(np.asarray(thresholds, np.float32),
                                                  [len(labels)]))
    self._at_least_one = at_least_one

  def features(self, text):
    """[batch] raw text -> the model's padded input features (tokenise, then JE packing)."""
    doc_ids = tokenization.tokenize(self.tokenizer, text)
    packed = input_packing.pack_joint_input(doc_ids, self._label_token_ids, self._cls,
                                            self._sep, self._max_seq_length)
    return {
        "input_ids": tf.cast(packed["input_ids"].to_tensor(), tf.int32),
        "token_type_ids": tf.cast(packed["token_type_ids"].to_tensor(), tf.int32),
        "attention_mask": tf.cast(tf.ones_like(packed["input_ids"]).to_tensor(), tf.int32),
        "doc_length": tf.cast(packed["doc_length"], tf.int32),
    }

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
  def serve(self, text):
    # Training refuses invalid UTF-8 with an error naming the line; a server cannot fail a
    # whole batch for one text, so bad bytes become U+FFFD (the replacement character).
    text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")
    features = self.features(text)
    num_labels = tf.shape(self.label_names)[0]
    probs = tf.cond(  # An empty batch never reaches the encoder (its attention needs rows).
        tf.size(text) > 0,
        lambda: tf.sigmoid(tf.cast(self.model(features, training=False)["mlc_logits"],
                                   tf.float32)),
        lambda: tf.zeros([0, num_labels], tf.float32))
    # A text without a single wordpiece ("", spaces) holds nothing to classify: no label,
    # probability 0, rather than the model's guess for an empty document.
    has_text = features["doc_length"] > 0
    probs = tf.where(has_text[:, tf.newaxis], probs, 0.0)
    decided = probs > self.thresholds
    if self._at_least_one:  # The most probable label for a document that got none.
      top = tf.one_hot(tf.argmax(probs, axis=-1), num_labels, on_value=True,
                       off_value=False)
      decided = tf.logical_or(decided, tf.logical_and(
          top, tf.logical_not(tf.reduce_any(decided, axis=-1, keepdims=True))))
      decided = tf.logical_and(decided, has_text[:, tf.newaxis])
    return {"probabilities": probs, "labels": decided, "label_names": self.label_names}


def export_saved_model(module: LacoServingModule, export_dir: str, metadata: dict) -> str:
  """Saves `module` to `export_dir` atomically (temporary directory, then rename)."""
  export_dir = os.path.abspath(export_dir)
  tmp = export_dir + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve})
  extra = os.path.join(tmp, "assets.extra")
  os.makedirs(extra, exist_ok=True)
  with open(os.path.join(extra, "labels.txt"), "w", encoding="utf-8") as f:
    f.writelines(f"{l}\n" for l in metadata["labels"])
  with open(os.path.join(extra, "laco_metadata.json"), "w", encoding="utf-8") as f:
    json.dump(metadata, f, indent=1)
  if os.path.exists(export_dir):
    old = export_dir + ".old"
    shutil.rmtree(old, ignore_errors=True)
    os.replace(export_dir, old)
    os.replace(tmp, export_dir)
    shutil.rmtree(old, ignore_errors=True)
  else:
    os.replace(tmp, export_dir)
  return export_dir
