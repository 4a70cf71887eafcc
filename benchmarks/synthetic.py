"""Synthetic LACO training batches and trainers on the embedded encoder, for benchmarks.

A batch holds random wordpieces (ids 2000-29000 of the MiniLM vocabulary) of the given
per-document lengths, a random multi-hot label set per document (about 3 labels, label
0 always on) and the pipeline's own PLCP/CLCP draws, packed by `pack_joint_input` as
TFRecord conversion packs real text.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from laco_tf.data import input_packing, pipeline, samplers, tokenization
from laco_tf.modeling import label_tokens
from laco_tf.run_settings import RunOptions
from laco_tf.modeling.build import build_model
from laco_tf.training.train_config import TrainConfig
from laco_tf.training.trainer import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def portable_args(args) -> dict:
  """A benchmark's arguments for its report, without this machine's paths: paths inside
  the repository become relative to it, others PATH/TO/<name>."""
  out = {}
  for key, value in vars(args).items():
    if isinstance(value, str) and os.path.isabs(value):
      inside = os.path.commonpath([ROOT, os.path.abspath(value)]) == ROOT
      value = (os.path.relpath(value, ROOT) if inside else
               "PATH/TO/" + os.path.basename(os.path.normpath(value)))
    out[key] = value
  return out


VARIANTS = {
    "bert_baseline": dict(task="mltc", joint_embedding=False, cross_attention=False,
                          pooling="mean"),
    "laco": dict(task="mltc"),
    "laco+plcp": dict(task="plcp"),
    "laco+clcp": dict(task="clcp"),
    "laco+both": dict(task="both"),
}


def build_trainer(variant: str, spec, strategy, num_labels: int, batch_size: int,
                  precision: str = "fp32", jit_compile: bool = False, out: str = "/nonexistent",
                  ema_decay: float = 0.0, compiled_chains: bool = True, label_slots: int = 0):
  """(trainer, label-token plan) of one VARIANTS entry with random labels label0..

  No weight average unless `ema_decay` > 0, so that step times compare with those
  recorded before it existed (`weight_average_cost.py` times it). `compiled_chains`: the
  model's XLA-compiled GELU and dropout masking, which a run gets with bucketed lengths
  (the default; `modeling.build.build_model`). `label_slots`: --label_slots for the JE variants."""
  opts = RunOptions(data_dir="-", output_dir=os.path.join(out, variant), precision=precision,
                    jit_compile=jit_compile, length_bucketing=compiled_chains,
                    **VARIANTS[variant])
  if opts.joint_embedding:
    opts = dataclasses.replace(opts, label_slots=label_slots)
  labels = [f"label{i}" for i in range(num_labels)]
  plan = label_tokens.plan_label_tokens(tokenization.read_vocab(spec.vocab_file),
                                        spec.vocab_size, num_labels, opts.joint_embedding)
  model = build_model(spec, labels, plan, None, opts, strategy)
  aux = pipeline.AuxSampling(plcp=opts.task in ("plcp", "both"),
                             clcp=opts.task in ("clcp", "both"),
                             label_slots=model.label_slots)
  config = TrainConfig(output_dir=opts.output_dir, train_file="", dev_file="",
                       num_train_examples=10_000, num_labels=num_labels, task=opts.task,
                       train_batch_size=batch_size, aux=aux, precision=precision,
                       jit_compile=jit_compile, ema_decay=ema_decay,
                       length_bucketing=False)  # timed on whole synthetic batches as before
  return Trainer(model, strategy, config, gold_dev=np.zeros([0, num_labels])), plan


def synthetic_batch(doc_lengths, num_labels: int, label_ids, vocab_file: str, aux,
                    seed: int = 0, pad_to_multiple: int = 1) -> dict:
  """One training batch (features as the pipeline makes them) of the given doc lengths."""
  rng = np.random.RandomState(seed)
  special = tokenization.special_token_ids(tokenization.read_vocab(vocab_file))
  if aux.label_slots:
    label_ids = []  # documents alone: the model appends each sequence's K label tokens
  docs = tf.ragged.constant([rng.randint(2000, 29000, n).tolist() for n in doc_lengths],
                            dtype=tf.int64)
  max_len = max(doc_lengths) + len(label_ids) + 3
  packed = input_packing.pack_joint_input(docs, label_ids, special["cls"], special["sep"],
                                          max_len)
  size = len(doc_lengths)
  labels = rng.rand(size, num_labels) < 3.0 / num_labels
  labels[:, 0] = True
  batch = {"example_index": tf.range(size, dtype=tf.int64),
           "input_ids": tf.cast(packed["input_ids"].to_tensor(), tf.int32),
           "token_type_ids": tf.cast(packed["token_type_ids"].to_tensor(), tf.int32),
           "attention_mask": tf.cast(tf.ones_like(packed["input_ids"]).to_tensor(), tf.int32),
           "doc_length": tf.cast(packed["doc_length"], tf.int32),
           "labels": tf.constant(labels, tf.float32)}
  if pad_to_multiple > 1:
    length = int(batch["input_ids"].shape[1])
    extra = -length % pad_to_multiple
    for key in ("input_ids", "token_type_ids", "attention_mask"):
      batch[key] = tf.pad(batch[key], [[0, 0], [0, extra]])
  if aux.label_slots:
    slots = tf.stack([samplers.sample_label_slots(batch["labels"][i],
                                                  samplers.example_seed(seed, 1, i),
                                                  aux.label_slots) for i in range(size)])
    batch.update(slot_labels=slots, labels=tf.gather(batch["labels"], slots, batch_dims=1))
  draws = [[], [], [], [], []]
  for i in range(size):
    seed_i = samplers.example_seed(seed, 0, i)
    p, t, m = samplers.sample_plcp_pairs(batch["labels"][i], seed_i, aux.plcp_pairs_per_doc,
                                         aux.gamma)
    g, c = samplers.sample_clcp_given(batch["labels"][i], seed_i, aux.clcp_given)
    for lst, v in zip(draws, (p, t, m, g, c)):
      lst.append(v)
  if aux.plcp:
    batch.update(plcp_pairs=tf.stack(draws[0]), plcp_targets=tf.stack(draws[1]),
                 plcp_mask=tf.stack(draws[2]))
  if aux.clcp:
    batch.update(clcp_given=tf.stack(draws[3]), clcp_mask=tf.stack(draws[4]))
  return batch


def positions(batch: dict) -> tuple:
  """(real tokens, padded positions) of a batch."""
  return (int(tf.reduce_sum(batch["attention_mask"])), int(tf.size(batch["attention_mask"])))
