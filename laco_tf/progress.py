"""Progress display on stderr, as tqdm and Keras' fit do: results keep stdout to themselves.

On a terminal the line is redrawn in place (at most ten times a second); elsewhere (a
cluster job, `nohup`, CI, a pipe) one plain line is printed at each `every` share of the
work, so that a log file holds a few lines rather than one redraw per step.
"""

import sys
import time

REDRAWS_PER_SECOND = 10


class LineProgress:
  """Keras `Progbar`'s `update`/`add` interface: count, rate, ETA and named values."""

  def __init__(self, target: int, unit_name: str = "step", every: float = 0.05,
               stream=None, redraw: bool = False, title: str = ""):
    self.target, self.unit_name = max(int(target), 1), unit_name
    self._every = max(1, int(round(self.target * every)))
    self._stream = stream or sys.stderr
    self._redraw, self._title = redraw, title
    self._seen, self._next, self._drawn = 0, None, None
    self._t0 = self._start = None

  def update(self, current: int, values=None) -> None:
    current = int(current)
    now = time.time()
    if self._t0 is None:  # Rates count from the first update (a resume starts mid-way).
      self._t0, self._start = now, current
      self._next = (current // self._every + 1) * self._every
    self._seen = current
    finished = current >= self.target
    if self._redraw:
      if (not finished and self._drawn is not None and
          now - self._drawn < 1 / REDRAWS_PER_SECOND):
        return
    elif current < self._next and not finished:
      return
    self._next = (current // self._every + 1) * self._every
    self._drawn = now
    line = self._line(current, now, values)
    if self._redraw:  # back to the line's start, draw, clear what a longer line left
      self._stream.write("\r" + line + "\x1b[K" + ("\n" if finished else ""))
      self._stream.flush()
    else:
      print(line, file=self._stream, flush=True)

  def _line(self, current: int, now: float, values) -> str:
    done = current - self._start
    rate = done / (now - self._t0) if done and now > self._t0 else 0.0
    parts = [f"{self._title}{current}/{self.target} {self.unit_name}s "
             f"({100 * current / self.target:.0f}%)"]
    if rate:
      parts.append(f"{rate:.3g} {self.unit_name}s/s" if rate >= 1 else
                   f"{1 / rate:.3g} s/{self.unit_name}")
      if current < self.target:
        parts.append(f"ETA {_clock((self.target - current) / rate)}")
    parts += [f"{name} {value:.4g}" for name, value in (values or [])]
    return " - ".join(parts)

  def add(self, n: int, values=None) -> None:
    self.update(self._seen + n, values)


def _clock(seconds: float) -> str:
  minutes, seconds = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def progress_bar(target: int, unit_name: str = "step", title: str = "") -> LineProgress:
  """A progress display on stderr: redrawn in place on a terminal, plain lines elsewhere.

  `title` (e.g. "dev: ") tells apart a display shown inside another's, such as the dev
  evaluation's during training.
  """
  return LineProgress(target, unit_name, stream=sys.stderr, redraw=sys.stderr.isatty(),
                      title=title)
