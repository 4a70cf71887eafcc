"""The `tf.distribute` strategy of a run, and which process writes what (our extension).

Strategy names are TF Model Garden's (`official/common/distribute_utils.py`):

- ``auto``: MirroredStrategy over all local GPUs when there are several, else the
  default strategy (one device).
- ``one_device``: OneDeviceStrategy on the first GPU, else the CPU.
- ``mirrored``: MirroredStrategy over all local GPUs (the CPU when there is none).
- ``multi_worker_mirrored``: MultiWorkerMirroredStrategy over the cluster that
  ``TF_CONFIG`` describes; every worker runs the same command.

Multi-worker runs follow TF's documented pattern (the "Multi-worker training with Keras"
guide): the chief (task ``chief``, else ``worker`` 0) writes the output directory;
every other worker writes its required checkpoint copies to a scratch directory of its
own and deletes it at the end. Decisions that steer the step loop (the best checkpoint,
early stopping, a SIGTERM on any worker) are taken once and shared by a collective, so
that no worker waits forever in a collective that the others have left.
"""

import contextlib
import json
import os
import shutil
import hashlib
import tempfile

import itertools

import tensorflow as tf

from laco_tf import options
from laco_tf.errors import InputError

STRATEGIES = options.BY_NAME["distribution_strategy"].choices
TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
                     '"task": {"type": "worker", "index": 0}}')


def _check_tf_config() -> None:
  raw = os.environ.get("TF_CONFIG")
  if not raw:
    raise InputError("--distribution_strategy=multi_worker_mirrored: TF_CONFIG is not set; "
                     f"expected on each worker JSON such as {TF_CONFIG_EXAMPLE}")
  try:
    config = json.loads(raw)
    workers = config["cluster"].get("worker", []) + config["cluster"].get("chief", [])
    task = config["task"]
    if not workers or task["type"] not in ("worker", "chief") or int(task["index"]) < 0:
      raise ValueError
  except (ValueError, KeyError, TypeError, AttributeError):
    raise InputError(f"TF_CONFIG={raw!r}: expected JSON such as {TF_CONFIG_EXAMPLE}") from None


# Collective keys a MirroredStrategy may use before the next one's range starts.
_COLLECTIVE_KEY_RANGE = 100000
_strategies_made = itertools.count(1)


def mirrored_strategy(devices) -> tf.distribute.MirroredStrategy:
  """A MirroredStrategy over `devices` whose collective keys no earlier strategy of this
  process used.

  Every MirroredStrategy numbers its collectives from the same start, and the runtime
  keeps each collective's shape for the life of the process: a second strategy over the
  same devices (a second run in one process, as in a sweep or a notebook) reuses the
  first one's keys with other shapes and aborts with "Shape mismatch in the collective
  instance" (tensorflow/tensorflow#62790). TF's own tests give each strategy its own key
  range through the class attribute `_collective_key_base`
  (`tensorflow/python/distribute/strategy_combinations.py`); so do we.
  """
  if hasattr(tf.distribute.MirroredStrategy, "_collective_key_base"):
    tf.distribute.MirroredStrategy._collective_key_base = (  # pylint: disable=protected-access
        next(_strategies_made) * _COLLECTIVE_KEY_RANGE)
  return tf.distribute.MirroredStrategy(devices)


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
  """The strategy called `name` (module doc). Create it before any other TF op runs:
  MultiWorkerMirroredStrategy configures the collective ops at start-up."""
  if name not in STRATEGIES:
    raise InputError(f"--distribution_strategy={name}: expected one of {', '.join(STRATEGIES)}")
  if name == "multi_worker_mirrored":
    _check_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()
  gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
  if name == "one_device":
    return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else "/cpu:0")
  if name == "mirrored":
    return mirrored_strategy(gpus or ["/cpu:0"])
  if len(gpus) > 1:
    return mirrored_strategy(gpus)
  return tf.distribute.get_strategy()


def describe(strategy: tf.distribute.Strategy) -> str:
  """The strategy's name as --distribution_strategy's help gives it (the default
  strategy's class is private)."""
  name = type(strategy).__name__
  return "the default strategy (one device)" if name.startswith("_Default") else name


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
  """Whether `strategy` spans several processes (its cluster's chief and worker tasks)."""
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return False
  jobs = strategy.cluster_resolver.cluster_spec().as_dict()
  return sum(len(jobs.get(job, ())) for job in ("chief", "worker")) > 1


def task_of(strategy: tf.distribute.Strategy):
  """(task type, task id) of this process; (None, None) outside a cluster."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not is_multi_worker(strategy):
    return None, None
  return resolver.task_type, resolver.task_id


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """True for the process that writes the output directory (module doc)."""
  task_type, task_id = task_of(strategy)
  if task_type is None or task_type == "chief":
    return True
  has_chief = "chief" in strategy.cluster_resolver.cluster_spec().as_dict()
  return task_type == "worker" and task_id == 0 and not has_chief


@contextlib.contextmanager
def scratch_dir(strategy: tf.distribute.Strategy):
  """None on the chief; elsewhere a temporary directory for this worker's copies of
  the checkpoints the chief writes, deleted when the block ends."""
  if is_chief(strategy):
    yield None
    return
  task_type, task_id = task_of(strategy)
  path = tempfile.mkdtemp(prefix=f"laco_tf_{task_type}{task_id}_")
  try:
    yield path
  finally:
    shutil.rmtree(path, ignore_errors=True)


_REDUCERS = {}  # id(strategy) -> (strategy, its compiled all-reduce); one per strategy used


def _all_reduce_sum(strategy: tf.distribute.Strategy, value: float, chief_only: bool) -> float:
  """The sum of `value` over the workers; with `chief_only`, the chief's `value`.

  Replica 0 is the chief's first device: with `chief_only` it alone contributes.
  """
  if id(strategy) not in _REDUCERS:
    def replica_fn(x, chief_only):
      ctx = tf.distribute.get_replica_context()
      mine = tf.where(tf.logical_or(ctx.replica_id_in_sync_group == 0,
                                    tf.logical_not(chief_only)), x, tf.zeros_like(x))
      return ctx.all_reduce(tf.distribute.ReduceOp.SUM, mine)
    _REDUCERS[id(strategy)] = (strategy, tf.function(
        lambda x, c: strategy.run(replica_fn, args=(x, c))))
  out = _REDUCERS[id(strategy)][1](tf.constant(float(value), tf.float64), tf.constant(chief_only))
  return float(strategy.experimental_local_results(out)[0].numpy())


def chief_value(strategy: tf.distribute.Strategy, value: float) -> float:
  """The chief's `value` on every worker (unchanged outside a cluster)."""
  if not is_multi_worker(strategy):
    return float(value)
  return _all_reduce_sum(strategy, value, chief_only=True)


def any_worker(strategy: tf.distribute.Strategy, flag: bool) -> bool:
  """True on every worker when `flag` is true on any (unchanged outside a cluster)."""
  if not is_multi_worker(strategy):
    return bool(flag)
  return _all_reduce_sum(strategy, 1.0 if flag else 0.0, chief_only=False) > 0.5


def fingerprint(settings: dict) -> float:
  """A non-zero float that identifies `settings` (JSON-able), exact through an all-reduce."""
  digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).digest()
  return float(int.from_bytes(digest[:6], "big") | 1)  # 48 bits: exact in a float64

