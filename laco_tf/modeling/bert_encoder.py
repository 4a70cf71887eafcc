"""BERT's encoder as tf_keras layers of our own: `LacoModel`'s encoder.

BERT (Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers for
Language Understanding", NAACL, Section 3 and Figure 2) is the Transformer encoder of
Vaswani et al. 2017 (post-LayerNorm): the sum of word, position and token-type embeddings,
normalised, then N blocks of multi-head self-attention and a GELU feed-forward network,
each followed by dropout, a residual connection and LayerNorm. One Keras layer per idea,
in the manner of TF Model Garden's ``networks/bert_encoder.py`` and
``layers/transformer_encoder_block.py``: `BertEmbeddings`, `BertSelfAttention`,
`BertIntermediate`, `BertTransformerBlock`, `BertEncoder`. It computes what transformers'
TF BERT model computes (its last hidden state, to 1e-5 in float32), with our extensions
built in rather than patched in: every dropout is a `StatelessDropout` drawing from one
`DropoutSeed`, and the feed-forward expansion is `gelu.GeluIntermediate` (BERT's exact
GELU, ``hidden_act: "gelu"``). Config and weights from files: `bert_weights.py`.
"""

import dataclasses
import math
from typing import Optional

import tensorflow as tf
import tf_keras

from laco_tf.modeling.bert_config import BertEncoderConfig, as_config
from laco_tf.modeling.gelu import GeluIntermediate
from laco_tf.modeling.layers.stateless_dropout import DropoutSeed, StatelessDropout

# BERT's (and transformers' and Model Garden's) additive padding mask: exp(-10000) is 0 in
# float32 and bfloat16 alike, and -10000 is finite in float16.
_MASK_ADDER = -10000.0

def _initializer(config: BertEncoderConfig):
  return tf_keras.initializers.TruncatedNormal(stddev=config.initializer_range)


def _build(layer: tf_keras.layers.Layer, shape) -> None:
  """Builds a sublayer under its own name scope (variable names ``.../query/kernel``)."""
  with tf.name_scope(layer.name):
    layer.build(shape)


class _ConfiguredLayer(tf_keras.layers.Layer):
  """A layer made from a `BertEncoderConfig` (or its dict) whose dropouts draw from one
  `DropoutSeed` (`seed_source`; a private one from `seed` when omitted), with salts from
  `salt` up, and whose GELU and dropout masks are XLA-compiled when `compiled`."""

  def __init__(self, config, salt: int = 0, seed: int = 0,
               seed_source: Optional[DropoutSeed] = None, compiled: bool = True, **kwargs):
    super().__init__(**kwargs)
    self.config = as_config(config)
    self.salt, self.compiled = int(salt), bool(compiled)
    self.seed_source = seed_source if seed_source is not None else DropoutSeed(seed)

  def _dropout(self, rate: float, offset: int, name: str) -> StatelessDropout:
    return StatelessDropout(rate, self.salt + offset, self.seed_source, compiled=self.compiled,
                            name=name, dtype=self.dtype_policy)

  def _dense(self, units: int, name: str) -> tf_keras.layers.Dense:
    return tf_keras.layers.Dense(units, kernel_initializer=_initializer(self.config),
                                 name=name, dtype=self.dtype_policy)

  def _layer_norm(self, name: str) -> tf_keras.layers.LayerNormalization:
    return tf_keras.layers.LayerNormalization(epsilon=self.config.layer_norm_eps, name=name,
                                              dtype=self.dtype_policy)

  def get_config(self):
    return {**super().get_config(), "config": dataclasses.asdict(self.config),
            "salt": self.salt, "seed": self.seed_source.seed, "compiled": self.compiled}


class BertEmbeddings(_ConfiguredLayer):
  """Word + position + token-type embeddings, LayerNorm and dropout (BERT 3.2, Figure 2).

  Call: input_ids, token_type_ids [batch, seq] int. Returns [batch, seq, hidden] in the
  compute dtype. Weights (float32, read before casting: a lookup never casts the whole
  table): `word_embeddings` [vocab_size, hidden] (LACO's label tokens are rows of it,
  `label_tokens.py`), `position_embeddings` [max_position_embeddings, hidden],
  `token_type_embeddings` [type_vocab_size, hidden]. Dropout salt: `salt`.
  """

  def __init__(self, config, **kwargs):
    super().__init__(config, **kwargs)
    self.layer_norm = self._layer_norm("layer_norm")
    self.dropout = self._dropout(self.config.hidden_dropout_prob, 0, "dropout")

  def build(self, input_shape=None):
    c = self.config
    for name, rows in (("word_embeddings", c.vocab_size),
                       ("position_embeddings", c.max_position_embeddings),
                       ("token_type_embeddings", c.type_vocab_size)):
      setattr(self, name, self.add_weight(name, [rows, c.hidden_size], tf.float32,
                                          _initializer(c), experimental_autocast=False))
    _build(self.layer_norm, [None, None, c.hidden_size])
    super().build(input_shape)

  def call(self, input_ids, token_type_ids, training=None):
    length = tf.shape(input_ids)[1]
    words = tf.gather(self.word_embeddings, input_ids)
    positions = self.position_embeddings[tf.newaxis, :length]
    types = tf.gather(self.token_type_embeddings, token_type_ids)
    dtype = self.compute_dtype
    embedded = tf.cast(words, dtype) + tf.cast(positions, dtype) + tf.cast(types, dtype)
    return self.dropout(self.layer_norm(embedded), training=training)


