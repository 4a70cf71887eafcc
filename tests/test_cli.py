"""run_classifier.py's command line: bad flags and inputs end in one clear line."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
  return subprocess.run([sys.executable, os.path.join(ROOT, "run_classifier.py"), *args],
                        capture_output=True, text=True, cwd=ROOT,
                        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.mark.parametrize("args,message", [
    (["--output_dir=x"], "--data_dir is required"),
    (["--data_dir=no/such/dir", "--output_dir=x"], "--data_dir=no/such/dir: no such directory"),
    (["--data_dir=data/sample", "--output_dir=x", "--alpha=1.5"],
     "--alpha=1.5: expected a number in (0, 1) (eq. 7)"),
    (["--data_dir=data/sample", "--output_dir=x", "--bert_model=./models/none"],
     "--bert_model=./models/none: no such directory"),
    (["--data_dir=data/sample", "--output_dir=x", "--init_checkpoint=m/bert_model.ckpt"],
     "--bert_config_file, --vocab_file: required with the other Google BERT flags"),
    (["--data_dir=data", "--output_dir=x"], "--data_dir=data: no known data format found"),
    (["--data_dir=data/sample", "--output_dir=x", "--seed=-1"],
     "--seed=-1: expected an integer in [0, 2^31)"),
    (["--data_dir=data/sample", "--output_dir=x", "--serving_chunk_size=-1"],
     "--serving_chunk_size=-1: expected 0 (the whole request at once) or a positive number"),
    (["--data_dir=data/sample", "--output_dir=x", "--dev_split_seed=-2"],
     "--dev_split_seed=-2: expected an integer in [0, 2^31), or unset (= --seed)"),
])
def test_bad_flags_and_inputs_exit_with_one_line_naming_the_flag(args, message, tmp_path):
  args = [a.replace("--output_dir=x", f"--output_dir={tmp_path / 'out'}") for a in args]
  result = _run(*args)
  assert result.returncode != 0
  # One line and nothing else: TensorFlow's C++ start-up lines are kept off the console.
  lines = [l for l in result.stderr.splitlines() if l.strip()]
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith("run_classifier.py: error: ")
  assert message in lines[0]


def test_help_lists_the_projects_flags():
  result = _run("--help")
  assert result.returncode == 0
  for flag in ("--task", "--max_doc_tokens", "--threshold_strategy", "--layer_decay"):
    assert f"  {flag}:" in result.stdout


def test_unknown_task_is_rejected_by_flag_parsing():
  result = _run("--task=seq2seq", "--data_dir=data/sample", "--output_dir=x")
  assert result.returncode != 0
  assert result.stderr.strip().splitlines() == [
      "run_classifier.py: error: flag --task=seq2seq: value should be one of "
      "<mltc|plcp|clcp|both>"]
  assert _run("--train_batch_size=many").stderr.strip().splitlines() == [
      "run_classifier.py: error: flag --train_batch_size=many: invalid literal for int() "
      "with base 10: 'many'"]


@pytest.mark.parametrize("args,message", [
    (["--output_dir=x"], "--data_dir is required: the directory holding the corpus"),
    (["--data_dir=no/such/dir", "--output_dir=x"], "--data_dir=no/such/dir: no such directory"),
    (["--data_dir=data/sample"], "--output_dir is required: where the run's files go"),
])
def test_a_missing_path_is_answered_before_tensorflow_loads(args, message):
  # TensorFlow made unimportable: the answer must come without it.
  code = ("import runpy, sys; sys.modules['tensorflow'] = None; "
          f"sys.argv = ['run_classifier.py'] + {args!r}; "
          "runpy.run_path('run_classifier.py', run_name='__main__')")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [f"run_classifier.py: error: {message}"]


def test_progress_off_a_terminal_prints_a_line_every_five_percent():
  import io  # pylint: disable=import-outside-toplevel
  from laco_tf import progress  # pylint: disable=import-outside-toplevel
  stream = io.StringIO()
  bar = progress.LineProgress(200, "step", stream=stream)
  bar.update(20)  # a resumed run starts mid-way
  for step in range(21, 201):
    bar.update(step, [("loss", 0.5)])
  lines = stream.getvalue().splitlines()
  assert len(lines) == 18 and "\b" not in stream.getvalue()
  assert lines[0].startswith("30/200 steps (15%)") and lines[-1].startswith("200/200 steps (100%)")
  assert lines[-1].endswith("loss 0.5")


def test_progress_on_a_terminal_redraws_one_line_and_ends_it_when_done(monkeypatch):
  import io  # pylint: disable=import-outside-toplevel
  from laco_tf import progress  # pylint: disable=import-outside-toplevel
  clock = iter(range(0, 1000))
  monkeypatch.setattr(progress.time, "time", lambda: next(clock) / 16)  # 16 updates a second
  stream = io.StringIO()
  bar = progress.LineProgress(40, "document", stream=stream, redraw=True, title="dev: ")
  for done in range(1, 41):
    bar.update(done)
  text = stream.getvalue()
  # At most ten redraws a second: the first update, every other one, and the last; then
  # one newline.
  assert text.count("\r") == 21 and text.endswith("\n") and text.count("\n") == 1
  assert text.split("\r")[-1].startswith("dev: 40/40 documents (100%)")


def test_a_flagfile_holds_a_runs_settings_and_a_missing_one_is_one_line(tmp_path):
  flagfile = tmp_path / "run.flags"
  flagfile.write_text(f"--data_dir=data/sample\n--output_dir={tmp_path / 'out'}\n--alpha=1.5\n")
  result = _run(f"--flagfile={flagfile}")
  assert result.stderr.strip().splitlines() == [
      "run_classifier.py: error: --alpha=1.5: expected a number in (0, 1) (eq. 7)"]
  # A flag after the file overrides the file's value.
  assert _run(f"--flagfile={flagfile}", "--alpha=0.5", "--data_dir=no/such/dir").stderr.strip(
      ).splitlines() == ["run_classifier.py: error: --data_dir=no/such/dir: no such directory"]
  missing = _run(f"--flagfile={tmp_path / 'none.flags'}")
  assert missing.returncode != 0
  lines = missing.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("run_classifier.py: error: ")
  assert "none.flags" in lines[0]
