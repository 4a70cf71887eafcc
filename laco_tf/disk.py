"""Writes that leave nothing half-written, and a full disk reported as one line.

Every file the project writes whole goes to a temporary name beside its final one and is
renamed when complete (`replacing`). When the write fails, the temporary file is removed
(the project deletes only what it wrote), and a full disk becomes a `DiskFullError` that
names the directory, instead of a traceback from Python or TensorFlow.
"""

import contextlib
import errno
import os
import re
import shutil
from typing import Optional

from laco_tf.errors import DiskFullError

# How TensorFlow's file system layer words ENOSPC and EDQUOT in its errors (it raises
# ResourceExhaustedError, UnknownError or InternalError depending on the call).
_NO_SPACE_TEXTS = ("No space left on device", "Disk quota exceeded")


def is_no_space(exc: BaseException) -> bool:
  """Whether `exc` (Python's OSError or any TensorFlow error) says the disk is full."""
  if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
    return True
  return any(text in str(exc) for text in _NO_SPACE_TEXTS)


def path_of(exc: BaseException) -> Optional[str]:
  """The file a failed write names: an OSError's filename, or the path TensorFlow puts
  before its "; No space left on device"."""
  if isinstance(exc, OSError) and exc.filename:
    return os.fsdecode(exc.filename)
  found = re.search(r"(/[^\s;:]+)[;:]? *(?:{})".format("|".join(_NO_SPACE_TEXTS)), str(exc))
  return found.group(1) if found else None


def _size(num_bytes: int) -> str:
  return (f"{num_bytes / 2**30:.1f} GB" if num_bytes >= 2**30 else
          f"{num_bytes / 2**20:.1f} MB")


def disk_full(path: str, needed: Optional[int] = None, cleaned: bool = True) -> DiskFullError:
  """The one-line error for a write of `path` that found no space (`needed`: bytes;
  `cleaned`: the writer removed what it had half written)."""
  path = os.path.abspath(path)
  directory = path if os.path.isdir(path) else os.path.dirname(path)
  existing = directory
  while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
    existing = os.path.dirname(existing)
  try:
    free = f"{_size(shutil.disk_usage(existing).free)} free"
  except OSError:
    free = "free space unknown"
  need = f", about {_size(needed)} needed" if needed else ""
  kept = "nothing half-written was kept; " if cleaned else ""
  what = "" if path == directory else f" writing {os.path.basename(path)}"
  return DiskFullError(f"{directory}: no space left on device{what} ({free}{need}); "
                       f"{kept}free space there and rerun the same command")


def remove(path: str) -> None:
  """Removes a file or directory tree if it exists."""
  if os.path.isdir(path) and not os.path.islink(path):
    shutil.rmtree(path, ignore_errors=True)
  elif os.path.lexists(path):
    with contextlib.suppress(OSError):
      os.remove(path)


@contextlib.contextmanager
def replacing(path: str, needed: Optional[int] = None, suffix: str = ".tmp"):
  """Yields a temporary name beside `path` to write; renames it to `path` when the block
  succeeds. When the block fails the temporary file is removed, and a full disk is raised
  as `DiskFullError` (`needed`: the bytes the write needs, when known)."""
  tmp = path + suffix
  try:
    yield tmp
    os.replace(tmp, path)
  except BaseException as e:
    remove(tmp)
    if isinstance(e, Exception) and is_no_space(e):
      raise disk_full(path, needed) from e
    raise
