"""laco_tf.study.step_times: seconds per step from a run's TensorBoard training log."""

import json
import os

import pytest
import tensorflow as tf

from laco_tf.study import step_times


def _event_log(run_dir, wall_times, tag="loss/total", name="events.out.tfevents.1.host"):
  """A training log as a run writes it (logs/train), with the given {step: wall time}."""
  log_dir = os.path.join(run_dir, "logs", "train")
  os.makedirs(log_dir, exist_ok=True)
  with tf.io.TFRecordWriter(os.path.join(log_dir, name)) as writer:
    writer.write(tf.compat.v1.Event(wall_time=1.0, file_version="brain.Event:2")
                 .SerializeToString())
    for step, wall_time in wall_times.items():
      value = tf.compat.v1.Summary.Value(tag=tag, simple_value=0.5)
      writer.write(tf.compat.v1.Event(wall_time=wall_time, step=step,
                                      summary=tf.compat.v1.Summary(value=[value]))
                   .SerializeToString())
  return str(run_dir)


def test_mean_interval_from_the_first_timed_step_of_loss_total_alone(tmp_path):
  # Steps 1-2 warm up (excluded by --from_step=3); steps 3..6 are 0.5, 1.0 and 1.5 s apart.
  run = _event_log(tmp_path / "run", {1: 100.0, 2: 150.0, 3: 200.0, 4: 200.5, 5: 201.5,
                                      6: 203.0})
  # Another tag's summaries, in a second event file, do not count.
  _event_log(tmp_path / "run", {3: 500.0, 7: 900.0}, tag="loss/mlc",
             name="events.out.tfevents.2.host")
  assert step_times.step_seconds(run, from_step=3) == (1.0, 6)
  assert step_times.step_seconds(run, from_step=1) == (pytest.approx(103.0 / 5), 6)


def test_groups_get_their_median_and_speedup_over_the_first(tmp_path, capsys):
  a1 = _event_log(tmp_path / "a1", {3: 10.0, 4: 12.0, 5: 14.0})  # 2 s per step
  a2 = _event_log(tmp_path / "a2", {3: 10.0, 4: 14.0})            # 4 s
  a3 = _event_log(tmp_path / "a3", {3: 10.0, 4: 13.0})            # 3 s
  b1 = _event_log(tmp_path / "b1", {3: 0.0, 4: 1.5, 5: 3.0})      # 1.5 s
  out = tmp_path / "out"
  step_times.main(["--run", f"whole={a1},{a2},{a3}", "--run", f"micro={b1}",
                   f"--out={out}"])
  rows = json.loads((out / "step_times.json").read_text())
  assert [(r["name"], r["runs"], r["median"], r["last_steps"]) for r in rows] == [
      ("whole", [2.0, 4.0, 3.0], 3.0, [5, 4, 4]), ("micro", [1.5], 1.5, [5])]
  assert [r["speedup"] for r in rows] == [1.0, 2.0]
  assert rows[0]["run_names"] == ["a1", "a2", "a3"]
  assert (out / "step_times.png").stat().st_size > 0
  assert "| micro | 1.500 | 1.500 | 2.00 |" in capsys.readouterr().out


def test_a_run_with_fewer_than_two_timed_steps_is_one_line(tmp_path):
  run = _event_log(tmp_path / "run", {1: 1.0, 2: 2.0, 3: 3.0})
  with pytest.raises(SystemExit) as e:
    step_times.step_seconds(run, from_step=3)
  assert str(e.value).startswith("step_times.py: error: ")
  assert "fewer than 2 logged steps from step 3" in str(e.value)
