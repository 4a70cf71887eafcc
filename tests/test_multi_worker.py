"""Two real worker processes on 127.0.0.1 under MultiWorkerMirroredStrategy (TF_CONFIG).

They must train exactly as one process with the same global batch, the chief alone
must write the output directory, and every worker must exit 0 (none left waiting).
"""

import json
import os
import socket
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from laco_tf import output_lock, run_settings, runner
from laco_tf.training import distribution
from laco_tf.errors import InputError, PreemptedError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _command(corpus, bert, output_dir, *extra):
  # Dropout off: dropout masks are drawn per replica, and the single process has one.
  return [sys.executable, os.path.join(ROOT, "run_classifier.py"), "--task=clcp",
          f"--data_dir={corpus}", f"--bert_model={bert}", f"--output_dir={output_dir}",
          "--max_seq_length=48", "--train_batch_size=8", "--learning_rate=1e-3",
          "--head_learning_rate=1e-2", "--window_size=3", "--dropout_rate=0", "--seed=3",
          "--precision=fp32", "--max_steps=6", "--eval_every_steps=2", *extra]


def _options(corpus, bert, output_dir, **extra):
  """`_command`'s settings as RunOptions, with --do_train --do_eval."""
  return run_settings.RunOptions(
      task="clcp", data_dir=corpus, bert_model=bert, output_dir=output_dir, max_seq_length=48,
      train_batch_size=8, learning_rate=1e-3, head_learning_rate=1e-2, window_size=3,
      dropout_rate=0.0, seed=3, precision="fp32", max_steps=6, eval_every_steps=2,
      do_train=True, do_eval=True, **extra)


def _env(**extra):
  return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", **extra}


def _start_workers(command, tmp_path, worker_extra=()):
  """Worker 0 (the chief) and worker 1 run `command`; worker 1 adds `worker_extra`."""
  ports = _free_ports(2)
  cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
  processes = []
  for index in range(2):
    scratch = tmp_path / f"tmp{index}"
    scratch.mkdir(parents=True)
    config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
    processes.append(subprocess.Popen(
        command + (list(worker_extra) if index else []), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=_env(TF_CONFIG=config, TMPDIR=str(scratch))))
  return processes


def _finish(processes, timeout=400):
  outputs = []
  try:
    for p in processes:
      outputs.append(p.communicate(timeout=timeout))
  finally:
    for p in processes:
      if p.poll() is None:
        p.kill()
  return outputs


def _both_fail(processes):
  """The last stderr line of each worker, once both have exited with status 1."""
  outputs = _finish(processes, timeout=300)
  assert [p.returncode for p in processes] == [1, 1], outputs
  return [err.strip().splitlines()[-1] for _, err in outputs]


CHIEF_STOPPED = ("run_classifier.py: error: the chief stopped before writing the TFRecords "
                 "(see its output)")


def _history_losses(output_dir):
  with open(os.path.join(output_dir, "history.jsonl")) as f:
    return [(r["step"], r["train_loss"]) for r in map(json.loads, f)]


def _summary(output_dir):
  with open(os.path.join(output_dir, "run_summary.json")) as f:
    return json.load(f)


def _dev_probabilities(output_dir):
  with open(os.path.join(output_dir, "predictions_dev.jsonl")) as f:
    return np.array([list(json.loads(l)["probabilities"].values()) for l in f])


@pytest.fixture(scope="module")
def still_bert(tmp_path_factory):
  from tests.conftest import tiny_vocab, write_tiny_bert
  return write_tiny_bert(tmp_path_factory.mktemp("still_bert"), tiny_vocab(), dropout=0.0)


