#!/usr/bin/env python3
"""Generates data/sample/, the small synthetic multi-label corpus the README runs on.

Each label has its own vocabulary; a document picks a theme (a cluster of correlated
labels), takes one to three of the theme's labels with the dependencies written below,
sometimes a rare label, and draws its words from its labels' vocabularies mixed with
common filler words. Deterministic: the same seed writes the same files.

  python data/make_sample.py [--out data/sample] [--seed 13]

With --num_labels=N it writes instead a corpus of N labels (``label00000``..), each
signalled by three words of its own and drawn with Zipf-like frequencies (a few common
labels, a long tail of rare ones), one to three per document; the first split's first N
documents also carry label i each, so training holds all N. A label set of any size, for
trying --label_slots at scale.
"""

import argparse
import json
import os
import random

# label -> words that signal it.
VOCAB = {
    "markets": "stocks shares index traders equity rally selloff investors exchange broker",
    "currency": "dollar euro yen exchange forex devaluation peso sterling franc currency",
    "rates": "interest inflation central bank bond yield hike lending mortgage treasury",
    "energy": "oil gas pipeline barrel crude refinery drilling opec fuel electricity",
    "climate": "emissions carbon warming glacier drought temperature climate floods solar wind",
    "policy": "parliament minister law regulation senate vote reform treaty government tax",
    "health": "hospital patients doctors vaccine clinic disease nurses treatment medicine virus",
    "research": "scientists study laboratory experiment university journal data findings trial",
    "genetics": "gene dna genome mutation cells protein sequencing heredity chromosome enzyme",
    "sports": "match team coach season league players stadium tournament score champion",
    "football": "goal striker penalty midfielder keeper offside referee cup kick header",
    "chess": "grandmaster opening gambit endgame rook bishop checkmate pawn knight queen",
    "volcano": "eruption lava magma ash crater seismic tremor volcanic evacuation summit",
}
# Themes: labels that tend to occur together, with each label's chance given the theme.
THEMES = [
    {"markets": 0.9, "currency": 0.45, "rates": 0.5},
    {"energy": 0.85, "climate": 0.5, "policy": 0.35},
    {"health": 0.8, "research": 0.55, "genetics": 0.3},
    {"sports": 0.95, "football": 0.6},
    {"policy": 0.9, "rates": 0.3, "health": 0.25},
]
RARE = {"chess": 0.02, "volcano": 0.02}
FILLER = ("the a of and to in on for with as said reported new year week people report "
          "according officials local group after before during major").split()


def make_document(rng: random.Random):
  while True:
    theme = rng.choice(THEMES)
    labels = [l for l, p in theme.items() if rng.random() < p]
    # "genetics" and "football" come with their parents: real label hierarchies do that.
    if "genetics" in labels and "research" not in labels:
      labels.append("research")
    if "football" in labels and "sports" not in labels:
      labels.append("sports")
    labels += [l for l, p in RARE.items() if rng.random() < p]
    if labels:
      break
  words = []
  for label in labels:
    words += rng.choices(VOCAB[label].split(), k=rng.randint(4, 7))
  words += rng.choices(FILLER, k=rng.randint(10, 18))
  # A few words of an unrelated label make the task less than trivial.
  words += rng.choices(VOCAB[rng.choice(sorted(VOCAB))].split(), k=2)
  rng.shuffle(words)
  return " ".join(words).capitalize() + ".", sorted(labels)


SYLLABLES = ("ba be bi bo bu da de di do du fa fe fi fo fu ga ge gi go gu ka ke ki ko ku "
             "la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po pu ra re ri ro ru "
             "sa se si so su ta te ti to tu").split()


def label_word(label: int, k: int) -> str:
  """The k-th (0-2) signal word of a label: the number 3 * label + k in base 60, three
  syllables long, so every (label, k) has its own word up to 72,000 labels."""
  value, parts = 3 * label + k, []
  for _ in range(3):
    value, digit = divmod(value, len(SYLLABLES))
    parts.append(SYLLABLES[digit])
  return "".join(parts)


def make_many_label_document(rng: random.Random, num_labels: int, weights,
                             forced=None) -> tuple:
  """A document of one to three labels drawn by `weights` (cumulative), plus label
  `forced` if given, with each label's signal words mixed into filler."""
  labels = set(rng.choices(range(num_labels), cum_weights=weights, k=rng.randint(1, 3)))
  labels = sorted(labels | ({forced} if forced is not None else set()))
  words = [label_word(l, rng.randrange(3)) for l in labels for _ in range(rng.randint(3, 5))]
  words += rng.choices(FILLER, k=rng.randint(10, 18))
  rng.shuffle(words)
  return " ".join(words).capitalize() + ".", [f"label{l:05d}" for l in labels]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "sample"))
  parser.add_argument("--seed", type=int, default=13)
  parser.add_argument("--sizes", default="train=800,dev=150,test=150")
  parser.add_argument("--num_labels", type=int, default=0,
                      help="> 0: a corpus of this many labels instead of the sample's 13")
  args = parser.parse_args()
  rng = random.Random(args.seed)
  weights, total = [], 0.0
  for rank in range(args.num_labels):
    total += 1.0 / (rank + 1) ** 0.6
    weights.append(total)
  os.makedirs(args.out, exist_ok=True)
  for number, item in enumerate(args.sizes.split(",")):
    split, size = item.split("=")
    path = os.path.join(args.out, f"{split}.jsonl")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
      for i in range(int(size)):
        forced = i if number == 0 and i < args.num_labels else None
        text, labels = (make_many_label_document(rng, args.num_labels, weights, forced)
                        if args.num_labels else make_document(rng))
        f.write(json.dumps({"id": f"{split}-{i:04d}", "text": text, "labels": labels}) + "\n")
    os.replace(path + ".tmp", path)
    print(f"wrote {size} documents to {path}")


if __name__ == "__main__":
  main()
