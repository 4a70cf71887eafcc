"""Exports a trained model as a SavedModel that serves raw text (data-flow's last step).

Versions: each export is a new numbered folder under a base (``OUTPUT_DIR/export/1``,
``2``, ...), written whole or not at all (`export_versions.py`).

``serving_default`` (method ``tensorflow/serving/predict``): ``text`` tf.string [batch] (one
text per row; a tensor with more texts than rows is refused, see `_one_text_per_row`) ->
``scores`` float32 [batch, n] (probabilities), ``labels`` bool [batch, n] (the run's
decision rule: each label's threshold, and the at-least-one rule if the run used it; see
`thresholds.py`) and ``classes`` tf.string [batch, n] (the label names, tiled, as TF
Estimator's classification heads export them). Every output is batch-major, so TF
Serving's row ("instances") and column ("inputs") REST formats both work.
``classify`` (method ``tensorflow/serving/classify``, TF Serving's Classify API):
``inputs`` serialized tf.Example [batch] with a bytes feature ``text`` -> ``classes`` and
``scores`` as above.

Tokenisation and JE packing run in the graph with the same `tokenization` and
`input_packing` functions as TFRecord conversion, so ids agree. The encoder reads a request
in chunks of ``chunk_size`` texts of similar length (sorted by wordpiece count, each chunk
padded to its own longest text; our extension): a large request of mixed lengths is then
not padded to its longest text, and the outputs come back in request order. A request of
at most ``chunk_size`` texts runs as one batch, unsorted. An empty batch gives empty
outputs; a text without a wordpiece gets probability 0 and no label; invalid UTF-8 bytes
are read as U+FFFD. Loading needs only ``import tensorflow as tf, tensorflow_text``. The
label list and the run metadata are also written to ``assets.extra/``.
"""

import json
import os

import numpy as np
import tensorflow as tf

from laco_tf.data import input_packing, tokenization
from laco_tf.serving import export_versions

CLASSIFY_METHOD = "tensorflow/serving/classify"


class LacoServingModule(tf.Module):
  """Raw text in, per-label probabilities out."""

  def __init__(self, model, vocab_file: str, do_lower_case: bool, labels, label_token_ids,
               max_seq_length: int, thresholds=0.5, at_least_one: bool = False,
               chunk_size: int = 8):
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
    self._chunk_size = chunk_size  # >= 0, checked with the other flags (run_settings)

  def _packed(self, text):
    """[batch] raw text -> ragged JE ids and token types, and [batch] doc lengths."""
    doc_ids = tokenization.tokenize(self.tokenizer, text)
    return input_packing.pack_joint_input(doc_ids, self._label_token_ids, self._cls,
                                          self._sep, self._max_seq_length)

  @staticmethod
  def _padded(packed):
    return {
        "input_ids": tf.cast(packed["input_ids"].to_tensor(), tf.int32),
        "token_type_ids": tf.cast(packed["token_type_ids"].to_tensor(), tf.int32),
        "attention_mask": tf.cast(tf.ones_like(packed["input_ids"]).to_tensor(), tf.int32),
        "doc_length": tf.cast(packed["doc_length"], tf.int32),
    }

  def features(self, text):
    """[batch] raw text -> the model's input features, padded to the longest text."""
    return self._padded(self._packed(text))

  def _probabilities(self, packed, num_labels):
    """Sigmoid of the model's logits, [batch, n] float32, in request order."""
    def run(chunk):
      return tf.sigmoid(tf.cast(self.model(self._padded(chunk), training=False)["mlc_logits"],
                                tf.float32))
    if not self._chunk_size:
      return run(packed)
    batch = tf.shape(packed["doc_length"])[0]
    return tf.cond(batch <= self._chunk_size, lambda: run(packed),
                   lambda: self._in_chunks(run, packed, batch, num_labels))

  def _in_chunks(self, run, packed, batch, num_labels):
    """`run` over length-sorted chunks of the request, outputs put back in request order."""
    order = tf.argsort(packed["doc_length"], stable=True)
    ordered = {k: tf.gather(v, order) for k, v in packed.items()}
    num_chunks = (batch + self._chunk_size - 1) // self._chunk_size
    chunks = tf.TensorArray(tf.float32, size=num_chunks, infer_shape=False,
                            element_shape=tf.TensorShape([None, None]))

    def body(i, chunks):
      rows = tf.range(i * self._chunk_size, tf.minimum(batch, (i + 1) * self._chunk_size))
      return i + 1, chunks.write(i, run({k: tf.gather(v, rows) for k, v in ordered.items()}))
    _, chunks = tf.while_loop(lambda i, _: i < num_chunks, body, [tf.constant(0), chunks],
                              parallel_iterations=1)
    return tf.scatter_nd(order[:, tf.newaxis], chunks.concat(), [batch, num_labels])

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
  def serve(self, text):
    return self._outputs(_one_text_per_row(text, "text"))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
  def classify(self, serialized):
    serialized = _one_text_per_row(serialized, "inputs")
    text = tf.io.parse_example(serialized, {"text": tf.io.FixedLenFeature([], tf.string)})
    out = self._outputs(text["text"])
    return {"classes": out["classes"], "scores": out["scores"]}

  def _outputs(self, text):
    # Training refuses invalid UTF-8 with an error naming the line; a server cannot fail a
    # whole batch for one text, so bad bytes become U+FFFD (the replacement character).
    text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")
    packed = self._packed(text)
    num_labels = tf.shape(self.label_names)[0]
    probs = tf.cond(  # An empty batch never reaches the encoder (its attention needs rows).
        tf.size(text) > 0,
        lambda: self._probabilities(packed, num_labels),
        lambda: tf.zeros([0, num_labels], tf.float32))
    # A text without a single wordpiece ("", spaces) holds nothing to classify: no label,
    # probability 0, rather than the model's guess for an empty document.
    has_text = packed["doc_length"] > 0
    probs = tf.where(has_text[:, tf.newaxis], probs, 0.0)
    decided = probs > self.thresholds
    if self._at_least_one:  # The most probable label for a document that got none.
      top = tf.one_hot(tf.argmax(probs, axis=-1), num_labels, on_value=True,
                       off_value=False)
      decided = tf.logical_or(decided, tf.logical_and(
          top, tf.logical_not(tf.reduce_any(decided, axis=-1, keepdims=True))))
      decided = tf.logical_and(decided, has_text[:, tf.newaxis])
    classes = tf.tile(self.label_names[tf.newaxis], [tf.size(text), 1])
    return {"scores": probs, "labels": decided, "classes": classes}