class BertSelfAttention(_ConfiguredLayer):
  """Multi-head scaled dot-product self-attention over the unpadded positions, with the
  heads' output projection (Vaswani et al. 2017, 3.2.2; BERT 3).

  Call: hidden_states [batch, seq, hidden], attention_mask [batch, seq] (1 attend, 0 pad).
  Returns [batch, seq, hidden]: softmax(Q K^T / sqrt(d) + mask) V per head, with dropout
  (salt `salt`) on the attention weights [batch, heads, seq, seq], heads concatenated and
  projected by `output_dense`. The dropout and residual LayerNorm after it are the block's.
  """

  def __init__(self, config, **kwargs):
    super().__init__(config, **kwargs)
    hidden = self.config.hidden_size
    self.heads = self.config.num_attention_heads
    self.head_size = hidden // self.heads
    self.query, self.key, self.value = (self._dense(hidden, n) for n in ("query", "key", "value"))
    self.output_dense = self._dense(hidden, "output_dense")
    self.dropout = self._dropout(self.config.attention_probs_dropout_prob, 0, "dropout")

  def build(self, input_shape=None):
    for dense in (self.query, self.key, self.value, self.output_dense):
      _build(dense, [None, None, self.config.hidden_size])
    super().build(input_shape)

  def _split_heads(self, x, batch):
    """[batch, seq, hidden] -> [batch, heads, seq, head_size]."""
    return tf.transpose(tf.reshape(x, [batch, -1, self.heads, self.head_size]), [0, 2, 1, 3])

  def call(self, hidden_states, attention_mask, training=None):
    batch = tf.shape(hidden_states)[0]
    query, key, value = (self._split_heads(dense(hidden_states), batch)
                         for dense in (self.query, self.key, self.value))
    scores = tf.matmul(query, key, transpose_b=True) / tf.cast(math.sqrt(self.head_size),
                                                               self.compute_dtype)
    padding = 1.0 - tf.cast(attention_mask, self.compute_dtype)[:, tf.newaxis, tf.newaxis, :]
    scores += padding * tf.cast(_MASK_ADDER, self.compute_dtype)
    weights = self.dropout(tf.nn.softmax(scores, axis=-1), training=training)
    context = tf.transpose(tf.matmul(weights, value), [0, 2, 1, 3])  # [batch, seq, heads, d]
    return self.output_dense(tf.reshape(context, [batch, -1, self.config.hidden_size]))


class BertIntermediate(GeluIntermediate):
  """GELU(x W + b), the feed-forward expansion with BERT's exact GELU: `GeluIntermediate`
  (gelu.py: float32 erf form in training, XLA-compiled when `compiled`; a fused kernel in
  inference) around its own Dense ``dense``. Call: [batch, seq, hidden] -> [batch, seq,
  intermediate]."""

  def __init__(self, config, compiled: bool = True, **kwargs):
    config = as_config(config)
    dense = tf_keras.layers.Dense(config.intermediate_size, name="dense",
                                  kernel_initializer=_initializer(config),
                                  dtype=kwargs.get("dtype"))
    super().__init__(dense, config.hidden_size, compiled, **kwargs)
    self.config = config

  def get_config(self):
    return {**super().get_config(), "config": dataclasses.asdict(self.config),
            "compiled": self.compiled}


