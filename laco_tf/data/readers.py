"""Reads multi-label corpora from disk into `Example`s (first step of the data flow).

Four layouts are recognised in a data directory (see README, "Data formats"):

* ``split``: ``text_{train,val,test}`` + ``label_{train,val,test}`` (AAPD / RCV1-V2 as
  released by Yang et al. 2018): one document per line, space-separated labels on the
  matching line of the label file.
* ``jsonl``: ``{train,dev,test}.jsonl``, ``{"id": optional, "text": str, "labels": [str]}``.
* ``laco``: the authors' release, ``{train,dev,test}_data.json``: JSON lines with
  ``"text"`` and ``"spo_list"``, each entry's ``"predicate"`` being a label.
* ``reuters``: NLTK's Reuters-21578 layout, ``cats.txt`` + one file per story under
  ``training/`` and ``test/``.

Only the training split is required. Every malformed input raises `InputError` naming
the file and line. Lines, byte order marks and label characters follow `text_files`.
"""

import codecs
import dataclasses
import json
import os
from typing import Dict, List, Optional

from laco_tf import preflight
from laco_tf.data.text_files import check_label, read_lines, refused_character
from laco_tf.errors import InputError

FORMATS = ("split", "jsonl", "laco", "reuters")
SPLITS = ("train", "dev", "test")


@dataclasses.dataclass(frozen=True)
class Example:
  """One document: `guid` is unique within its split, `labels` keep file order."""
  guid: str
  text: str
  labels: tuple


# Files whose presence identifies a format, and the per-split file names.
_SPLIT_FILES = {
    "split": {"train": ("text_train", "label_train"), "dev": ("text_val", "label_val"),
              "test": ("text_test", "label_test")},
    "jsonl": {"train": ("train.jsonl",), "dev": ("dev.jsonl",), "test": ("test.jsonl",)},
    "laco": {"train": ("train_data.json",), "dev": ("dev_data.json",),
             "test": ("test_data.json",)},
    "reuters": {"train": ("cats.txt",), "dev": ("cats.txt",), "test": ("cats.txt",)},
}


def detect_format(data_dir: str) -> str:
  """Returns the one format whose training files are in `data_dir`."""
  preflight.check_data_dir(data_dir)
  # Any one training file claims a format, so a missing partner gets a precise error.
  found = [f for f in FORMATS
           if any(os.path.isfile(os.path.join(data_dir, n)) for n in _SPLIT_FILES[f]["train"])]
  if not found:
    expected = "; ".join(f"{f}: {' + '.join(_SPLIT_FILES[f]['train'])}" for f in FORMATS)
    raise InputError(f"--data_dir={data_dir}: no known data format found (expected the "
                     f"training files of one of: {expected})")
  if len(found) > 1:
    raise InputError(f"--data_dir={data_dir}: files of several formats ({', '.join(found)}); "
                     "choose one with --data_format")
  return found[0]


# NLTK reads its Reuters-21578 distribution as ISO-8859-2 (one test story, test/17980,
# holds the byte 0xfc); every byte decodes in it.
REUTERS_ENCODING = "iso-8859-2"


def check_encoding(encoding: str) -> None:
  """Refuses an --encoding that Python does not know, in one line."""
  try:
    codecs.lookup(encoding)
  except LookupError:
    raise InputError(f"--encoding={encoding}: unknown to Python (expected e.g. utf-8, "
                     "latin-1, cp1252)") from None


def _check_text(text: str, where: str) -> str:
  if not text.strip():
    raise InputError(f"{where}: empty text (every document needs some text)")
  if not any(c.isprintable() and not c.isspace() for c in text):
    raise InputError(f"{where}: no readable character in the text (only spaces, control or "
                     "format characters such as zero-width spaces)")
  surrogate = next((c for c in text if 0xD800 <= ord(c) <= 0xDFFF), None)
  if surrogate:  # Only JSON escapes make one; no encoder could write the text.
    raise InputError(f"{where}: text contains {refused_character(surrogate)}")
  return text


def _check_labels(labels, where: str) -> tuple:
  """Labels without surrounding spaces (" health" is "health") and repeats, in file order;
  see `text_files.check_label` for the labels refused."""
  return tuple(dict.fromkeys(check_label(l, where) for l in labels))


def _present(path: str) -> bool:
  """Whether the split file `path` is there; something else by that name is an error."""
  if os.path.isfile(path):
    return True
  if os.path.exists(path):
    raise InputError(f"{path}: not a regular file (expected a split file or nothing)")
  return False


def _read_split_format(data_dir: str, split: str,
                       encoding: str = "utf-8") -> Optional[List[Example]]:
  text_name, label_name = _SPLIT_FILES["split"][split]
  text_path, label_path = (os.path.join(data_dir, n) for n in (text_name, label_name))
  if not _present(text_path) and not _present(label_path):
    return None
  for path in (text_path, label_path):
    if not os.path.isfile(path):
      raise InputError(f"{path}: missing (the {split} split needs both {text_name} and "
                       f"{label_name})")
  texts, labels = read_lines(text_path, encoding), read_lines(label_path, encoding)
  if len(texts) != len(labels):
    raise InputError(f"{label_path}: {len(labels)} lines, but {text_path} has {len(texts)} "
                     "(expected one label line per document)")
  return [Example(f"{split}-{i}", _check_text(t, f"{text_path}:{i + 1}"),
                  _check_labels(l.split(), f"{label_path}:{i + 1}"))
          for i, (t, l) in enumerate(zip(texts, labels))]


