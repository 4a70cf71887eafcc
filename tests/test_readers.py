"""Readers: each data format, dev carving, unseen labels, and every bad input."""

import json
import os

import pytest

from laco_tf.data import corpus_splits, readers
from laco_tf.errors import InputError


def _write(path, content, mode="w"):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
    f.write(content)


def test_split_format_reads_aligned_text_and_label_files(tmp_path):
  _write(tmp_path / "text_train", "first doc\nsecond doc\n")
  _write(tmp_path / "label_train", "cs.LG cs.AI\nmath.ST\n")
  _write(tmp_path / "text_test", "third\n")
  _write(tmp_path / "label_test", "cs.AI\n")
  splits = readers.read_corpus(str(tmp_path))
  assert readers.detect_format(str(tmp_path)) == "split"
  assert [(e.text, e.labels) for e in splits["train"]] == [
      ("first doc", ("cs.LG", "cs.AI")), ("second doc", ("math.ST",))]
  assert "dev" not in splits and splits["test"][0].labels == ("cs.AI",)


def test_jsonl_format_reads_ids_text_and_labels(tmp_path):
  _write(tmp_path / "train.jsonl",
         json.dumps({"id": "a", "text": "x y", "labels": ["l1", "l2"]}) + "\n" +
         json.dumps({"text": "z", "labels": []}) + "\n\n")
  splits = readers.read_corpus(str(tmp_path))
  assert splits["train"] == [readers.Example("a", "x y", ("l1", "l2")),
                             readers.Example("train-1", "z", ())]


def test_laco_release_format_takes_labels_from_spo_list_predicates(tmp_path):
  _write(tmp_path / "train_data.json", json.dumps(
      {"text": "doc", "spo_list": [{"predicate": "p1", "subject": "s"},
                                   {"predicate": "p2"}, {"predicate": "p1"}]}) + "\n")
  assert readers.read_corpus(str(tmp_path))["train"][0].labels == ("p1", "p2")


def test_reuters_nltk_layout_reads_cats_and_story_files(tmp_path):
  _write(tmp_path / "cats.txt", "training/1 earn acq\ntraining/5 grain\ntest/9 earn\n")
  _write(tmp_path / "training" / "1", "Story one\nline two")
  _write(tmp_path / "training" / "5", "Story five")
  _write(tmp_path / "test" / "9", "Story nine")
  splits = readers.read_corpus(str(tmp_path))
  assert [(e.guid, e.text, e.labels) for e in splits["train"]] == [
      ("1", "Story one\nline two", ("earn", "acq")), ("5", "Story five", ("grain",))]
  assert [e.guid for e in splits["test"]] == ["9"]


def test_reuters_stories_are_read_as_nltk_reads_them_iso_8859_2(tmp_path):
  # NLTK's test/17980 holds the byte 0xfc, which is u-umlaut in ISO-8859-2.
  _write(tmp_path / "cats.txt", "training/1 earn\ntest/17980 acq\n")
  _write(tmp_path / "training" / "1", "Story one")
  _write(tmp_path / "test" / "17980", b"M\xfcnchen Re said", mode="wb")
  splits = readers.read_corpus(str(tmp_path))
  assert splits["test"][0].text == "M\u00fcnchen Re said"


def test_labels_are_read_without_surrounding_spaces(tmp_path):
  _write(tmp_path / "train.jsonl", '{"text": "a", "labels": [" health", "health ", "x"]}\n')
  assert readers.read_corpus(str(tmp_path))["train"][0].labels == ("health", "x")


def test_encoding_flag_reads_other_encodings(tmp_path):
  _write(tmp_path / "train.jsonl", json.dumps({"text": "caf\u00e9", "labels": ["x"]},
                                              ensure_ascii=False).encode("cp1252") + b"\n",
         mode="wb")
  with pytest.raises(InputError, match=r"train.jsonl:1: not valid UTF-8"):
    readers.read_corpus(str(tmp_path))
  assert readers.read_corpus(str(tmp_path), encoding="cp1252")["train"][0].text == "caf\u00e9"


def test_utf8_byte_order_mark_is_accepted(tmp_path):
  _write(tmp_path / "train.jsonl", b"\xef\xbb\xbf" + json.dumps(
      {"id": "a", "text": "x", "labels": ["l"]}).encode() + b"\n", mode="wb")
  assert readers.read_corpus(str(tmp_path))["train"] == [readers.Example("a", "x", ("l",))]


def test_data_format_flag_forces_a_format_when_several_are_present(tmp_path):
  _write(tmp_path / "train.jsonl", json.dumps({"text": "a", "labels": ["x"]}) + "\n")
  _write(tmp_path / "text_train", "b\n")
  _write(tmp_path / "label_train", "y\n")
  with pytest.raises(InputError, match="several formats .*--data_format"):
    readers.read_corpus(str(tmp_path))
  assert readers.read_corpus(str(tmp_path), "split")["train"][0].labels == ("y",)


def test_dev_carve_is_deterministic_and_disjoint():
  train = [readers.Example(str(i), f"t{i}", ("a",)) for i in range(50)]
  rest, dev = corpus_splits.carve_dev_split(train, 0.2, seed=3)
  rest2, dev2 = corpus_splits.carve_dev_split(train, 0.2, seed=3)
  assert len(dev) == 10 and len(rest) == 40 and dev == dev2 and rest == rest2
  assert not {e.guid for e in dev} & {e.guid for e in rest}
  assert corpus_splits.carve_dev_split(train, 0.2, seed=4)[1] != dev


