#!/usr/bin/env python3
"""Peak memory: one harness, a registry of measurements, each point in a fresh process.

  python benchmarks/memory.py --measure=NAME [--values=...] [--num_labels=90]
      [--label_slots=64] [--batch_size=16] [--doc_tokens=256] [--steps=4]
      [--model=EXPORT] [--out=benchmarks/results/memory/NAME]

Each point of a measurement runs in a process of its own (this file again, with --child),
so that no point inherits another's allocations; the parent collects what each child
prints (peak RSS, and whatever else it measured), prints a table, and writes memory.json
and memory.png (one line per series against --values) under --out. The measurements
(--measure; --values lists the points):
"""

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MEASURES = {}


def measure(values: str, x_label: str):
  """Registers `fn(args, series, value) -> dict` (run in the child) with its default
  --values and its x axis; fn.SERIES lists its series; its docstring is the help."""
  def register(fn):
    fn.default_values, fn.x_label = values, x_label
    MEASURES[fn.__name__] = fn
    return fn
  return register


@measure("90,368,1000,5000", "labels n")
def training(args, series, value):
  """peak RSS of --steps training steps (bf16, batch --batch_size x --doc_tokens) of the
  BERT baseline and LACO+clcp with --label_slots slots at each label count n."""
  import lib  # pylint: disable=import-outside-toplevel
  from laco_tf.modeling import encoder  # pylint: disable=import-outside-toplevel
  spec = encoder.resolve_encoder("minilm")
  strategy = lib.tf.distribute.get_strategy()
  variant = "bert_baseline" if series == "BERT baseline" else "laco+clcp"
  trainer, plan = lib.build_trainer(variant, spec, strategy, value, args.batch_size, "bf16",
                                    {"label_slots": args.label_slots})
  batch = lib.synthetic_batch([args.doc_tokens] * args.batch_size, value, plan.token_ids,
                              spec.vocab_file, trainer.config.aux)
  times = lib.time_steps(trainer, batch, strategy, args.steps)
  return {"median_step_s": sorted(times)[len(times) // 2], "peak_rss_gb": lib.peak_rss_gb()}


training.SERIES = ("BERT baseline", "LACO+clcp in slots")


@measure("50,100,200,300,400", "labels n")
def cross_attention(args, series, value):
  """peak RSS growth of one CA forward + backward pass (batch --batch_size x --doc_tokens
  words, 10 x 10 windows) with n labels: LACO-TF's chunked running max
  (`max_conv_scores`) against Conv2D with n filters, then max (the plain formulation)."""
  import resource  # pylint: disable=import-outside-toplevel
  import lib  # pylint: disable=import-outside-toplevel
  from laco_tf.modeling.layers import cross_attention as ca  # pylint: disable=import-outside-toplevel
  tf, rng = lib.tf, lib.np.random.default_rng(0)
  m = tf.constant(rng.standard_normal((args.batch_size, args.doc_tokens, value)), tf.float32)
  kernel = tf.Variable(rng.standard_normal((10, 10, 1, value)).astype("float32") * 0.1)
  bias = tf.Variable(lib.np.zeros(value, "float32"))

  def plain(m):
    out = tf.nn.relu(tf.nn.conv2d(m[..., tf.newaxis], kernel, 1, "SAME") + bias)
    return tf.reduce_max(out, axis=[2, 3])
  fn = plain if series.startswith("Conv2D") else (lambda m: ca.max_conv_scores(m, kernel, bias))

  @tf.function
  def step(m):
    with tf.GradientTape() as tape:
      tape.watch(m)
      loss = tf.reduce_sum(fn(m))
    return tape.gradient(loss, [m, kernel, bias])
  before = lib.rss_gib() * 2**30
  [g.numpy() for g in step(m)]  # pylint: disable=expression-not-assigned
  return {"peak_rss_gb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)
          / 2**30}


cross_attention.SERIES = ("Conv2D, then max", "chunked running max")


@measure("1,16", "lengths rounded up to a multiple of")
def bucket_shapes(args, series, value):
  """RSS over --steps LACO+clcp training steps (bf16) on batches of a random length each
  (20..--doc_tokens wordpieces), the padded length rounded up to each multiple (16 is what
  --length_bucketing does): oneDNN keeps kernels for every shape it ran."""
  del series
  import lib  # pylint: disable=import-outside-toplevel
  from laco_tf.modeling import encoder  # pylint: disable=import-outside-toplevel
  spec = encoder.resolve_encoder("minilm")
  strategy = lib.tf.distribute.get_strategy()
  trainer, plan = lib.build_trainer("laco+clcp", spec, strategy, args.num_labels,
                                    args.batch_size, "bf16")
  rng = lib.np.random.default_rng(0)
  trace, lengths = [], set()
  for i in range(args.steps):
    batch = lib.synthetic_batch([int(rng.integers(20, args.doc_tokens + 1))] * args.batch_size,
                                args.num_labels, plan.token_ids, spec.vocab_file,
                                trainer.config.aux, seed=i, pad_to_multiple=value)
    lengths.add(int(batch["input_ids"].shape[1]))
    lib.time_steps(trainer, batch, strategy, 1, warmup=1 if i == 0 else 0)
    if i % 10 == 9:
      trace.append([i + 1, lib.rss_gib()])
      print(f"step {i + 1}: RSS {trace[-1][1]:.2f} GiB, {len(lengths)} lengths so far",
            file=sys.stderr, flush=True)
  return {"peak_rss_gb": lib.peak_rss_gb(), "rss_gib_by_step": trace,
          "distinct_lengths": len(lengths)}


bucket_shapes.SERIES = ("LACO+clcp",)


@measure("1000,10000", "texts scored")
def scoring(args, series, value):
  """peak RSS of scoring that many texts (the bundled sample's test texts, cycled) with an
  export (--model, else a tiny random BERT trained 2 steps): `laco_tf.Classifier`
  (batches of 64) against one `serving_default` call holding every text."""
  from laco_tf.data import corpus_splits  # pylint: disable=import-outside-toplevel
  splits, _, _ = corpus_splits.load_splits(os.path.join(os.path.dirname(HERE), "data", "sample"),
                                           "jsonl", 0.1, 0)
  pool = [e.text for e in splits["test"]]
  texts = [pool[i % len(pool)] for i in range(value)]
  start = time.perf_counter()
  if series.startswith("Classifier"):
    import laco_tf  # pylint: disable=import-outside-toplevel
    scores = laco_tf.Classifier.load(args.model).predict_proba(texts, show_progress=False)
  else:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    import tensorflow_text  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    serve = tf.saved_model.load(args.model).signatures["serving_default"]
    scores = serve(text=tf.constant(texts))["scores"].numpy()
  if scores.shape[0] != value:
    raise SystemExit(f"scored {scores.shape[0]} of {value} texts")
  import lib  # pylint: disable=import-outside-toplevel
  return {"peak_rss_gb": lib.peak_rss_gb(), "seconds": time.perf_counter() - start}


scoring.SERIES = ("Classifier.predict_proba", "one serving_default call")


def _tiny_export(tmp: str) -> str:
  """A tiny random BERT (the tests' config) trained 2 steps on the tests' corpus, exported."""
  sys.path.insert(0, os.path.dirname(HERE))
  from laco_tf import runner  # pylint: disable=import-outside-toplevel
  from laco_tf.run_settings import RunOptions  # pylint: disable=import-outside-toplevel
  from tests.conftest import (tiny_vocab, write_jsonl_corpus,  # pylint: disable=import-outside-toplevel
                              write_tiny_bert)
  bert = write_tiny_bert(os.path.join(tmp, "bert"), tiny_vocab())
  corpus = write_jsonl_corpus(os.path.join(tmp, "corpus"), {"train": 64, "dev": 16},
                              seed=1, labels={"markets", "rates", "energy", "sports"})
  summary = runner.run(RunOptions(data_dir=corpus, output_dir=os.path.join(tmp, "run"),
                                  bert_model=bert, max_seq_length=64, max_steps=2,
                                  window_size=3, do_train=True, do_export=True))
  return summary["export_dir"]


def parent(args) -> None:
  import lib  # pylint: disable=import-outside-toplevel
  fn = MEASURES[args.measure]
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    if args.measure == "scoring":
      from laco_tf.serving import export_versions  # pylint: disable=import-outside-toplevel
      args.model = export_versions.resolve_export(args.model or _tiny_export(tmp))
    for series in fn.SERIES:
      for value in args.values:
        command = [sys.executable, os.path.abspath(__file__), *args.argv,
                   f"--child={series}", f"--child_value={value}"]
        if args.model:
          command.append(f"--model={args.model}")
        row = {"series": series, "value": value,
               **lib.run_child(command, f"{args.measure} {series} at {value}")}
        rows.append(row)
        print(f"{series:28s} {value:>7}: peak {row['peak_rss_gb']:.2f} GB" +
              "".join(f", {k} {v:.3f}" for k, v in row.items()
                      if isinstance(v, float) and k != "peak_rss_gb"), flush=True)
  lib.save_report({"measure": args.measure, "args": lib.portable_args(args), "rows": rows},
                  args.out, "memory")
  fig, ax = lib.plots.plt.subplots(figsize=(6, 4))
  for series in fn.SERIES:
    points = [(r["value"], r["peak_rss_gb"]) for r in rows if r["series"] == series]
    ax.plot(*zip(*points), marker="o", label=series)
  ax.set(xlabel=fn.x_label, ylabel="peak RSS (GB)", title=args.measure.replace("_", " "))
  ax.legend(fontsize=8)
  fig.tight_layout()
  lib.plots.save_figure(fig, os.path.join(args.out, "memory.png"))


def main(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog="\n".join(f"  {k:16s} (--values={f.default_values}) {' '.join(f.__doc__.split())}"
                       for k, f in MEASURES.items()))
  parser.add_argument("--measure", required=True, choices=sorted(MEASURES))
  parser.add_argument("--values", help="the points, comma-separated integers")
  parser.add_argument("--num_labels", type=int, default=90)
  parser.add_argument("--label_slots", type=int, default=64)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--doc_tokens", type=int, default=256)
  parser.add_argument("--steps", type=int, default=4)
  parser.add_argument("--model", help="--measure=scoring: the export to score with")
  parser.add_argument("--out", help="default benchmarks/results/memory/MEASURE")
  parser.add_argument("--child", help=argparse.SUPPRESS)
  parser.add_argument("--child_value", type=int, help=argparse.SUPPRESS)
  argv = sys.argv[1:] if argv is None else argv
  args = parser.parse_args(argv)
  if args.child:
    print(json.dumps(MEASURES[args.measure](args, args.child, args.child_value)))
    return
  try:
    args.values = [int(v) for v in (args.values or MEASURES[args.measure].default_values)
                   .split(",")]
  except ValueError:
    parser.error(f"--values={args.values}: expected comma-separated integers")
  args.argv = [a for a in argv if not a.startswith(("--out", "--model"))]
  args.out = args.out or os.path.join(HERE, "results", "memory", args.measure)
  parent(args)


if __name__ == "__main__":
  main()
