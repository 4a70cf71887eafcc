#!/usr/bin/env python3
"""Serving speed of the raw-text SavedModel: each export, and the PyTorch peer, alone in its process.

  python benchmarks/serving.py [--reuters_dir=PATH] [--variants=laco+clcp[,bert_baseline]]
      [--chunk_sizes=8[,4,16,0]] [--doc_tokens=256] [--num_labels=87] [--precision=bf16]
      [--sizes=1,16,64] [--steps=5] [--rounds=3] [--peer_python=PYTHON]
      [--other_code=CHECKOUT] [--out=benchmarks/results/serving]

The parent (the project's environment) exports each --variants model (all-MiniLM-L6-v2
with random heads: the arithmetic of a trained model) once per --chunk_sizes (the
`--serving_chunk_size` of the export: length-sorted chunks, each padded to its own
longest; 0: the whole request as one padded batch), and writes the requests' texts
(consecutive stories of --reuters_dir, else of the bundled sample) to a temporary file.
Then, round after round (the exports' order alternating), each export is timed by a child
process that imports only tensorflow and tensorflow_text, as a server would, and with
--peer_python (a Python with torch and transformers) the peer (`peer.py --serve_texts`: its fast tokenizer, the batch
padded to its longest text, --doc_tokens wordpieces) in a process of its own: so no
framework's worker threads spin beside another's. With --other_code (a checkout of another
commit), the same exports are also made by that commit's code, in a process of its own,
and timed beside these, round by round. Each child times requests of each size:
the median of --steps calls after one warm-up call. Also reports, exactly from the
lengths, the share of the encoder's positions that are padding in requests of the
largest size for each chunk size. Prints documents/s per round and the medians over
rounds with each configuration's ratio to the first (and the peer's to ours); writes
serving.json and serving.png under --out.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def child(args) -> None:
  """Times requests of each size with one export; prints {size: median seconds}."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tensorflow_text  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  with open(args.texts, encoding="utf-8") as f:
    texts = json.load(f)
  serve = tf.saved_model.load(args.child).signatures["serving_default"]
  result = {}
  for size in args.sizes:
    requests = [tf.constant(texts[i * size:(i + 1) * size]) for i in range(args.steps + 1)]
    serve(text=requests[0])["scores"].numpy()
    times = []
    for request in requests[1:]:
      start = time.perf_counter()
      serve(text=request)["scores"].numpy()
      times.append(time.perf_counter() - start)
    result[str(size)] = statistics.median(times)
  print(json.dumps(result))


def export_all(args, lib, spec, tmp) -> dict:
  """{configuration name: export path} for each variant and chunk size."""
  from laco_tf.serving import export  # pylint: disable=import-outside-toplevel
  labels = [f"label{i}" for i in range(args.num_labels)]
  paths = {}
  for variant in args.variants:
    trainer, plan = lib.build_trainer(variant, spec, lib.tf.distribute.get_strategy(),
                                      args.num_labels, 1, args.precision)
    max_len = args.doc_tokens + 2 + (len(plan.token_ids) + 1 if plan.token_ids else 0)
    for chunk in args.chunk_sizes:
      name = f"{variant}, " + (f"chunks of {chunk}" if chunk else "one padded batch")
      module = export.LacoServingModule(trainer.model, spec.vocab_file, spec.do_lower_case,
                                        labels, plan.token_ids, max_len, chunk_size=chunk)
      paths[name] = export.export_saved_model(module, os.path.join(tmp, f"{variant}_{chunk}"),
                                              {"labels": labels})
  return paths


# Run by `python -c` with [checkout, options (JSON), folder]: that checkout's `export_all`.
_OTHER_EXPORTS = """
import argparse, json, os, sys
root, options, folder = sys.argv[1:]
sys.path[:0] = [os.path.join(root, "benchmarks"), root]
import lib, serving, laco_tf
from laco_tf.modeling import encoder
assert os.path.dirname(os.path.dirname(laco_tf.__file__)) == os.path.abspath(root)
print(json.dumps(serving.export_all(argparse.Namespace(**json.loads(options)), lib,
                                    encoder.resolve_encoder("minilm"), folder)))
"""


def export_other_code(args, lib, tmp) -> dict:
  """{name [code at COMMIT]: export path} of the same exports made by --other_code's code."""
  label = lib.other_code_label(args.other_code)
  folder = os.path.join(tmp, "other_code")
  options = {k: getattr(args, k) for k in ("variants", "chunk_sizes", "doc_tokens",
                                            "num_labels", "precision")}
  paths = lib.run_child([sys.executable, "-c", _OTHER_EXPORTS, os.path.abspath(args.other_code),
                         json.dumps(options), folder], label)
  return {f"{name} [{label}]": path for name, path in paths.items()}


def padding_shares(args, lib, spec, texts) -> dict:
  """{chunk size: share of the encoder's positions that are padding} over consecutive
  requests of the largest size, LACO's label tokens included (exact, from the lengths)."""
  size = max(args.sizes)
  positions = lib.wordpiece_lengths(texts, spec, args.doc_tokens) + args.num_labels + 3
  shares = {}
  for chunk in args.chunk_sizes:
    real = padded = 0
    for start in range(0, len(positions) - size + 1, size):
      request = positions[start:start + size]
      request = lib.np.sort(request) if chunk else request
      for c in range(0, size, chunk or size):
        part = request[c:c + (chunk or size)]
        real, padded = real + int(part.sum()), padded + len(part) * int(part.max())
    shares[str(chunk)] = 1 - real / padded
  return shares


