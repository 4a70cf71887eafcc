"""Encoder sources (Google TF1 release, HF directories, hub ids) and label tokens."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from laco_tf.data import tokenization
from laco_tf.modeling import bert_weights, encoder, google_checkpoint, label_tokens
from laco_tf.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_google_release(directory, bert, vocab_file, drop=None, extra=None, reshape=None):
  """Writes a TF1 name-based checkpoint the way Google's BERT release lays it out."""
  os.makedirs(directory, exist_ok=True)
  values = {name: v.numpy() for name, v in google_checkpoint.tf1_names(bert).items()}
  hidden = bert.config.hidden_size
  values.update({  # The pooler, pre-training heads and optimizer state, as released.
      "bert/pooler/dense/kernel": np.ones([hidden, hidden], np.float32),
      "bert/pooler/dense/bias": np.ones([hidden], np.float32),
      "cls/predictions/transform/dense/kernel": np.zeros([hidden, hidden], np.float32),
      "cls/predictions/output_bias": np.zeros([bert.config.vocab_size], np.float32),
      "cls/seq_relationship/output_weights": np.zeros([2, hidden], np.float32),
      "bert/embeddings/word_embeddings/adam_m": np.zeros([1], np.float32),
      "bert/pooler/dense/kernel/adam_v": np.zeros([1], np.float32),
      "global_step": np.int64(1000)})
  for name in drop or []:
    del values[name]
  values.update(extra or {})
  for name, shape in (reshape or {}).items():
    values[name] = np.zeros(shape, np.float32)
  with tf.Graph().as_default():
    variables = [tf.compat.v1.Variable(v, name=n) for n, v in values.items()]
    saver = tf.compat.v1.train.Saver(variables)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      saver.save(sess, os.path.join(directory, "bert_model.ckpt"), write_meta_graph=False)
  config = dataclasses.asdict(bert.config)
  with open(os.path.join(directory, "bert_config.json"), "w") as f:
    json.dump(config, f)
  shutil.copy(vocab_file, os.path.join(directory, "vocab.txt"))
  return str(directory)


@pytest.fixture(scope="module")
def tiny_hf(tiny_bert):
  spec = encoder.resolve_encoder(tiny_bert)
  return spec, encoder.load_bert(spec)


def _outputs(bert):
  ids = tf.constant([[22, 40, 41, 57, 23, 3, 23], [22, 60, 61, 23, 0, 0, 0]])
  mask = tf.cast(ids != 0, tf.int32)
  return bert(input_ids=ids, attention_mask=mask, token_type_ids=tf.zeros_like(ids)).numpy()


def test_google_release_round_trip_gives_the_same_encoder(tmp_path, tiny_hf):
  spec, bert = tiny_hf
  release = write_google_release(tmp_path / "uncased_L-2_H-32", bert, spec.vocab_file)
  explicit = encoder.resolve_encoder("", None, os.path.join(release, "bert_config.json"),
                                     os.path.join(release, "vocab.txt"),
                                     os.path.join(release, "bert_model.ckpt"))
  by_dir = encoder.resolve_encoder(release)
  for loaded_spec in (explicit, by_dir):
    assert loaded_spec.kind == "google" and loaded_spec.do_lower_case is True
    loaded = encoder.load_bert(loaded_spec)
    assert np.abs(_outputs(loaded) - _outputs(bert)).max() <= 1e-5


@pytest.mark.parametrize("change,message", [
    (dict(drop=["bert/encoder/layer_1/output/dense/bias"]),
     r"missing encoder variables: bert/encoder/layer_1/output/dense/bias$"),
    (dict(extra={"bert/encoder/layer_9/extra": np.zeros([2], np.float32)}),
     r"unexpected variables: bert/encoder/layer_9/extra$"),
    (dict(reshape={"bert/encoder/layer_0/output/dense/bias": [7]}),
     r"shape mismatches \(checkpoint vs config\): bert/encoder/layer_0/output/dense/bias "
     r"\[7\] vs \[32\]$"),
])
def test_bad_google_checkpoints_list_the_offending_names(tmp_path, tiny_hf, change, message):
  spec, bert = tiny_hf
  release = write_google_release(tmp_path / "r", bert, spec.vocab_file, **change)
  with pytest.raises(InputError, match=message):
    encoder.load_bert(encoder.resolve_encoder(release))


