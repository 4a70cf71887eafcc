"""An exclusive lock on a run's output directory, held for the whole run.

Two runs writing one directory at once corrupt each other (TFRecords half-written under
the other's feet, every history record twice). The lock is `fcntl.flock` on
``OUTPUT_DIR/.lock``, which names the holder's pid and host; the kernel drops it when
the process dies, so the lock file of a killed run is simply taken over.
"""

import contextlib
import fcntl
import os
import re
import socket
import stat

from laco_tf.errors import InputError

LOCK_NAME = ".lock"
# What a holder writes in the lock file (a file of other content is not ours to overwrite).
_HOLDER = re.compile(r"pid [0-9]+ on [^\n]*\n")


def prepare_output_dir(output_dir: str) -> None:
  """Creates `output_dir`, or says in one line why it cannot be a run's directory."""
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise InputError(f"--output_dir={output_dir}: exists and is not a directory")
  try:
    os.makedirs(output_dir, exist_ok=True)
  except OSError as e:
    raise InputError(f"--output_dir={output_dir}: cannot create it ({e.strerror})") from None
  if not os.access(output_dir, os.W_OK | os.X_OK):
    raise InputError(f"--output_dir={output_dir}: not writable by this user")


def _open_lock(output_dir: str, path: str) -> int:
  """Opens (creating) the lock file: never through a symbolic link (a link there would
  have the pid written into whatever file it names), and only a regular file."""
  flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
  try:
    fd = os.open(path, flags, 0o644)
  except OSError as e:
    what = ("a symbolic link" if os.path.islink(path) else
            "a directory" if os.path.isdir(path) else f"not openable ({e.strerror})")
    raise InputError(f"--output_dir={output_dir}: its lock file {path} is {what}; expected a "
                     "regular file (remove it, or choose another --output_dir)") from None
  if not stat.S_ISREG(os.fstat(fd).st_mode):
    os.close(fd)
    raise InputError(f"--output_dir={output_dir}: its lock file {path} is not a regular "
                     "file; remove it, or choose another --output_dir")
  return fd


@contextlib.contextmanager
def hold(output_dir: str):
  """Holds the lock of `output_dir` (created if needed) while the block runs."""
  prepare_output_dir(output_dir)
  path = os.path.join(output_dir, LOCK_NAME)
  fd = _open_lock(output_dir, path)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
      raise InputError(f"--output_dir={output_dir}: in use by {holder} (lock file {path}); "
                       "wait for that run to end or choose another --output_dir") from None
    previous = os.pread(fd, 200, 0).decode("utf-8", "replace")
    if previous and not _HOLDER.fullmatch(previous):
      raise InputError(f"--output_dir={output_dir}: {path} is not a lock file of this "
                       "project; move it away, or choose another --output_dir")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    yield
  finally:
    os.close(fd)  # closing drops the lock; the file stays (a later run reuses it)
