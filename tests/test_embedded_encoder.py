"""Integration: a few training steps with the embedded all-MiniLM-L6-v2 encoder."""

import json

import numpy as np

from laco_tf import runner
from laco_tf.modeling import encoder
from tests.test_end_to_end import tiny_options


def test_embedded_encoder_is_found_uncased_and_trains_a_few_steps(tmp_path, tiny_corpus):
  spec = encoder.resolve_encoder("minilm")
  assert spec.do_lower_case is True
  summary = runner.run(tiny_options(tiny_corpus, "minilm", tmp_path, task="clcp",
                                    learning_rate=5e-5, head_learning_rate=1e-3,
                                    max_steps=3, eval_every_steps=3, do_predict=False))
  assert summary["train"]["steps"] == 3
  with open(tmp_path / "history.jsonl") as f:
    record = json.loads(f.readline())
  assert set(record["train_loss"]) == {"mlc", "clcp", "total"}
  assert all(np.isfinite(v) for v in record["train_loss"].values())
  with open(tmp_path / "tfrecords" / "metadata.json") as f:
    meta = json.load(f)
  # all-MiniLM-L6-v2 keeps BERT's vocabulary: [unused0] is id 1, [unused1] id 2, ...
  assert meta["label_token_ids"] == [1, 2, 3, 4]
  assert meta["do_lower_case"] is True