def test_huggingface_directory_with_safetensors_loads(tmp_path, tiny_hf):
  spec, bert = tiny_hf
  bert_weights.save_huggingface(bert, str(tmp_path))
  shutil.copy(spec.vocab_file, tmp_path / "vocab.txt")
  assert os.path.isfile(tmp_path / "model.safetensors")
  loaded_spec = encoder.resolve_encoder(str(tmp_path))
  assert loaded_spec.weights.endswith("model.safetensors")
  assert np.abs(_outputs(encoder.load_bert(loaded_spec)) - _outputs(bert)).max() <= 1e-6


def test_pytorch_weights_are_refused_as_a_pickle_in_one_line(tmp_path, tiny_bert):
  for name in ("config.json", "vocab.txt"):
    shutil.copy(os.path.join(tiny_bert, name), tmp_path / name)
  (tmp_path / "pytorch_model.bin").write_bytes(b"\0")
  with pytest.raises(InputError, match=r"only pytorch_model.bin, a pickle .*; supply "
                     r"model.safetensors"):
    encoder.resolve_encoder(str(tmp_path))


def _cli(args, **env):
  return subprocess.run([sys.executable, os.path.join(ROOT, "run_classifier.py"), *args],
                        capture_output=True, text=True, cwd=ROOT,
                        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env})


def test_offline_hub_id_is_a_one_line_error_saying_what_to_do(tmp_path):
  result = _cli(["--bert_model=bert-base-uncased", "--data_dir=data/sample",
                 f"--output_dir={tmp_path}"], HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path))
  last = result.stderr.strip().splitlines()[-1]
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert last.startswith("run_classifier.py: error: --bert_model=bert-base-uncased: could not "
                         "fetch it from the Hugging Face hub")
  assert "pass its directory, e.g. --bert_model=/path/to/bert-base-uncased" in last


def test_hub_id_trains_and_exports_from_the_local_hugging_face_cache(tmp_path, tiny_bert,
                                                                     tiny_corpus):
  cache = tmp_path / "hf_cache"
  snapshot = cache / "models--acme--tiny-bert" / "snapshots" / "0123abc"
  shutil.copytree(tiny_bert, snapshot)
  (cache / "models--acme--tiny-bert" / "refs").mkdir()
  (cache / "models--acme--tiny-bert" / "refs" / "main").write_text("0123abc")
  out = tmp_path / "out"
  result = _cli(["--bert_model=acme/tiny-bert", f"--data_dir={tiny_corpus}",
                 f"--output_dir={out}", "--max_steps=2", "--max_seq_length=48",
                 "--do_train", "--do_predict", "--do_export"],
                HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache))
  assert result.returncode == 0, result.stderr[-2000:]
  assert f"Loading encoder (hub) from {snapshot}/model.safetensors" in result.stdout
  with open(out / "export" / "1" / "assets.extra" / "laco_metadata.json") as f:
    assert json.load(f)["encoder"]["source"] == "acme/tiny-bert"
  with open(out / "predictions_test.jsonl") as f:
    first = json.loads(f.readline())
  with open(os.path.join(tiny_corpus, "test.jsonl")) as f:
    text = json.loads(f.readline())["text"]
  loaded = tf.saved_model.load(str(out / "export" / "1"))
  probs = loaded.signatures["serving_default"](text=tf.constant([text]))["scores"]
  np.testing.assert_allclose(probs.numpy()[0], list(first["probabilities"].values()),
                             atol=1e-5)


@pytest.mark.parametrize("name,config,flag,want", [
    ("bert-base-cased", None, None, False),
    ("bert-base-uncased", None, None, True),
    ("my-model", {"do_lower_case": False}, None, False),
    ("bert-base-cased", {"do_lower_case": True}, None, True),
    ("bert-base-uncased", None, False, False),
])
def test_lower_casing_follows_the_checkpoint_unless_overridden(tmp_path, tiny_bert, name,
                                                               config, flag, want):
  model_dir = tmp_path / name
  shutil.copytree(tiny_bert, model_dir)
  if config is not None:
    (model_dir / "tokenizer_config.json").write_text(json.dumps(config))
  assert encoder.resolve_encoder(str(model_dir), flag).do_lower_case is want


