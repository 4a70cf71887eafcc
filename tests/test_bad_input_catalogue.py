"""The bad-input catalogue: each case runs `run_classifier.py` as a real process.

For every bad input the rules are: a non-zero exit; exactly one line on stderr, besides
the progress display (on stderr since e7278b7: a run that fails after validation, such as
the diverging one, shows it first, and the one line must come last); no Python traceback;
nothing left behind (no output directory, or one holding nothing but the lock file and
what the case planted there, unchanged; a file that a flag or a planted link names is
never written through). A diverging run had passed validation: its settings and
TFRecords may stay (a rerun with a lower rate replaces them, as nothing was trained),
never a checkpoint, a result file or an export. A legitimate input ("reads") must train:
exit 0 with a checkpoints/ directory.

Tiny settings (2 steps, 64 positions) and the tiny random BERT of conftest.py keep each
case short: no case depends on the encoder's weights or vocabulary (the embedded MiniLM
is a Hugging Face directory like the tiny BERT, read by the same code). The child gets
this process's environment without TF_CPP_MIN_LOG_LEVEL (conftest.py sets it here), so
its stderr is what a user sees. Formerly benchmarks/bad_inputs.py; its last table is in
benchmarks/results/bad_inputs/.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # some 33 processes, 5 of them training: minutes on 2 cores

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "data", "sample")
TINY = ["--max_steps=2", "--max_seq_length=64", "--train_batch_size=8", "--do_train"]
# A line of laco_tf/progress.py's display ("[title: ]N/M units (P%)[ - ...]"), which a
# run that passed validation prints on stderr (off a terminal, one line per 5%) before it
# fails: not part of the one error line.
PROGRESS = re.compile(r"^(\w+: )?\d+/\d+ \w+s \(\d+%\)( - .*)?$")


def _sample_bytes(split="train"):
  with open(os.path.join(SAMPLE, f"{split}.jsonl"), "rb") as f:
    return f.read()


def _jsonl(directory, lines, raw=None):
  """The sample's dev and its first 40 training documents followed by `lines` (or `raw`
  bytes as train.jsonl)."""
  os.makedirs(directory, exist_ok=True)
  shutil.copy(os.path.join(SAMPLE, "dev.jsonl"), os.path.join(directory, "dev.jsonl"))
  good = _sample_bytes().splitlines()[:40]
  with open(os.path.join(directory, "train.jsonl"), "wb") as f:
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


def _directory_as_test_split(directory):
  _jsonl(directory, [])
  os.makedirs(os.path.join(directory, "test.jsonl"))
  return directory


def _lines(*lines):
  return lambda d: _jsonl(d, list(lines))


# (name, data (None: the sample; else a function of a fresh directory that writes the
# corpus there and returns it), extra flags ("FILE" is a plain file of the test's own)).
BAD = [
    ("malformed JSON line", _lines('{"text": "a", "labels": ["x"]'), []),
    ("text not a string", _lines('{"text": 3, "labels": ["x"]}'), []),
    ("labels not a list", _lines('{"text": "a", "labels": "x"}'), []),
    ("bytes not UTF-8", lambda d: _jsonl(d, [], raw=_sample_bytes()[:2000] + b"\xff\n"), []),
    ("empty text", _lines('{"text": "  ", "labels": ["x"]}'), []),
    ("zero-width-only text", _lines('{"text": "\\u200b\\u200b", "labels": ["x"]}'), []),
    ("blank label", _lines('{"text": "a b", "labels": [" "]}'), []),
    ("duplicate id", _lines('{"id": "train-0000", "text": "a", "labels": ["x"]}'), []),
    ("test.jsonl is a directory", _directory_as_test_split, []),
    ("unknown --encoding", None, ["--encoding=nope"]),
    ("--learning_rate=inf", None, ["--learning_rate=inf"]),
    ("--gamma=nan", None, ["--gamma=nan"]),
    ("--alpha=1.5", None, ["--alpha=1.5"]),
    ("--max_seq_length=10 (labels do not fit)", None, ["--max_seq_length=10"]),
    ("--window_size wider than the text", None, ["--window_size=60"]),
    ("diverging run (learning rate 1e30)", None,
     ["--learning_rate=1e30", "--head_learning_rate=1e30", "--max_steps=4"]),
    ("--output_dir is a file", None, ["--output_dir=FILE"]),
    ("--output_dir cannot be created", None, ["--output_dir=FILE/sub"]),
    ("--data_dir missing", None, ["--data_dir=/no/such/dir"]),
    ("unknown --task", None, ["--task=seq2seq"]),
    ("split label file with a byte-order mark inside", lambda d: _split(
        d, label_lines=[b"markets"] * 30 + [b"\xef\xbb\xbfmarkets"] * 30), []),
    ("label holding a line break", _lines('{"text": "a b", "labels": ["two\\nlines"]}'), []),
    ("cats.txt id leaving the corpus",
     lambda d: _reuters(d, "training/../../../../etc/hostname earn"), []),
    ("--output_dir holds the user's files", None, []),
    ("--output_dir/.lock is a link to a file", None, []),
    ("--export_dir is a file", None, ["--export_dir=FILE", "--do_export"]),
    ("--label_slots=-1", None, ["--label_slots=-1"]),
    ("--label_slots without joint embedding", None,
     ["--label_slots=4", "--nojoint_embedding", "--task=mltc"]),
    ("--label_join_layer at the encoder's layer count", None, ["--label_join_layer=2"]),
    ("--label_join_layer without joint embedding", None,
     ["--label_join_layer=1", "--nojoint_embedding", "--task=mltc"]),
]

READS = [
    ("UTF-8 byte-order mark", lambda d: _jsonl(d, [], raw=b"\xef\xbb\xbf" + _sample_bytes()),
     []),
    ("labels with surrounding spaces",
     _lines('{"text": "a health story", "labels": [" health"]}'), []),
    ("cp1252 corpus with --encoding", lambda d: _jsonl(d, [], raw=_sample_bytes().replace(
        b"local", "l\u00f6cal".encode("cp1252"))), ["--encoding=cp1252"]),
    ("split format with \\r line endings", lambda d: _split(d, b"\r"), []),
    ("dev documents without labels", _unlabelled_dev, []),
]

# What a case plants in its output directory before the run (path -> content, or "LINK":
# a symbolic link to the test's file); it must be there, unchanged, afterwards, and is not
# counted as left behind.
PLANTED = {
    "--output_dir holds the user's files": {"notes.txt": "my notes", "data/corpus.txt": "x"},
    "--output_dir/.lock is a link to a file": {".lock": "LINK"},
}


def _run_case(name, data, extra, tmp_path, bert):
  """Runs the case; returns (process result, output dir, the test's file, planted)."""
  out = str(tmp_path / "out")
  file_path = str(tmp_path / "a_file")
  with open(file_path, "w") as f:
    f.write("x")
  data_dir = data(str(tmp_path / "data")) if data else SAMPLE
  planted = PLANTED.get(name, {})
  for relative, content in planted.items():
    path = os.path.join(out, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if content == "LINK":
      os.symlink(file_path, path)
    else:
      with open(path, "w", encoding="utf-8") as f:
        f.write(content)
  args = [f"--data_dir={data_dir}", f"--output_dir={out}", f"--bert_model={bert}", *TINY]
  args = [a for a in args if not any(a.split("=")[0] == e.split("=")[0] for e in extra)]
  args += [e.replace("FILE", file_path) for e in extra]
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  result = subprocess.run([sys.executable, os.path.join(ROOT, "run_classifier.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env)
  return result, out, file_path, planted


def _planted_changes(out, file_path, planted):
  """What became of the planted files and of the test's own file (empty: all unchanged)."""
  changed = []
  for relative, content in planted.items():
    path = os.path.join(out, relative)
    if not os.path.lexists(path):
      changed.append(f"{relative} is gone")
    elif content == "LINK" and os.path.realpath(path) != file_path:
      changed.append(f"{relative} no longer links to {file_path}")
    elif content != "LINK" and open(path, encoding="utf-8").read() != content:
      changed.append(f"{relative} was rewritten")
  with open(file_path, encoding="utf-8") as f:
    if f.read() != "x":   # a link's target (or a file a flag names) is never written through
      changed.append(f"{file_path} (named by a flag or a planted link) was written")
  return changed


@pytest.mark.parametrize("name, data, extra", BAD, ids=[case[0] for case in BAD])
def test_a_bad_input_fails_in_one_line_and_leaves_nothing_behind(name, data, extra, tmp_path,
                                                                 tiny_bert):
  result, out, file_path, planted = _run_case(name, data, extra, tmp_path, tiny_bert)
  lines = [l for l in result.stderr.splitlines() if l.strip()]
  message = [l for l in lines if not PROGRESS.match(l)]
  seen = f"exit {result.returncode}; stderr:\n{result.stderr[-3000:]}"
  assert result.returncode != 0, f"rule 'non-zero exit' failed: {seen}"
  assert len(message) == 1 and message == lines[-1:], (
      f"rule 'exactly one line on stderr' failed ({len(message)} lines besides progress, "
      f"the last on stderr: {lines[-1:] == message}): {seen}")
  assert "Traceback" not in result.stderr, f"rule 'no traceback' failed: {seen}"
  tops = {r.split("/")[0] for r in planted}
  left = [n for n in (sorted(os.listdir(out)) if os.path.isdir(out) else [])
          if n != ".lock" and n not in tops]
  if name.startswith("diverging"):
    left = [n for n in left if n in ("checkpoints", "best", "export")
            or n.startswith(("eval_results", "predictions"))]
  assert not left, f"rule 'nothing left behind' failed: {out} holds {left}; {seen}"
  changed = _planted_changes(out, file_path, planted)
  assert not changed, f"rule 'what the case planted stays unchanged' failed: {changed}"


@pytest.mark.parametrize("name, data, extra", READS, ids=[case[0] for case in READS])
def test_a_legitimate_input_reads_and_trains(name, data, extra, tmp_path, tiny_bert):
  result, out, _, _ = _run_case(name, data, extra, tmp_path, tiny_bert)
  assert result.returncode == 0, (f"rule 'a legitimate input trains (exit 0)' failed: exit "
                                  f"{result.returncode}; stderr:\n{result.stderr[-3000:]}")
  left = sorted(os.listdir(out)) if os.path.isdir(out) else []
  assert "checkpoints" in left, (f"rule 'a legitimate input trains (checkpoints/ written)' "
                                 f"failed: {out} holds {left}")
