"""Recall of the label shortlist (label slots' first stage) at K, on dev and held-out.

  python -m laco_tf.study.shortlist_recall --data_dir=PATH/TO/reuters21578-facets \\
      [--test_fraction=0.2] [--max_doc_tokens=256] [--k=16,32,64,96,128] [--seed=0] \\
      [--out=benchmarks/results/shortlist_recall]

Reads the corpus as `run_classifier.py` does (the same dev carve for --seed, the same
held-out split for --test_fraction), tokenises it with the embedded encoder's vocabulary
and the text budget a run would read, fits the TF-IDF centroid shortlist
(`laco_tf/modeling/shortlist.py`) on train, and reports the micro recall of each
document's top K on dev and on the held-out split: the share of gold labels that
`--label_inference=shortlist` can find at all. Writes shortlist_recall.json and a PNG to
--out (default: benchmarks/results/shortlist_recall, from the current directory).
"""

import argparse
import json
import os
import tempfile

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from laco_tf import plots  # noqa: E402
from laco_tf.data import corpus_splits, tfrecords  # noqa: E402
from laco_tf.modeling import encoder, shortlist  # noqa: E402


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--data_format", default=None)
  parser.add_argument("--test_fraction", type=float, default=0.2)
  parser.add_argument("--dev_fraction", type=float, default=0.1)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--max_doc_tokens", type=int, default=256)
  parser.add_argument("--k", default="16,32,64,96,128")
  parser.add_argument("--out", default=os.path.join("benchmarks", "results", "shortlist_recall"),
                      help="relative to the current directory")
  args = parser.parse_args()
  ks = [int(k) for k in args.k.split(",")]
  spec = encoder.resolve_encoder("minilm")
  splits, labels, _ = corpus_splits.load_splits(args.data_dir, args.data_format,
                                                args.dev_fraction, args.seed, args.test_fraction)
  with tempfile.TemporaryDirectory() as scratch:
    # Documents alone, cut to the text budget: what a label-slots run's records hold.
    tfrecords.prepare_tfrecords(scratch, splits, labels, spec, [], args.max_doc_tokens + 2)
    read = {s: tfrecords.read_documents(os.path.join(scratch, f"{s}.tfrecord"))
            for s in splits}
  docs, doc_labels = read["train"]
  weights = shortlist.fit(docs, doc_labels, spec.vocab_size, len(labels))
  model = shortlist.LabelShortlist(weights)
  result = {"args": vars(args) | {"data_dir": os.path.basename(os.path.normpath(
      args.data_dir))}, "num_labels": len(labels), "recall": {}}
  for split in ("dev", "test"):
    if split not in read:
      continue
    split_docs, split_labels = read[split]
    gold = np.zeros([len(split_labels), len(labels)], bool)
    for row, ids in enumerate(split_labels):
      gold[row, ids] = True
    scores = model.scores_of(split_docs)
    result["recall"][split] = {k: shortlist.recall_at(scores, gold, k) for k in ks}
    print(f"{split} ({len(split_docs)} documents, {len(labels)} labels): " +
          ", ".join(f"recall@{k} {r:.4f}" for k, r in result["recall"][split].items()))
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "shortlist_recall.json"), "w", encoding="utf-8") as f:
    json.dump(result, f, indent=1)
  fig, ax = plots.plt.subplots(figsize=(6, 3.5))
  for split, recall in result["recall"].items():
    ax.plot(list(recall), list(recall.values()), marker="o",
            label={"dev": "dev", "test": "held-out"}[split])
  ax.set(xlabel="K (labels proposed)", ylabel="micro recall of gold labels",
         title=f"TF-IDF centroid shortlist, {len(labels)} labels")
  ax.legend()
  fig.tight_layout()
  plots.save_figure(fig, os.path.join(args.out, "shortlist_recall.png"))


if __name__ == "__main__":
  main()
