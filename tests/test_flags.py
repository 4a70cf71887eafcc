"""flags.py, RunOptions and the README's flag table stay in step; the run-directory guard."""

import dataclasses
import json
import os
import re

import pytest

from absl import flags as absl_flags

import flags  # noqa: F401  pylint: disable=unused-import
from laco_tf import run_settings
from laco_tf.errors import InputError
from laco_tf.run_settings import RunOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_flag_has_a_run_option_with_the_same_default():
  fields = {f.name: f.default for f in dataclasses.fields(RunOptions)}
  defined = {f.name for f in absl_flags.FLAGS.get_flags_for_module(flags)}
  assert defined == set(fields) | {"predict_batch_size"}  # Google BERT's alias
  for name, default in fields.items():
    assert absl_flags.FLAGS[name].default == default, name
    assert absl_flags.FLAGS[name].help, name


def test_predict_batch_size_is_google_berts_name_for_the_eval_batch():
  values = absl_flags.FlagValues()
  for name in ("eval_batch_size", "predict_batch_size"):
    values[name] = absl_flags.FLAGS[name]
  values(["prog", "--predict_batch_size=7"])
  assert values.eval_batch_size == 7


def test_train_config_defaults_agree_with_the_run_options():
  from laco_tf.training.train_config import TrainConfig  # pylint: disable=import-outside-toplevel
  options = {f.name: f.default for f in dataclasses.fields(RunOptions)}
  # TrainConfig receives resolved values: a concrete precision, and the length cap of XLA
  # padding (0: none) rather than the packed length.
  resolved = {"precision", "max_seq_length"}
  shared = [f for f in dataclasses.fields(TrainConfig)
            if f.name in options and f.name not in resolved
            and f.default is not dataclasses.MISSING]
  assert len(shared) > 15
  for f in shared:
    assert f.default == options[f.name], f.name


def test_readme_flag_table_lists_every_flag():
  with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    readme = f.read()
  listed = set(re.findall(r"`--([a-z_]+)`", readme))
  assert {f.name for f in dataclasses.fields(RunOptions)} <= listed


def _mark_trained(directory):
  """What a run's first checkpoint leaves: the guard protects only trained runs."""
  os.makedirs(os.path.join(directory, "checkpoints"), exist_ok=True)
  with open(os.path.join(directory, "checkpoints", "checkpoint"), "w") as f:
    f.write('model_checkpoint_path: "ckpt-1"\n')


def test_a_run_recorded_before_an_option_existed_still_resumes(tmp_path):
  opts = RunOptions(data_dir="d", output_dir=str(tmp_path))
  run_settings.claim_output_dir(opts, {"corpus": "abc"})
  _mark_trained(tmp_path)
  path = tmp_path / run_settings.RUN_CONFIG
  recorded = json.loads(path.read_text())
  del recorded["dev_split_seed"]  # As written before --dev_split_seed was added.
  path.write_text(json.dumps(recorded))
  run_settings.claim_output_dir(opts, {"corpus": "abc"})
  with pytest.raises(InputError, match=r"different settings \(dev_split_seed: None -> 0\)"):
    run_settings.claim_output_dir(dataclasses.replace(opts, dev_split_seed=0), {"corpus": "abc"})


def test_a_run_recorded_before_bucketing_resumes_only_in_its_own_batch_order(tmp_path):
  opts = RunOptions(data_dir="d", output_dir=str(tmp_path))
  assert opts.length_bucketing  # the default since 2026-11-27
  run_settings.claim_output_dir(opts, {"corpus": "abc"})
  _mark_trained(tmp_path)
  path = tmp_path / run_settings.RUN_CONFIG
  recorded = json.loads(path.read_text())
  for key in ("length_bucketing", "test_fraction", "max_doc_tokens", "precision",
              "jit_compile", "steps_per_loop", "threshold_strategy"):
    recorded.pop(key, None)  # As written before these options were added.
  path.write_text(json.dumps(recorded))
  # It trained without bucketing: continuing with today's default would reorder the epoch,
  # and the error names the flag that continues it.
  with pytest.raises(InputError, match=r"different settings \(length_bucketing: False -> "
                     r"True\); to continue it, pass --nolength_bucketing; to start anew, pass "
                     r"--overwrite_output_dir or another --output_dir$"):
    run_settings.claim_output_dir(opts, {"corpus": "abc"})
  run_settings.claim_output_dir(dataclasses.replace(opts, length_bucketing=False,
                                                    precision="bf16"), {"corpus": "abc"})
  assert json.loads(path.read_text())["precision"] == "bf16"


