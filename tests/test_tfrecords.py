"""TFRecord conversion round trip, the tf.data pipeline, and cache invalidation."""

import os

import numpy as np
import pytest
import tensorflow as tf

from laco_tf.data import corpus_splits, input_packing, pipeline, readers, tfrecords, tokenization
from laco_tf.errors import InputError
from laco_tf.modeling import encoder


def _setup(tiny_bert, tiny_corpus):
  spec = encoder.resolve_encoder(tiny_bert)
  splits = readers.read_corpus(tiny_corpus)
  labels = corpus_splits.label_list(splits["train"])
  return spec, splits, labels, tokenization.label_token_ids(
      tokenization.read_vocab(spec.vocab_file), len(labels))


def test_round_trip_keeps_packed_ids_and_labels(tmp_path, tiny_bert, tiny_corpus):
  spec, splits, labels, ids = _setup(tiny_bert, tiny_corpus)
  meta = tfrecords.prepare_tfrecords(str(tmp_path), splits, labels, spec, ids, 40)
  vocab = tokenization.read_vocab(spec.vocab_file)
  assert meta["label_token_ids"] == [vocab.index(f"[unused{i}]") for i in range(len(labels))]
  tok = tokenization.make_tokenizer(spec.vocab_file, True)
  texts = [e.text for e in splits["dev"]]
  want = input_packing.pack_joint_input(tokenization.tokenize(tok, tf.constant(texts)),
                                        meta["label_token_ids"], vocab.index("[CLS]"),
                                        vocab.index("[SEP]"), 40)
  batch = next(iter(pipeline.make_dataset(str(tmp_path / "dev.tfrecord"), len(labels),
                                          batch_size=len(texts), training=False)))
  got = batch["input_ids"].numpy()
  for i, ids in enumerate(want["input_ids"].to_list()):
    assert got[i, :len(ids)].tolist() == ids and not got[i, len(ids):].any()
    assert batch["attention_mask"].numpy()[i].sum() == len(ids)
    assert batch["token_type_ids"].numpy()[i, :len(ids)].tolist() == \
        want["token_type_ids"].to_list()[i]
  assert batch["doc_length"].numpy().tolist() == want["doc_length"].numpy().tolist()
  multi_hot = np.array([[l in e.labels for l in labels] for e in splits["dev"]], np.float32)
  np.testing.assert_array_equal(batch["labels"].numpy(), multi_hot)
  np.testing.assert_array_equal(
      tfrecords.read_split_labels(str(tmp_path / "dev.tfrecord"), len(labels)), multi_hot)
  assert batch["example_index"].numpy().tolist() == list(range(len(texts)))


def test_training_batches_carry_aux_samples_that_change_per_epoch(tmp_path, tiny_bert,
                                                                  tiny_corpus):
  spec, splits, labels, ids = _setup(tiny_bert, tiny_corpus)
  tfrecords.prepare_tfrecords(str(tmp_path), splits, labels, spec, ids, 40)
  aux = pipeline.AuxSampling(plcp=True, clcp=True, plcp_pairs_per_doc=3)
  path = str(tmp_path / "train.tfrecord")
  e0 = next(iter(pipeline.make_dataset(path, len(labels), 96, True, seed=1, epoch=0, aux=aux)))
  e0b = next(iter(pipeline.make_dataset(path, len(labels), 96, True, seed=1, epoch=0, aux=aux)))
  e1 = next(iter(pipeline.make_dataset(path, len(labels), 96, True, seed=1, epoch=1, aux=aux)))
  assert e0["plcp_pairs"].shape == (96, 3, 2) and e0["clcp_given"].shape == (96, len(labels))
  np.testing.assert_array_equal(e0["example_index"], e0b["example_index"])
  np.testing.assert_array_equal(e0["plcp_pairs"], e0b["plcp_pairs"])
  assert not np.array_equal(e0["example_index"], e1["example_index"])
  # Given labels are relevant labels; masks follow the documents' label counts.
  assert np.all(e0["clcp_given"].numpy() <= e0["labels"].numpy())
  counts = e0["labels"].numpy().sum(1)
  np.testing.assert_array_equal(e0["clcp_mask"].numpy(), (counts >= 1).astype(np.float32))
  np.testing.assert_array_equal(e0["plcp_mask"].numpy(),
                                ((counts >= 2) & (counts < len(labels))).astype(np.float32))


def test_cache_is_reused_when_metadata_matches_and_rebuilt_when_not(tmp_path, tiny_bert,
                                                                    tiny_corpus, capsys):
  spec, splits, labels, ids = _setup(tiny_bert, tiny_corpus)
  tfrecords.prepare_tfrecords(str(tmp_path), splits, labels, spec, ids, 40)
  train = str(tmp_path / "train.tfrecord")
  stamp = os.stat(train).st_mtime_ns
  capsys.readouterr()
  tfrecords.prepare_tfrecords(str(tmp_path), splits, labels, spec, ids, 40)
  assert "Reusing TFRecords" in capsys.readouterr().out
  assert os.stat(train).st_mtime_ns == stamp
  meta = tfrecords.prepare_tfrecords(str(tmp_path), splits, labels, spec, ids, 30)
  assert "metadata changed" in capsys.readouterr().out and meta["max_seq_length"] == 30
  assert os.stat(train).st_mtime_ns != stamp
  lens = next(iter(pipeline.make_dataset(train, len(labels), 96, False)))["attention_mask"]
  assert lens.numpy().sum(1).max() <= 30
  splits["train"] = splits["train"][:-1]  # A changed corpus also invalidates the cache.
  assert tfrecords.prepare_tfrecords(str(tmp_path), splits, labels, spec, ids, 30)["counts"][
      "train"] == 95
  assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def _write_label_records(path, rows):
  with tf.io.TFRecordWriter(path) as writer:
    for ids in rows:
      feature = {"label_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=ids))}
      writer.write(tf.train.Example(
          features=tf.train.Features(feature=feature)).SerializeToString())


def test_gold_labels_of_records_without_labels_are_all_false(tmp_path):
  path = str(tmp_path / "dev.tfrecord")
  _write_label_records(path, [[] for _ in range(1030)])  # A whole batch, and a short one.
  gold = tfrecords.read_split_labels(path, 5)
  assert gold.shape == (1030, 5) and not gold.any()


def test_gold_labels_match_a_numpy_multi_hot_when_a_batch_is_unlabelled(tmp_path):
  rng = np.random.RandomState(0)
  rows = [[] for _ in range(1024)] + [
      sorted(rng.choice(7, size=rng.randint(0, 4), replace=False).tolist())
      for _ in range(1100)]
  want = np.zeros([len(rows), 7], np.int32)
  for i, ids in enumerate(rows):
    want[i, ids] = 1
  path = str(tmp_path / "dev.tfrecord")
  _write_label_records(path, rows)
  gold = tfrecords.read_split_labels(path, 7)
  assert gold.dtype == np.int32
  np.testing.assert_array_equal(gold, want)
  _write_label_records(path, [[0], [7]])
  with pytest.raises(InputError, match=r"dev.tfrecord: record 2 has label id 7, outside "
                     r"\[0, 7\)"):
    tfrecords.read_split_labels(path, 7)