def test_labels_unseen_in_training_are_dropped_and_counted():
  examples = [readers.Example("1", "t", ("a", "zz")), readers.Example("2", "t", ("zz", "yy"))]
  kept, counts = corpus_splits.drop_unseen_labels(examples, ["a", "b"])
  assert [e.labels for e in kept] == [("a",), ()]
  assert counts == {"zz": 2, "yy": 1}


def test_label_list_is_sorted_over_training_labels():
  train = [readers.Example("1", "t", ("b", "a")), readers.Example("2", "t", ("c",))]
  assert corpus_splits.label_list(train) == ["a", "b", "c"]


@pytest.mark.parametrize("setup,pattern", [
    (lambda d: None, r"no known data format found"),
    (lambda d: _write(d / "text_train", "a\n"), r"label_train: missing"),
    (lambda d: _write(d / "train.jsonl", '{"text": "a", "labels": ["x"]}\n{"text": \n'),
     r"train.jsonl:2: malformed JSON \(Expecting value: column 10\)"),
    (lambda d: _write(d / "train.jsonl", '{"text": "a, "labels": ["x"]}\n'),
     r"train.jsonl:1: malformed JSON \(Expecting ',' delimiter: column 15\)"),
    (lambda d: _write(d / "train.jsonl", '{"text": "abc\n'),
     r"train.jsonl:1: malformed JSON \(Unterminated string starting at: column 10\)$"),
    (lambda d: _write(d / "train.jsonl", b'{"text": "ok", "labels": ["x"]}\n'
                      b'{"text": "caf\xe9", "labels": ["x"]}\n', "wb"),
     r"train.jsonl:2: not valid UTF-8 \(byte 0xe9 at column 14\)"),
    (lambda d: _write(d / "train.jsonl", '{"text": "  ", "labels": ["x"]}\n'),
     r"train.jsonl:1: empty text"),
    (lambda d: _write(d / "train.jsonl", '{"text": "a", "labels": "x"}\n'),
     r'train.jsonl:1: "labels" must be a list of strings'),
    (lambda d: (_write(d / "text_train", "a\nb\n"), _write(d / "label_train", "x\n")),
     r"label_train: 1 lines, but .*text_train has 2"),
    (lambda d: _write(d / "cats.txt", "training/7 earn\n"), r"cats.txt:1: .*training/7 listed but missing"),
    (lambda d: _write(d / "train.jsonl", '{"text": "a", "labels": []}\n'),
     r"the training split has no labels at all"),
    (lambda d: _write(d / "train.jsonl", '{"text": "\\u200b\\u200b\\u0007", "labels": ["x"]}\n'),
     r"train.jsonl:1: no readable character in the text"),
    (lambda d: _write(d / "train.jsonl", '{"text": "a", "labels": ["x", " "]}\n'),
     r"train.jsonl:1: an empty label"),
    (lambda d: (_write(d / "train.jsonl", '{"text": "a", "labels": ["x"]}\n'),
                os.makedirs(d / "test.jsonl")),
     r"test.jsonl: not a regular file"),
])
def test_bad_input_gives_one_line_error_naming_file_and_line(tmp_path, setup, pattern):
  setup(tmp_path)
  with pytest.raises(InputError, match=pattern) as info:
    splits = readers.read_corpus(str(tmp_path))
    corpus_splits.label_list(splits["train"])
  assert "\n" not in str(info.value)


def test_missing_data_dir_and_unknown_format_are_errors(tmp_path):
  with pytest.raises(InputError, match="--data_dir is required"):
    readers.detect_format("")
  with pytest.raises(InputError, match=r"--data_dir=.*nope: no such directory"):
    readers.read_corpus(str(tmp_path / "nope"))
  _write(tmp_path / "train.jsonl", '{"text": "a", "labels": ["x"]}\n')
  with pytest.raises(InputError, match="--data_format=csv: unknown"):
    readers.read_corpus(str(tmp_path), "csv")


def test_training_document_without_labels_is_kept(tmp_path):
  _write(tmp_path / "train.jsonl", '{"text": "a", "labels": ["x"]}\n{"text": "b", "labels": []}\n')
  assert [e.labels for e in readers.read_corpus(str(tmp_path))["train"]] == [("x",), ()]


def test_empty_dev_file_counts_as_no_dev_split(tmp_path):
  _write(tmp_path / "train.jsonl", '{"text": "a", "labels": ["x"]}\n{"text": "b", "labels": ["x"]}\n')
  _write(tmp_path / "dev.jsonl", "\n")
  splits, labels, _ = corpus_splits.load_splits(str(tmp_path), None, 0.5, 0)
  assert len(splits["train"]) == 1 and len(splits["dev"]) == 1 and labels == ["x"]


def test_forced_reuters_format_without_cats_file_is_a_one_line_error(tmp_path):
  with pytest.raises(InputError, match=r"no training documents for format 'reuters' "
                     r"\(expected cats.txt\)"):
    readers.read_corpus(str(tmp_path), "reuters")
