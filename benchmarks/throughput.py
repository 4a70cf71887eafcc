#!/usr/bin/env python3
"""Training and serving throughput of LACO-TF, side by side, in one run.

  python benchmarks/throughput.py [--sections=train,bucketing,serving,serving_padding,peer]
      [--reuters_dir=PATH] [--batch_size=16] [--doc_tokens=160] [--num_labels=90]
      [--steps=5] [--precisions=fp32,bf16] [--xla=off,on] [--serving_chunk_sizes=16,...]
      [--serving_variants=laco+clcp,bert_baseline] [--out=benchmarks/results/throughput]

Sections (each prints its table and adds to throughput.json; the PNG draws them):
  train      BERT baseline and LACO+clcp, each precision, with and without XLA, on the same
             synthetic batch: median step time of --steps steps after 2 warm-up steps
             (XLA: after compiling), documents/s, real tokens/s, and the LACO/baseline
             ratio measured in the same run.
  bucketing  LACO+clcp at the last precision: the padding fraction of a whole epoch's
             batches with and without length bucketing (exact, from the document
             lengths), and documents/s over --steps batches of each kind.
  serving    each --serving_variants model (default LACO+clcp; bert_baseline: the same
             encoder with mean pooling and no label tokens, as the peer reads), at the last
             precision, exported as the raw-text SavedModel, once per
             --serving_chunk_sizes (length-sorted chunks) and once as one padded batch,
             the exports called in turn (with the peer's predictor when "peer" is a
             section too): documents/s at batch 1, 16 and 64, batch-1 latency, the ratio
             to the peer, and the share of the time spent tokenising and packing (the same
             graph functions alone).
  serving_padding  the share of the encoder's positions that are padding in the served
             requests of 64 stories, one padded batch against each chunk size (exact, from
             the lengths; no timing).
  peer       Hugging Face transformers in PyTorch (BertModel on the same safetensors, mean
             pooling + a linear multi-label head, BCE, AdamW; `pip install -r
             benchmarks/requirements-peer.txt`): training documents/s at the same batch
             and text budget, and raw-text prediction documents/s at batch 64 (fast
             tokenizer included); ratios against our baseline, LACO+clcp and the SavedModel.

Document lengths (bucketing, serving texts) come from --reuters_dir (NLTK's layout; only
wordpiece counts and story texts are used in memory, nothing is written) or, without it,
from the bundled sample corpus.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import peer as peer_lib  # noqa: E402
import synthetic  # noqa: E402
from step_time import time_steps  # noqa: E402
from laco_tf.data import corpus_splits, pipeline, tokenization
from laco_tf.modeling import encoder
from laco_tf.serving import export
from laco_tf import plots  # noqa: E402


def peak_rss_gb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def load_texts(args) -> list:
  if args.reuters_dir:
    splits, _, _ = corpus_splits.load_splits(args.reuters_dir, "reuters", 0.1, 0)
    return [e.text for e in splits["train"]]
  splits, _, _ = corpus_splits.load_splits(os.path.join(os.path.dirname(HERE), "data", "sample"),
                                     "jsonl", 0.1, 0)
  return [e.text for e in splits["train"]]


def wordpiece_lengths(texts, spec, budget: int) -> np.ndarray:
  tokenizer = tokenization.make_tokenizer(spec.vocab_file, spec.do_lower_case)
  lengths = []
  for start in range(0, len(texts), 512):
    ids = tokenization.tokenize(tokenizer, tf.constant(texts[start:start + 512]))
    lengths.append(ids.row_lengths().numpy())
  return np.minimum(np.concatenate(lengths), budget)


def section_train(args, spec, strategy, report):
  rows = []
  for xla in args.xla:  # XLA last: its compilations must not share the machine with others.
    for precision in args.precisions:
      for variant in ("bert_baseline", "laco+clcp"):
        trainer, plan = synthetic.build_trainer(variant, spec, strategy, args.num_labels,
                                                args.batch_size, precision, xla == "on")
        batch = synthetic.synthetic_batch(
            [args.doc_tokens] * args.batch_size, args.num_labels, plan.token_ids,
            spec.vocab_file, trainer.config.aux,
            pad_to_multiple=trainer.config.pad_to_multiple)
        tokens, _ = synthetic.positions(batch)
        times = time_steps(trainer, batch, strategy, args.steps)
        med = statistics.median(times)
        rows.append({"variant": variant, "precision": precision, "xla": xla,
                     "median_s": med, "docs_per_s": args.batch_size / med,
                     "tokens_per_s": tokens / med, "steps": len(times)})
        print(f"train {variant:13s} {precision} xla={xla}: {med:.3f} s/step, "
              f"{args.batch_size / med:.1f} docs/s, {tokens / med:.0f} tokens/s", flush=True)
  by = {(r["variant"], r["precision"], r["xla"]): r for r in rows}
  for r in rows:
    r["laco_over_baseline"] = (by[("laco+clcp", r["precision"], r["xla"])]["median_s"] /
                               by[("bert_baseline", r["precision"], r["xla"])]["median_s"])
    r["speedup_vs_fp32_noxla"] = (by.get((r["variant"], "fp32", "off"), r)["median_s"] /
                                  r["median_s"])
  report["train"] = rows


def section_bucketing(args, spec, strategy, report, texts):
  lengths = wordpiece_lengths(texts, spec, args.doc_tokens)
  b = args.batch_size
  random_order = np.random.default_rng(0).permutation(len(lengths))
  bucketed = pipeline.bucketed_order(lengths, b, seed=0, epoch=0)

  def padding(order):
    batches = [lengths[order[i:i + b]] for i in range(0, len(order), b)]
    real = sum(int(x.sum()) for x in batches)
    padded = sum(int(x.max()) * len(x) for x in batches)
    return 1 - real / padded, batches
  result = {"documents": len(lengths), "mean_length": float(lengths.mean()),
            "budget": args.doc_tokens}
  precision = args.precisions[-1]
  trainer, plan = synthetic.build_trainer("laco+clcp", spec, strategy, args.num_labels, b,
                                          precision)
  rng = np.random.default_rng(1)
  for name, order in (("random", random_order), ("bucketed", bucketed)):
    fraction, batches = padding(order)
    full = [x for x in batches if len(x) == b]
    picked = [full[i] for i in rng.choice(len(full), args.steps, replace=False)]
    seconds = 0.0
    for i, doc_lengths in enumerate(picked):
      batch = synthetic.synthetic_batch([max(1, int(n)) for n in doc_lengths], args.num_labels,
                                        plan.token_ids, spec.vocab_file, trainer.config.aux,
                                        seed=i)
      seconds += sum(time_steps(trainer, batch, strategy, 1, warmup=1 if i == 0 else 0))
    result[name] = {"padding_fraction": fraction, "docs_per_s": b * len(picked) / seconds,
                    "precision": precision}
    print(f"bucketing {name:8s}: padding {fraction:.1%} of document positions, "
          f"{b * len(picked) / seconds:.1f} docs/s (LACO+clcp, {precision})", flush=True)
  result["speedup"] = result["bucketed"]["docs_per_s"] / result["random"]["docs_per_s"]
  report["bucketing"] = result


def section_serving(args, spec, strategy, report, texts):
  """Exports each --serving_variants model once per chunk size and once as one padded batch,
  then calls them all, and the PyTorch peer's predictor when "peer" is a section, in turn
  on the same requests: every callable meets the same load, so the ratios stand. The first
  variant's results are report["serving"]."""
  chunk_sizes = args.serving_chunk_sizes + [0]  # 0: the whole request as one batch
  labels = [f"label{i}" for i in range(args.num_labels)]
  served, packers, max_lens = {}, {}, {}
  with tempfile.TemporaryDirectory() as tmp:
    for variant in args.serving_variants:
      trainer, plan = synthetic.build_trainer(variant, spec, strategy, args.num_labels, 1,
                                              args.precisions[-1])
      # [CLS] text [SEP], and the label tokens and their [SEP] under joint embedding.
      max_lens[variant] = args.doc_tokens + 2 + (len(plan.token_ids) + 1 if plan.token_ids
                                                 else 0)
      for chunk in chunk_sizes:
        module = export.LacoServingModule(
            trainer.model, spec.vocab_file, spec.do_lower_case, labels, plan.token_ids,
            max_lens[variant], chunk_size=chunk)
        path = export.export_saved_model(module, os.path.join(tmp, f"{variant}_{chunk}"),
                                         {"labels": labels})
        signature = tf.saved_model.load(path).signatures["serving_default"]
        served[(variant, chunk)] = lambda b, f=signature: f(text=b)["scores"].numpy()
      packers[variant] = tf.function(lambda t, m=module: m.features(t)["input_ids"],
                                     input_signature=[tf.TensorSpec([None], tf.string)])
    peer_model = _peer_model(args, spec) if "peer" in args.sections else None
    peer = _peer_predictor(args, peer_model) if peer_model else None
    if peer:
      served[("peer", 0)] = lambda b: peer([t.decode("utf-8") for t in b.numpy()])
    results = {v: {"max_positions": max_lens[v]} for v in args.serving_variants}
    for size in (1, 16, 64):
      batches = [tf.constant(texts[i * size:(i + 1) * size]) for i in range(args.steps + 1)]
      calls = {**served, **{(v, "pack"): lambda b, f=f: f(b).numpy() for v, f in packers.items()}}
      times = {k: [] for k in calls}
      for f in calls.values():
        f(batches[0])
      for batch in batches[1:]:
        for key, f in calls.items():
          start = time.perf_counter()
          f(batch)
          times[key].append(time.perf_counter() - start)
      med = {k: statistics.median(v) for k, v in times.items()}
      for variant in args.serving_variants:
        default = med[(variant, chunk_sizes[0])]
        r = results[variant][str(size)] = {
            "docs_per_s": size / default, "latency_s": default,
            "whole_batch_docs_per_s": size / med[(variant, 0)],
            "docs_per_s_by_chunk_size": {str(c): size / med[(variant, c)] for c in chunk_sizes},
            "tokenize_pack_share": med[(variant, "pack")] / default}
        line = (f"serving {variant} batch {size:2d}, docs/s: one batch "
                f"{size / med[(variant, 0)]:.1f}; " + ", ".join(
                    f"chunks of {c}: {size / med[(variant, c)]:.1f} "
                    f"({med[(variant, 0)] / med[(variant, c)]:.2f}x)" for c in chunk_sizes[:-1]))
        if peer:
          r["peer_docs_per_s"] = size / med[("peer", 0)]
          r["over_peer"] = med[("peer", 0)] / default
          line += f"; {r['over_peer']:.2f}x the peer ({r['peer_docs_per_s']:.1f})"
        print(line + f"; batch latency {default * 1000:.0f} ms; tokenise+pack "
              f"{r['tokenize_pack_share']:.1%}", flush=True)
  report["serving_variants"] = results
  report["serving"] = results[args.serving_variants[0]]


