#!/usr/bin/env python3
"""The PyTorch peer: what a user would train instead of LACO-TF, timed on its own.

  python benchmarks/peer.py --model_dir=DIR [--device=cpu|cuda] [--precisions=fp32,bf16]
      [--compile=off,on] [--batch_size=16] [--positions=162] [--num_labels=90] [--steps=5]
      [--random_init] [--out=FILE.json]      (precisions: fp32, tf32, bf16, fp16)
  python benchmarks/peer.py --model_dir=DIR --serve_texts=TEXTS.json [--sizes=1,16,64]
      [--positions=258] [--num_labels=87] [--steps=5]     (prediction; prints JSON)
  python benchmarks/peer.py --draw=FILE.png FILE.json [FILE.json ...]   (needs matplotlib)

Hugging Face transformers' `BertModel` on an encoder directory (config.json, vocab.txt and
model.safetensors), mean pooling over the real tokens, a linear multi-label head, BCE,
AdamW and gradient clipping at 1.0: the recipe of issue #9's peer. It imports PyTorch and
transformers only, never TensorFlow, so it also runs where TensorFlow cannot be installed
(the GPU machines this project is sometimes lent). `speed.py --peer_python` and
`serving.py --peer_python` run it in a process of its own beside LACO-TF's measurements.

Timing: a synthetic batch (wordpiece ids drawn with seed 0, every position real), the median
of --steps training steps after 2 warm-up steps (with --compile=on, after compiling), the
device synchronised before each clock read. bf16 is `torch.autocast` (weights, optimizer
and loss stay float32, as in LACO-TF's `--precision=bf16`). --random_init builds the
encoder from config.json without reading the weights: the same arithmetic, for timing only
(a 64 MiB transfer limit keeps the 87 MB safetensors off the lent machine).
Install on a CPU machine with `pip install -r benchmarks/requirements-peer.txt`.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np


def load_peer(model_dir: str, num_labels: int, do_lower_case: bool = True,
              device: str = "cpu", random_init: bool = False, with_tokenizer: bool = True):
  """(torch, bert, head, forward, tokenizer): `forward(input_ids, attention_mask)` gives
  [batch, num_labels] logits of mean-pooled states; `tokenizer` is the fast one (None
  without `with_tokenizer`: training steps need none)."""
  import torch  # pylint: disable=import-outside-toplevel
  from transformers import BertConfig, BertModel  # pylint: disable=import-outside-toplevel
  torch.manual_seed(0)
  if random_init:
    bert = BertModel(BertConfig.from_json_file(os.path.join(model_dir, "config.json")),
                     add_pooling_layer=False)
  else:
    bert = BertModel.from_pretrained(model_dir, add_pooling_layer=False)
  head = torch.nn.Linear(bert.config.hidden_size, num_labels)
  bert.to(device)
  head.to(device)

  def forward(input_ids, attention_mask):
    states = bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    m = attention_mask.unsqueeze(-1).float()
    return head((states * m).sum(1) / m.sum(1).clamp(min=1))
  tokenizer = None
  if with_tokenizer:
    from transformers import BertTokenizerFast  # pylint: disable=import-outside-toplevel
    tokenizer = BertTokenizerFast(os.path.join(model_dir, "vocab.txt"),
                                  do_lower_case=do_lower_case)
  return torch, bert, head, forward, tokenizer


def _synchronize(torch, device: str) -> None:
  if device.startswith("cuda"):
    torch.cuda.synchronize()


def train_step_times(peer, batch_size: int, positions: int, num_labels: int, steps: int,
                     device: str = "cpu", precision: str = "fp32",
                     compiled: bool = False) -> list:
  """Seconds of each of `steps` training steps after 2 warm-up steps (compiling, if asked,
  happens in the warm-up), on one synthetic batch of `batch_size` x `positions` ids."""
  torch, bert, head, forward, _ = peer
  params = list(bert.parameters()) + list(head.parameters())
  optimizer = torch.optim.AdamW(params, lr=5e-5)
  rng = np.random.RandomState(0)
  ids = torch.tensor(rng.randint(2000, 29000, [batch_size, positions])).to(device)
  mask = torch.ones_like(ids)
  target = torch.tensor((rng.rand(batch_size, num_labels) < 3 / num_labels)
                        .astype(np.float32)).to(device)
  # dynamic=False: each length compiles its own graph, as it would alone in a process (the
  # compile cache belongs to `forward`, and a second length would otherwise go dynamic).
  step_forward = torch.compile(forward, dynamic=False) if compiled else forward
  # tf32: float32 weights and activations with TensorFloat-32 matrix products, what
  # TensorFlow does by default on Ampere and later GPUs (PyTorch's default is full float32).
  torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
  torch.backends.cudnn.allow_tf32 = precision == "tf32"
  dtype = {"fp32": None, "tf32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
  kind = device.split(":")[0]  # "cuda:1" -> "cuda", as autocast and GradScaler name devices
  scaler = torch.amp.GradScaler(kind) if precision == "fp16" else None
  bert.train()
  times = []
  for step in range(steps + 2):
    _synchronize(torch, device)
    start = time.perf_counter()
    with torch.autocast(kind, dtype=dtype, enabled=dtype is not None):
      logits = step_forward(ids, mask)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), target)
    optimizer.zero_grad()
    if scaler is None:
      loss.backward()
      torch.nn.utils.clip_grad_norm_(params, 1.0)
      optimizer.step()
    else:
      scaler.scale(loss).backward()
      scaler.unscale_(optimizer)
      torch.nn.utils.clip_grad_norm_(params, 1.0)
      scaler.step(optimizer)
      scaler.update()
    if not torch.isfinite(loss):
      raise FloatingPointError(f"peer: non-finite loss at step {step} ({precision})")
    _synchronize(torch, device)
    if step >= 2:
      times.append(time.perf_counter() - start)
  return times


def predictor(peer, max_positions: int):
  """texts -> [n, labels] probabilities, as a user of transformers would predict: the fast
  tokenizer, the batch padded to its longest text, inference mode, fp32, on the CPU."""
  torch, bert, _, forward, tokenizer = peer
  bert.eval()

  def predict(texts):
    with torch.inference_mode():
      enc = tokenizer(texts, truncation=True, max_length=max_positions, padding=True,
                      return_tensors="pt")
      return torch.sigmoid(forward(enc["input_ids"], enc["attention_mask"])).numpy()
  return predict


def serve_times(args) -> dict:
  """{request size: median seconds} of `predictor` on consecutive texts of --serve_texts
  (a JSON list), the median of --steps requests after one warm-up request."""
  with open(args.serve_texts, encoding="utf-8") as f:
    texts = json.load(f)
  predict = predictor(load_peer(args.model_dir, args.num_labels), int(args.positions))
  result = {}
  for size in [int(s) for s in args.sizes.split(",")]:
    requests = [texts[i * size:(i + 1) * size] for i in range(args.steps + 1)]
    predict(requests[0])
    times = []
    for request in requests[1:]:
      start = time.perf_counter()
      predict(request)
      times.append(time.perf_counter() - start)
    result[str(size)] = statistics.median(times)
  return result


def draw(reports: list, path: str) -> str:
  """One bar per row of the given reports, in file and row order: median ms per training step."""
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from laco_tf import plots  # pylint: disable=import-outside-toplevel
  rows = [(r, report) for report in reports for r in report["rows"]]
  fig, ax = plots.plt.subplots(figsize=(7, 3.6))
  names = [f"{r['positions']} pos\n{r['precision']}{chr(10) + 'compiled' if r['compile'] else ''}"
           for r, _ in rows]
  values = [r["median_s"] * 1000 for r, _ in rows]
  ax.bar(range(len(rows)), values, color=["C1" if r["compile"] else "C0" for r, _ in rows])
  ax.set_xticks(range(len(rows)), names, fontsize=7)
  ax.set_ylabel("ms per training step (median)")
  first = reports[0]
  ax.set_title(f"PyTorch peer on {first['device_name']}, batch {first['batch_size']} "
               f"(torch {first['torch']})", fontsize=9)
  return plots.save_figure(fig, path)


def main():
  if len(sys.argv) > 2 and sys.argv[1].startswith("--draw="):
    reports = []
    for name in sys.argv[2:]:
      with open(name, encoding="utf-8") as f:
        reports.append(json.load(f))
    print(draw(reports, sys.argv[1][len("--draw="):]))
    return
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model_dir", required=True,
                      help="directory with config.json and vocab.txt (and model.safetensors "
                           "unless --random_init)")
  parser.add_argument("--device", default="cpu")
  parser.add_argument("--precisions", default="fp32,bf16", help="fp32, tf32, bf16, fp16")
  parser.add_argument("--compile", default="off", help="off, on or off,on (torch.compile)")
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--positions", default="162",
                      help="comma-separated sequence lengths ([CLS] + text + [SEP])")
  parser.add_argument("--num_labels", type=int, default=90)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--random_init", action="store_true")
  parser.add_argument("--out", default=None, help="JSON file for the table")
  parser.add_argument("--serve_texts", help="time prediction on this JSON list of texts")
  parser.add_argument("--sizes", default="1,16,64", help="--serve_texts: request sizes")
  args = parser.parse_args()
  if args.serve_texts:
    print(json.dumps(serve_times(args)))
    return
  peer = load_peer(args.model_dir, args.num_labels, device=args.device,
                   random_init=args.random_init, with_tokenizer=False)
  torch = peer[0]
  report = {"torch": torch.__version__, "device": args.device,
            "device_name": (torch.cuda.get_device_name() if args.device.startswith("cuda")
                            else "cpu"),
            "date": time.strftime("%Y-%m-%d"), "batch_size": args.batch_size,
            "num_labels": args.num_labels, "steps": args.steps,
            "random_init": args.random_init, "rows": []}
  print(f"peer on {report['device_name']} (PyTorch {torch.__version__}), batch "
        f"{args.batch_size}, median of {args.steps} steps", flush=True)
  for positions in [int(p) for p in args.positions.split(",")]:
    for precision in args.precisions.split(","):
      for compiled in [c == "on" for c in args.compile.split(",")]:
        times = train_step_times(peer, args.batch_size, positions, args.num_labels,
                                 args.steps, args.device, precision, compiled)
        med = statistics.median(times)
        row = {"positions": positions, "precision": precision, "compile": compiled,
               "median_s": med, "docs_per_s": args.batch_size / med, "times_s": times}
        report["rows"].append(row)
        print(f"positions {positions:4d}  {precision:4s}  compile {'on ' if compiled else 'off'}"
              f"  {med * 1000:8.1f} ms/step  {args.batch_size / med:8.1f} docs/s", flush=True)
  if args.out:
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(report, f, indent=1)
    os.replace(tmp, args.out)


if __name__ == "__main__":
  main()
