#!/usr/bin/env python3
"""Training-step time of each LACO variant on the embedded encoder (CPU or GPU).

  python benchmarks/step_time.py [--batch_size=16] [--doc_tokens=160] [--num_labels=90]
                                 [--steps=6] [--out=benchmarks/results]

Builds every variant (BERT baseline, LACO, +PLCP, +CLCP, both) on all-MiniLM-L6-v2,
feeds each the same synthetic batch (random wordpieces, a random multi-hot label set per
document, the pipeline's own PLCP/CLCP draws) and times full training steps (forward,
backward, both Adam updates) after two warm-up steps. Prints the median of `--steps`
steps per variant and its ratio to base LACO measured in the same run, and writes JSON
and a PNG bar chart.
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from laco_tf import encoder, input_packing, label_tokens, pipeline, samplers, tokenization  # noqa: E402
from laco_tf.run_settings import RunOptions  # noqa: E402
from laco_tf.runner import build_model  # noqa: E402
from laco_tf.trainer import TrainConfig, Trainer  # noqa: E402

VARIANTS = {
    "bert_baseline": dict(task="mltc", joint_embedding=False, cross_attention=False,
                          pooling="mean"),
    "laco": dict(task="mltc"),
    "laco+plcp": dict(task="plcp"),
    "laco+clcp": dict(task="clcp"),
    "laco+both": dict(task="both"),
}


def synthetic_batch(args, label_ids, cls_id, sep_id, aux):
  rng = np.random.RandomState(0)
  docs = tf.ragged.constant([rng.randint(2000, 29000, args.doc_tokens).tolist()
                             for _ in range(args.batch_size)], dtype=tf.int64)
  packed = input_packing.pack_joint_input(docs, label_ids, cls_id, sep_id,
                                          args.doc_tokens + len(label_ids) + 3)
  labels = (rng.rand(args.batch_size, args.num_labels) < 3.0 / args.num_labels)
  labels[:, 0] = 1
  batch = {"example_index": tf.range(args.batch_size, dtype=tf.int64),
           "input_ids": tf.cast(packed["input_ids"].to_tensor(), tf.int32),
           "token_type_ids": tf.cast(packed["token_type_ids"].to_tensor(), tf.int32),
           "attention_mask": tf.cast(tf.ones_like(packed["input_ids"]).to_tensor(), tf.int32),
           "doc_length": tf.cast(packed["doc_length"], tf.int32),
           "labels": tf.constant(labels, tf.float32)}
  pairs, targets, pmask, given, cmask = [], [], [], [], []
  for i in range(args.batch_size):
    seed = samplers.example_seed(0, 0, i)
    p, t, m = samplers.sample_plcp_pairs(batch["labels"][i], seed, aux.plcp_pairs_per_doc,
                                         aux.gamma)
    g, c = samplers.sample_clcp_given(batch["labels"][i], seed, aux.clcp_given)
    pairs.append(p); targets.append(t); pmask.append(m); given.append(g); cmask.append(c)
  batch.update(plcp_pairs=tf.stack(pairs), plcp_targets=tf.stack(targets),
               plcp_mask=tf.stack(pmask), clcp_given=tf.stack(given), clcp_mask=tf.stack(cmask))
  return batch


def time_variant(name, setting, args, spec, strategy):
  opts = RunOptions(data_dir="-", output_dir=os.path.join(args.out, "tmp", name), **setting)
  vocab = tokenization.read_vocab(spec.vocab_file)
  labels = [f"label{i}" for i in range(args.num_labels)]
  plan = label_tokens.plan_label_tokens(vocab, spec.vocab_size, len(labels),
                                        opts.joint_embedding)
  model = build_model(spec, labels, plan, None, opts, strategy)
  aux = pipeline.AuxSampling(plcp=opts.task in ("plcp", "both"),
                             clcp=opts.task in ("clcp", "both"))
  config = TrainConfig(output_dir=opts.output_dir, train_file="", dev_file="",
                       num_train_examples=10_000, num_labels=len(labels), task=opts.task,
                       train_batch_size=args.batch_size, aux=aux)
  trainer = Trainer(model, strategy, config, gold_dev=np.zeros([0, len(labels)]))
  special = tokenization.special_token_ids(vocab)
  batch = synthetic_batch(args, plan.token_ids, special["cls"], special["sep"], aux)
  if not aux.plcp:
    batch = {k: v for k, v in batch.items() if not k.startswith("plcp")}
  if not aux.clcp:
    batch = {k: v for k, v in batch.items() if not k.startswith("clcp")}
  dist = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(batch).repeat())
  it = iter(dist)
  times = []
  for step in range(args.steps + 2):
    start = time.perf_counter()
    trainer._train_step(next(it), dist.element_spec)["total"].numpy()  # pylint: disable=protected-access
    if step >= 2:
      times.append(time.perf_counter() - start)
  return times


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--doc_tokens", type=int, default=160)
  parser.add_argument("--num_labels", type=int, default=90)
  parser.add_argument("--steps", type=int, default=6)
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  spec = encoder.resolve_encoder("minilm")
  strategy = tf.distribute.get_strategy()
  medians = {}
  for name, setting in VARIANTS.items():
    times = time_variant(name, setting, args, spec, strategy)
    medians[name] = statistics.median(times)
    print(f"{name:14s} median {medians[name]:.3f} s/step over {len(times)} steps "
          f"(min {min(times):.3f}, max {max(times):.3f})", flush=True)
  base = medians["laco"]
  print("\nratio to base LACO: " + ", ".join(f"{k} {v / base:.2f}" for k, v in medians.items()))
  result = {"args": vars(args), "device": tf.config.list_logical_devices()[0].device_type,
            "median_seconds": medians, "ratio_to_laco": {k: v / base for k, v in medians.items()}}
  with open(os.path.join(args.out, "step_time.json"), "w") as f:
    json.dump(result, f, indent=1)
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(7, 3.5))
  ax.bar(list(medians), list(medians.values()))
  ax.set(ylabel="seconds per training step (median)",
         title=f"batch {args.batch_size} x {args.doc_tokens} doc tokens + "
               f"{args.num_labels} labels, all-MiniLM-L6-v2")
  fig.tight_layout()
  fig.savefig(os.path.join(args.out, "step_time.png"), dpi=100)


if __name__ == "__main__":
  main()
