"""`tf.data` input pipeline over the TFRecords (data-flow step 4).

Parses in parallel, (for training) shuffles and draws the auxiliary-task samples for
this epoch, pads each batch to its longest sequence, and prefetches. Batches are dicts
of model features; `labels` is the [batch, n] multi-hot target of eq. 4.
"""

import dataclasses

import tensorflow as tf

from laco_tf import samplers

_FEATURES = {
    "example_index": tf.io.FixedLenFeature([], tf.int64),
    "input_ids": tf.io.VarLenFeature(tf.int64),
    "token_type_ids": tf.io.VarLenFeature(tf.int64),
    "doc_length": tf.io.FixedLenFeature([], tf.int64),
    "label_ids": tf.io.VarLenFeature(tf.int64),
}


@dataclasses.dataclass(frozen=True)
class AuxSampling:
  """Which auxiliary samples to draw and how (flags --gamma, --clcp_given, ...)."""
  plcp: bool = False
  clcp: bool = False
  plcp_pairs_per_doc: int = 4
  gamma: float = 0.5
  clcp_given: int = 1


def _parse(num_labels: int):
  def parse(record):
    f = tf.io.parse_single_example(record, _FEATURES)
    input_ids = tf.sparse.to_dense(f["input_ids"])
    label_ids = tf.sparse.to_dense(f["label_ids"])
    return {
        "example_index": f["example_index"],
        "input_ids": tf.cast(input_ids, tf.int32),
        "token_type_ids": tf.cast(tf.sparse.to_dense(f["token_type_ids"]), tf.int32),
        "attention_mask": tf.ones_like(input_ids, tf.int32),
        "doc_length": tf.cast(f["doc_length"], tf.int32),
        "labels": tf.reduce_sum(tf.one_hot(label_ids, num_labels), axis=0),
    }
  return parse


def _add_aux_samples(aux: AuxSampling, seed: int, epoch: int):
  def add(features):
    example_seed = samplers.example_seed(seed, epoch, features["example_index"])
    plcp_seed, clcp_seed = tf.unstack(tf.random.experimental.stateless_split(example_seed, 2))
    out = dict(features)
    if aux.plcp:
      out["plcp_pairs"], out["plcp_targets"], out["plcp_mask"] = samplers.sample_plcp_pairs(
          features["labels"], plcp_seed, aux.plcp_pairs_per_doc, aux.gamma)
    if aux.clcp:
      out["clcp_given"], out["clcp_mask"] = samplers.sample_clcp_given(
          features["labels"], clcp_seed, aux.clcp_given)
    return out
  return add


def make_dataset(path: str, num_labels: int, batch_size: int, training: bool, seed: int = 0,
                 epoch: int = 0, aux: AuxSampling = AuxSampling()) -> tf.data.Dataset:
  """Batches of one split. Training data is shuffled per (seed, epoch) and carries draws."""
  ds = tf.data.TFRecordDataset(path)
  if training:
    # Shuffle serialized records (cheap) with a buffer the size of typical corpora.
    ds = ds.shuffle(100_000, seed=seed * 100_003 + epoch, reshuffle_each_iteration=False)
  ds = ds.map(_parse(num_labels), num_parallel_calls=tf.data.AUTOTUNE,
              deterministic=True)
  if training and (aux.plcp or aux.clcp):
    ds = ds.map(_add_aux_samples(aux, seed, epoch), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
  ds = ds.padded_batch(batch_size)
  return ds.prefetch(tf.data.AUTOTUNE)