def time_rounds(args, lib, spec, paths, texts_file) -> list:
  common = [f"--texts={texts_file}", f"--sizes={','.join(map(str, args.sizes))}",
            f"--steps={args.steps}"]
  rounds = []
  for r in range(args.rounds):
    order = list(paths) if r % 2 == 0 else list(paths)[::-1]  # who goes first alternates
    times = {name: lib.run_child([sys.executable, __file__, f"--child={paths[name]}", *common],
                                 name) for name in order}
    now = {name: times[name] for name in paths}
    if args.peer_python:
      now["PyTorch peer"] = lib.run_child(
          [args.peer_python, os.path.join(HERE, "peer.py"),
           f"--model_dir={os.path.dirname(spec.weights)}", f"--num_labels={args.num_labels}",
           f"--positions={args.doc_tokens + 2}", f"--serve_texts={texts_file}", *common[1:]],
          "the peer")
    rounds.append(now)
    print(f"round {r + 1}: " + "; ".join(
        f"{name}: " + ", ".join(f"{int(s) / t:.1f}" for s, t in times.items())
        for name, times in now.items()) + " docs/s", file=sys.stderr, flush=True)
  return rounds


def summarise(args, rounds) -> dict:
  names, sizes = list(rounds[0]), list(map(str, args.sizes))
  summary = {}
  for name in names:
    summary[name] = {s: {"docs_per_s": statistics.median(int(s) / r[name][s] for r in rounds),
                         "ratio_to_first": [r[names[0]][s] / r[name][s] for r in rounds]}
                     for s in sizes}
    print(f"{name:40s} " + "; ".join(
        f"requests of {s}: {v['docs_per_s']:.1f} docs/s "
        f"({statistics.median(v['ratio_to_first']):.2f}x the first)"
        for s, v in summary[name].items()))
  return summary


def draw(lib, args, summary, path) -> None:
  fig, ax = lib.plots.plt.subplots(figsize=(7, 4))
  sizes = list(map(str, args.sizes))
  width = 0.8 / len(summary)
  for i, (name, row) in enumerate(summary.items()):
    ax.bar([x - 0.4 + width * (i + 0.5) for x in range(len(sizes))],
           [row[s]["docs_per_s"] for s in sizes], width, label=name)
  ax.set_xticks(range(len(sizes)), [f"requests of {s}" for s in sizes])
  ax.set(ylabel="documents/s (median over rounds)",
         title=f"each alone in its own process, {args.precision}, tokenisation included")
  ax.legend(fontsize=7)
  fig.tight_layout()
  lib.plots.save_figure(fig, path)


def parent(args) -> None:
  import lib  # pylint: disable=import-outside-toplevel
  from laco_tf.modeling import encoder  # pylint: disable=import-outside-toplevel
  spec = encoder.resolve_encoder("minilm")
  needed = (args.steps + 1) * max(args.sizes)
  texts = lib.load_texts(args.reuters_dir)[:needed]
  if len(texts) < needed:
    raise SystemExit(f"{len(texts)} texts, too few for {args.steps + 1} requests of "
                     f"{max(args.sizes)}; lower --steps or pass --reuters_dir")
  shares = padding_shares(args, lib, spec, texts)
  print("padding at requests of {}: ".format(max(args.sizes)) + ", ".join(
      f"{'one batch' if c == '0' else f'chunks of {c}'} {v:.1%}" for c, v in shares.items()))
  with tempfile.TemporaryDirectory() as tmp:
    paths = export_all(args, lib, spec, tmp)
    if args.other_code:
      paths.update(export_other_code(args, lib, tmp))
    texts_file = os.path.join(tmp, "texts.json")  # removed with tmp: never kept
    with open(texts_file, "w", encoding="utf-8") as f:
      json.dump(texts, f)
    rounds = time_rounds(args, lib, spec, paths, texts_file)
  summary = summarise(args, rounds)
  lib.save_report({"args": lib.portable_args(args), "padding_share": shares,
                   "seconds": rounds, "summary": summary}, args.out, "serving")
  draw(lib, args, summary, os.path.join(args.out, "serving.png"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--reuters_dir", default=None)
  parser.add_argument("--variants", default="laco+clcp")
  parser.add_argument("--chunk_sizes", default="8", help="0: one padded batch")
  parser.add_argument("--doc_tokens", type=int, default=256)
  parser.add_argument("--num_labels", type=int, default=87)
  parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
  parser.add_argument("--sizes", default="1,16,64")
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--peer_python", help="a Python with torch and transformers")
  parser.add_argument("--other_code", help="a checkout of another commit whose exports are "
                      "timed beside these")
  parser.add_argument("--out", default=os.path.join(HERE, "results", "serving"))
  parser.add_argument("--child", help=argparse.SUPPRESS)
  parser.add_argument("--texts", help=argparse.SUPPRESS)
  args = parser.parse_args()
  try:
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.chunk_sizes = [int(c) for c in args.chunk_sizes.split(",")]
  except ValueError:
    parser.error(f"--sizes={args.sizes} --chunk_sizes={args.chunk_sizes}: expected integers")
  args.variants = args.variants.split(",")
  if args.child:
    child(args)
  else:
    parent(args)


if __name__ == "__main__":
  main()