def section_serving_padding(args, spec, report, texts):
  """Exact padding of the served requests of 64 stories (consecutive, as in `serving`): the
  share of encoder positions that are padding, one padded batch against sorted chunks."""
  positions = wordpiece_lengths(texts, spec, args.doc_tokens) + args.num_labels + 3
  result = {}
  for chunk in [0] + args.serving_chunk_sizes:
    real = padded = 0
    for start in range(0, len(positions) - 63, 64):
      request = np.sort(positions[start:start + 64]) if chunk else positions[start:start + 64]
      size = chunk or 64
      for c in range(0, 64, size):
        part = request[c:c + size]
        real += part.sum()
        padded += len(part) * part.max()
    result[str(chunk)] = 1 - real / padded
  report["serving_padding"] = result
  print("serving padding at batch 64: one batch {:.1%}; ".format(result["0"]) + ", ".join(
      f"chunks of {c}: {result[str(c)]:.1%}" for c in args.serving_chunk_sizes), flush=True)


def _peer_model(args, spec):
  """`peer.load_peer` on our encoder's safetensors (CPU), or None without torch."""
  try:
    return peer_lib.load_peer(os.path.dirname(spec.weights), args.num_labels,
                              do_lower_case=spec.do_lower_case)
  except ImportError:
    print("peer: skipped (pip install -r benchmarks/requirements-peer.txt)")
    return None


