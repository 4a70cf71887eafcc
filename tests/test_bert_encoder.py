"""LACO-TF's own BERT encoder: equal to transformers' TFBertModel (the encoder it replaced)
on the same weights, its weight loading from model.safetensors and tf_model.h5, get_config,
and its config checks."""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from safetensors.numpy import save_file

from laco_tf.errors import InputError
from laco_tf.modeling import bert_weights
from laco_tf.modeling.bert_encoder import BertEncoder, BertEncoderConfig
from laco_tf.modeling.layers.stateless_dropout import DropoutSeed

TINY = BertEncoderConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=32,
                         max_position_embeddings=24)


def _inputs(vocab_size, lengths=(9, 5, 2), seed=0):
  """Random ids and token types, padded after each length ([batch, max(lengths)] int32)."""
  rng = np.random.default_rng(seed)
  width = max(lengths)
  mask = (np.arange(width)[None, :] < np.array(lengths)[:, None]).astype(np.int32)
  ids = rng.integers(1, vocab_size, size=mask.shape).astype(np.int32) * mask
  types = (np.arange(width)[None, :] >= np.array(lengths)[:, None] // 2).astype(np.int32) * mask
  return {"input_ids": tf.constant(ids), "attention_mask": tf.constant(mask),
          "token_type_ids": tf.constant(types)}


def _write_dir(directory, config, tensors, metadata=None):
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
    json.dump({**dataclasses.asdict(config), "model_type": "bert"}, f)
  save_file(tensors, os.path.join(directory, "model.safetensors"), metadata=metadata)
  return str(directory)


def _own_tensors(encoder):
  """The encoder's weights under their PyTorch names and layout."""
  return {n: np.ascontiguousarray(v.numpy().T if t else v.numpy())
          for n, (v, t) in bert_weights.huggingface_names(encoder).items()}


@pytest.fixture(scope="module")
def random_dir(tmp_path_factory):
  """A Hugging Face directory with random weights in PyTorch's layout, as the hub has."""
  tf_keras.utils.set_random_seed(1)
  tensors = _own_tensors(BertEncoder(TINY, name="source"))
  tensors["embeddings.position_ids"] = np.arange(24, dtype=np.int64)[None]
  tensors["pooler.dense.weight"] = np.zeros([16, 16], np.float32)
  return _write_dir(tmp_path_factory.mktemp("random_bert"), TINY, tensors), tensors


# --- (a) equal to today's TFBertModel -------------------------------------------------

def _write_layout(bert, directory, vocab_file, layout):
  """`bert`'s weights as transformers saves them: "pytorch" as a PyTorch BertModel,
  "pytorch-prefixed" as BertForPreTraining (``bert.`` names and a head), both named by
  transformers' own TF -> PyTorch conversion; "tf" by TFBertModel.save_pretrained as
  safetensors, "h5" as its default tf_model.h5."""
  # pylint: disable=import-outside-toplevel
  from transformers.modeling_tf_pytorch_utils import (TransposeType,
                                                      convert_tf_weight_name_to_pt_weight_name)
  os.makedirs(directory)
  with open(vocab_file, encoding="utf-8") as src, open(os.path.join(directory, "vocab.txt"),
                                                       "w", encoding="utf-8") as dst:
    dst.write(src.read())
  if layout in ("tf", "h5"):
    bert.save_pretrained(str(directory), safe_serialization=layout == "tf")
    return str(directory)
  prefix = "bert." if layout == "pytorch-prefixed" else ""
  tensors = {}
  for w in bert.weights:
    name, transpose = convert_tf_weight_name_to_pt_weight_name(
        w.name, "" if prefix else "bert.", w.shape)
    tensors[name] = np.ascontiguousarray(w.numpy().T if transpose != TransposeType.NO
                                         else w.numpy())
  tensors[prefix + "embeddings.position_ids"] = np.arange(
      bert.config.max_position_embeddings, dtype=np.int64)[None]
  if prefix:
    tensors["cls.predictions.bias"] = np.zeros([bert.config.vocab_size], np.float32)
  bert.config.to_json_file(os.path.join(directory, "config.json"))
  save_file(tensors, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
  return str(directory)


def _tfbertmodel_class():
  """transformers' TFBertModel, or a skip naming why it cannot be imported (transformers
  4.55 and later cannot load model.safetensors into it; 5.x has no TensorFlow)."""
  try:
    # pylint: disable=import-outside-toplevel,unused-import
    from transformers import TFBertModel
    from transformers import modeling_tf_pytorch_utils  # noqa: F401
  except ImportError as e:
    pytest.skip(f"transformers' TF classes cannot be imported ({e}): no TFBertModel to "
                "compare with")
  return TFBertModel


@pytest.fixture(scope="module")
def todays_encoder(tiny_bert):
  """transformers' TFBertModel with the tiny BERT's weights, and its vocab file."""
  return os.path.join(tiny_bert, "vocab.txt"), _tfbertmodel_class().from_pretrained(tiny_bert)


def _max_differences(ours, theirs, mask):
  """Max |ours - theirs| over the unpadded positions and over all positions."""
  diff = np.abs(np.asarray(ours, np.float64) - np.asarray(theirs, np.float64))
  return diff[mask.numpy().astype(bool)].max(), diff.max()


@pytest.mark.parametrize("layout", ["pytorch", "pytorch-prefixed", "tf", "h5"])
def test_equal_to_todays_tfbertmodel_on_the_same_weights(tmp_path, todays_encoder, layout):
  vocab_file, original = todays_encoder
  model_dir = _write_layout(original, tmp_path / "bert", vocab_file, layout)
  todays = _tfbertmodel_class().from_pretrained(model_dir)  # transformers reads it
  ours = bert_weights.load_huggingface_encoder(model_dir)
  assert ours.config.vocab_size == todays.config.vocab_size
  features = _inputs(todays.config.vocab_size)
  expected = todays(**features, training=False).last_hidden_state.numpy()
  assert np.array_equal(expected, original(**features).last_hidden_state.numpy())
  for training in (False, True):  # Dropout 0: training differs only in its GELU kernel.
    unpadded, everywhere = _max_differences(ours(features, training=training), expected,
                                            features["attention_mask"])
    print(f"{layout} training={training}: max |ours - TFBertModel| "
          f"unpadded {unpadded:.3g}, all positions {everywhere:.3g}")
    assert unpadded <= 1e-5 and everywhere <= 1e-5


# --- weight loading ---------------------------------------------------------------------

def test_loaded_weights_reproduce_the_source_encoder(random_dir):
  model_dir, tensors = random_dir
  loaded = bert_weights.load_huggingface_encoder(model_dir)
  features = _inputs(TINY.vocab_size)
  source = BertEncoder(TINY, name="again")
  source.create_variables()
  for name, (variable, transpose) in bert_weights.huggingface_names(source).items():
    variable.assign(tensors[name].T if transpose else tensors[name])
  np.testing.assert_array_equal(loaded(features).numpy(), source(features).numpy())


def _load_error(tmp_path, tensors, config=TINY):
  model_dir = _write_dir(tmp_path / "bad", config, tensors)
  with pytest.raises(InputError) as error:
    bert_weights.load_huggingface_encoder(model_dir)
  message = str(error.value)
  assert "\n" not in message and os.path.join(model_dir, "model.safetensors") in message
  return message


def test_missing_unexpected_and_misshapen_weights_are_one_line(tmp_path, random_dir):
  _, tensors = random_dir
  missing = dict(tensors)
  del missing["encoder.layer.1.output.dense.bias"]
  assert "missing encoder weights: encoder.layer.1.output.dense.bias" in _load_error(
      tmp_path, missing)
  extra = {**tensors, "encoder.layer.2.output.dense.bias": np.zeros([16], np.float32)}
  assert "unexpected weights: encoder.layer.2.output.dense.bias" in _load_error(
      tmp_path, extra)
  wrong = {**tensors, "encoder.layer.0.intermediate.dense.weight": np.zeros([16, 32],
                                                                            np.float32)}
  assert ("shape mismatches (file vs encoder): encoder.layer.0.intermediate.dense.weight "
          "[32, 16] vs [16, 32]") in _load_error(tmp_path, wrong)
  fewer_layers = dataclasses.replace(TINY, num_hidden_layers=3)
  assert "missing encoder weights: encoder.layer.2." in _load_error(
      tmp_path, tensors, fewer_layers)


def test_pickle_and_empty_directories_are_refused_in_one_line(tmp_path):
  (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x02not really")
  with pytest.raises(InputError, match=r"pytorch_model.bin: a pickle .*needs "
                     r"model.safetensors"):
    bert_weights.weights_file(str(tmp_path))
  with pytest.raises(InputError, match=r"no model.safetensors"):
    bert_weights.weights_file(str(tmp_path / "nothing"))
  (tmp_path / "broken").mkdir()
  (tmp_path / "broken" / "model.safetensors").write_bytes(b"garbage")
  with pytest.raises(InputError, match=r"not a readable safetensors file"):
    bert_weights.load_huggingface_weights(BertEncoder(TINY), str(tmp_path / "broken"))


def test_label_rows_beyond_the_vocabulary_keep_their_values(random_dir):
  model_dir, tensors = random_dir
  grown = BertEncoder(dataclasses.replace(TINY, vocab_size=TINY.vocab_size + 3))
  before = grown.word_embeddings.numpy()
  bert_weights.load_huggingface_weights(grown, model_dir)
  table = grown.word_embeddings.numpy()
  np.testing.assert_array_equal(table[:TINY.vocab_size],
                                tensors["embeddings.word_embeddings.weight"])
  np.testing.assert_array_equal(table[TINY.vocab_size:], before[TINY.vocab_size:])
  features = _inputs(TINY.vocab_size)
  np.testing.assert_array_equal(
      grown(features).numpy(), bert_weights.load_huggingface_encoder(model_dir)(features))


# --- get_config, gradients, config checks ---------------------------------------------

def test_get_config_round_trips_with_the_same_outputs(random_dir):
  encoder = bert_weights.load_huggingface_encoder(random_dir[0], seed=7)
  config = json.loads(json.dumps(encoder.get_config()))
  copy = BertEncoder.from_config(config)
  copy.create_variables()
  copy.set_weights(encoder.get_weights())
  assert copy.get_config() == config and copy.seed_source.seed == 7
  features = _inputs(TINY.vocab_size)
  np.testing.assert_array_equal(copy(features).numpy(), encoder(features).numpy())
  for layer in (encoder.embeddings, encoder.blocks[1], encoder.blocks[0].attention,
                encoder.blocks[0].intermediate):
    assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()


def test_every_variable_learns_and_dropout_follows_the_shared_seed():
  encoder = BertEncoder(TINY)
  seed = DropoutSeed(3)
  seed.step = tf.Variable(5, dtype=tf.int64)
  encoder.use_dropout_seed(seed)
  features = _inputs(TINY.vocab_size)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.square(encoder(features, training=True)))
  grads = tape.gradient(loss, encoder.trainable_variables)
  assert len(grads) == 5 + 16 * TINY.num_hidden_layers and all(g is not None for g in grads)
  again = encoder(features, training=True).numpy()
  np.testing.assert_array_equal(again, encoder(features, training=True).numpy())
  seed.step.assign(6)
  assert not np.array_equal(again, encoder(features, training=True).numpy())


@pytest.mark.parametrize("act", ["relu", "gelu_new", "gelu_pytorch_tanh"])
def test_hidden_act_other_than_gelu_is_refused_in_one_line(tmp_path, act):
  path = tmp_path / "config.json"
  path.write_text(json.dumps({**dataclasses.asdict(TINY), "hidden_act": act}))
  with pytest.raises(InputError) as error:
    bert_weights.read_bert_config(str(path))
  assert "\n" not in str(error.value) and str(path) in str(error.value)
  assert f"hidden_act {act!r} is not supported" in str(error.value)
  with pytest.raises(InputError, match="hidden_act"):
    BertEncoder({**dataclasses.asdict(TINY), "hidden_act": act})


def test_unusable_configs_are_refused_in_one_line(tmp_path):
  path = tmp_path / "config.json"
  for raw, message in (({"hidden_size": 16}, "missing vocab_size, num_hidden_layers"),
                       ({**dataclasses.asdict(TINY), "num_attention_heads": 3},
                        "not a multiple of num_attention_heads"),
                       ({**dataclasses.asdict(TINY), "position_embedding_type": "relative_key"},
                        "absolute positions only"),
                       ({**dataclasses.asdict(TINY), "hidden_dropout_prob": 1.5},
                        "hidden_dropout_prob=1.5")):
    path.write_text(json.dumps(raw))
    with pytest.raises(InputError, match=message):
      bert_weights.read_bert_config(str(path))
