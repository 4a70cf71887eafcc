"""Packs a document and the label tokens into one encoder input (paper 3.2, JE).

Layout: ``[CLS] x_1 .. x_m [SEP] y_1 .. y_n [SEP]`` with token type 0 for ``[CLS]``,
the document and the first ``[SEP]``, and 1 for the label tokens and the final ``[SEP]``.
The document is truncated so the whole sequence fits `max_seq_length`. Written with
TensorFlow ops so that TFRecord conversion and the SavedModel share it.
"""

import tensorflow as tf

from laco_tf.errors import InputError

# Fewest document wordpieces a sequence must have room for besides the labels.
MIN_DOC_TOKENS = 8


def reserved_positions(num_labels: int) -> int:
  """Positions the special and label tokens take: ``[CLS] x [SEP] labels [SEP]`` (eq. 1)
  leaves all but num_labels + 3 to the text; with no label tokens (the w/o-JE ablation)
  the input is ``[CLS] x [SEP]``."""
  return num_labels + 3 if num_labels else 2


def max_doc_tokens(max_seq_length: int, num_labels: int) -> int:
  """Room left for the document; raises if the labels leave too little."""
  room = max_seq_length - reserved_positions(num_labels)
  if room < MIN_DOC_TOKENS:
    raise InputError(f"--max_seq_length={max_seq_length} cannot hold {num_labels} label "
                     f"tokens + 3 special tokens + {MIN_DOC_TOKENS} text tokens (short by "
                     f"{MIN_DOC_TOKENS - room}); raise --max_seq_length to at least "
                     f"{num_labels + 3 + MIN_DOC_TOKENS}")
  return room


def pack_joint_input(doc_ids: tf.RaggedTensor, label_ids, cls_id: int, sep_id: int,
                     max_seq_length: int):
  """Builds the JE input for a batch.

  Args:
    doc_ids: ragged [batch, (wordpieces)] int64 document ids.
    label_ids: [n] int label token ids, the same for every document.
    cls_id, sep_id: ids of ``[CLS]`` and ``[SEP]``.
    max_seq_length: length limit of the packed sequence.

  Returns:
    dict with ragged [batch, (len)] int64 `input_ids` and `token_type_ids`, and
    [batch] int64 `doc_length` (the number of document wordpieces kept). With no label
    ids, the document alone: ``[CLS] x [SEP]`` (the w/o-JE ablation, paper 5.2).
  """
  if not tf.is_tensor(label_ids):
    label_ids = tf.constant(list(label_ids), tf.int64, shape=[len(label_ids)])
  num_labels = int(label_ids.shape[0])
  doc = doc_ids[:, :max_doc_tokens(max_seq_length, num_labels)]
  batch = doc.nrows()
  cls = tf.fill([batch, 1], tf.constant(cls_id, tf.int64))
  sep = tf.fill([batch, 1], tf.constant(sep_id, tf.int64))
  first = tf.concat([cls, doc, sep], axis=1)
  doc_length = doc.row_lengths()
  if num_labels == 0:
    return {"input_ids": first, "token_type_ids": tf.zeros_like(first),
            "doc_length": doc_length}
  labels = tf.tile(label_ids[tf.newaxis, :], [batch, 1])
  input_ids = tf.concat([first, labels, sep], axis=1)
  second = tf.ones([batch, num_labels + 1], tf.int64)
  token_type_ids = tf.concat([tf.zeros_like(first), second], axis=1)
  return {"input_ids": input_ids, "token_type_ids": token_type_ids, "doc_length": doc_length}


def label_positions(doc_length: tf.Tensor, num_labels: int) -> tf.Tensor:
  """[batch] doc lengths -> [batch, n] positions of the label tokens in the sequence."""
  return (tf.cast(doc_length, tf.int32)[:, tf.newaxis] + 2 +
          tf.range(num_labels, dtype=tf.int32)[tf.newaxis, :])


def append_label_slots(features: dict, slot_token_ids: tf.Tensor, sep_id: int) -> dict:
  """Adds a label-slot block to document-only inputs (``--label_slots``, our extension).

  Paper 3.2 packs every label after the document. With label slots each sequence
  carries K of them: ``[CLS] x [SEP] y_s1 .. y_sK [SEP]``, built in the graph from the
  document-only input ``[CLS] x [SEP]`` (padded) and the K chosen labels' token ids.
  Token types, the label positions (`label_positions`) and the mask follow the layout of
  `pack_joint_input`, so K = n slots in label order gives its sequence exactly.

  Args:
    features: [batch, L] int32 `input_ids`, `token_type_ids`, `attention_mask` of
      ``[CLS] x [SEP]`` (any padding) and [batch] `doc_length`.
    slot_token_ids: [batch, K] int32 token ids of the labels each sequence carries.
    sep_id: the ``[SEP]`` id.
  Returns:
    The features with [batch, L + K + 1] `input_ids`, `token_type_ids`, `attention_mask`.
  """
  ids = features["input_ids"]
  batch, length = tf.shape(ids)[0], tf.shape(ids)[1]
  slots = tf.shape(slot_token_ids)[1]
  total = length + slots + 1
  doc_length = tf.cast(features["doc_length"], tf.int32)
  start = doc_length + 2                                          # first label position
  positions = start[:, tf.newaxis] + tf.range(slots + 1)[tf.newaxis, :]   # labels, [SEP]
  rows = tf.broadcast_to(tf.range(batch)[:, tf.newaxis], tf.shape(positions))
  values = tf.concat([tf.cast(slot_token_ids, ids.dtype),
                      tf.fill([batch, 1], tf.constant(sep_id, ids.dtype))], axis=1)
  # Padding past each document's [SEP] is overwritten; the rest stays [PAD] = 0.
  doc_part = ids * tf.cast(tf.range(length)[tf.newaxis, :] < start[:, tf.newaxis], ids.dtype)
  padded = tf.pad(doc_part, [[0, 0], [0, slots + 1]])
  new_ids = tf.tensor_scatter_nd_update(padded, tf.stack([rows, positions], axis=-1), values)
  index = tf.range(total)[tf.newaxis, :]
  end = (start + slots + 1)[:, tf.newaxis]
  mask = index < end
  out = dict(features)
  out["input_ids"] = new_ids
  out["attention_mask"] = tf.cast(mask, features["attention_mask"].dtype)
  out["token_type_ids"] = tf.cast(mask & (index >= start[:, tf.newaxis]),
                                  features["token_type_ids"].dtype)
  return out
