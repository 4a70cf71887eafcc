"""`tf.data` input pipeline over the TFRecords (data-flow step 4).

Parses in parallel, (for training) shuffles and draws the auxiliary-task samples for
this epoch, pads each batch to its longest sequence, and prefetches. Batches are dicts
of model features; `labels` is the [batch, n] multi-hot target of eq. 4.

Length bucketing (our extension, `--length_bucketing`, on by default): a batch costs as much
as its longest sequence, so documents of similar length are batched together. Training: the
epoch's seeded permutation is cut into windows of `BUCKET_WINDOW_BATCHES` batches, each
window is sorted by length and cut into batches, and the full batches are shuffled
(seeded); every example occurs exactly once per epoch and the order is a function of
(seed, epoch) alone, so a resumed run skips to the same batch. Prediction: records are
read in length order (outputs are put back in record order by `example_index`).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from laco_tf.data import samplers

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
  # --label_slots (our extension): > 0, each training sequence carries this many labels
  # (`samplers.sample_label_slots`); `labels` and the auxiliary draws are then over them.
  label_slots: int = 0


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


# Folded into an example's seed for its label slots: the auxiliary draws keep their seeds.
_SLOT_SALT = 0x5107


def _add_aux_samples(aux: AuxSampling, seed: int, epoch: int, slot_candidates=None):
  def add(features):
    example_seed = samplers.example_seed(seed, epoch, features["example_index"])
    plcp_seed, clcp_seed = tf.unstack(tf.random.experimental.stateless_split(example_seed, 2))
    out = dict(features)
    if aux.label_slots:
      # The sequence carries K labels: its targets, and the auxiliary tasks, are theirs.
      candidates = (None if slot_candidates is None else
                    tf.gather(slot_candidates, features["example_index"]))
      slots = samplers.sample_label_slots(
          features["labels"], tf.random.experimental.stateless_fold_in(example_seed,
                                                                       _SLOT_SALT),
          aux.label_slots, candidates)
      out["slot_labels"] = slots
      out["labels"] = tf.gather(features["labels"], slots)
      features = out
    if aux.plcp:
      out["plcp_pairs"], out["plcp_targets"], out["plcp_mask"] = samplers.sample_plcp_pairs(
          features["labels"], plcp_seed, aux.plcp_pairs_per_doc, aux.gamma)
    if aux.clcp:
      out["clcp_given"], out["clcp_mask"] = samplers.sample_clcp_given(
          features["labels"], clcp_seed, aux.clcp_given)
    return out
  return add


# Documents sorted together for training batches: larger windows pad less, smaller ones
# keep batches more random. 50 batches of 16 = 800 documents per window.
BUCKET_WINDOW_BATCHES = 50


def read_records(path: str):
  """(serialized records [N] as a numpy object array, sequence lengths [N]) of a TFRecord."""
  ds = tf.data.TFRecordDataset(path)
  ds = ds.map(lambda r: (r, tf.size(tf.io.parse_single_example(
      r, {"input_ids": _FEATURES["input_ids"]})["input_ids"].values)),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  records, lengths = [], []
  for r, n in ds.batch(4096).as_numpy_iterator():
    records.append(r)
    lengths.append(n)
  if not records:
    return np.zeros([0], object), np.zeros([0], np.int64)
  return np.concatenate(records), np.concatenate(lengths).astype(np.int64)


def bucketed_order(lengths: np.ndarray, batch_size: int, seed: int, epoch: int,
                   window_batches: int = BUCKET_WINDOW_BATCHES) -> np.ndarray:
  """This epoch's record order: batches of similar length, shuffled (see module doc).

  Returns a permutation of range(len(lengths)) whose consecutive `batch_size` slices are
  the epoch's batches; only the last one may be short.
  """
  rng = np.random.default_rng([seed, epoch])
  order = rng.permutation(len(lengths))
  window = batch_size * window_batches
  batches = []
  for start in range(0, len(order), window):
    chunk = order[start:start + window]
    chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
    batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
  short = [b for b in batches if len(b) < batch_size]   # at most one: the last window's tail
  full = [b for b in batches if len(b) == batch_size]
  full = [full[i] for i in rng.permutation(len(full))]
  return np.concatenate(full + short) if batches else order


# The features with one value per sequence position ([batch, length]).
SEQUENCE_KEYS = ("input_ids", "token_type_ids", "attention_mask")


def _pad_to_multiple(multiple: int, max_length: int):
  def pad(batch):
    length = tf.shape(batch["input_ids"])[1]
    extra = (multiple - length % multiple) % multiple
    if max_length > 0:  # Never past the encoder's limit: the last shape may be max_length.
      extra = tf.minimum(extra, tf.maximum(max_length - length, 0))
    out = dict(batch)
    for key in SEQUENCE_KEYS:
      out[key] = tf.pad(batch[key], [[0, 0], [0, extra]])
    return out
  return pad


def make_dataset(path: str, num_labels: int, batch_size: int, training: bool, seed: int = 0,
                 epoch: int = 0, aux: AuxSampling = AuxSampling(), bucketing: bool = False,
                 pad_to_multiple: int = 1, max_length: int = 0,
                 slot_candidates=None) -> tf.data.Dataset:
  """Batches of one split. Training data is shuffled per (seed, epoch) and carries draws.

  `bucketing` batches documents of similar length (module doc); `pad_to_multiple` pads
  every batch's length up to a multiple (fewer distinct shapes, for XLA), but not past
  `max_length` when it is > 0. `slot_candidates`: [records, m] first-stage label
  candidates of each training record, best first, for label slots' negatives.
  """
  if bucketing:
    records, lengths = read_records(path)
    order = (bucketed_order(lengths, batch_size, seed, epoch) if training
             else np.argsort(lengths, kind="stable"))
    ds = tf.data.Dataset.from_tensor_slices(
        tf.constant(list(records[order]), tf.string, shape=[len(order)]))
  else:
    ds = tf.data.TFRecordDataset(path)
    if training:
      # Shuffle serialized records (cheap) with a buffer the size of typical corpora.
      ds = ds.shuffle(100_000, seed=seed * 100_003 + epoch, reshuffle_each_iteration=False)
  ds = ds.map(_parse(num_labels), num_parallel_calls=tf.data.AUTOTUNE,
              deterministic=True)
  if training and (aux.plcp or aux.clcp or aux.label_slots):
    if slot_candidates is not None:
      slot_candidates = tf.constant(slot_candidates, tf.int32)
    ds = ds.map(_add_aux_samples(aux, seed, epoch, slot_candidates),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
  ds = ds.padded_batch(batch_size)
  if pad_to_multiple > 1:
    ds = ds.map(_pad_to_multiple(pad_to_multiple, max_length))
  return ds.prefetch(tf.data.AUTOTUNE)
