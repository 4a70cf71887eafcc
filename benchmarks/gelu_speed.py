#!/usr/bin/env python3
"""What BERT's GELU costs: transformers' feed-forward layer against `GeluIntermediate`, in one run.

  python benchmarks/gelu_speed.py [--reuters_dir=PATH] [--batch_size=16] [--doc_tokens=256]
      [--num_labels=87] [--precisions=bf16,fp32] [--steps=7] [--out=benchmarks/results/gelu]

Four measurements, each alternating what it compares call by call so that all meet the
same load, medians of --steps calls after warm-up (CPU or GPU):
  kernels   TensorFlow's erfc and erf kernels alone, bfloat16 and float32, on random values
            of one serving chunk's activation shape ([8 x positions, intermediate]).
  layer     BERT's feed-forward expansion alone (all-MiniLM's 384 -> 1536, GELU), inference
            forward and training forward + backward, on [batch, positions, hidden] inputs
            (training's batch and one serving chunk of 8), at each precision.
  training  full LACO+clcp training steps on all-MiniLM-L6-v2 (`synthetic.py`'s batch of
            the held-out protocol's shape), the model with transformers' feed-forward
            layers against the model as LACO-TF builds it, at each precision: the same
            initial weights and batch.
  serving   the raw-text SavedModel of each (the same weights, chunks of 8, the first
            precision) on requests of 1, 16 and 64 stories (--reuters_dir, else the
            bundled sample), and the largest difference between their probabilities.
Writes gelu.json and gelu.png under --out.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import synthetic  # noqa: E402
from throughput import load_texts, peak_rss_gb  # noqa: E402
from laco_tf import plots  # noqa: E402
from laco_tf.modeling import encoder, model as model_lib, precision as precision_lib  # noqa: E402
from laco_tf.modeling.gelu import GeluIntermediate  # noqa: E402
from laco_tf.serving import export  # noqa: E402

KINDS = ("transformers' TFBertIntermediate", "GeluIntermediate")


def alternate(calls: dict, steps: int, warmup: int = 2) -> dict:
  """Median seconds of each callable, called in turn `steps` times after `warmup` rounds."""
  times = {k: [] for k in calls}
  for i in range(warmup + steps):
    for key, fn in calls.items():
      start = time.perf_counter()
      fn()
      if i >= warmup:
        times[key].append(time.perf_counter() - start)
  return {k: statistics.median(v) for k, v in times.items()}


def section_kernels(args, spec, positions):
  """erfc (what tf_keras' gelu calls) and erf, each dtype, on the same values."""
  x = tf.random.stateless_normal([8 * positions, spec.config_value("intermediate_size")],
                                 [0, 1]) * 2
  calls = {}
  for op in (tf.math.erfc, tf.math.erf):
    for dtype in (tf.bfloat16, tf.float32):
      f = tf.function(op)
      calls[f"{op.__name__} {dtype.name}"] = lambda f=f, v=tf.cast(x, dtype): f(v).numpy()
  med = alternate(calls, args.steps)
  for name, seconds in med.items():
    print(f"kernel {name} on {x.shape[0]} x {x.shape[1]}: {seconds * 1e3:.1f} ms "
          f"({med['erfc bfloat16'] / seconds:.1f}x faster than erfc bfloat16)", flush=True)
  return med


def section_layer(args, spec, positions):
  """The feed-forward expansion alone: transformers' layer and `GeluIntermediate` around
  the same Dense."""
  from transformers import BertConfig  # pylint: disable=import-outside-toplevel
  from transformers.models.bert.modeling_tf_bert import TFBertIntermediate  # pylint: disable=import-outside-toplevel
  config = BertConfig.from_json_file(spec.config_file)
  rows = []
  for precision in args.precisions:
    with precision_lib.policy_scope(precision):
      stock = TFBertIntermediate(config, name="intermediate")
      stock.build([None, None, config.hidden_size])
      ours = GeluIntermediate(stock.dense, config.hidden_size, name="intermediate")
    for batch in (args.batch_size, 8):
      x = tf.random.stateless_normal([batch, positions, config.hidden_size], [0, 1])

      def inference(layer, x=x):
        return tf.function(lambda: layer(hidden_states=x, training=False))

      def training(layer, x=x):
        @tf.function
        def step():
          with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(hidden_states=x, training=True)
          return tape.gradient(y, [x, stock.dense.kernel], output_gradients=tf.ones_like(y))
        return step
      calls = {}
      for kind, layer in zip(KINDS, (stock, ours)):
        calls[(kind, "inference")] = lambda f=inference(layer): f().numpy()
        calls[(kind, "training")] = lambda f=training(layer): f()[0].numpy()
      med = alternate(calls, args.steps)
      for way in ("inference", "training"):
        row = {"precision": precision, "rows": batch * positions, "pass": way,
               **{kind: med[(kind, way)] for kind in KINDS}}
        row["speedup"] = row[KINDS[0]] / row[KINDS[1]]
        rows.append(row)
        print(f"feed-forward expansion {precision} [{batch} x {positions}, "
              f"{config.hidden_size} -> {config.intermediate_size}] {way}: "
              f"{row[KINDS[0]] * 1e3:.1f} ms -> {row[KINDS[1]] * 1e3:.1f} ms "
              f"({row['speedup']:.2f}x)", flush=True)
  return rows


def _trainers(args, spec, strategy, precision, batch_size):
  """({kind: LACO+clcp trainer}, label-token plan): the same initial weights; the first
  keeps transformers' feed-forward layers."""
  trainers = {}
  for kind in KINDS:
    keep = (lambda bert, **_: 0) if kind == KINDS[0] else model_lib.use_fast_gelu
    with mock.patch.object(model_lib, "use_fast_gelu", keep):
      trainers[kind], plan = synthetic.build_trainer("laco+clcp", spec, strategy,
                                                     args.num_labels, batch_size, precision)
  return trainers, plan


def section_training(args, spec, strategy):
  rows = []
  for precision in args.precisions:
    trainers, plan = _trainers(args, spec, strategy, precision, args.batch_size)
    batch = synthetic.synthetic_batch([args.doc_tokens] * args.batch_size, args.num_labels,
                                      plan.token_ids, spec.vocab_file,
                                      trainers[KINDS[1]].config.aux)
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    iterators = {k: iter(strategy.experimental_distribute_dataset(dataset)) for k in KINDS}
    med = alternate({k: (lambda t=trainers[k], it=iterators[k]: t.steps.run(it, 1)[
        "total"].numpy()) for k in KINDS}, args.steps)
    row = {"precision": precision, **med, "speedup": med[KINDS[0]] / med[KINDS[1]]}
    rows.append(row)
    print(f"training step LACO+clcp {precision}, batch {args.batch_size} x "
          f"{args.doc_tokens} + {args.num_labels} labels: {med[KINDS[0]]:.3f} s -> "
          f"{med[KINDS[1]]:.3f} s ({row['speedup']:.2f}x)", flush=True)
  return rows


def section_serving(args, spec, strategy, texts):
  trainers, plan = _trainers(args, spec, strategy, args.precisions[0], 1)
  labels = [f"label{i}" for i in range(args.num_labels)]
  served = {}
  with tempfile.TemporaryDirectory() as tmp:
    for kind in KINDS:
      module = export.LacoServingModule(
          trainers[kind].model, spec.vocab_file, spec.do_lower_case, labels, plan.token_ids,
          args.doc_tokens + 3 + len(plan.token_ids), chunk_size=8)
      path = export.export_saved_model(module, os.path.join(tmp, str(len(served))),
                                       {"labels": labels})
      served[kind] = tf.saved_model.load(path).signatures["serving_default"]
  rows = []
  for size in (1, 16, 64):
    if len(texts) < (args.steps + 2) * size:
      raise SystemExit(f"serving: {len(texts)} texts, too few for {args.steps + 2} requests "
                       f"of {size}; lower --steps or pass --reuters_dir")
    batches = [tf.constant(texts[i * size:(i + 1) * size]) for i in range(args.steps + 2)]
    cursor = {k: iter(batches) for k in KINDS}
    med = alternate({k: (lambda f=served[k], c=cursor[k]: f(text=next(c))["scores"].numpy())
                     for k in KINDS}, args.steps)
    diff = max(float(np.abs(served[KINDS[0]](text=b)["scores"].numpy() -
                            served[KINDS[1]](text=b)["scores"].numpy()).max())
               for b in batches[:2])
    row = {"request": size, **{k: size / med[k] for k in KINDS},
           "speedup": med[KINDS[0]] / med[KINDS[1]], "max_probability_difference": diff}
    rows.append(row)
    print(f"serving LACO+clcp {args.precisions[0]}, requests of {size}: {row[KINDS[0]]:.1f} -> "
          f"{row[KINDS[1]]:.1f} docs/s ({row['speedup']:.2f}x); largest probability "
          f"difference {diff:.1e}", flush=True)
  return rows


def draw(report, path):
  fig, axes = plots.plt.subplots(1, 3, figsize=(15, 4))
  panels = [
      ("feed-forward expansion alone", [f"{r['precision']} {r['pass']}\n{r['rows']} rows"
                                        for r in report["layer"]], report["layer"]),
      ("LACO+clcp training step", [r["precision"] for r in report["training"]],
       report["training"]),
      ("SavedModel, raw text", [f"request of {r['request']}" for r in report["serving"]],
       report["serving"])]
  for ax, (title, names, rows) in zip(axes, panels):
    ax.bar(range(len(rows)), [r["speedup"] for r in rows])
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_xticks(range(len(rows)), names, fontsize=7, rotation=20)
    ax.set(title=title, ylabel=f"speed-up of {KINDS[1]}\nover {KINDS[0]}")
  fig.tight_layout()
  plots.save_figure(fig, path)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--reuters_dir", default=None)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--doc_tokens", type=int, default=256)
  parser.add_argument("--num_labels", type=int, default=87)
  parser.add_argument("--precisions", default="bf16,fp32")
  parser.add_argument("--steps", type=int, default=7)
  parser.add_argument("--out", default=os.path.join(HERE, "results", "gelu"))
  args = parser.parse_args()
  args.precisions = [precision_lib.resolve(p) for p in args.precisions.split(",")]
  os.makedirs(args.out, exist_ok=True)
  spec = encoder.resolve_encoder("minilm")
  strategy = tf.distribute.get_strategy()
  report = {"args": synthetic.portable_args(args), "date": time.strftime("%Y-%m-%d"),
            "device": tf.config.list_logical_devices()[-1].device_type}
  positions = args.doc_tokens + 3 + args.num_labels
  report["kernels_s"] = section_kernels(args, spec, positions)
  report["layer"] = section_layer(args, spec, positions)
  report["training"] = section_training(args, spec, strategy)
  report["serving"] = section_serving(args, spec, strategy, load_texts(args))
  report["peak_rss_gb"] = peak_rss_gb()
  with open(os.path.join(args.out, "gelu.json"), "w", encoding="utf-8") as f:
    json.dump(report, f, indent=1)
  draw(report, os.path.join(args.out, "gelu.png"))
  print(f"peak RSS {report['peak_rss_gb']:.2f} GB")


if __name__ == "__main__":
  main()
