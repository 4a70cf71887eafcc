"""The run's model from its options: the encoder, its label tokens and the LACO heads,
created in the strategy's scope (shared by `runner.py`, the benchmarks and the tests)."""

import tensorflow as tf
import tf_keras

from laco_tf import run_settings
from laco_tf.data import tokenization
from laco_tf.modeling import encoder as encoder_lib
from laco_tf.modeling import label_tokens, precision
from laco_tf.modeling import shortlist as shortlist_lib
from laco_tf.modeling.model import LacoModel


def build_model(spec, labels, plan, descriptions, opts, strategy,
                shortlist_weights=None) -> LacoModel:
  """The run's model, its variables created in `strategy`'s scope. `shortlist_weights`:
  the fitted first stage of label slots (`fit_shortlist`)."""
  num_labels = len(labels)
  slots = label_slots(opts, num_labels)
  with strategy.scope(), precision.policy_scope(precision.resolve(opts.precision)):
    tf_keras.utils.set_random_seed(opts.seed)
    # XLA compiles once per shape: bucketed lengths (or --jit_compile's padding,
    # laco_tf/training/train_config.py) keep the shapes few.
    compiled = opts.length_bucketing or opts.jit_compile
    bert = encoder_lib.load_bert(spec, plan.model_vocab_size, seed=opts.seed, compiled=compiled)
    label_tokens.prepare_embeddings(bert, plan, labels, opts.label_init, spec.vocab_file,
                                    spec.do_lower_case, descriptions)
    sep_id = tokenization.special_token_ids(tokenization.read_vocab(spec.vocab_file))["sep"]
    model = LacoModel(bert, num_labels, opts.window_size,
                      opts.dropout_rate, use_plcp=opts.task in ("plcp", "both"),
                      use_clcp=opts.task in ("clcp", "both"),
                      joint_embedding=opts.joint_embedding,
                      cross_attention=opts.cross_attention, pooling=opts.pooling or "cls",
                      dropout_seed=opts.seed, compiled_chains=compiled,
                      label_slots=slots, label_token_ids=plan.token_ids, sep_id=sep_id,
                      shortlist=(shortlist_lib.LabelShortlist(shortlist_weights)
                                 if shortlist_weights is not None else None),
                      label_inference=opts.label_inference if slots else "exhaustive",
                      label_join_layer=opts.label_join_layer)
    # Create every variable now, inside the strategy's scope.
    carried = slots or num_labels
    # The sequence holds the carried label tokens under joint embedding, none without it.
    length = num_labels + 4 if opts.joint_embedding and not slots else 4
    dummy = {"input_ids": tf.zeros([1, length], tf.int32),
             "token_type_ids": tf.zeros([1, length], tf.int32),
             "attention_mask": tf.ones([1, length], tf.int32),
             "doc_length": tf.ones([1], tf.int32),
             "plcp_pairs": tf.zeros([1, 1, 2], tf.int32),
             "clcp_given": tf.zeros([1, carried])}
    if slots:
      dummy["slot_labels"] = tf.range(slots)[tf.newaxis]
    model(dummy, training=False)
  return model


def label_slots(opts: run_settings.RunOptions, num_labels: int) -> int:
  """K when --label_slots leaves labels out of each sequence, else 0 (full JE)."""
  carried = run_settings.carried_labels(opts, num_labels)  # 0 without joint embedding
  return carried if carried < num_labels else 0