def _parse_json_line(line: str, where: str) -> dict:
  try:
    record = json.loads(line)
  except json.JSONDecodeError as e:
    raise InputError(f"{where}: malformed JSON ({e.msg}: column {e.colno})") from None
  if not isinstance(record, dict):
    raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
  return record


def _read_jsonl_format(data_dir: str, split: str,
                       encoding: str = "utf-8") -> Optional[List[Example]]:
  path = os.path.join(data_dir, _SPLIT_FILES["jsonl"][split][0])
  if not _present(path):
    return None
  examples, seen = [], set()
  for number, line in enumerate(read_lines(path, encoding), start=1):
    where = f"{path}:{number}"
    if not line.strip():
      continue  # Blank lines (e.g. a trailing one) are not documents.
    record = _parse_json_line(line, where)
    text, labels = record.get("text"), record.get("labels")
    if not isinstance(text, str):
      raise InputError(f'{where}: "text" must be a string')
    if not isinstance(labels, list) or not all(isinstance(l, str) for l in labels):
      raise InputError(f'{where}: "labels" must be a list of strings')
    guid = str(record["id"]) if record.get("id") is not None else f"{split}-{number - 1}"
    if guid in seen:
      raise InputError(f'{where}: duplicate "id" {guid!r}')
    seen.add(guid)
    examples.append(Example(guid, _check_text(text, where), _check_labels(labels, where)))
  return examples


def _read_laco_format(data_dir: str, split: str,
                      encoding: str = "utf-8") -> Optional[List[Example]]:
  path = os.path.join(data_dir, _SPLIT_FILES["laco"][split][0])
  if not _present(path):
    return None
  examples = []
  for number, line in enumerate(read_lines(path, encoding), start=1):
    where = f"{path}:{number}"
    if not line.strip():
      continue
    record = _parse_json_line(line, where)
    text, spo = record.get("text"), record.get("spo_list")
    if not isinstance(text, str):
      raise InputError(f'{where}: "text" must be a string')
    if not isinstance(spo, list) or not all(
        isinstance(s, dict) and isinstance(s.get("predicate"), str) for s in spo):
      raise InputError(f'{where}: "spo_list" must be a list of objects with a string '
                       '"predicate"')
    labels = _check_labels([s["predicate"] for s in spo], where)
    examples.append(Example(f"{split}-{number - 1}", _check_text(text, where), labels))
  return examples


def _reuters_story(data_dir: str, doc_id: str, where: str) -> str:
  """The path of story `doc_id` ("training/NAME" or "test/NAME").

  NAME must be one file name: an id with "..", "/" or nothing after the folder would read
  a file outside the corpus's two story folders (or none), so it is refused. Symbolic links
  in those folders are followed: whoever assembled the corpus placed them.
  """
  folder, _, name = doc_id.partition("/")
  if folder not in ("training", "test") or name in ("", ".", "..") or "/" in name:
    raise InputError(f"{where}: expected training/NAME or test/NAME (NAME a file in that "
                     f"folder, as NLTK's ids), got {doc_id!r}")
  path = os.path.join(data_dir, folder, name)
  if not os.path.isfile(path):
    raise InputError(f"{where}: {path} listed but missing")
  return path


def _read_reuters_format(data_dir: str, split: str,
                         encoding: str = "utf-8") -> Optional[List[Example]]:
  del encoding  # NLTK's distribution has one encoding (REUTERS_ENCODING), whatever the flag.
  if split == "dev":
    return None  # NLTK's layout has training/ and test/ only.
  prefix = {"train": "training/", "test": "test/"}[split]
  cats = os.path.join(data_dir, "cats.txt")
  if not _present(cats):
    return None
  examples = []
  for number, line in enumerate(read_lines(cats, REUTERS_ENCODING), start=1):
    fields, where = line.split(), f"{cats}:{number}"
    if not fields:
      continue
    doc_path = _reuters_story(data_dir, fields[0], where)
    if not fields[0].startswith(prefix):
      continue
    text = "\n".join(read_lines(doc_path, REUTERS_ENCODING))
    examples.append(Example(fields[0][len(prefix):], _check_text(text, doc_path),
                            _check_labels(fields[1:], where)))
  return examples or None


_READERS = {"split": _read_split_format, "jsonl": _read_jsonl_format,
            "laco": _read_laco_format, "reuters": _read_reuters_format}


def read_corpus(data_dir: str, data_format: Optional[str] = None,
                encoding: str = "utf-8") -> Dict[str, List[Example]]:
  """Reads every split present; returns {"train": [...], "dev": [...] or absent, ...}.

  Raises `InputError` if the training split is missing or empty.
  """
  data_format = data_format or detect_format(data_dir)
  if data_format not in FORMATS:
    raise InputError(f"--data_format={data_format}: unknown (expected one of "
                     f"{', '.join(FORMATS)})")
  preflight.check_data_dir(data_dir)
  splits = {}
  for split in SPLITS:
    examples = _READERS[data_format](data_dir, split, encoding)
    if examples:  # An empty dev/test file counts as no split (dev is then carved).
      splits[split] = examples
  if not splits.get("train"):
    names = " + ".join(_SPLIT_FILES[data_format]["train"])
    raise InputError(f"--data_dir={data_dir}: no training documents for format "
                     f"{data_format!r} (expected {names})")
  return splits
