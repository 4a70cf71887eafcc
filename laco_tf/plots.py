"""PNG figure of a run's training curves (loss terms and dev scores against step)."""

import matplotlib

matplotlib.use("Agg")  # Files only; no display on training machines.
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

from laco_tf import disk, results  # pylint: disable=g-import-not-at-top


def save_figure(fig, path: str) -> str:
  """Writes `fig` as a PNG to `path` via a temporary file (never a half-written figure)."""
  fig.tight_layout()
  try:
    with disk.replacing(path, suffix=".tmp.png") as tmp:  # removed if the write fails
      with results.open_new(tmp, "wb") as f:  # a symbolic link planted there is not followed
        fig.savefig(f, dpi=100, format="png")
  finally:
    plt.close(fig)
  return path


def plot_training_curves(history: list, path: str) -> str:
  """Draws `history.read_history` records to `path` (written via a temporary file)."""
  steps = [r["step"] for r in history]
  fig, (ax_loss, ax_dev) = plt.subplots(1, 2, figsize=(11, 4))
  terms = sorted({k for r in history for k in r["train_loss"]})
  for k in terms:
    pts = [(r["step"], r["train_loss"][k]) for r in history if k in r["train_loss"]]
    ax_loss.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=k)
  # Dev's eq.-4 loss (runs trained with it), dashed beside the training mlc term.
  dev_pts = [(r["step"], r["dev_loss"]["mlc"]) for r in history if "mlc" in r.get("dev_loss", {})]
  if dev_pts:
    ax_loss.plot([p[0] for p in dev_pts], [p[1] for p in dev_pts], marker="o", linestyle="--",
                 label="mlc (dev)")
  ax_loss.set(title="loss (training: mean since previous eval)", xlabel="step", ylabel="loss")
  ax_loss.legend()
  for key in ("micro_f1", "macro_f1", "subset_accuracy"):
    ax_dev.plot(steps, [r["dev"][key] for r in history], marker="o", label=key)
  ax_dev.set(title="dev scores", xlabel="step", ylim=(0, 1))
  ax_dev.legend()
  return save_figure(fig, path)


def plot_paired_seeds(scores, metric: str, title: str, path: str) -> str:
  """Per-seed scores of two configurations, each seed a line from one to the other.

  `scores` is [(name, {seed: value})] for the two configurations, same seeds in both (a
  list, as two bases may share a directory name); the means are short black bars.
  """
  (name_a, a), (name_b, b) = scores
  fig, ax = plt.subplots(figsize=(5, 4))
  for seed in sorted(a):
    ax.plot([0, 1], [a[seed], b[seed]], marker="o", label=f"seed {seed}")
  for x, values in ((0, a), (1, b)):
    mean = sum(values.values()) / len(values)
    ax.hlines(mean, x - 0.12, x + 0.12, colors="black", linewidth=3)
  ax.set(xticks=[0, 1], xticklabels=[name_a, name_b], xlim=(-0.4, 1.4), ylabel=metric,
         title=title)
  ax.legend(fontsize="small")
  return save_figure(fig, path)
