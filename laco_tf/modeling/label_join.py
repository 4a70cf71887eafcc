"""Label tokens that join the sequence at a later encoder layer (``--label_join_layer``).

Paper 3.2 (joint embedding) feeds ``[CLS] x [SEP] y_1 .. y_n [SEP]`` through every layer
of BERT, so every label position costs what a text position costs in every layer. Our
extension, after PreTTR's split encoding (MacAvaney et al., SIGIR 2020: query and
document encoded apart in the first layers, jointly in the rest): with join layer J the
first J Transformer blocks read ``[CLS] x [SEP]`` alone, and the label tokens (with the
final ``[SEP]``) enter, as their embeddings, at block J; blocks J.. read the whole
sequence as in paper 3.2. A label position then costs (N - J) / N of a text position in
an N-layer encoder, and the document's first J layers are shared by every chunk of
exhaustive inference (`LacoModel`). J = 0 is the paper's joint embedding.

Both layouts put the label block right after the document's ``[SEP]``, at position
``doc_length + 2`` (`input_packing.pack_joint_input`, `append_label_slots`): that is
where the document part ends.
"""

import tensorflow as tf


def document_end(doc_length: tf.Tensor) -> tf.Tensor:
  """[batch] positions just past ``[CLS] x [SEP]``: where the label tokens start."""
  return tf.cast(doc_length, tf.int32) + 2


def document_states(bert, features: dict, join_layer: int, training=None) -> tf.Tensor:
  """The states of ``[CLS] x [SEP]`` after `bert`'s first `join_layer` blocks.

  Args:
    bert: a `bert_encoder.BertEncoder`.
    features: [batch, L] int `input_ids` whose first ``doc_length + 2`` positions are
      ``[CLS] x [SEP]`` (what follows is ignored), [batch] `doc_length`.
    join_layer: J, the number of blocks the document reads alone.
  Returns:
    [batch, D, hidden] in the compute dtype, D = the batch's longest ``doc_length + 2``;
    positions past a document's ``[SEP]`` are padding.
  """
  end = document_end(features["doc_length"])
  width = tf.reduce_max(end)
  ids = features["input_ids"][:, :width]
  mask = tf.sequence_mask(end, width, dtype=tf.int32)
  x = bert.embeddings(ids, tf.zeros_like(ids), training=training)
  for block in bert.blocks[:join_layer]:
    x = block(x, mask, training=training)
  return x


def joined_states(bert, features: dict, join_layer: int, doc_states: tf.Tensor,
                  training=None) -> tf.Tensor:
  """The last states of the whole sequence, the label tokens joining at block J.

  Args:
    bert: the `BertEncoder` that made `doc_states`.
    features: [batch, S] int `input_ids`, `token_type_ids`, `attention_mask` of the
      whole sequence ``[CLS] x [SEP] labels [SEP]`` and [batch] `doc_length`.
    join_layer: J.
    doc_states: [batch, D, hidden] `document_states` of the same documents, D <= S.
  Returns:
    [batch, S, hidden]: what blocks J.. make of the document's states followed by the
    label tokens' embeddings (word, position and token type, as the encoder embeds them).
  """
  embedded = bert.embeddings(features["input_ids"], features["token_type_ids"],
                             training=training)
  length = tf.shape(embedded)[1]
  doc = tf.pad(doc_states, [[0, 0], [0, length - tf.shape(doc_states)[1]], [0, 0]])
  in_document = tf.sequence_mask(document_end(features["doc_length"]), length)
  x = tf.where(in_document[:, :, tf.newaxis], tf.cast(doc, embedded.dtype), embedded)
  for block in bert.blocks[join_layer:]:
    x = block(x, features["attention_mask"], training=training)
  return x
