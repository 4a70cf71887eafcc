"""The rules of `text_files` in every reader: line breaks, byte order marks, the characters a
label may hold, Reuters story ids confined to the corpus, and unreadable files."""

import json
import os
import re

import pytest

from laco_tf.data import readers, text_files
from laco_tf.errors import InputError
from tests.test_reader_fuzz import write_corpus
from tests.test_readers import _write


def test_line_breaks_are_lf_crlf_and_cr_and_nothing_else():
  assert text_files.split_lines("a\nb\r\nc\rd\r\n") == ["a", "b", "c", "d"]
  assert text_files.split_lines("a\n\r\rb") == ["a", "", "", "b"]
  other = "a\fb\u2028c\u2029d\x85e\x0bf\x1cg"  # str.splitlines breaks at each; text here.
  assert text_files.split_lines(other + "\n") == [other]
  assert text_files.split_lines("") == []


@pytest.mark.parametrize("ending", ["\r\n", "\r"])
@pytest.mark.parametrize("fmt", readers.FORMATS)
def test_every_format_reads_the_same_documents_whatever_the_line_ending(tmp_path, fmt, ending):
  write_corpus(str(tmp_path / "lf"), fmt)
  want = readers.read_corpus(str(tmp_path / "lf"))
  for path in write_corpus(str(tmp_path / "other"), fmt):
    with open(path, "rb") as f:
      raw = f.read()
    with open(path, "wb") as f:
      f.write(raw.replace(b"\n", ending.encode()))
  got = readers.read_corpus(str(tmp_path / "other"))
  assert got == want and len(got["train"]) == 5


def test_form_feed_and_unicode_line_separator_stay_inside_a_text(tmp_path):
  _write(tmp_path / "text_train", "page one\fpage two\u2028same doc\n")
  _write(tmp_path / "label_train", "x\n")
  assert readers.read_corpus(str(tmp_path))["train"][0].text == \
      "page one\fpage two\u2028same doc"


def test_byte_order_mark_is_stripped_at_file_start_and_refused_inside_a_label(tmp_path):
  _write(tmp_path / "text_train", "a\nb\n")
  _write(tmp_path / "label_train", b"\xef\xbb\xbfearn\nmoney\n", "wb")
  assert [e.labels for e in readers.read_corpus(str(tmp_path))["train"]] == [("earn",),
                                                                            ("money",)]
  _write(tmp_path / "label_train", b"\xef\xbb\xbfearn\n\xef\xbb\xbfcurrency\n", "wb")
  with pytest.raises(InputError, match=r"label_train:2: label '\\ufeffcurrency' contains "
                     r"U\+FEFF \(ZERO WIDTH NO-BREAK SPACE\)"):
    readers.read_corpus(str(tmp_path))


@pytest.mark.parametrize("record,pattern", [
    ({"text": "a", "labels": ["x\ny"]}, r"label 'x\\ny' contains U\+000A"),
    ({"text": "a", "labels": ["x\r"]}, r"label 'x\\r' contains U\+000D"),
    ({"text": "a", "labels": ["\tx"]}, r"label '\\tx' contains U\+0009"),
    ({"text": "a", "labels": ["x\u2028"]}, r"label 'x\\u2028' contains U\+2028 \(LINE SEP"),
    ({"text": "a", "labels": ["x\u200b"]}, r"label 'x\\u200b' contains U\+200B \(ZERO WIDTH"),
    ({"text": "a", "labels": ["x\u202e"]}, r"label 'x\\u202e' contains U\+202E \(RIGHT-TO-LEFT"),
    ({"text": "a", "labels": ["x\ud800"]}, r"label 'x\\ud800' contains U\+D800, a lone"),
    ({"text": "a", "spo_list": [{"predicate": "p\x85"}]}, r"label 'p\\x85' contains U\+0085"),
    ({"text": "a\ud800", "labels": ["x"]}, r"text contains U\+D800, a lone surrogate"),
])
def test_labels_with_line_break_control_or_format_characters_are_refused(tmp_path, record,
                                                                        pattern):
  name = "train_data.json" if "spo_list" in record else "train.jsonl"
  _write(tmp_path / name, json.dumps(record) + "\n")
  with pytest.raises(InputError, match=f"{name}:1: " + pattern) as info:
    readers.read_corpus(str(tmp_path))
  assert "\n" not in str(info.value)


