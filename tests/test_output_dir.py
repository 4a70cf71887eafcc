"""The output directory: one run at a time (lock), one-line errors, nothing written by a
run refused at validation, only what runs write deleted, no symbolic link written through."""

import dataclasses
import json
import os
import socket
import subprocess
import sys

import pytest

from laco_tf import output_lock, run_dir, run_settings, runner
from laco_tf.errors import InputError
from laco_tf.run_settings import RunOptions
from tests.test_end_to_end import tiny_options

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_second_run_on_a_locked_directory_is_refused_naming_the_holder(tmp_path, tiny_bert,
                                                                        tiny_corpus):
  out = tmp_path / "run"
  with output_lock.hold(str(out)):
    with pytest.raises(InputError, match=rf"^--output_dir={out}: in use by pid {os.getpid()} "
                       rf"on {socket.gethostname()} \(lock file .*\.lock\); wait"):
      runner.run(tiny_options(tiny_corpus, tiny_bert, out, max_steps=1))
  assert sorted(os.listdir(out)) == [".lock"]


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
  out = str(tmp_path / "run")
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time; from laco_tf import output_lock\n"
       f"with output_lock.hold({out!r}):\n  print('held', flush=True); time.sleep(60)"],
      cwd=REPO, stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == "held"
  with pytest.raises(InputError, match=rf"in use by pid {holder.pid} "):
    with output_lock.hold(out):
      pass
  holder.kill()
  holder.wait()
  with output_lock.hold(out):
    with open(os.path.join(out, ".lock")) as f:
      assert f.read().startswith(f"pid {os.getpid()} ")


def test_output_dir_that_is_a_file_or_cannot_be_made_is_a_one_line_error(tmp_path):
  path = tmp_path / "file"
  path.write_text("x")
  with pytest.raises(InputError, match=rf"^--output_dir={path}: exists and is not a "
                     r"directory$"):
    output_lock.prepare_output_dir(str(path))
  with pytest.raises(InputError, match=rf"^--output_dir={path}/sub: cannot create it \("):
    output_lock.prepare_output_dir(str(path / "sub"))


def test_run_refused_at_validation_writes_nothing_and_its_fix_writes_through_no_link(
    tmp_path, tiny_bert, tiny_corpus):
  out, precious = tmp_path / "run", tmp_path / "precious.txt"
  with pytest.raises(InputError, match=r"^--max_seq_length=10 cannot hold 4 label tokens"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, out, max_seq_length=10, max_steps=1))
  assert not out.exists()
  # Links planted at names the run writes (or writes through a temporary name) are
  # replaced, never followed.
  out.mkdir()
  precious.write_text("the user's file\n")
  for name in ("labels.txt", "run_config.json.tmp", "train_label_counts.json.tmp",
               "history.jsonl", "training_curves.png.tmp.png", "thresholds.json.tmp",
               "predictions_dev.jsonl.tmp", "run_summary.json"):
    (out / name).symlink_to(precious)
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, out, max_seq_length=48,
                                    max_steps=1, do_predict=False))
  assert summary["train"]["trained_steps"] == 1
  assert precious.read_text() == "the user's file\n"
  assert not [n for n in os.listdir(out) if os.path.islink(out / n)]
  assert len((out / "labels.txt").read_text().split()) == 4
  assert len((out / "history.jsonl").read_text().splitlines()) == 1
  # Every name the run wrote is one that --overwrite_output_dir may delete.
  assert run_dir.foreign_entries(str(out)) == []


def test_window_wider_than_the_text_budget_is_refused_before_any_write(tmp_path, tiny_bert,
                                                                      tiny_corpus):
  out = tmp_path / "run"
  # 48 positions - 4 label tokens - 3 special tokens = 41 wordpieces of text.
  with pytest.raises(InputError, match=r"^--window_size=50: wider than the text budget of 41 "
                     r"wordpieces; expected at most 41$"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, out, window_size=50, max_steps=1))
  assert not out.exists()


def _tree(directory) -> dict:
  """Every file under `directory` (relative path -> bytes) and every link (-> its target)."""
  tree = {}
  for root, dirs, files in os.walk(directory):
    for name in dirs + files:
      path = os.path.join(root, name)
      key = os.path.relpath(path, directory)
      if os.path.islink(path):
        tree[key] = "-> " + os.readlink(path)
      elif os.path.isfile(path):
        with open(path, "rb") as f:
          tree[key] = f.read()
  return tree


def _add_users_files(directory) -> dict:
  """A user's corpus, notes and git repository in `directory`; returns their tree."""
  for name, text in (("data/train.jsonl", '{"text": "a", "labels": ["x"]}\n'),
                     ("notes.txt", "my notes\n"), (".git/HEAD", "ref: refs/heads/main\n")):
    os.makedirs(os.path.dirname(os.path.join(directory, name)), exist_ok=True)
    with open(os.path.join(directory, name), "w") as f:
      f.write(text)
  return _tree(directory)


