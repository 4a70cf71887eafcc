"""The output directory: one run at a time (lock), one-line errors, nothing written by a
run refused at validation."""

import os
import socket
import subprocess
import sys
import time

import pytest

from laco_tf import output_lock, runner
from laco_tf.errors import InputError
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


def test_run_refused_at_validation_writes_nothing_and_its_fix_runs(tmp_path, tiny_bert,
                                                                   tiny_corpus):
  out = tmp_path / "run"
  with pytest.raises(InputError, match=r"^--max_seq_length=10 cannot hold 4 label tokens"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, out, max_seq_length=10, max_steps=1))
  assert not out.exists()
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, out, max_seq_length=48,
                                    max_steps=1, do_predict=False))
  assert summary["train"]["trained_steps"] == 1


def test_window_wider_than_the_text_budget_is_refused_before_any_write(tmp_path, tiny_bert,
                                                                      tiny_corpus):
  out = tmp_path / "run"
  # 48 positions - 4 label tokens - 3 special tokens = 41 wordpieces of text.
  with pytest.raises(InputError, match=r"^--window_size=50: wider than the text budget of 41 "
                     r"wordpieces; expected at most 41$"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, out, window_size=50, max_steps=1))
  assert not out.exists()
