"""Progress display: Keras' bar on a terminal, a line every few percent elsewhere.

Keras' `Progbar` redraws itself with backspaces whenever `posix` is imported, so a run
whose output goes to a file or a pipe (a cluster job, `nohup`, CI) logs one redraw per
step. Off a terminal, `LineProgress` prints one plain line per `every` share of the work.
"""

import sys
import time

import tf_keras


class LineProgress:
  """`Progbar`'s `update`/`add` interface, printing a line at each `every` of the target."""

  def __init__(self, target: int, unit_name: str = "step", every: float = 0.05,
               stream=None):
    self.target, self.unit_name = max(int(target), 1), unit_name
    self._every = max(1, int(round(self.target * every)))
    self._stream = stream or sys.stdout
    self._seen, self._next = 0, None
    self._t0 = self._start = None

  def update(self, current: int, values=None) -> None:
    current = int(current)
    now = time.time()
    if self._t0 is None:  # Rates count from the first update (a resume starts mid-way).
      self._t0, self._start = now, current
      self._next = (current // self._every + 1) * self._every
    self._seen = current
    if current < self._next and current < self.target:
      return
    self._next = (current // self._every + 1) * self._every
    done = current - self._start
    rate = done / (now - self._t0) if done and now > self._t0 else 0.0
    parts = [f"{current}/{self.target} {self.unit_name}s ({100 * current / self.target:.0f}%)"]
    if rate:
      parts.append(f"{rate:.3g} {self.unit_name}s/s" if rate >= 1 else
                   f"{1 / rate:.3g} s/{self.unit_name}")
      if current < self.target:
        parts.append(f"ETA {_clock((self.target - current) / rate)}")
    parts += [f"{name} {value:.4g}" for name, value in (values or [])]
    print(" - ".join(parts), file=self._stream, flush=True)

  def add(self, n: int, values=None) -> None:
    self.update(self._seen + n, values)


def _clock(seconds: float) -> str:
  minutes, seconds = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def progress_bar(target: int, unit_name: str = "step", stateful_metrics=None):
  """Keras' bar when stdout is a terminal, else a `LineProgress`."""
  if sys.stdout.isatty():
    return tf_keras.utils.Progbar(target, unit_name=unit_name,
                                  stateful_metrics=stateful_metrics)
  return LineProgress(target, unit_name)