def test_new_run_into_a_directory_of_a_users_files_is_refused_and_writes_nothing(
    tmp_path, tiny_bert, tiny_corpus):
  out = tmp_path / "run"
  users = _add_users_files(out)
  # --do_eval on a new directory: before, it wrote its settings and TFRecords beside the
  # user's files, and a rerun with other settings then deleted everything there.
  with pytest.raises(InputError, match=rf"^--output_dir={out}: holds files this project did "
                     r"not write \(\.git, data, notes\.txt\); choose a new or empty "
                     r"--output_dir, or pass --allow_foreign_files to write beside them "
                     r"\(they are never deleted\)$"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, out, do_train=False, do_eval=True,
                            do_predict=False))
  assert _tree(out) == users  # not even the lock file


def test_replacing_or_overwriting_a_run_deletes_only_what_runs_write(tmp_path, capsys):
  opts = RunOptions(data_dir="d", output_dir=str(tmp_path))
  run_dir.claim_output_dir(opts, {"corpus": "abc"})
  users = _add_users_files(tmp_path)  # added to the run's directory later: kept
  for name in ("tfrecords/train.tfrecord", "labels.txt", "labels.txt.tmp",
               "training_curves.png.tmp.png", "logs/train/events"):
    os.makedirs(os.path.dirname(tmp_path / name), exist_ok=True)
    (tmp_path / name).write_text("written by the run")
  # A run that saved no checkpoint: its settings are replaced, its files deleted.
  run_dir.claim_output_dir(dataclasses.replace(opts, learning_rate=1e-5), {"corpus": "abc"})
  assert capsys.readouterr().out == (
      f"{tmp_path} holds the settings of a run that saved no checkpoint (learning_rate: 5e-05 "
      "-> 1e-05): replaced its files; keeping what this project did not write: .git, data, "
      "notes.txt\n")
  assert _tree(tmp_path) == {**users, "run_config.json": (tmp_path / "run_config.json")
                             .read_bytes()}
  # A trained run under --overwrite_output_dir.
  os.makedirs(tmp_path / "checkpoints")
  (tmp_path / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n')
  run_dir.claim_output_dir(dataclasses.replace(opts, seed=1, overwrite_output_dir=True),
                                {"corpus": "abc"})
  assert "deleted the previous run's files" in capsys.readouterr().out
  assert _tree(tmp_path) == {**users, "run_config.json": (tmp_path / "run_config.json")
                             .read_bytes()}
  assert json.loads((tmp_path / "run_config.json").read_text())["seed"] == 1


def test_allow_foreign_files_lets_a_new_run_write_beside_them(tmp_path):
  users = _add_users_files(tmp_path)
  opts = RunOptions(data_dir="d", output_dir=str(tmp_path))
  with pytest.raises(InputError, match=r"holds files this project did not write"):
    run_dir.claim_output_dir(opts, {"corpus": "abc"})
  run_dir.claim_output_dir(dataclasses.replace(opts, allow_foreign_files=True),
                                {"corpus": "abc"})
  assert sorted(_tree(tmp_path)) == sorted([*users, "run_config.json"])
  assert run_dir.foreign_entries(str(tmp_path)) == [".git", "data", "notes.txt"]


@pytest.mark.parametrize("kind, problem", [
    ("symlink", r"its lock file {lock} is a symbolic link; expected a regular file"),
    ("fifo", r"its lock file {lock} is not a regular file; remove it"),
    ("directory", r"its lock file {lock} is a directory; expected a regular file"),
    ("other file", r"{lock} is not a lock file of this project; move it away"),
])
def test_a_lock_path_that_is_not_a_lock_file_is_refused_and_left_unchanged(kind, problem,
                                                                            tmp_path):
  out, precious = tmp_path / "run", tmp_path / "precious.txt"
  out.mkdir()
  precious.write_text("the user's file\n")
  lock = out / ".lock"
  if kind == "symlink":
    lock.symlink_to(precious)
  elif kind == "fifo":
    os.mkfifo(lock)
  elif kind == "directory":
    lock.mkdir()
  else:
    lock.write_text("the user's file\n")
  before = _tree(tmp_path)
  with pytest.raises(InputError, match=rf"^--output_dir={out}: " + problem.format(lock=lock)):
    with output_lock.hold(str(out)):
      pass
  assert _tree(tmp_path) == before
  assert precious.read_text() == "the user's file\n"


def test_a_run_config_this_project_did_not_write_is_a_one_line_error(tmp_path):
  (tmp_path / "run_config.json").write_text("{'not': json")
  with pytest.raises(InputError, match=rf"^{tmp_path}/run_config.json: not the settings of a "
                     r"run of this project \(Expecting .*\); choose another --output_dir$"):
    run_dir.claim_output_dir(RunOptions(data_dir="d", output_dir=str(tmp_path)), {})
  assert (tmp_path / "run_config.json").read_text() == "{'not': json"


@pytest.mark.parametrize("name", ["a*b", "a?b", "a[1]", "a\\rb"])
def test_an_output_dir_tensorflow_could_not_restore_from_is_refused_before_any_write(
    tmp_path, name):
  out = tmp_path / name
  with pytest.raises(InputError, match=r"which TensorFlow reads as a file pattern"):
    run_settings.validate(run_settings.RunOptions(data_dir=str(tmp_path), output_dir=str(out)))
  assert not out.exists()
