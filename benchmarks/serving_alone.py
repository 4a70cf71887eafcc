#!/usr/bin/env python3
"""LACO-TF's raw-text SavedModel against the PyTorch peer, each alone in its own process.

  python benchmarks/serving_alone.py [--reuters_dir=PATH] [--peer_python=PYTHON]
      [--doc_tokens=256] [--num_labels=87] [--precision=bf16] [--chunk_size=8]
      [--sizes=1,16,64] [--steps=5] [--rounds=3] [--out=benchmarks/results/serving_alone]

`throughput.py` calls the SavedModel and the peer in turn inside one process, where each
framework's worker threads may still spin from its last call while the other runs; its
peer section, run alone afterwards, was faster than in turn. Here each side runs in a
process of its own that imports only its framework, one after the other, `--rounds` times
(SavedModel, peer, SavedModel, peer, ...), so neither shares the cores with the other.

The parent (the project's environment) exports LACO+clcp at --precision, as
`throughput.py` does (all-MiniLM-L6-v2, random heads: the same arithmetic as a trained
model), with the default serving chunks, and writes the requests' texts to a temporary
file. A `savedmodel` child imports only tensorflow and tensorflow_text, as a server would,
and calls the signature; a `peer` child (`--peer_python`, a Python with torch and
transformers: `pip install -r benchmarks/requirements-peer.txt`) runs `peer.predictor`:
the fast tokenizer and the batch padded to its longest text, --doc_tokens wordpieces of
text. Each child times requests of each size (consecutive stories, the same ones on both
sides): the median of --steps calls after one warm-up call. Prints documents/s per round
and the median over rounds of each side and of the ratio; writes JSON and a PNG.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _time_requests(call, texts, sizes, steps) -> dict:
  """{size: median seconds of one request of `size` consecutive texts}."""
  result = {}
  for size in sizes:
    requests = [texts[i * size:(i + 1) * size] for i in range(steps + 1)]
    call(requests[0])
    times = []
    for request in requests[1:]:
      start = time.perf_counter()
      call(request)
      times.append(time.perf_counter() - start)
    result[str(size)] = statistics.median(times)
  return result


def child(args) -> None:
  with open(args.texts, encoding="utf-8") as f:
    texts = json.load(f)
  if args.role == "savedmodel":
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    import tensorflow_text  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    serve = tf.saved_model.load(args.path).signatures["serving_default"]
    call = lambda batch: serve(text=tf.constant(batch))["scores"].numpy()  # noqa: E731
  else:
    sys.path.insert(0, HERE)
    import peer as peer_lib  # pylint: disable=import-outside-toplevel
    peer = peer_lib.load_peer(args.model_dir, args.num_labels, do_lower_case=True)
    call = peer_lib.predictor(peer, args.doc_tokens + 2)
  print(json.dumps(_time_requests(call, texts, args.sizes, args.steps)))


def _run_child(python, role, args, texts_file, extra) -> dict:
  command = [python, os.path.abspath(__file__), f"--role={role}", f"--texts={texts_file}",
             f"--sizes={','.join(map(str, args.sizes))}", f"--steps={args.steps}",
             f"--doc_tokens={args.doc_tokens}", f"--num_labels={args.num_labels}", *extra]
  done = subprocess.run(command, capture_output=True, text=True, check=False,
                        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
  if done.returncode:
    raise SystemExit(f"{role} child failed ({' '.join(command)}):\n{done.stderr[-2000:]}")
  return json.loads(done.stdout.strip().splitlines()[-1])


def parent(args) -> None:
  sys.path.insert(0, os.path.dirname(HERE))
  sys.path.insert(0, HERE)
  import synthetic  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from throughput import load_texts  # pylint: disable=import-outside-toplevel
  from laco_tf import plots  # pylint: disable=import-outside-toplevel
  from laco_tf.modeling import encoder  # pylint: disable=import-outside-toplevel
  from laco_tf.serving import export  # pylint: disable=import-outside-toplevel
  spec = encoder.resolve_encoder("minilm")
  texts = load_texts(args)[:(args.steps + 1) * max(args.sizes)]
  if len(texts) < (args.steps + 1) * max(args.sizes):
    raise SystemExit(f"{len(texts)} texts, too few for {args.steps + 1} requests of "
                     f"{max(args.sizes)}; lower --steps or pass --reuters_dir")
  labels = [f"label{i}" for i in range(args.num_labels)]
  with tempfile.TemporaryDirectory() as tmp:
    trainer, plan = synthetic.build_trainer("laco+clcp", spec, tf.distribute.get_strategy(),
                                            args.num_labels, 1, args.precision)
    module = export.LacoServingModule(
        trainer.model, spec.vocab_file, spec.do_lower_case, labels, plan.token_ids,
        args.doc_tokens + 3 + len(plan.token_ids), chunk_size=args.chunk_size)
    path = export.export_saved_model(module, os.path.join(tmp, "export"), {"labels": labels})
    del trainer, module
    texts_file = os.path.join(tmp, "texts.json")  # removed with tmp: never kept
    with open(texts_file, "w", encoding="utf-8") as f:
      json.dump(texts, f)
    rounds = []
    for r in range(args.rounds):
      ours = _run_child(sys.executable, "savedmodel", args, texts_file, [f"--path={path}"])
      peer = _run_child(args.peer_python, "peer", args, texts_file,
                        [f"--model_dir={os.path.dirname(spec.weights)}"])
      rounds.append({"savedmodel_s": ours, "peer_s": peer})
      print(f"round {r + 1}: " + "; ".join(
          f"requests of {s}: {int(s) / ours[s]:.1f} docs/s against the peer's "
          f"{int(s) / peer[s]:.1f} ({peer[s] / ours[s]:.2f}x)" for s in ours), flush=True)
  summary = {}
  for s in map(str, args.sizes):
    summary[s] = {
        "savedmodel_docs_per_s": statistics.median(int(s) / r["savedmodel_s"][s] for r in rounds),
        "peer_docs_per_s": statistics.median(int(s) / r["peer_s"][s] for r in rounds),
        "ratio_median": statistics.median(r["peer_s"][s] / r["savedmodel_s"][s] for r in rounds),
        "ratios": [r["peer_s"][s] / r["savedmodel_s"][s] for r in rounds]}
    print(f"requests of {s}: SavedModel {summary[s]['savedmodel_docs_per_s']:.1f} docs/s, "
          f"peer {summary[s]['peer_docs_per_s']:.1f}; ratio {summary[s]['ratio_median']:.2f}x "
          f"(rounds: {', '.join(f'{x:.2f}' for x in summary[s]['ratios'])})")
  report = {"args": synthetic.portable_args(args), "date": time.strftime("%Y-%m-%d"),
            "rounds": rounds, "summary": summary}
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "serving_alone.json"), "w", encoding="utf-8") as f:
    json.dump(report, f, indent=1)
  fig, ax = plots.plt.subplots(figsize=(6, 4))
  x = list(range(len(summary)))
  ax.bar([i - 0.2 for i in x], [v["savedmodel_docs_per_s"] for v in summary.values()], 0.4,
         label=f"LACO+clcp SavedModel ({args.precision}, chunks of {args.chunk_size})")
  ax.bar([i + 0.2 for i in x], [v["peer_docs_per_s"] for v in summary.values()], 0.4,
         label="PyTorch peer (fp32, fast tokenizer)")
  for i, v in zip(x, summary.values()):
    ax.annotate(f"{v['ratio_median']:.2f}x", (i, max(v["savedmodel_docs_per_s"],
                                                    v["peer_docs_per_s"])), ha="center")
  ax.set_xticks(x, [f"requests of {s}" for s in summary])
  ax.set(ylabel="documents/s (median over rounds)", title="each alone in its own process")
  ax.legend(fontsize=8)
  fig.tight_layout()
  plots.save_figure(fig, os.path.join(args.out, "serving_alone.png"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--reuters_dir", default=None)
  parser.add_argument("--peer_python", default=sys.executable)
  parser.add_argument("--doc_tokens", type=int, default=256)
  parser.add_argument("--num_labels", type=int, default=87)
  parser.add_argument("--precision", default="bf16")
  parser.add_argument("--chunk_size", type=int, default=8)
  parser.add_argument("--sizes", default="1,16,64")
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--out", default=os.path.join(HERE, "results", "serving_alone"))
  parser.add_argument("--role", choices=["savedmodel", "peer"], help=argparse.SUPPRESS)
  parser.add_argument("--texts", help=argparse.SUPPRESS)
  parser.add_argument("--path", help=argparse.SUPPRESS)
  parser.add_argument("--model_dir", help=argparse.SUPPRESS)
  args = parser.parse_args()
  args.sizes = [int(s) for s in args.sizes.split(",")]
  if args.role:
    child(args)
  else:
    parent(args)


if __name__ == "__main__":
  main()