# With the default --ema_decay, dev is scored with the averaged weights each worker keeps;
# without an average (slow: the same check again), with the weights themselves.
@pytest.mark.parametrize("ema_decay", [0.999, pytest.param(0.0, marks=pytest.mark.slow)])
def test_two_workers_train_as_one_process_and_only_the_chief_writes(
    ema_decay, tmp_path, still_bert, tiny_corpus):
  single, shared = str(tmp_path / "single"), str(tmp_path / "shared")
  # The single process runs here, on the default strategy (one device).
  runner.run(_options(tiny_corpus, still_bert, single, ema_decay=ema_decay))

  command = _command(tiny_corpus, still_bert, shared, "--do_train", "--do_eval",
                     "--do_export", "--distribution_strategy=multi_worker_mirrored",
                     f"--ema_decay={ema_decay}")
  processes = _start_workers(command, tmp_path)
  outputs = _finish(processes)
  for index, (p, (out, err)) in enumerate(zip(processes, outputs)):
    assert p.returncode == 0, f"worker {index}: {err[-3000:]}"
  assert "2 replica(s)" in outputs[0][0] and "this process is worker 0" in outputs[0][0]
  assert "this process is worker 1" in outputs[1][0]

  # Same global batches, gradients summed over the workers: the single run's losses.
  expected, got = _history_losses(single), _history_losses(shared)
  assert [s for s, _ in got] == [s for s, _ in expected] == [2, 4, 6]
  for (_, want), (_, have) in zip(expected, got):
    assert have.keys() == want.keys()
    for k in want:
      assert have[k] == pytest.approx(want[k], rel=1e-4, abs=1e-5), k
  np.testing.assert_allclose(_dev_probabilities(shared), _dev_probabilities(single), atol=1e-4)
  # ... and each worker trained on its half of each global batch, not on all of it.
  assert _summary(single)["train"]["largest_replica_batch"] == 8
  assert _summary(shared)["train"]["largest_replica_batch"] == 4

  # Exactly one complete run in the chief's directory; nothing left by the other worker.
  assert sorted(os.listdir(os.path.join(shared, "checkpoints"))) == sorted(
      os.listdir(os.path.join(single, "checkpoints")))
  with open(os.path.join(shared, "checkpoints", "checkpoint")) as f:
    assert 'model_checkpoint_path: "ckpt-6"' in f.read()
  assert os.listdir(os.path.join(shared, "export")) == ["1"]
  assert os.path.isfile(os.path.join(shared, "export", "1", "saved_model.pb"))
  assert len(os.listdir(os.path.join(shared, "logs", "train"))) == 1  # one event file
  for index in range(2):
    assert os.listdir(tmp_path / f"tmp{index}") == [], f"worker {index} left files"


def test_multi_worker_without_tf_config_is_a_one_line_error(tmp_path, tiny_bert, tiny_corpus):
  env = _env()
  env.pop("TF_CONFIG", None)
  done = subprocess.run(
      _command(tiny_corpus, tiny_bert, str(tmp_path / "out"),
               "--distribution_strategy=multi_worker_mirrored"),
      capture_output=True, text=True, cwd=ROOT, env=env)
  assert done.returncode == 1
  lines = [l for l in done.stderr.splitlines() if l.strip()]
  assert lines[-1].startswith("run_classifier.py: error: --distribution_strategy="
                              "multi_worker_mirrored: TF_CONFIG is not set; expected")
  assert not os.path.exists(tmp_path / "out")


def test_a_chief_that_refuses_the_output_dir_stops_the_other_worker_too(
    tmp_path, still_bert, tiny_corpus):
  taken = str(tmp_path / "taken")
  runner.run(_options(tiny_corpus, still_bert, taken))
  # Another seed is another run: the chief refuses the directory before writing anything.
  command = _command(tiny_corpus, still_bert, taken, "--seed=4",
                     "--distribution_strategy=multi_worker_mirrored")
  chief, worker = _both_fail(_start_workers(command, tmp_path))
  assert chief.startswith(
      f"run_classifier.py: error: --output_dir={taken} holds a run with different settings")
  assert worker == CHIEF_STOPPED


def test_a_chief_that_finds_the_output_dir_locked_stops_the_other_worker_too(
    tmp_path, still_bert, tiny_corpus):
  busy = str(tmp_path / "busy")
  command = _command(tiny_corpus, still_bert, busy, "--distribution_strategy=multi_worker_mirrored")
  with output_lock.hold(busy):  # another run holds the directory
    chief, worker = _both_fail(_start_workers(command, tmp_path))
  assert chief.startswith(f"run_classifier.py: error: --output_dir={busy}: in use by pid "
                          f"{os.getpid()}")
  assert worker == CHIEF_STOPPED


def test_a_worker_with_other_settings_stops_itself_and_the_chief(
    tmp_path, still_bert, tiny_corpus):
  shared = str(tmp_path / "shared")
  command = _command(tiny_corpus, still_bert, shared, "--distribution_strategy=multi_worker_mirrored")
  chief, worker = _both_fail(_start_workers(command, tmp_path,
                                            worker_extra=["--train_batch_size=4"]))
  assert worker.startswith(
      "run_classifier.py: error: this worker's settings differ from the chief's")
  assert chief == ("run_classifier.py: error: another worker stopped before training (see its "
                   "output)")
  assert not os.path.exists(os.path.join(shared, "checkpoints"))


