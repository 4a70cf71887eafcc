"""Writes packed examples to TFRecord files with a metadata JSON (data-flow step 3).

``OUTPUT_DIR/tfrecords/{train,dev,test}.tfrecord`` plus ``metadata.json`` (labels,
vocabulary hash, lower-casing, max length, label token ids, counts, a fingerprint of the
corpus, the SHA-256 of each file's bytes). `prepare_tfrecords` reuses the files when the
metadata and the checksums match and rebuilds them when they do not (the files are a
cache). Every file is written under a temporary name and renamed.
"""

import hashlib
import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from laco_tf.data import input_packing, tokenization
from laco_tf import disk
from laco_tf import progress as progress_lib
from laco_tf import results
from laco_tf.errors import InputError
from laco_tf.data.readers import Example

METADATA = "metadata.json"
_DIGESTS = "sha256"  # metadata.json: {split: SHA-256 of its TFRecord file}
_BATCH = 256


def corpus_fingerprint(splits: Dict[str, Sequence[Example]]) -> str:
  h = hashlib.sha256()
  for split in sorted(splits):
    for e in splits[split]:
      h.update(json.dumps([split, e.guid, e.text, list(e.labels)]).encode("utf-8"))
  return h.hexdigest()[:16]


def file_digest(path: str) -> str:
  """SHA-256 of the file's bytes (hex)."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def _reuse_problem(record_dir: str, metadata: dict, splits) -> Optional[str]:
  """Why the TFRecords in `record_dir` cannot serve `metadata`: None when they can, ""
  when there are none, else the reason (changed settings, an unreadable metadata file,
  a file whose bytes no longer match the checksum recorded when it was written)."""
  meta_path = os.path.join(record_dir, METADATA)
  files = {s: os.path.join(record_dir, f"{s}.tfrecord") for s in splits}
  if not os.path.isfile(meta_path) or not all(map(os.path.isfile, files.values())):
    return ""
  try:
    with open(meta_path, encoding="utf-8") as f:
      recorded = json.load(f)
  except (ValueError, OSError) as e:  # JSONDecodeError and UnicodeDecodeError among them
    return f"{METADATA} is unreadable ({e})"
  if not isinstance(recorded, dict) or not isinstance(recorded.get(_DIGESTS), dict):
    return f"{METADATA} records no checksums"
  digests = recorded.pop(_DIGESTS)
  if recorded != metadata:
    return "metadata changed"
  for split, path in files.items():
    if digests.get(split) != file_digest(path):
      return (f"{os.path.basename(path)} does not match the checksum recorded in {METADATA} "
              "(corrupt or changed)")
  return None


def _int_feature(values) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _write_split(path: str, examples: Sequence[Example], labels: Sequence[str], tokenizer,
                 encoder_ids: dict, label_ids: Sequence[int], max_seq_length: int) -> str:
  """Writes `examples` to `path` (whole or not at all); returns the file's digest."""
  label_index = {l: i for i, l in enumerate(labels)}
  progress = progress_lib.progress_bar(len(examples), unit_name="record")
  print(f"Writing {len(examples)} records to {path}")
  with disk.replacing(path) as tmp:  # removed if the write fails
    results.open_new(tmp, "wb").close()  # TensorFlow's writer would follow a link planted there
    with tf.io.TFRecordWriter(tmp) as writer:
      for start in range(0, len(examples), _BATCH):
        chunk = examples[start:start + _BATCH]
        doc_ids = tokenization.tokenize(tokenizer, tf.constant([e.text for e in chunk]))
        packed = input_packing.pack_joint_input(doc_ids, label_ids, encoder_ids["cls"],
                                                encoder_ids["sep"], max_seq_length)
        ids, types = packed["input_ids"].to_list(), packed["token_type_ids"].to_list()
        for k, e in enumerate(chunk):
          features = {
              "example_index": _int_feature([start + k]),
              "input_ids": _int_feature(ids[k]),
              "token_type_ids": _int_feature(types[k]),
              "doc_length": _int_feature([int(packed["doc_length"][k])]),
              "label_ids": _int_feature(sorted(label_index[l] for l in set(e.labels))),
          }
          writer.write(tf.train.Example(
              features=tf.train.Features(feature=features)).SerializeToString())
        progress.add(len(chunk))
    digest = file_digest(tmp)
  return digest


