"""The train/dev/test splits of a read corpus (data-flow step 1, after `readers.py`): the
dev carve, the held-out latest stories, the label list and what each split keeps of it."""

import dataclasses
import logging
from typing import Dict, List, Optional, Sequence

import numpy as np

from laco_tf.data.readers import Example, read_corpus
from laco_tf.errors import InputError


def _split_size(train: Sequence[Example], fraction: float, flag: str) -> int:
  """How many of `train` a `flag`=fraction split takes (at least 1, never all)."""
  if not 0.0 < fraction < 1.0:
    raise InputError(f"--{flag}={fraction}: expected a number in (0, 1)")
  size = max(1, int(round(len(train) * fraction)))
  if size >= len(train):
    raise InputError(f"--{flag}={fraction}: leaves no training documents out of {len(train)}")
  return size


def carve_dev_split(train: Sequence[Example], fraction: float, seed: int):
  """Splits `train` into (train, dev) deterministically: a seeded permutation picks dev."""
  n_dev = _split_size(train, fraction, "dev_fraction")
  dev_ids = set(np.random.RandomState(seed).permutation(len(train))[:n_dev].tolist())
  return ([e for i, e in enumerate(train) if i not in dev_ids],
          [e for i, e in enumerate(train) if i in dev_ids])


def hold_out_last(train: Sequence[Example], fraction: float):
  """Splits `train` into (train, held-out test): the test part is the last `fraction` of
  the documents in id order when every id is a number (Reuters story ids grow with time,
  as ApteMod's own test split is later), else in corpus order."""
  n_test = _split_size(train, fraction, "test_fraction")
  ordered = list(train)
  if all(e.guid.isdigit() for e in ordered):
    ordered.sort(key=lambda e: int(e.guid))
  return ordered[:-n_test], ordered[-n_test:]


def label_list(train: Sequence[Example]) -> List[str]:
  """The label set seen in training, sorted so that it is the same on every run."""
  labels = sorted({l for e in train for l in e.labels})
  if not labels:
    raise InputError("the training split has no labels at all")
  return labels


def drop_unseen_labels(examples: Sequence[Example], labels: Sequence[str]):
  """Removes labels outside `labels` from each example; returns (examples, counts).

  Dev/test labels that training never saw cannot be predicted, so they are left out of
  the metrics' label set; `counts` maps each such label to its number of occurrences.
  """
  known, counts, out = set(labels), {}, []
  for e in examples:
    kept = tuple(l for l in e.labels if l in known)
    for l in e.labels:
      if l not in known:
        counts[l] = counts.get(l, 0) + 1
    out.append(dataclasses.replace(e, labels=kept) if len(kept) != len(e.labels) else e)
  return out, counts


def load_splits(data_dir: str, data_format: Optional[str], dev_fraction: float, seed: int,
                test_fraction: float = 0.0, encoding: str = "utf-8"):
  """Everything a run needs from the corpus: (splits, labels, unseen-label counts).

  Reads the splits; with `test_fraction` > 0 and no test split, holds out the last
  documents of train as test (`hold_out_last`); carves dev from the rest when there is
  none; fixes the label set from train and drops dev/test labels that training never
  saw (warning once per split).
  """
  splits = read_corpus(data_dir, data_format, encoding)
  if test_fraction > 0:
    if "test" in splits:
      raise InputError(f"--test_fraction={test_fraction}: {data_dir} has a test split "
                       "already; hold out part of train only for corpora without one")
    splits["train"], splits["test"] = hold_out_last(splits["train"], test_fraction)
    print(f"No test split in {data_dir}: held out the last {len(splits['test'])} of "
          f"{len(splits['train']) + len(splits['test'])} training documents as test "
          f"(--test_fraction={test_fraction}; the highest ids when all are numbers, else the "
          "last in file order)")
  if "dev" not in splits:
    splits["train"], splits["dev"] = carve_dev_split(splits["train"], dev_fraction, seed)
    print(f"No dev split in {data_dir}: carved {len(splits['dev'])} of "
          f"{len(splits['train']) + len(splits['dev'])} training documents as dev "
          f"(--dev_fraction={dev_fraction}, carve seed {seed})")
  labels = label_list(splits["train"])
  unseen = {}
  for split in ("dev", "test"):
    if split in splits:
      splits[split], counts = drop_unseen_labels(splits[split], labels)
      unseen[split] = sum(counts.values())
      if counts:
        logging.warning("%s: %d occurrences of %d labels never seen in training (e.g. %s) are "
                        "left out of the metrics' label set", split, sum(counts.values()),
                        len(counts), ", ".join(sorted(counts)[:5]))
  no_labels = sum(1 for e in splits["train"] if not e.labels)
  if no_labels:
    print(f"{no_labels} training documents have no label: they are all-negative targets for "
          "the classifier and take no part in PLCP/CLCP")
  return splits, labels, unseen


def label_counts(examples: Sequence[Example], labels: Sequence[str]) -> Dict[str, int]:
  """How many documents carry each label (for frequency analyses)."""
  counts = dict.fromkeys(labels, 0)
  for e in examples:
    for l in set(e.labels):
      if l in counts:
        counts[l] += 1
  return counts