def test_the_refusal_names_flags_only_when_flags_can_give_the_run_back(tmp_path):
  opts = RunOptions(data_dir="d", output_dir=str(tmp_path), task="mltc", learning_rate=2e-5)
  run_settings.claim_output_dir(opts, {"corpus": "abc"})
  _mark_trained(tmp_path)
  with pytest.raises(InputError, match=r"\(learning_rate: 2e-05 -> 5e-05, task: 'mltc' -> "
                     r"'clcp'\); to continue it, pass --learning_rate=2e-05 --task=mltc; "):
    run_settings.claim_output_dir(RunOptions(data_dir="d", output_dir=str(tmp_path)),
                                  {"corpus": "abc"})
  # Lengths are recorded resolved: a run of the paper's --max_seq_length has no text budget,
  # so the flags that continue it name that length and not the budget now resolved.
  paper = tmp_path / "paper"
  run_settings.claim_output_dir(RunOptions(data_dir="d", output_dir=str(paper), max_seq_length=320,
                                           train_batch_size=32, length_bucketing=False),
                                {"corpus": "abc"})
  _mark_trained(paper)
  today = RunOptions(data_dir="d", output_dir=str(paper), max_doc_tokens=256, max_seq_length=346)
  with pytest.raises(InputError, match=r"; to continue it, pass --nolength_bucketing "
                     r"--train_batch_size=32 --max_seq_length=320; to start anew"):
    run_settings.claim_output_dir(today, {"corpus": "abc"})
  # ... and a run with a text budget is continued by the budget alone (both are refused).
  budget = tmp_path / "budget"
  run_settings.claim_output_dir(dataclasses.replace(today, output_dir=str(budget)),
                                {"corpus": "abc"})
  _mark_trained(budget)
  with pytest.raises(InputError, match=r"; to continue it, pass --max_doc_tokens=256; "):
    run_settings.claim_output_dir(RunOptions(data_dir="d", output_dir=str(budget),
                                             max_seq_length=320), {"corpus": "abc"})
  # A path with a space comes quoted for the shell.
  spaced = dataclasses.replace(opts, output_dir=str(tmp_path / "spaced"), bert_model="/m/my bert")
  run_settings.claim_output_dir(spaced, {"corpus": "abc"})
  _mark_trained(tmp_path / "spaced")
  with pytest.raises(InputError, match=r"pass '--bert_model=/m/my bert' --learning_rate"):
    run_settings.claim_output_dir(RunOptions(data_dir="d", output_dir=str(tmp_path / "spaced")),
                                  {"corpus": "abc"})
  # Another corpus: no flag gives that back, so only the two ways to start anew are offered.
  with pytest.raises(InputError, match=r"\(corpus: 'abc' -> 'xyz'\); pass "
                     r"--overwrite_output_dir or another --output_dir$"):
    run_settings.claim_output_dir(opts, {"corpus": "xyz"})
  # Nor does a label-description file's content, recorded in place of its path.
  described = tmp_path / "described"
  run_settings.claim_output_dir(dataclasses.replace(opts, output_dir=str(described)),
                                {"corpus": "abc", "label_descriptions": {"x": "old"}})
  _mark_trained(described)
  with pytest.raises(InputError, match=r"\(label_descriptions: \{'x': 'old'\} -> \{'x': 'new'\}\); "
                     r"pass --overwrite_output_dir"):
    run_settings.claim_output_dir(dataclasses.replace(opts, output_dir=str(described)),
                                  {"corpus": "abc", "label_descriptions": {"x": "new"}})


def test_settings_of_a_run_that_saved_no_checkpoint_are_replaced_not_refused(tmp_path):
  opts = RunOptions(data_dir="d", output_dir=str(tmp_path))
  run_settings.claim_output_dir(opts, {"corpus": "abc"})
  (tmp_path / "tfrecords").mkdir()  # left by a run that failed before its first checkpoint
  run_settings.claim_output_dir(dataclasses.replace(opts, learning_rate=1e-5), {"corpus": "abc"})
  assert json.loads((tmp_path / run_settings.RUN_CONFIG).read_text())["learning_rate"] == 1e-5
  assert not (tmp_path / "tfrecords").exists()


def test_dev_split_seed_defaults_to_the_run_seed():
  assert run_settings.dev_split_seed(RunOptions(seed=3)) == 3
  assert run_settings.dev_split_seed(RunOptions(seed=3, dev_split_seed=0)) == 0


def test_unknown_encoding_is_refused():
  with pytest.raises(InputError, match=r"^--encoding=nope: unknown to Python"):
    run_settings.validate(RunOptions(data_dir="d", output_dir="o", encoding="nope"))