def prepare_tfrecords(record_dir: str, splits: Dict[str, List[Example]], labels: List[str],
                      encoder, label_ids: List[int], max_seq_length: int,
                      write: bool = True) -> dict:
  """Converts `splits` to TFRecords in `record_dir` unless matching files exist.

  Args:
    encoder: an `encoder.EncoderSpec` (vocab path, lower-casing, identity).
    label_ids: the label tokens' ids (`label_tokens.plan_label_tokens`).
    write: False on a worker that only reads what the chief wrote: files that are
      missing or do not match are then an `InputError`.
  Returns:
    The metadata dict (also in ``record_dir/metadata.json``).
  """
  vocab = tokenization.read_vocab(encoder.vocab_file)
  input_packing.max_doc_tokens(max_seq_length, len(label_ids))
  metadata = {
      "labels": labels,
      "label_token_ids": list(label_ids),
      "vocab_hash": tokenization.vocab_hash(encoder.vocab_file),
      "do_lower_case": encoder.do_lower_case,
      "max_seq_length": max_seq_length,
      "corpus_fingerprint": corpus_fingerprint(splits),
      "counts": {s: len(v) for s, v in splits.items()},
  }
  meta_path = os.path.join(record_dir, METADATA)
  problem = _reuse_problem(record_dir, metadata, splits)
  if problem is None:
    print(f"Reusing TFRecords in {record_dir} (metadata and checksums match)")
    return metadata
  if not write:
    raise InputError(f"{meta_path}: the chief's TFRecords for this run are not there "
                     f"({problem or 'missing'}); every worker must see the chief's "
                     "--output_dir (a shared file system)")
  if problem:
    print(f"Rebuilding TFRecords in {record_dir}: {problem}")
  os.makedirs(record_dir, exist_ok=True)
  if os.path.exists(meta_path):
    os.remove(meta_path)  # A crash mid-rebuild must not leave old metadata beside new files.
  tokenizer = tokenization.make_tokenizer(encoder.vocab_file, encoder.do_lower_case)
  special = tokenization.special_token_ids(vocab)
  digests = {}
  for split, examples in splits.items():
    digests[split] = _write_split(os.path.join(record_dir, f"{split}.tfrecord"), examples,
                                  labels, tokenizer, special, label_ids, max_seq_length)
  results.write_atomically(meta_path, json.dumps({**metadata, _DIGESTS: digests}, indent=1))
  return metadata


def read_split_labels(path: str, num_labels: int) -> np.ndarray:
  """[N, n] int32 multi-hot gold labels of a TFRecord file, in record order (for metrics).

  Built by indexing a zero matrix with each record's label ids, so a record without
  labels is an all-zero row whatever the rest of its batch holds.
  """
  spec = {"label_ids": tf.io.VarLenFeature(tf.int64)}
  rows, done = [], 0
  for raw in tf.data.TFRecordDataset(path).batch(1024):
    ids = tf.io.parse_example(raw, spec)["label_ids"]
    record, label = ids.indices.numpy()[:, 0], ids.values.numpy()
    bad = np.flatnonzero((label < 0) | (label >= num_labels))
    if bad.size:
      raise InputError(f"{path}: record {done + record[bad[0]] + 1} has label id "
                       f"{label[bad[0]]}, outside [0, {num_labels}) (rebuild the TFRecords)")
    multi_hot = np.zeros([int(ids.dense_shape[0]), num_labels], np.int32)
    multi_hot[record, label] = 1
    rows.append(multi_hot)
    done += len(multi_hot)
  return np.concatenate(rows) if rows else np.zeros([0, num_labels], np.int32)


def read_documents(path: str):
  """(wordpieces of each record's text, its label indices), in record order: the text is
  positions 1..doc_length of the packed sequence, after ``[CLS]``."""
  spec = {"input_ids": tf.io.VarLenFeature(tf.int64),
          "doc_length": tf.io.FixedLenFeature([], tf.int64),
          "label_ids": tf.io.VarLenFeature(tf.int64)}
  docs, labels = [], []
  for raw in tf.data.TFRecordDataset(path).batch(1024):
    parsed = tf.io.parse_example(raw, spec)
    ids = tf.sparse.to_dense(parsed["input_ids"]).numpy()
    label_ids = tf.sparse.to_dense(parsed["label_ids"], default_value=-1).numpy()
    for row, length, row_labels in zip(ids, parsed["doc_length"].numpy(), label_ids):
      docs.append(row[1:1 + length])
      labels.append(row_labels[row_labels >= 0])
  return docs, labels