def _peer_predictor(args, peer):
  return peer_lib.predictor(peer, args.doc_tokens + 2)


def section_peer(args, spec, report, texts):
  peer = _peer_model(args, spec)
  if peer is None:
    return
  torch = peer[0]
  train_med = statistics.median(peer_lib.train_step_times(
      peer, args.batch_size, args.doc_tokens + 2, args.num_labels, args.steps))
  predict = _peer_predictor(args, peer)  # the same model, not a second load
  times = []
  for i in range(args.steps + 1):
    start = time.perf_counter()
    predict(texts[i * 64:(i + 1) * 64])
    if i:
      times.append(time.perf_counter() - start)
  predict_med = statistics.median(times)
  result = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "train_median_s": train_med, "train_docs_per_s": args.batch_size / train_med,
            "predict_docs_per_s_batch64": 64 / predict_med}
  print(f"peer (PyTorch {torch.__version__}): train {train_med:.3f} s/step = "
        f"{args.batch_size / train_med:.1f} docs/s; predict batch 64 "
        f"{64 / predict_med:.1f} docs/s", flush=True)
  report["peer"] = result


def draw(report, path):
  panels = [k for k in ("train", "bucketing", "serving") if k in report]
  if not panels:
    return
  fig, axes = plots.plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
  peer = report.get("peer", {})
  for ax, key in zip(axes[0], panels):
    if key == "train":
      names = [f"{r['variant'].replace('bert_baseline', 'baseline')}\n{r['precision']}"
               f"{' XLA' if r['xla'] == 'on' else ''}" for r in report["train"]]
      values = [r["docs_per_s"] for r in report["train"]]
      if peer:
        names.append("PyTorch peer\nbaseline fp32")
        values.append(peer["train_docs_per_s"])
      ax.bar(range(len(values)), values)
      ax.set_xticks(range(len(values)), names, fontsize=7, rotation=30)
      ax.set(ylabel="training documents/s", title="training (same batch)")
    elif key == "bucketing":
      b = report["bucketing"]
      ax.bar(["random batches", "length-bucketed"],
             [b["random"]["docs_per_s"], b["bucketed"]["docs_per_s"]])
      ax.set(ylabel="training documents/s",
             title=f"LACO+clcp; padding {b['random']['padding_fraction']:.0%} -> "
                   f"{b['bucketed']['padding_fraction']:.0%}")
    else:
      sizes = [s for s in report["serving"] if s.isdigit()]
      x = np.arange(len(sizes))
      first = next(iter(report.get("serving_variants", {"": None})))
      bars = [(f"SavedModel {first}, one padded batch".replace("  ", " "),
               [report["serving"][s]["whole_batch_docs_per_s"] for s in sizes])]
      for variant, result in report.get("serving_variants", {"": report["serving"]}).items():
        bars.append((f"SavedModel {variant}, length-sorted chunks".replace("  ", " "),
                     [result[s]["docs_per_s"] for s in sizes]))
      if all("peer_docs_per_s" in report["serving"][s] for s in sizes):
        bars.append(("PyTorch peer (called in turn)",
                     [report["serving"][s]["peer_docs_per_s"] for s in sizes]))
      width = 0.8 / len(bars)
      for i, (label, values) in enumerate(bars):
        ax.bar(x - 0.4 + width * (i + 0.5), values, width, label=label)
      ax.set_xticks(x, [f"batch {s}" for s in sizes])
      if peer and "peer_docs_per_s" not in report["serving"][sizes[-1]]:
        ax.axhline(peer["predict_docs_per_s_batch64"], color="C3", linestyle="--",
                   label="PyTorch peer, batch 64")
      ax.legend(fontsize=8)
      ax.set(ylabel="prediction documents/s", title="serving (tokenisation included)")
  fig.tight_layout()
  plots.save_figure(fig, path)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sections", default="train,bucketing,serving,peer")
  parser.add_argument("--reuters_dir", default=None)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--doc_tokens", type=int, default=160)
  parser.add_argument("--num_labels", type=int, default=90)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--precisions", default="fp32,bf16")
  parser.add_argument("--serving_chunk_sizes", default="8",
                      help="chunk sizes to time beside one padded batch; the first is "
                           "the one drawn")
  parser.add_argument("--serving_variants", default="laco+clcp",
                      help="models to export and serve in turn (synthetic.VARIANTS names); "
                           "the first is the one drawn")
  parser.add_argument("--xla", default="off,on")
  parser.add_argument("--out", default=os.path.join(HERE, "results", "throughput"))
  args = parser.parse_args()
  args.precisions = args.precisions.split(",")
  args.xla = args.xla.split(",")
  args.serving_variants = args.serving_variants.split(",")
  args.serving_chunk_sizes = [int(c) for c in args.serving_chunk_sizes.split(",")]
  sections = args.sections = args.sections.split(",")
  os.makedirs(args.out, exist_ok=True)
  spec = encoder.resolve_encoder("minilm")
  strategy = tf.distribute.get_strategy()
  report = {"args": synthetic.portable_args(args), "date": time.strftime("%Y-%m-%d"),
            "device": tf.config.list_logical_devices()[-1].device_type}
  texts = (load_texts(args) if {"bucketing", "serving", "serving_padding", "peer"} &
           set(sections) else [])
  if "train" in sections:
    section_train(args, spec, strategy, report)
  if "bucketing" in sections:
    section_bucketing(args, spec, strategy, report, texts)
  if "serving" in sections:
    section_serving(args, spec, strategy, report, texts)
  if "serving_padding" in sections:
    section_serving_padding(args, spec, report, texts)
  if "peer" in sections:
    section_peer(args, spec, report, texts)
  report["peak_rss_gb"] = peak_rss_gb()
  with open(os.path.join(args.out, "throughput.json"), "w", encoding="utf-8") as f:
    json.dump(report, f, indent=1)
  draw(report, os.path.join(args.out, "throughput.png"))
  print(f"peak RSS of the whole run: {report['peak_rss_gb']:.2f} GB")


if __name__ == "__main__":
  main()
