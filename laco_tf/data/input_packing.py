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
