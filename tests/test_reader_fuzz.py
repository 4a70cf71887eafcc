"""Property-based fuzzing of every reader (hypothesis, fixed seed).

A valid small corpus in each format gets one of the corruptions below; reading it (through
`load_splits`, as a run does) must give a valid corpus or raise our one-line InputError,
never any other exception. Line-ending changes must give the very same corpus.
"""

import json
import os
import shutil

from hypothesis import HealthCheck, given, settings, strategies as st

from laco_tf.data import corpus_splits, text_files
from laco_tf.errors import InputError

FORMATS = ("split", "jsonl", "laco", "reuters")
DOCS = [("Oil prices rose sharply today.", ["crude", "energy"]),
        ("The central bank cut its rates.", ["rates"]),
        ("Wheat and corn exports grew.", ["grain", "trade"]),
        ("Shares of the miner fell.", ["equities"]),
        ("OPEC met in Vienna on output.", ["crude"]),
        ("Bond yields eased on the news.", ["rates", "bonds"])]


def write_corpus(directory, fmt):
  """Writes DOCS as train (and test) in `fmt`; returns the paths a corruption may target."""
  os.makedirs(directory)
  train, test = DOCS[:5], DOCS[5:]
  paths = []

  def put(name, lines):
    path = os.path.join(directory, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
      f.write("".join(l + "\n" for l in lines))
    paths.append(path)
  if fmt == "split":
    for split, docs in (("train", train), ("test", test)):
      put(f"text_{split}", [t for t, _ in docs])
      put(f"label_{split}", [" ".join(l) for _, l in docs])
  elif fmt == "jsonl":
    for split, docs in (("train", train), ("test", test)):
      put(f"{split}.jsonl", [json.dumps({"id": f"{split}{i}", "text": t, "labels": l})
                             for i, (t, l) in enumerate(docs)])
  elif fmt == "laco":
    for split, docs in (("train", train), ("test", test)):
      put(f"{split}_data.json", [json.dumps({"text": t, "spo_list": [
          {"predicate": p, "subject": "s"} for p in l]}) for t, l in docs])
  else:
    lines = []
    for split, docs, base in (("training", train, 1), ("test", test, 100)):
      for i, (t, l) in enumerate(docs):
        put(f"{split}/{base + i}", [t])
        lines.append(f"{split}/{base + i} " + " ".join(l))
    put("cats.txt", lines)
  return paths


def _lines(raw):
  return raw.split(b"\n")


def _json_edit(edit):
  """A corruption of one parsed JSON line (lines that do not parse are left alone)."""
  def apply(raw, data):
    lines = _lines(raw)
    i = data.draw(st.integers(0, max(len(lines) - 1, 0)))
    try:
      record = json.loads(lines[i])
    except (ValueError, UnicodeDecodeError):
      return raw
    if not isinstance(record, dict):
      return raw
    edit(record, data)
    lines[i] = json.dumps(record).encode()
    return b"\n".join(lines)
  return apply


def _set_field(value_strategy):
  def edit(record, data):
    key = data.draw(st.sampled_from(sorted(record) + ["labels", "text", "spo_list", "id"]))
    record[key] = data.draw(value_strategy)
  return edit


def _drop_field(record, data):
  if record:
    del record[data.draw(st.sampled_from(sorted(record)))]


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) |
                       st.text(max_size=8), lambda c: st.lists(c, max_size=3) |
                       st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=6)

