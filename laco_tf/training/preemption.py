"""SIGTERM and SIGINT as requests to stop cleanly (our extension).

SIGTERM is what cloud schedulers send before preempting a machine; SIGINT is Ctrl-C. While
a `StopSignals` is entered, either is recorded instead of killing the process, and the
run stops with `errors.PreemptedError` (one line, exit status 42 for SIGTERM, 130 for
SIGINT) after what it was doing is finished or rolled back:
- inside `deferred()` (training), the code checks `received` at its own boundaries: the
  trainer saves the current step (or, during a dev evaluation, keeps the previous
  checkpoint) and raises;
- elsewhere (TFRecords, prediction, export: each named by `begin()`) the handler raises
  at once. What it interrupts is left as a kill would leave it, which every writer of ours survives
  (files are written under temporary names and renamed when whole), and a rerun of
  the same command redoes it.
"""

import contextlib
import signal
import threading
from typing import Optional

from laco_tf.errors import PreemptedError

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_active: Optional["StopSignals"] = None


class StopSignals:
  """While entered (in the main thread), records SIGTERM and SIGINT instead of dying of them."""

  def __init__(self):
    self.received = None  # the first signal's number
    self.phase = "starting"
    self._deferred = 0
    self._raised = False
    self._previous = {}

  def __enter__(self):
    global _active  # pylint: disable=global-statement
    self.received, self._raised = None, False
    if threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._note) for s in SIGNALS}
      _active = self
    return self

  def __exit__(self, exc_type, exc, traceback):
    global _active  # pylint: disable=global-statement
    for s, handler in self._previous.items():
      signal.signal(s, handler)
    self._previous = {}
    if _active is self:
      _active = None
    if self._raised and exc is not None and not isinstance(exc, PreemptedError):
      # The handler's exception, turned into another by the code it interrupted
      # (TensorFlow wraps exceptions raised inside its calls).
      raise self._stopped() from None
    return False

  @property
  def name(self) -> str:
    return signal.Signals(self.received or signal.SIGTERM).name

  def error(self, message: str) -> PreemptedError:
    return PreemptedError(message, self.received or signal.SIGTERM)

  def _note(self, signum, frame):  # pylint: disable=unused-argument
    self.received = self.received or signum
    if not self._deferred and not self._raised:
      self._raised = True
      raise self._stopped()

  def _stopped(self) -> PreemptedError:
    return self.error(f"stopped by {self.name} while {self.phase}; what was finished is "
                      "saved: rerun the same command to go on")

  def begin(self, phase: str) -> None:
    """Names the part of the run that starts (see the module doc); stops now if a signal
    came before it."""
    self.phase = phase
    if self.received and not self._deferred:
      self._raised = True
      raise self._stopped()

  @contextlib.contextmanager
  def deferred(self):
    """A block that checks `received` itself at safe points."""
    self._deferred += 1
    try:
      yield self
    finally:
      self._deferred -= 1


@contextlib.contextmanager
def deferred():
  """The run's `StopSignals` in deferred mode; a new one when none is entered (a trainer
  used on its own)."""
  if _active is not None:
    with _active.deferred() as signals:
      yield signals
  else:
    with StopSignals() as signals, signals.deferred():
      yield signals
