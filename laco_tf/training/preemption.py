"""SIGTERM as a request to stop at the next step boundary (what cloud schedulers send
before preempting a machine): our extension. The trainer saves the current step and
raises `errors.PreemptedError`; a rerun continues exactly (see trainer.py)."""

import signal
import threading


class TerminationSignal:
  """While entered (in the main thread), records SIGTERM instead of dying of it."""

  def __init__(self):
    self.received = False
    self._previous = None

  def __enter__(self):
    self.received = False
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._note)
    return self

  def _note(self, signum, frame):  # pylint: disable=unused-argument
    self.received = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None
    return False