def test_joiners_that_spell_words_are_kept_in_labels(tmp_path):
  labels = ["\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "\U0001f468\u200d\U0001f4bb"]
  _write(tmp_path / "train.jsonl", json.dumps({"text": "a", "labels": labels}) + "\n")
  assert readers.read_corpus(str(tmp_path))["train"][0].labels == tuple(labels)


@pytest.mark.parametrize("doc_id", ["training/../../../../etc/hostname", "training/../test/9",
                                    "training//etc/hostname", "training/sub/1", "training/.",
                                    "training/"])
def test_reuters_ids_must_name_a_file_directly_under_training_or_test(tmp_path, doc_id):
  _write(tmp_path / "cats.txt", f"training/1 earn\n{doc_id} acq\n")
  _write(tmp_path / "training" / "1", "Story one")
  _write(tmp_path / "training" / "sub" / "1", "Story in a subdirectory")
  _write(tmp_path / "test" / "9", "Story nine")
  with pytest.raises(InputError, match=r"cats.txt:2: expected training/NAME or test/NAME"):
    readers.read_corpus(str(tmp_path))


def test_reuters_story_that_is_a_symlink_in_the_corpus_is_followed(tmp_path):
  _write(tmp_path / "shared" / "1", "Story one")
  _write(tmp_path / "corpus" / "cats.txt", "training/1 earn\n")
  os.makedirs(tmp_path / "corpus" / "training")
  os.symlink(tmp_path / "shared" / "1", tmp_path / "corpus" / "training" / "1")
  assert readers.read_corpus(str(tmp_path / "corpus"))["train"][0].text == "Story one"


def _deny_reading(monkeypatch, denied):
  """Makes opening `denied` fail as a file without read permission does (tests may run as
  root, whom chmod does not stop)."""
  real_open = open

  def open_denying(path, *args, **kwargs):
    if str(path) == denied:
      raise PermissionError(13, "Permission denied", denied)
    return real_open(path, *args, **kwargs)
  monkeypatch.setattr("builtins.open", open_denying)


@pytest.mark.parametrize("fmt,target", [("jsonl", "train.jsonl"), ("split", "label_train"),
                                        ("laco", "test_data.json"), ("reuters", "cats.txt"),
                                        ("reuters", "training/1")])
def test_unreadable_data_file_is_one_line_error_naming_it(tmp_path, monkeypatch, fmt, target):
  write_corpus(str(tmp_path / "c"), fmt)
  denied = str(tmp_path / "c" / target)
  _deny_reading(monkeypatch, denied)
  with pytest.raises(InputError,
                     match=rf"^{re.escape(denied)}: cannot read \(Permission denied\)$"):
    readers.read_corpus(str(tmp_path / "c"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_data_file_without_read_permission_is_one_line_error(tmp_path):
  _write(tmp_path / "train.jsonl", '{"text": "a", "labels": ["x"]}\n')
  os.chmod(tmp_path / "train.jsonl", 0)
  with pytest.raises(InputError, match=r"train.jsonl: cannot read \(Permission denied\)$"):
    readers.read_corpus(str(tmp_path))


def test_label_descriptions_file_follows_the_same_line_rules(tmp_path, monkeypatch):
  from laco_tf.modeling import label_tokens  # pylint: disable=import-outside-toplevel
  path = str(tmp_path / "desc.tsv")
  _write(path, b"\xef\xbb\xbfa\tfirst\rb\tsecond\fpage\r", "wb")
  assert label_tokens.read_descriptions(path, ["a", "b"]) == {"a": "first",
                                                               "b": "second\fpage"}
  _deny_reading(monkeypatch, path)
  with pytest.raises(InputError, match=r"desc.tsv: cannot read \(Permission denied\)$"):
    label_tokens.read_descriptions(path, ["a", "b"])