@pytest.mark.slow
def test_sigterm_to_one_worker_stops_both_at_the_same_step_and_the_rerun_finishes(
    tmp_path, still_bert, tiny_corpus):
  shared = str(tmp_path / "shared")
  command = _command(tiny_corpus, still_bert, shared, "--do_train", "--do_eval",
                     "--max_steps=400", "--eval_every_steps=200",
                     "--distribution_strategy=multi_worker_mirrored")
  processes = _start_workers(command, tmp_path)
  deadline = time.time() + 300
  while not os.path.exists(os.path.join(shared, "history.jsonl")):  # the step-200 evaluation
    assert all(p.poll() is None for p in processes) and time.time() < deadline
    time.sleep(0.05)
  processes[1].send_signal(signal.SIGTERM)  # the worker that is not the chief
  (_, chief_err), (_, worker_err) = _finish(processes)
  assert [p.returncode for p in processes] == [PreemptedError.EXIT_CODE] * 2, worker_err
  steps = [int(err.strip().splitlines()[-1].split("step ")[1].split(":")[0])
           for err in (chief_err, worker_err)]
  assert steps[0] == steps[1] and 200 <= steps[0] < 400
  with open(os.path.join(shared, "checkpoints", "checkpoint")) as f:
    assert f'model_checkpoint_path: "ckpt-{steps[0]}"' in f.read()

  processes = _start_workers(command, tmp_path / "again")
  outputs = _finish(processes)
  assert [p.returncode for p in processes] == [0, 0], outputs[1][1][-3000:]
  assert f"at step {steps[0]}" in outputs[1][0]  # the worker resumed from the chief's checkpoint
  with open(os.path.join(shared, "history.jsonl")) as f:
    assert [json.loads(l)["step"] for l in f] == [200, 400]


@pytest.mark.parametrize("name, kind", [
    ("auto", "_DefaultDistributionStrategy"), ("one_device", "OneDeviceStrategy"),
    ("mirrored", "MirroredStrategy")])
def test_each_strategy_name_gives_its_strategy_on_a_cpu_machine(name, kind):
  strategy = distribution.get_strategy(name)
  assert type(strategy).__name__ == kind
  assert distribution.describe(strategy) == (
      "the default strategy (one device)" if name == "auto" else kind)
  assert strategy.num_replicas_in_sync == 1
  assert distribution.is_chief(strategy) and not distribution.is_multi_worker(strategy)
  # Outside a cluster the shared decisions are the process's own.
  assert distribution.chief_value(strategy, 0.25) == 0.25
  assert distribution.any_worker(strategy, True) and not distribution.any_worker(strategy, False)


@pytest.mark.parametrize("tf_config", [
    "not json", '{"cluster": {}}', '{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", '
    '"index": 0}}'])
def test_a_bad_tf_config_is_a_one_line_error_naming_it(monkeypatch, tf_config):
  monkeypatch.setenv("TF_CONFIG", tf_config)
  with pytest.raises(InputError) as e:
    distribution.get_strategy("multi_worker_mirrored")
  assert str(e.value) == (f"TF_CONFIG={tf_config!r}: expected JSON such as "
                          f"{distribution.TF_CONFIG_EXAMPLE}")


def test_a_second_mirrored_strategy_in_one_process_reduces_tensors_of_other_shapes():
  # Two runs in one process (a sweep, a notebook): the second strategy's collectives must
  # not reuse the first one's keys, which the runtime has bound to the first one's shapes.
  def all_reduce_ones(strategy, shape):
    fn = tf.function(lambda: strategy.run(
        lambda: tf.distribute.get_replica_context().all_reduce("sum", tf.ones(shape))))
    return [t.numpy().tolist() for t in strategy.experimental_local_results(fn())]

  first = distribution.mirrored_strategy(["/cpu:0", "/cpu:1"])
  assert all_reduce_ones(first, [1]) == [[2.0], [2.0]]
  second = distribution.mirrored_strategy(["/cpu:0", "/cpu:1"])
  assert all_reduce_ones(second, [3]) == [[2.0] * 3, [2.0] * 3]