def test_label_tokens_grow_the_vocabulary_when_unused_slots_run_out(tiny_hf):
  spec, _ = tiny_hf
  vocab = tokenization.read_vocab(spec.vocab_file)
  plan = label_tokens.plan_label_tokens(vocab, spec.vocab_size, 25)  # 20 unused slots.
  assert plan.scheme == "appended"
  assert plan.token_ids == list(range(spec.vocab_size, spec.vocab_size + 25))
  small = label_tokens.plan_label_tokens(vocab, spec.vocab_size, 3)
  assert small.scheme == "unused" and small.model_vocab_size == spec.vocab_size


@pytest.mark.parametrize("n_labels", [3, 25])
def test_label_init_name_sets_label_rows_to_mean_name_embeddings(tiny_bert, n_labels):
  spec = encoder.resolve_encoder(tiny_bert)
  vocab = tokenization.read_vocab(spec.vocab_file)
  labels = (["oil-gas", "stocks.Rally", "team"] + [f"goal{i}" for i in range(22)])[:n_labels]
  plan = label_tokens.plan_label_tokens(vocab, spec.vocab_size, n_labels)
  bert = encoder.load_bert(spec, plan.model_vocab_size)
  before = bert.word_embeddings.numpy().copy()
  label_tokens.prepare_embeddings(bert, plan, labels, "name", spec.vocab_file, True,
                                  {"team": "match team season"})
  table = bert.word_embeddings.numpy()
  assert table.shape[0] == plan.model_vocab_size
  index = {t: i for i, t in enumerate(vocab)}
  want = {"oil-gas": ["oil", "gas"], "stocks.Rally": ["stocks", "rally"],
          "team": ["match", "team", "season"]}
  for label, row in zip(labels[:3], plan.token_ids):
    mean = np.mean([before[index[w]] for w in want[label]], axis=0)
    np.testing.assert_allclose(table[row], mean, atol=1e-6)
  others = np.setdiff1d(np.arange(len(before)), plan.token_ids)
  np.testing.assert_array_equal(table[others], before[others])  # Nothing else moves.


def test_label_name_text_and_description_file(tmp_path):
  assert label_tokens.name_text("cs.LG") == "cs lg"
  assert label_tokens.name_text("money-fx") == "money fx"
  path = tmp_path / "desc.tsv"
  path.write_text("a\tfirst label\n\nb\tsecond\n")
  assert label_tokens.read_descriptions(str(path), ["a", "b"]) == {"a": "first label",
                                                                   "b": "second"}
  path.write_text("a first label\n")
  with pytest.raises(InputError, match=r"desc.tsv:1: expected 'label<TAB>description'"):
    label_tokens.read_descriptions(str(path), ["a"])
  path.write_text("zz\tnope\n")
  with pytest.raises(InputError, match=r"desc.tsv:1: label 'zz' is not in the training"):
    label_tokens.read_descriptions(str(path), ["a"])


def test_missing_description_file_and_broken_config_are_one_line_errors(tmp_path, tiny_bert):
  with pytest.raises(InputError, match=r"--label_descriptions=.*nope.tsv: no such file"):
    label_tokens.read_descriptions(str(tmp_path / "nope.tsv"), ["a"])
  model_dir = tmp_path / "broken"
  shutil.copytree(tiny_bert, model_dir)
  (model_dir / "config.json").write_text('{"hidden_size": 32')
  with pytest.raises(InputError, match=r"config.json: not a usable BERT config \(need an "
                     r"integer 'vocab_size'"):
    _ = encoder.resolve_encoder(str(model_dir)).vocab_size


def test_init_checkpoint_of_a_laco_run_says_to_predict_from_its_output_dir(tmp_path):
  run = tmp_path / "run"
  (run / "best").mkdir(parents=True)
  (run / "run_config.json").write_text("{}")
  (run / "best" / "ckpt-5.index").write_text("")
  with pytest.raises(InputError, match=rf"--init_checkpoint={run}/best/ckpt-5: a LACO-TF "
                     rf"run's checkpoint, not a BERT encoder; to predict with it pass "
                     rf"--output_dir={run} --do_predict"):
    encoder.resolve_encoder(init_checkpoint=str(run / "best" / "ckpt-5"))
