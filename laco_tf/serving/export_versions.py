"""Numbered export versions under a base folder (``OUTPUT_DIR/export/1``, ``2``, ...), the
layout TF Serving's ``--model_base_path`` watches (it serves the highest). A version
appears whole or not at all, also with several exports into one base at once
(`publish_version`). Imports no TensorFlow.
"""

import contextlib
import errno
import fcntl
import os
import re
import secrets
import shutil

from laco_tf.errors import InputError


def versions(base: str) -> list:
  """The numbered export folders under `base`, oldest first."""
  if not os.path.isdir(base):
    return []
  return sorted(int(n) for n in os.listdir(base)
                if re.fullmatch(r"\d+", n) and os.path.isdir(os.path.join(base, n)))


def resolve_export(path: str) -> str:
  """A SavedModel folder: `path` itself, or the newest version under an export base."""
  if os.path.isfile(os.path.join(path, "saved_model.pb")):
    return path
  numbered = versions(path)
  if not numbered:
    raise InputError(f"{path}: neither a SavedModel nor an export base holding numbered "
                     "versions (OUTPUT_DIR/export/1, ...)")
  return os.path.join(path, str(numbered[-1]))


TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def _flocked(fd: int):
  """Holds an exclusive `fcntl.flock` on the open folder `fd` while the block runs."""
  fcntl.flock(fd, fcntl.LOCK_EX)
  try:
    yield
  finally:
    fcntl.flock(fd, fcntl.LOCK_UN)


def _open_folder(path: str) -> int:
  return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)  # never a link's target


def publish_version(base: str, write) -> str:
  """`write(folder)` fills a private temporary folder under `base`, which then becomes the
  next version ``base/<n>`` (n one more than the highest there). Returns its path.

  Several exports may target one base at once (two runs given one --export_dir). Two locks,
  both `fcntl.flock` on folders (the kernel drops them when their process dies; no lock
  file is left in the base, and OUTPUT_DIR/.lock is a different file):
  * the base folder's, held only to create a temporary folder and to pick a number and
    rename into it: two exports never take one number, and a rename never lands on a
    folder another export created (a rename onto an empty folder would succeed);
  * each temporary folder's own, held by its writer from creation to rename: a temporary
    folder nobody holds belongs to an export that was killed, and is removed (under the
    base lock) by the next export; a live writer's is never touched.
  A failed `write` removes its own temporary folder only. Needs a file system with flock
  (local disks; NFS emulates it with byte-range locks)."""
  base = os.path.abspath(base)
  if os.path.exists(base) and not os.path.isdir(base):
    raise InputError(f"{base}: exists and is not a folder; expected an export base folder")
  os.makedirs(base, exist_ok=True)
  base_fd = _open_folder(base)
  tmp_fd = None
  try:
    with _flocked(base_fd):
      _remove_abandoned(base)
      tmp = _new_folder(base)
      tmp_fd = _open_folder(tmp)
      fcntl.flock(tmp_fd, fcntl.LOCK_EX)
    try:
      write(tmp)
      with _flocked(base_fd):
        numbered = versions(base)
        version_dir = os.path.join(base, str(numbered[-1] + 1 if numbered else 1))
        os.rename(tmp, version_dir)  # Nothing at version_dir: checked under the lock.
    except BaseException:
      shutil.rmtree(tmp, ignore_errors=True)
      raise
  finally:
    if tmp_fd is not None:
      os.close(tmp_fd)
    os.close(base_fd)
  return version_dir


def _new_folder(base: str) -> str:
  """A new uniquely named temporary folder under `base`, with the permissions the umask
  gives (as `tf.saved_model.save` would; tempfile.mkdtemp's 0700 would hide the version
  from a server running as another user). `os.mkdir` fails on anything already at the
  name, a planted link included, so the save never lands where a link points."""
  while True:
    path = os.path.join(base, f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}")
    try:
      os.mkdir(path)
      return path
    except FileExistsError:
      continue


def _remove_abandoned(base: str) -> None:
  """Removes the temporary folders under `base` whose writer is gone (no flock on them).
  Called with the base lock held, so no export is between creating and locking one."""
  for name in os.listdir(base):
    path = os.path.join(base, name)
    if not name.startswith(TMP_PREFIX) or os.path.islink(path) or not os.path.isdir(path):
      continue
    try:
      fd = _open_folder(path)
    except OSError:
      continue
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
        raise
      continue  # a live export's
    finally:
      os.close(fd)  # (also drops a lock just taken; the folder goes next)
    shutil.rmtree(path, ignore_errors=True)
