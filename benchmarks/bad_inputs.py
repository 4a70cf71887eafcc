#!/usr/bin/env python3
"""The bad-input catalogue: each case runs `run_classifier.py` as a real process.

  python benchmarks/bad_inputs.py [--out=benchmarks/results/bad_inputs]

For every case: the exit code, the first line the user sees on stderr, whether a Python
traceback was printed, and what was left in the output directory. The rule each row
checks: a non-zero exit, one line, no traceback, nothing left behind (no output directory,
or one holding nothing but the lock file and what the case planted there, unchanged) --
or, for a legitimate input, a run that trains (marked "reads"). Tiny settings (2 steps, 64 positions) keep each case short.
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


def _split(directory, line_break=b"\n", label_lines=None):
  """The sample's train/dev in the split format, lines ended by `line_break`."""
  os.makedirs(directory, exist_ok=True)
  for split, name in (("train", "train"), ("dev", "val")):
    with open(os.path.join(SAMPLE, f"{split}.jsonl"), encoding="utf-8") as f:
      docs = [json.loads(l) for l in f][:60]
    labels = label_lines if split == "train" and label_lines else [
        " ".join(d["labels"]).encode() for d in docs]
    for prefix, lines in (("text", [d["text"].encode() for d in docs]), ("label", labels)):
      with open(os.path.join(directory, f"{prefix}_{name}"), "wb") as f:
        f.write(line_break.join(lines) + line_break)
  return directory


def _reuters(directory, extra_line):
  """A small corpus in NLTK's Reuters layout whose cats.txt ends with `extra_line`."""
  os.makedirs(os.path.join(directory, "training"), exist_ok=True)
  with open(os.path.join(SAMPLE, "train.jsonl"), encoding="utf-8") as f:
    docs = [json.loads(l) for l in f][:60]
  lines = []
  for i, d in enumerate(docs):
    with open(os.path.join(directory, "training", str(i + 1)), "w", encoding="utf-8") as f:
      f.write(d["text"])
    lines.append(f"training/{i + 1} " + " ".join(d["labels"]))
  with open(os.path.join(directory, "cats.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(lines + [extra_line]) + "\n")
  return directory


def _unlabelled_dev(directory):
  _jsonl(directory, [])
  with open(os.path.join(directory, "dev.jsonl"), "w", encoding="utf-8") as f:
    for i in range(40):
      f.write(json.dumps({"id": f"dev-{i}", "text": "stocks and shares", "labels": []}) + "\n")
  return directory


# What a case plants in its output directory before the run (name -> how); it must be
# there, unchanged, afterwards, and is not counted as left behind.
PLANTED = {
    "--output_dir holds the user's files": {"notes.txt": "my notes", "data/corpus.txt": "x"},
    "--output_dir/.lock is a link to a file": {".lock": "LINK"},
}


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
      ("split format with \\r line endings", _split(d("cr"), b"\r"), [], True),
      ("split label file with a byte-order mark inside", _split(
          d("bom_mid"), label_lines=[b"markets"] * 30 + [b"\xef\xbb\xbfmarkets"] * 30), [],
       False),
      ("label holding a line break", _jsonl(d("newline"), [
          '{"text": "a b", "labels": ["two\\nlines"]}']), [], False),
      ("cats.txt id leaving the corpus", _reuters(d("escape"),
                                                  "training/../../../../etc/hostname earn"),
       [], False),
      ("dev documents without labels", _unlabelled_dev(d("unlabelled")), [], True),
      ("--output_dir holds the user's files", None, [], False),
      ("--output_dir/.lock is a link to a file", None, [], False),
      ("--export_dir is a file", None, ["--export_dir=FILE", "--do_export"], False),
      ("--label_slots=-1", None, ["--label_slots=-1"], False),
      ("--label_slots without joint embedding", None,
       ["--label_slots=4", "--nojoint_embedding", "--task=mltc"], False),
  ]


def run_case(name, data_dir, extra, legitimate, tmp):
  out = os.path.join(tmp, "out", "".join(c if c.isalnum() else "_" for c in name))
  file_path = os.path.join(tmp, "a_file")
  with open(file_path, "w") as f:
    f.write("x")
  if name == "test.jsonl is a directory":
    os.makedirs(os.path.join(data_dir, "test.jsonl"), exist_ok=True)
  planted = PLANTED.get(name, {})
  for relative, content in planted.items():
    path = os.path.join(out, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if content == "LINK":
      os.symlink(file_path, path)
    else:
      with open(path, "w", encoding="utf-8") as f:
        f.write(content)
  args = [f"--data_dir={data_dir or SAMPLE}", f"--output_dir={out}", *TINY]
  args = [a for a in args if not any(a.split("=")[0] == e.split("=")[0] for e in extra)]
  args += [e.replace("FILE", file_path) for e in extra]
  result = subprocess.run([sys.executable, os.path.join(ROOT, "run_classifier.py"), *args],
                          capture_output=True, text=True, cwd=ROOT)
  lines = [l for l in result.stderr.splitlines() if l.strip()]
  left = sorted(os.listdir(out)) if os.path.isdir(out) else []
  kept = all((os.path.realpath(os.path.join(out, r)) == file_path if c == "LINK" else
               open(os.path.join(out, r), encoding="utf-8").read() == c)
              for r, c in planted.items() if os.path.lexists(os.path.join(out, r)))
  kept = kept and all(os.path.lexists(os.path.join(out, r)) for r in planted)
  with open(file_path, encoding="utf-8") as f:
    kept = kept and f.read() == "x"   # a link's target is never written through
  tops = {r.split("/")[0] for r in planted}
  row = {"case": name, "exit": result.returncode, "first_line": lines[0] if lines else "",
         "stderr_lines": len(lines), "traceback": "Traceback" in result.stderr,
         "left_behind": [n for n in left if n != ".lock" and n not in tops],
         "legitimate": legitimate, "planted_kept": kept}
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
                 not leftover and kept)
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