def _one_text_per_row(text, name: str):
  """`text` as [batch], refusing a tensor whose texts are not one per row ([2, 2], a scalar).

  A signature's TensorSpec([None]) is not enforced when it is called: neither a loaded
  signature nor TF Serving checks the fed shape, and the graph would read all four
  texts of a [2, 2] tensor, answering 4 rows for 2. The rank cannot be tested in the graph
  (shape inference and Grappler fold it to the declared 1), so the check compares values
  known only at run time: the number of texts and the first dimension (-1 for a scalar).
  Equal, the texts lie one per row ([n] or [n, 1]) and are read as [n]."""
  rows = tf.concat([tf.shape(text), [-1]], axis=0)[0]
  check = tf.debugging.assert_equal(
      tf.size(text), rows,
      message=f"{name}: expected a 1-D tensor of strings [batch], one text per row")
  with tf.control_dependencies([check]):
    return tf.reshape(text, [-1])


def export_saved_model(module: LacoServingModule, base: str, metadata: dict) -> str:
  """Saves `module` as the next version under `base` (``base/<n>``,
  `export_versions.publish_version`).
  Returns its path."""
  def write(tmp):
    with module.model.dropout_step_detached():
      tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve,
                                                   "classify": module.classify})
    _set_method_name(tmp, "classify", CLASSIFY_METHOD)
    extra = os.path.join(tmp, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, "labels.txt"), "w", encoding="utf-8") as f:
      f.writelines(f"{l}\n" for l in metadata["labels"])
    with open(os.path.join(extra, "laco_metadata.json"), "w", encoding="utf-8") as f:
      json.dump(metadata, f, indent=1)
  return export_versions.publish_version(base, write)


def _set_method_name(export_dir: str, signature: str, method: str) -> None:
  """`tf.saved_model.save` marks every signature as Predict; TF Serving's Classify API
  needs its method name on the signature (tensorflow/tensorflow#38081), so the saved
  proto is rewritten."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=import-outside-toplevel
  path = os.path.join(export_dir, "saved_model.pb")
  proto = saved_model_pb2.SavedModel()
  with open(path, "rb") as f:
    proto.ParseFromString(f.read())
  for meta_graph in proto.meta_graphs:
    meta_graph.signature_def[signature].method_name = method
  with open(path + ".tmp", "wb") as f:
    f.write(proto.SerializeToString())
  os.replace(path + ".tmp", path)
