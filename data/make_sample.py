#!/usr/bin/env python3
"""Generates data/sample/, the small synthetic multi-label corpus the README runs on.

Each label has its own vocabulary; a document picks a theme (a cluster of correlated
labels), takes one to three of the theme's labels with the dependencies written below,
sometimes a rare label, and draws its words from its labels' vocabularies mixed with
common filler words. Deterministic: the same seed writes the same files.

  python data/make_sample.py [--out data/sample] [--seed 13]
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


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "sample"))
  parser.add_argument("--seed", type=int, default=13)
  parser.add_argument("--sizes", default="train=800,dev=150,test=150")
  args = parser.parse_args()
  rng = random.Random(args.seed)
  os.makedirs(args.out, exist_ok=True)
  for item in args.sizes.split(","):
    split, size = item.split("=")
    path = os.path.join(args.out, f"{split}.jsonl")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
      for i in range(int(size)):
        text, labels = make_document(rng)
        f.write(json.dumps({"id": f"{split}-{i:04d}", "text": text, "labels": labels}) + "\n")
    os.replace(path + ".tmp", path)
    print(f"wrote {size} documents to {path}")


if __name__ == "__main__":
  main()
