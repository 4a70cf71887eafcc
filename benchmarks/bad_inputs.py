#!/usr/bin/env python3
"""The bad-input catalogue: each case runs `run_classifier.py` as a real process.

  python benchmarks/bad_inputs.py [--out=benchmarks/results/bad_inputs]

For every case: the exit code, the first line the user sees on stderr, whether a Python
traceback was printed, and what was left in the output directory. The rule each row
checks: a non-zero exit, one line, no traceback, nothing left behind (no output directory,
or one holding nothing but the lock file) -- or, for a legitimate input, a run that
trains (marked "reads"). Tiny settings (2 steps, 64 positions) keep each case short.
Writes bad_inputs.md (the table) and bad_inputs.json.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SAMPLE = os.path.join(ROOT, "data", "sample")
TINY = ["--max_steps=2", "--max_seq_length=64", "--train_batch_size=8", "--do_train"]


def _jsonl(directory, lines, name="train.jsonl", raw=None):
  os.makedirs(directory, exist_ok=True)
  shutil.copy(os.path.join(SAMPLE, "dev.jsonl"), os.path.join(directory, "dev.jsonl"))
  with open(os.path.join(SAMPLE, "train.jsonl"), "rb") as f:
    good = f.read().splitlines()[:40]
  with open(os.path.join(directory, name), "wb") as f:
    f.write(raw if raw is not None else b"\n".join(good + [l.encode() for l in lines]) + b"\n")
  return directory


def cases(tmp):
  """(name, data_dir or None for the sample, extra flags, legitimate?)."""
  d = lambda name: os.path.join(tmp, "data", name)  # noqa: E731
  with open(os.path.join(SAMPLE, "train.jsonl"), "rb") as f:
    sample = f.read()
  return [
      ("malformed JSON line", _jsonl(d("json"), ['{"text": "a", "labels": ["x"]']), [], False),
      ("text not a string", _jsonl(d("type"), ['{"text": 3, "labels": ["x"]}']), [], False),
      ("labels not a list", _jsonl(d("labels"), ['{"text": "a", "labels": "x"}']), [], False),
      ("bytes not UTF-8", _jsonl(d("utf8"), [], raw=sample[:2000] + b"\xff\n"), [], False),
      ("empty text", _jsonl(d("empty"), ['{"text": "  ", "labels": ["x"]}']), [], False),
      ("zero-width-only text", _jsonl(d("zw"), ['{"text": "\\u200b\\u200b", "labels": ["x"]}']),
       [], False),
      ("blank label", _jsonl(d("blank"), ['{"text": "a b", "labels": [" "]}']), [], False),
      ("duplicate id", _jsonl(d("dup"), ['{"id": "train-0000", "text": "a", "labels": ["x"]}']),
       [], False),
      ("test.jsonl is a directory", _jsonl(d("dir"), []), [], False),
      ("UTF-8 byte-order mark", _jsonl(d("bom"), [], raw=b"\xef\xbb\xbf" + sample), [], True),
      ("labels with surrounding spaces", _jsonl(d("spaces"), [
          '{"text": "a health story", "labels": [" health"]}']), [], True),
      ("cp1252 corpus with --encoding", _jsonl(d("cp1252"), [], raw=sample.replace(
          b"local", "l\u00f6cal".encode("cp1252"))), ["--encoding=cp1252"], True),
      ("unknown --encoding", None, ["--encoding=nope"], False),
      ("--learning_rate=inf", None, ["--learning_rate=inf"], False),
      ("--gamma=nan", None, ["--gamma=nan"], False),
      ("--alpha=1.5", None, ["--alpha=1.5"], False),
      ("--max_seq_length=10 (labels do not fit)", None, ["--max_seq_length=10"], False),
      ("--window_size wider than the text", None, ["--window_size=60"], False),
      ("diverging run (learning rate 1e30)", None,
       ["--learning_rate=1e30", "--head_learning_rate=1e30", "--max_steps=4"], False),
      ("--output_dir is a file", None, ["--output_dir=FILE"], False),
      ("--output_dir cannot be created", None, ["--output_dir=FILE/sub"], False),
      ("--data_dir missing", None, ["--data_dir=/no/such/dir"], False),
      ("unknown --task", None, ["--task=seq2seq"], False),
  ]


def run_case(name, data_dir, extra, legitimate, tmp):
  out = os.path.join(tmp, "out", name.replace(" ", "_").replace("/", "_"))
  file_path = os.path.join(tmp, "a_file")
  with open(file_path, "w") as f:
    f.write("x")
  if name == "test.jsonl is a directory":
    os.makedirs(os.path.join(data_dir, "test.jsonl"), exist_ok=True)
  args = [f"--data_dir={data_dir or SAMPLE}", f"--output_dir={out}", *TINY]
  args = [a for a in args if not any(a.split("=")[0] == e.split("=")[0] for e in extra)]
  args += [e.replace("FILE", file_path) for e in extra]
  result = subprocess.run([sys.executable, os.path.join(ROOT, "run_classifier.py"), *args],
                          capture_output=True, text=True, cwd=ROOT)
  lines = [l for l in result.stderr.splitlines() if l.strip()]
  left = sorted(os.listdir(out)) if os.path.isdir(out) else []
  row = {"case": name, "exit": result.returncode, "first_line": lines[0] if lines else "",
         "stderr_lines": len(lines), "traceback": "Traceback" in result.stderr,
         "left_behind": [n for n in left if n != ".lock"], "legitimate": legitimate}
  if legitimate:
    row["ok"] = result.returncode == 0 and "checkpoints" in left
  else:
    # A run that diverged had passed validation: its settings and TFRecords may stay (a
    # rerun with a lower rate replaces them, as nothing was trained), never a checkpoint,
    # a result file or an export.
    leftover = ([n for n in row["left_behind"] if n in ("checkpoints", "best", "export")
                 or n.startswith(("eval_results", "predictions"))]
                if name.startswith("diverging") else row["left_behind"])
    row["ok"] = (result.returncode != 0 and len(lines) == 1 and not row["traceback"] and
                 not leftover)
  return row


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(HERE, "results", "bad_inputs"))
  args = parser.parse_args()
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for case in cases(tmp):
      rows.append(run_case(*case, tmp))
      r = rows[-1]
      print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['case']}: exit {r['exit']}, "
            f"{r['first_line'][:100]}", flush=True)
  table = ["| case | exit | first line on stderr | stderr lines | traceback | left behind "
           "| as expected |", "| --- | --- | --- | --- | --- | --- | --- |"]
  for r in rows:
    first = r["first_line"].replace("|", "\\|")
    first = first if len(first) <= 110 else first[:107] + "..."
    table.append(f"| {r['case']}{' (legitimate: reads)' if r['legitimate'] else ''} | "
                 f"{r['exit']} | {first} | {r['stderr_lines']} | "
                 f"{'yes' if r['traceback'] else 'no'} | {', '.join(r['left_behind']) or '-'}"
                 f" | {'yes' if r['ok'] else '**no**'} |")
  os.makedirs(args.out, exist_ok=True)
  for name, text in (("bad_inputs.md", "\n".join(table) + "\n"),
                     ("bad_inputs.json", json.dumps(rows, indent=1))):
    with open(os.path.join(args.out, name + ".tmp"), "w", encoding="utf-8") as f:
      f.write(text)
    os.replace(os.path.join(args.out, name + ".tmp"), os.path.join(args.out, name))
  print("\n".join(table))
  print(f"{sum(r['ok'] for r in rows)}/{len(rows)} cases as expected")
  sys.exit(0 if all(r["ok"] for r in rows) else 1)


if __name__ == "__main__":
  main()