# name -> f(raw bytes, data) -> corrupted bytes. 28 classes.
CORRUPTIONS = {
    "truncate": lambda r, d: r[:d.draw(st.integers(0, len(r)))],
    "flip_byte": lambda r, d: (r if not r else (lambda i: r[:i] + bytes([r[i] ^ d.draw(
        st.integers(1, 255))]) + r[i + 1:])(d.draw(st.integers(0, len(r) - 1)))),
    "insert_bytes": lambda r, d: (lambda i: r[:i] + d.draw(st.binary(min_size=1, max_size=6))
                                  + r[i:])(d.draw(st.integers(0, len(r)))),
    "delete_line": lambda r, d: b"\n".join(
        (lambda ls, i: ls[:i] + ls[i + 1:])(_lines(r), d.draw(st.integers(0, len(_lines(r)))))),
    "duplicate_line": lambda r, d: b"\n".join(
        (lambda ls, i: ls[:i + 1] + ls[i:])(_lines(r),
                                            d.draw(st.integers(0, len(_lines(r)) - 1)))),
    "swap_lines": lambda r, d: b"\n".join(sorted(_lines(r), key=lambda _: d.draw(
        st.integers(0, 3)))),
    "empty_file": lambda r, d: b"",
    "only_newlines": lambda r, d: b"\n" * d.draw(st.integers(1, 4)),
    "utf16": lambda r, d: r.decode("utf-8", "replace").encode("utf-16"),
    "latin1_accents": lambda r, d: r.replace(b"e", "\u00e9".encode("latin-1"), 2),
    "utf8_bom": lambda r, d: b"\xef\xbb\xbf" + r,
    "crlf": lambda r, d: r.replace(b"\n", b"\r\n"),
    "cr_only": lambda r, d: r.replace(b"\n", b"\r"),
    "bom_mid_file": lambda r, d: r.replace(b"\n", b"\n\xef\xbb\xbf", d.draw(st.integers(1, 3))),
    "label_characters": lambda r, d: r.replace(b"rates", d.draw(st.sampled_from(
        ["ra\\ntes", "rates\\r", "\\ufeffrates", "ra\\u2028tes", "ra\\u0000tes",  # JSON
         "ra\x00tes", "\ufeffrates", "ra\x85tes", "ra\u200btes"])).encode()),  # Raw.
    "escaping_story_id": lambda r, d: r.replace(b"training/1 ", d.draw(st.sampled_from(
        [b"training/../cats.txt ", b"training/../test/100 ", b"training//etc/hostname "]))),
    "nul_bytes": lambda r, d: r.replace(b" ", b"\x00", d.draw(st.integers(1, 3))),
    "garbage_line": lambda r, d: r + d.draw(st.text(max_size=20)).encode("utf-8") + b"\n",
    "zero_width_text": lambda r, d: r.replace(b"Oil prices rose sharply today.",
                                              "\u200b\u200b".encode()),
    "whitespace_text": lambda r, d: r.replace(b"The central bank cut its rates.", b"   "),
    "long_line": lambda r, d: r.replace(b"Wheat", b"Wheat " * 5000, 1),
    "random_unicode": lambda r, d: r.replace(b"Shares", d.draw(st.text(
        min_size=1, max_size=10)).encode("utf-8", "surrogatepass"), 1),
    "field_wrong_type": _json_edit(_set_field(JSONISH)),
    "field_missing": _json_edit(_drop_field),
    "labels_not_strings": _json_edit(lambda rec, d: rec.__setitem__(
        "labels", d.draw(st.lists(JSONISH, max_size=3)))),
    "spo_wrong_shape": _json_edit(lambda rec, d: rec.__setitem__(
        "spo_list", d.draw(st.lists(st.dictionaries(st.sampled_from(["predicate", "x"]),
                                                    JSONISH, max_size=2), max_size=3)))),
    "blank_labels": lambda r, d: r.replace(b'"rates"', b'"  "').replace(b" rates", b" "),
    "id_collision": lambda r, d: r.replace(b'"train1"', b'"train0"'),
}
STRUCTURAL = ("file_to_directory", "delete_file")


def _check_valid(splits, labels):
  assert splits["train"] and labels == sorted(set(labels))
  for examples in splits.values():
    for e in examples:
      assert isinstance(e.text, str) and any(c.isprintable() and not c.isspace()
                                             for c in e.text)
      assert not any(0xD800 <= ord(c) <= 0xDFFF for c in e.text)
      assert all(isinstance(l, str) and l and l == l.strip() for l in e.labels)
      assert not any(text_files.refused_character(l) for l in e.labels)


@settings(derandomize=True, max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(data=st.data(), fmt=st.sampled_from(FORMATS),
       corruption=st.sampled_from(sorted(CORRUPTIONS) + list(STRUCTURAL)))
def test_corrupted_corpora_read_validly_or_fail_with_one_line(tmp_path_factory, data, fmt,
                                                              corruption):
  directory = str(tmp_path_factory.mktemp("fuzz") / "corpus")
  paths = write_corpus(directory, fmt)
  target = data.draw(st.sampled_from(paths))
  same = corruption in ("crlf", "cr_only")
  clean = corpus_splits.load_splits(directory, None, 0.2, 0) if same else None
  if corruption == "file_to_directory":
    os.remove(target)
    os.makedirs(target)
  elif corruption == "delete_file":
    os.remove(target)
  else:
    with open(target, "rb") as f:
      raw = f.read()
    with open(target, "wb") as f:
      f.write(CORRUPTIONS[corruption](raw, data))
  try:
    splits, labels, _ = corpus_splits.load_splits(directory, None, 0.2, 0)
  except InputError as e:
    assert "\n" not in str(e) and str(e)
    assert not same, f"{corruption} made a valid corpus unreadable: {e}"
  else:
    _check_valid(splits, labels)
    assert not same or (splits, labels) == clean[:2]
  finally:
    shutil.rmtree(directory)


def test_there_are_at_least_twenty_corruption_classes():
  assert len(CORRUPTIONS) + len(STRUCTURAL) >= 20
