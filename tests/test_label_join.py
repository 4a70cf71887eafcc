"""Label tokens joining at a later encoder layer (--label_join_layer)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from laco_tf import runner
from laco_tf.data import input_packing
from laco_tf.errors import InputError
from laco_tf.modeling import encoder, label_join
from tests.test_end_to_end import tiny_options
from tests.test_label_slots import assert_serves_its_test_predictions

CLS, SEP = 22, 23


def _joint_features(doc_lengths, label_ids):
  """Full JE inputs (paper 3.2's packing), padded to the batch's longest sequence."""
  rng = np.random.default_rng(4)
  docs = tf.ragged.constant([list(rng.integers(30, 60, m)) for m in doc_lengths], tf.int64)
  packed = input_packing.pack_joint_input(docs, label_ids, CLS, SEP, max_seq_length=64)
  ids = packed["input_ids"].to_tensor()
  return {"input_ids": tf.cast(ids, tf.int32),
          "token_type_ids": tf.cast(packed["token_type_ids"].to_tensor(), tf.int32),
          "attention_mask": tf.cast(tf.ones_like(packed["input_ids"]).to_tensor(), tf.int32),
          "doc_length": tf.cast(packed["doc_length"], tf.int32)}


def test_labels_joining_at_layer_1_equal_each_document_encoded_alone_then_joined(tiny_bert):
  bert = encoder.load_bert(encoder.resolve_encoder(tiny_bert))
  features = _joint_features([7, 2, 5], [1, 2, 3, 4])
  got = label_join.joined_states(
      bert, features, 1, label_join.document_states(bert, features, 1)).numpy()
  # Brute force, one unpadded document at a time: block 0 reads [CLS] x [SEP] alone; block
  # 1 reads its states followed by the embedded label tokens and final [SEP].
  for b, m in enumerate(features["doc_length"].numpy()):
    total = int(features["attention_mask"][b].numpy().sum())
    ids, types = features["input_ids"][b:b + 1, :total], features["token_type_ids"][b:b + 1, :total]
    document = bert.blocks[0](bert.embeddings(ids[:, :m + 2], types[:, :m + 2]),
                              tf.ones([1, m + 2], tf.int32))
    sequence = tf.concat([document, bert.embeddings(ids, types)[:, m + 2:]], axis=1)
    want = bert.blocks[1](sequence, tf.ones([1, total], tf.int32)).numpy()
    np.testing.assert_allclose(got[b, :total], want[0], atol=2e-5)
  # The labels' absence from block 0 changes every position's state: the paper's JE differs.
  full = bert(features).numpy()
  change = np.abs(full - got).max(axis=-1)
  assert change[features["attention_mask"].numpy() == 1].min() > 1e-4


@pytest.mark.parametrize("overrides, message", [
    ({"label_join_layer": 2},
     r"^--label_join_layer=2: expected a layer below the encoder's 2 \(num_hidden_layers in "),
    ({"label_join_layer": 1, "joint_embedding": False, "task": "mltc"},
     r"^--label_join_layer=1: there are no label tokens to join without joint embedding"),
])
def test_a_join_layer_the_encoder_lacks_or_without_label_tokens_is_one_line(
    overrides, message, tmp_path, tiny_bert):
  # The data directory does not exist: the setting is refused before any data is read.
  with pytest.raises(InputError, match=message):
    runner.run(tiny_options(str(tmp_path / "no_corpus"), tiny_bert, tmp_path / "out",
                            **overrides))
  assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("label_slots", [0, 3])
def test_a_run_with_a_join_layer_serves_what_it_predicts(label_slots, tmp_path, tiny_bert,
                                                         tiny_corpus):
  out = tmp_path / "run"
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, out, task="clcp", max_steps=3,
                                    do_eval=False, do_export=True, label_join_layer=1,
                                    label_slots=label_slots))
  with open(out / "run_config.json") as f:
    assert json.load(f)["label_join_layer"] == 1
  assert_serves_its_test_predictions(summary, out, tiny_corpus)
