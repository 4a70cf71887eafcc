"""A run's checkpoint directories (``checkpoints/``, ``best/``): read only when whole, and
saved so that a failed save leaves nothing behind.

TensorFlow falls back to training from step 0 when the ``checkpoint`` index is unreadable
or names files that are gone, and fails with IndexError or DataLossError tracebacks on a
truncated or corrupt checkpoint. Here each of these is one `InputError` naming the file and
what to do. A save that fails (a full disk) removes what it wrote, and a rerun removes what
a killed save left: the names TensorFlow gives its temporary files (`_STALE`).
"""

import glob
import os
import re
from typing import Optional

import tensorflow as tf
from google.protobuf import text_format
from tensorflow.python.training import checkpoint_state_pb2  # the index's format

from laco_tf import disk
from laco_tf.errors import InputError

INDEX = "checkpoint"
PREFIX = "ckpt"  # tf.train.CheckpointManager's default checkpoint_name
# A save writes its shards into "<prefix>_temp/" and then renames them; the index is
# written to "checkpoint.tmp<uuid hex>" and then renamed (TF's atomic_write_string_to_file).
_STALE = re.compile(re.escape(PREFIX) + r"-\d+_temp|" + re.escape(INDEX) + r"\.tmp[0-9a-f]{32}")


def _first_line(error: BaseException) -> str:
  text = str(error).strip().splitlines()
  return (text[0] if text else type(error).__name__)[:200]


def remove_stale(directory: str) -> None:
  """Removes what interrupted saves left in `directory` (see `_STALE`)."""
  if not os.path.isdir(directory):
    return
  for name in sorted(os.listdir(directory)):
    if _STALE.fullmatch(name):
      disk.remove(os.path.join(directory, name))
      print(f"Removed {os.path.join(directory, name)}, left by an interrupted save")


def _named(directory: str) -> Optional[str]:
  """The prefix of the checkpoint the index of `directory` names; None without an index.
  Raises InputError when the index cannot be read."""
  index = os.path.join(directory, INDEX)
  if not os.path.isfile(index):
    return None
  try:
    with open(index, encoding="utf-8") as f:
      state = text_format.Parse(f.read(), checkpoint_state_pb2.CheckpointState())
  except (OSError, ValueError, text_format.ParseError) as e:
    raise InputError(f"{index} is unreadable ({_first_line(e)})") from None
  if not state.model_checkpoint_path:
    raise InputError(f"{index} names no checkpoint")
  return os.path.join(directory, state.model_checkpoint_path)  # relative, or kept if absolute


def _missing(prefix: str) -> bool:
  """Whether a file of the checkpoint `prefix` (its .index, a data shard) is gone."""
  shards = glob.glob(glob.escape(prefix) + ".data-*-of-*")
  if not os.path.isfile(prefix + ".index") or not shards:
    return True
  count = int(re.search(r"-of-(\d+)$", shards[0]).group(1))
  return any(not os.path.isfile(f"{prefix}.data-{i:05d}-of-{count:05d}")
             for i in range(count))


def latest(directory: str, remedy: str) -> Optional[str]:
  """The checkpoint the index of `directory` names, once every tensor in it has been
  read back (checksums included); None when there is no index.

  Raises InputError, ending in `remedy` (what the user can do), when the index is
  unreadable, or its checkpoint's files are gone, truncated or corrupt.
  """
  try:
    prefix = _named(directory)
  except InputError as e:
    raise InputError(f"{e}: {remedy}") from None
  if prefix is None:
    return None
  name = os.path.basename(prefix)
  if _missing(prefix):
    raise InputError(f"{directory}: its index names {name}, whose files are gone; {remedy}")
  try:
    reader = tf.train.load_checkpoint(prefix)
    for key in reader.get_variable_to_dtype_map():
      reader.get_tensor(key)
  except Exception as e:  # pylint: disable=broad-except  (IndexError, DataLossError, ...)
    raise InputError(f"{prefix} is unreadable (truncated or corrupt: {_first_line(e)}); "
                     f"{remedy}") from None
  return prefix


class CheckpointManager(tf.train.CheckpointManager):
  """TF's manager, whose failed save removes what it wrote (its `_temp` folder, and the
  checkpoint's files when the index does not name them) and reports a full disk as a
  one-line `DiskFullError`."""

  def save(self, checkpoint_number=None, check_interval=True, options=None):
    previous = self.latest_checkpoint
    try:
      return super().save(checkpoint_number, check_interval, options)
    except BaseException as e:
      prefix = (os.path.join(self.directory, f"{PREFIX}-{checkpoint_number}")
                if checkpoint_number is not None else None)
      self._remove_unrecorded(prefix)
      if isinstance(e, Exception) and disk.is_no_space(e):
        needed = (sum(os.path.getsize(p) for p in glob.glob(glob.escape(previous) + ".*"))
                  if previous else None)
        raise disk.disk_full(prefix or self.directory, needed) from e
      raise

  def _remove_unrecorded(self, prefix: Optional[str]) -> None:
    for name in os.listdir(self.directory) if os.path.isdir(self.directory) else []:
      if _STALE.fullmatch(name):
        disk.remove(os.path.join(self.directory, name))
    if prefix is None:
      return
    try:
      named = _named(self.directory)
    except InputError:
      named = None
    if named is None or os.path.normpath(named) != os.path.normpath(prefix):
      for path in glob.glob(glob.escape(prefix) + ".*"):
        disk.remove(path)
