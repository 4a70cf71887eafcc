"""laco_tf/rerun.py: what a rerun keeps, and what makes it score or export again."""

import dataclasses
import json

from laco_tf import rerun
from laco_tf.run_settings import RunOptions


def _checkpoint(tmp_path, data=b"weights"):
  (tmp_path / "best").mkdir(exist_ok=True)
  (tmp_path / "best" / "ckpt-7.index").write_bytes(b"index")
  (tmp_path / "best" / "ckpt-7.data-00000-of-00001").write_bytes(data)
  (tmp_path / "best" / "ckpt-70.index").write_bytes(b"another step's")
  return str(tmp_path / "best" / "ckpt-7")


def test_the_fingerprint_follows_weights_options_and_metadata_not_what_to_do_now(tmp_path):
  opts = RunOptions(data_dir="d", output_dir=str(tmp_path))
  prefix = _checkpoint(tmp_path)
  base = rerun.weights_fingerprint(opts, prefix, {"labels": ["a"]})
  same = [dataclasses.replace(opts, do_train=False, do_export=True, max_steps=9,
                              output_dir="elsewhere", early_stopping_patience=2)]
  assert {rerun.weights_fingerprint(o, prefix, {"labels": ["a"]}) for o in same} == {base}
  # Another step's checkpoint file of the same folder is not this checkpoint's.
  (tmp_path / "best" / "ckpt-70.index").write_bytes(b"changed")
  assert rerun.weights_fingerprint(opts, prefix, {"labels": ["a"]}) == base
  changed = [rerun.weights_fingerprint(dataclasses.replace(opts, threshold=0.3), prefix,
                                       {"labels": ["a"]}),
             rerun.weights_fingerprint(dataclasses.replace(opts, label_inference="shortlist"),
                                       prefix, {"labels": ["a"]}),
             rerun.weights_fingerprint(opts, prefix, {"labels": ["b"]}),
             rerun.weights_fingerprint(opts, _checkpoint(tmp_path, b"other"), {"labels": ["a"]})]
  assert base not in changed and len(set(changed)) == 4
  rule = {"strategy": "fixed", "at_least_one": False, "thresholds": {"a": 0.5}}
  assert rerun.with_rule(base, rule) != rerun.with_rule(
      base, {**rule, "at_least_one": True})


def test_results_rule_and_export_are_kept_only_with_their_fingerprint(tmp_path):
  (tmp_path / "eval_results_dev.json").write_text(json.dumps({"micro_f1": 0.5, "fingerprint": "f"}))
  assert rerun.kept_result(str(tmp_path), "dev", "f") is None  # no predictions file
  (tmp_path / "predictions_dev.jsonl").write_text("")
  assert rerun.kept_result(str(tmp_path), "dev", "f")["micro_f1"] == 0.5
  assert rerun.kept_result(str(tmp_path), "dev", "g") is None
  (tmp_path / "thresholds.json").write_text(json.dumps(
      {"thresholds": {"a": 0.2, "b": 0.7}, "fingerprint": "w"}))
  assert rerun.kept_rule(str(tmp_path), "w", ["b", "a"]) == [0.7, 0.2]
  assert rerun.kept_rule(str(tmp_path), "v", ["b", "a"]) is None
  for version, fingerprint in (("1", "f"), ("2", "g")):
    (tmp_path / "export" / version / "assets.extra").mkdir(parents=True)
    (tmp_path / "export" / version / "assets.extra" / "laco_metadata.json").write_text(
        json.dumps({"fingerprint": fingerprint}))
  assert rerun.kept_export(str(tmp_path / "export"), "g") == str(tmp_path / "export" / "2")
  assert rerun.kept_export(str(tmp_path / "export"), "f") is None  # only the newest counts
  assert rerun.kept_export(str(tmp_path / "none"), "g") is None
