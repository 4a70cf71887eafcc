"""The LACO model: shared JE encoder, MLTC module and auxiliary heads (paper Figure 1),
with the ablations of paper 5.2 (Table 4)."""

import contextlib

import tensorflow as tf
import tf_keras

import numpy as np

from laco_tf.data.input_packing import append_label_slots, label_positions
from laco_tf.modeling import label_join
from laco_tf.modeling import shortlist as shortlist_lib
from laco_tf.modeling.bert_encoder import BertEncoder
from laco_tf.modeling.layers import (ConditionalCooccurrenceHead, DocumentLabelCrossAttention,
                            PairwiseCooccurrenceHead)
from laco_tf.modeling.layers.stateless_dropout import DropoutSeed, replace_keras_dropout

POOLINGS = ("cls", "mean")
LABEL_INFERENCES = ("exhaustive", "shortlist")
# The logit of a label outside the shortlist: its sigmoid is exactly 0 in float32, and its
# BCE stays finite for the dev loss.
SHORTLIST_MISS_LOGIT = -1e4


class LacoModel(tf_keras.Model):
  """BERT over ``[CLS] D [SEP] Y [SEP]`` (3.2) -> CA (3.3.1) -> sigmoid classifier (eq. 3),
  plus the PLCP (eq. 5) and CLCP (eq. 6) heads on the label states when enabled.

  Ablations (paper 5.2): `joint_embedding=False` encodes the document alone and uses a
  learnable, randomly initialised vector per label as its state; `cross_attention=False`
  predicts from a pooled document vector: the [CLS] state, or (our extension, for
  encoders like all-MiniLM whose pooler/[CLS] was never trained for classification)
  the mean of the document's word states. Both off is the BERT baseline.

  Inputs: a dict with [batch, L] int `input_ids`, `token_type_ids`, `attention_mask`,
  [batch] int `doc_length`, and for the heads `plcp_pairs` [batch, k, 2] and
  `clcp_given` [batch, n].
  Outputs: a dict with `mlc_logits` [batch, n], and `plcp_logits` [batch, k] /
  `clcp_logits` [batch, n] when the head exists and its input is given.

  Label slots (`label_slots` = K < n, our extension towards the paper's Section 6): the
  inputs hold the document alone (``[CLS] x [SEP]``) and the model appends the label
  tokens itself (`input_packing.append_label_slots`). Given [batch, K] `slot_labels`
  (label indices, ascending; training), the sequence carries those K labels: CA runs
  over their states with K filters, eq. 3's classifier scores them (the rows of its n-way
  weights that they select), and `mlc_logits`, the heads' inputs and outputs are
  [batch, K], in slot order. Without `slot_labels` (inference) every label is scored
  exhaustively: the label set is read in chunks of K consecutive labels (the last chunk
  ends at label n), one encoder pass per chunk, and `mlc_logits` is [batch, n]. With
  `label_inference="shortlist"` the first stage (`shortlist.LabelShortlist`) proposes the
  K labels instead, one encoder pass scores them, and every other label gets
  `SHORTLIST_MISS_LOGIT` (probability 0).

  Label join layer (`label_join_layer` = J > 0, our extension, `label_join.py`): the
  encoder's first J blocks read the document alone and the label tokens join at block J,
  with full JE or slots; exhaustive inference then runs the first J blocks once per
  document, not once per chunk.
  """

  def __init__(self, bert: BertEncoder, num_labels: int, window_size: int = 10, dropout_rate: float = 0.1,
               use_plcp: bool = False, use_clcp: bool = False, joint_embedding: bool = True,
               cross_attention: bool = True, pooling: str = "cls", dropout_seed: int = 0,
               compiled_chains: bool = True, label_slots: int = 0, label_token_ids=None,
               sep_id: int = 0, shortlist=None, label_inference: str = "exhaustive",
               label_join_layer: int = 0, **kwargs):
    super().__init__(**kwargs)
    if (use_plcp or use_clcp) and not (joint_embedding or cross_attention):
      raise ValueError("the auxiliary heads need label states, which the BERT baseline lacks")
    if pooling not in POOLINGS:
      raise ValueError(f"pooling must be one of {POOLINGS}")
    self.bert = bert
    self.num_labels = num_labels
    self.joint_embedding, self.use_cross_attention, self.pooling = (
        joint_embedding, cross_attention, pooling)
    hidden = bert.config.hidden_size
    # K >= n carries every label: full JE, inputs packed with all label tokens.
    self.label_slots = label_slots if joint_embedding and 0 < label_slots < num_labels else 0
    if self.label_slots:
      if label_token_ids is None or len(label_token_ids) != num_labels:
        raise ValueError("label slots need the n label token ids")
      self.label_token_ids = tf.constant(list(label_token_ids), tf.int32)
      self.sep_id = sep_id
    if label_inference not in LABEL_INFERENCES:
      raise ValueError(f"label_inference must be one of {LABEL_INFERENCES}")
    if label_inference == "shortlist" and (shortlist is None or not self.label_slots):
      raise ValueError("shortlist inference needs label slots and a fitted shortlist")
    self.shortlist, self.label_inference = shortlist, label_inference
    if not 0 <= label_join_layer < bert.config.num_hidden_layers:
      raise ValueError(f"label_join_layer must be in [0, {bert.config.num_hidden_layers})")
    if label_join_layer and not joint_embedding:
      raise ValueError("a label join layer needs label tokens (joint embedding)")
    self.label_join_layer = label_join_layer
    if not joint_embedding and cross_attention:
      self.label_embeddings = self.add_weight(
          name="label_embeddings", shape=[num_labels, hidden],
          initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02))
    # Eq. 2 has one filter per label; with slots, one per slot (a step's cost is then
    # independent of n).
    self.cross_attention = DocumentLabelCrossAttention(
        self.label_slots or num_labels, window_size, dropout_rate, name="cross_attention") if cross_attention else None
    # The pooled vector's dropout (CA has its own): an unused layer would be saved unbuilt.
    self.dropout = None if cross_attention else tf_keras.layers.Dropout(dropout_rate)
    # float32 logits under any mixed-precision policy: the sigmoid and losses need them.
    self.classifier = tf_keras.layers.Dense(
        num_labels, kernel_initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02),
        name="mlc_classifier", dtype="float32")
    self.plcp_head = PairwiseCooccurrenceHead(hidden, name="plcp_head") if use_plcp else None
    self.clcp_head = ConditionalCooccurrenceHead(hidden, name="clcp_head") if use_clcp else None
    # Every dropout (BERT's, CA's, the pooled vector's) draws from (seed, step): a resumed
    # run draws the masks the uninterrupted one drew (our extension, stateless_dropout.py).
    # The encoder's dropouts have their own salts (`BertEncoder.dropout_salts`); the
    # model's take the next ones, the pooled vector's first, also when it is absent.
    # `compiled_chains`: dropout's masking runs as one XLA-compiled loop (our extension),
    # compiled once per input shape: for bucketed batch lengths.
    self.dropout_seed = DropoutSeed(dropout_seed)
    bert.use_dropout_seed(self.dropout_seed)
    first_salt = bert.dropout_salts.stop
    replace_keras_dropout(self, self.dropout_seed,
                          first_salt=first_salt if self.dropout else first_salt + 1,
                          compiled=compiled_chains)

  def set_dropout_step(self, step) -> None:
    """Training advances `step` (a variable) before each step; dropout masks are a
    function of it. None: dropout draws as Keras' does."""
    self.dropout_seed.step = step

  def set_dropout_microbatch(self, index) -> None:
    """While a training step runs its batch in micro-batches: the scalar index of the one
    being run, folded into its dropout masks; None after the last."""
    self.dropout_seed.microbatch = index

  @contextlib.contextmanager
  def dropout_step_detached(self):
    """Inside, dropout forgets the training step. For export: Keras traces the model's
    training-mode call into a SavedModel too, and the trainer's step variable, which
    the export does not hold, must not be captured by it."""
    step = self.dropout_seed.step
    self.dropout_seed.step = None
    try:
      yield
    finally:
      self.dropout_seed.step = step

  def encoder_variables(self):
    return self.bert.trainable_variables

  def head_variables(self):
    encoder = {id(v) for v in self.bert.trainable_variables}
    return [v for v in self.trainable_variables if id(v) not in encoder]

  def _label_states(self, sequence, doc_length):
    if self.joint_embedding:
      carried = self.label_slots or self.num_labels
      return tf.gather(sequence, label_positions(doc_length, carried), batch_dims=1)
    if self.use_cross_attention:
      return tf.broadcast_to(tf.cast(self.label_embeddings, sequence.dtype)[tf.newaxis],
                             [tf.shape(sequence)[0], self.num_labels, sequence.shape[-1]])
    return None

  def call(self, features, training=False):
    if not self.label_slots:
      return self._forward(features, training)
    if "slot_labels" in features:
      slots = tf.cast(features["slot_labels"], tf.int32)
      carried = append_label_slots(features, tf.gather(self.label_token_ids, slots),
                                   self.sep_id)
      return self._forward(carried, training, slots)
    if self.label_inference == "shortlist":
      return {"mlc_logits": self._shortlist_logits(features, training)}
    return {"mlc_logits": self._exhaustive_logits(features, training)}

  def _shortlist_logits(self, features, training):
    """[batch, n] logits: LACO's for the first stage's K labels, a miss for the rest."""
    slots = shortlist_lib.top_labels(
        self.shortlist(features["input_ids"], features["doc_length"]), self.label_slots)
    carried = append_label_slots(features, tf.gather(self.label_token_ids, slots),
                                 self.sep_id)
    logits = tf.cast(self._forward(carried, training, slots, heads=False)["mlc_logits"],
                     tf.float32)
    batch = tf.shape(slots)[0]
    rows = tf.broadcast_to(tf.range(batch)[:, tf.newaxis], tf.shape(slots))
    return tf.tensor_scatter_nd_update(
        tf.fill([batch, self.num_labels], SHORTLIST_MISS_LOGIT),
        tf.stack([rows, slots], axis=-1), logits)

  def _exhaustive_logits(self, features, training):
    """[batch, n] logits, the label set read K consecutive labels at a time."""
    k, n = self.label_slots, self.num_labels
    starts = [min(start, n - k) for start in range(0, n, k)]
    # Column j of the result: label j's logit from the chunk that first covers it.
    take = np.array([c * k + j - starts[c] for c in range(len(starts))
                     for j in range(c * k, min(c * k + k, n))], np.int32)
    batch = tf.shape(features["doc_length"])[0]
    chunks = tf.TensorArray(tf.float32, size=len(starts), element_shape=[None, k])
    # With a join layer, the document's first blocks serve every chunk.
    doc_states = (label_join.document_states(self.bert, features, self.label_join_layer,
                                             training) if self.label_join_layer else None)

    def body(c, chunks):
      start = tf.gather(tf.constant(starts, tf.int32), c)
      slots = tf.broadcast_to(start + tf.range(k)[tf.newaxis, :], [batch, k])
      carried = append_label_slots(features, tf.gather(self.label_token_ids, slots),
                                   self.sep_id)
      logits = self._forward(carried, training, slots, heads=False,
                             doc_states=doc_states)["mlc_logits"]
      return c + 1, chunks.write(c, tf.cast(logits, tf.float32))
    _, chunks = tf.while_loop(lambda c, _: c < len(starts), body, [tf.constant(0), chunks],
                              parallel_iterations=1)
    flat = tf.reshape(tf.transpose(chunks.stack(), [1, 0, 2]), [batch, len(starts) * k])
    return tf.gather(flat, take, axis=1)

  def _classify(self, c, slots):
    """Eq. 3's logits: over every label, or (label slots) over the [batch, K] carried."""
    if slots is None:
      return self.classifier(c)
    if not self.classifier.built:
      self.classifier.build(c.shape)
    kernel = tf.gather(tf.transpose(self.classifier.kernel), slots)       # [batch, K, d]
    return (tf.einsum("bd,bkd->bk", tf.cast(c, tf.float32), kernel) +
            tf.gather(self.classifier.bias, slots))

  def _encode(self, features, training, doc_states=None):
    """[batch, S, hidden] last states; `doc_states`: the document's, after the first
    `label_join_layer` blocks, when already computed."""
    if not self.label_join_layer:
      return self.bert(input_ids=features["input_ids"],
                       attention_mask=features["attention_mask"],
                       token_type_ids=features["token_type_ids"], training=training)
    if doc_states is None:
      doc_states = label_join.document_states(self.bert, features, self.label_join_layer,
                                              training)
    return label_join.joined_states(self.bert, features, self.label_join_layer, doc_states,
                                    training)

  def _forward(self, features, training, slots=None, heads=True, doc_states=None):
    sequence = self._encode(features, training, doc_states)
    doc_length = features["doc_length"]
    doc_states = sequence[:, 1:]  # Words start after [CLS]; the mask cuts them off.
    doc_mask = tf.sequence_mask(doc_length, tf.shape(doc_states)[1], dtype=tf.float32)
    label_states = self._label_states(sequence, doc_length)
    if self.cross_attention is not None:
      c, _ = self.cross_attention(doc_states, label_states, doc_mask, training=training)
    elif self.pooling == "cls":
      c = self.dropout(sequence[:, 0], training=training)
    else:
      # Summed in float32: a low-precision sum over hundreds of words loses digits.
      count = tf.maximum(tf.reduce_sum(doc_mask, axis=1, keepdims=True), 1.0)
      c = self.dropout(tf.einsum("bm,bmd->bd", doc_mask, tf.cast(doc_states, tf.float32)) /
                       count, training=training)
    outputs = {"mlc_logits": self._classify(c, slots)}
    if not heads:
      return outputs
    if self.plcp_head is not None and "plcp_pairs" in features:
      outputs["plcp_logits"] = self.plcp_head(label_states, features["plcp_pairs"])
    if self.clcp_head is not None and "clcp_given" in features:
      outputs["clcp_logits"] = self.clcp_head(label_states, features["clcp_given"])
    return outputs