class BertTransformerBlock(_ConfiguredLayer):
  """One encoder layer (post-LayerNorm, as BERT and Model Garden's
  ``TransformerEncoderBlock(norm_first=False)``):
  x = LayerNorm(x + Dropout(SelfAttention(x))); x = LayerNorm(x + Dropout(Dense(GELU-FFN(x)))).

  Call: hidden_states [batch, seq, hidden], attention_mask [batch, seq]. Returns
  [batch, seq, hidden]. Dropout salts: `salt` (attention weights), `salt` + 1 (attention
  output), `salt` + 2 (feed-forward output).
  """

  def __init__(self, config, **kwargs):
    super().__init__(config, **kwargs)
    c, shared = self.config, {"seed_source": self.seed_source, "compiled": self.compiled,
                              "dtype": self.dtype_policy}
    self.attention = BertSelfAttention(c, salt=self.salt, name="attention", **shared)
    self.attention_dropout = self._dropout(c.hidden_dropout_prob, 1, "attention_dropout")
    self.attention_layer_norm = self._layer_norm("attention_layer_norm")
    self.intermediate = BertIntermediate(c, self.compiled, name="intermediate",
                                         dtype=self.dtype_policy)
    self.output_dense = self._dense(c.hidden_size, "output_dense")
    self.output_dropout = self._dropout(c.hidden_dropout_prob, 2, "output_dropout")
    self.output_layer_norm = self._layer_norm("output_layer_norm")

  def build(self, input_shape=None):
    c = self.config
    for layer, width in ((self.attention, c.hidden_size), (self.attention_layer_norm,
                         c.hidden_size), (self.intermediate, c.hidden_size),
                         (self.output_dense, c.intermediate_size),
                         (self.output_layer_norm, c.hidden_size)):
      _build(layer, [None, None, width])
    super().build(input_shape)

  def call(self, hidden_states, attention_mask, training=None):
    attended = self.attention(hidden_states, attention_mask, training=training)
    x = self.attention_layer_norm(
        hidden_states + self.attention_dropout(attended, training=training))
    expanded = self.intermediate(x, training=training)
    out = self.output_dropout(self.output_dense(expanded), training=training)
    return self.output_layer_norm(x + out)


class BertEncoder(_ConfiguredLayer):
  """BERT's encoder: `BertEmbeddings` then `num_hidden_layers` `BertTransformerBlock`s.

  Call: input_ids, attention_mask, token_type_ids [batch, seq] int32 (or one dict of
  them; mask default all ones, token types default zeros), seq <= max_position_embeddings.
  Returns the last hidden states [batch, seq, hidden] in the compute dtype.
  Dropout salts: `salt` (embeddings), then three per block (block i from salt + 1 + 3 i).
  `word_embeddings`: the [vocab_size, hidden] variable label tokens live in.
  """

  def __init__(self, config, **kwargs):
    super().__init__(config, **kwargs)
    self.config.check(f"BertEncoder {self.name}")
    shared = {"seed_source": self.seed_source, "compiled": self.compiled,
              "dtype": self.dtype_policy}
    self.embeddings = BertEmbeddings(self.config, salt=self.salt, name="embeddings", **shared)
    self.blocks = [BertTransformerBlock(self.config, salt=self.salt + 1 + 3 * i,
                                        name=f"layer_{i}", **shared)
                   for i in range(self.config.num_hidden_layers)]

  def build(self, input_shape=None):
    _build(self.embeddings, [None, None])
    for block in self.blocks:
      _build(block, [None, None, self.config.hidden_size])
    super().build(input_shape)

  def create_variables(self) -> None:
    """Creates the variables without a call (named ``<name>/embeddings/...``)."""
    if not self.built:
      _build(self, None)

  @property
  def word_embeddings(self) -> tf.Variable:
    self.create_variables()
    return self.embeddings.word_embeddings

  @property
  def dropout_salts(self) -> range:
    """The salts of the encoder's dropouts (the model's own dropouts take later ones)."""
    return range(self.salt, self.salt + 1 + 3 * self.config.num_hidden_layers)

  def use_dropout_seed(self, seed_source: DropoutSeed) -> None:
    """Points every dropout of the encoder at `seed_source` (e.g. the model's)."""
    self.seed_source = seed_source
    for layer in [self, *self.submodules]:
      if isinstance(layer, (StatelessDropout, _ConfiguredLayer)):
        layer.seed_source = seed_source

  def call(self, input_ids, attention_mask=None, token_type_ids=None, training=None):
    if isinstance(input_ids, dict):
      attention_mask = input_ids.get("attention_mask", attention_mask)
      token_type_ids = input_ids.get("token_type_ids", token_type_ids)
      input_ids = input_ids["input_ids"]
    if attention_mask is None:
      attention_mask = tf.ones_like(input_ids)
    if token_type_ids is None:
      token_type_ids = tf.zeros_like(input_ids)
    x = self.embeddings(input_ids, token_type_ids, training=training)
    for block in self.blocks:
      x = block(x, attention_mask, training=training)
    return x
