"""JE input packing (paper 3.2) and label-token assignment."""

import pytest
import tensorflow as tf

from laco_tf.data import input_packing, tokenization
from laco_tf.errors import InputError

CLS, SEP = 101, 102


def test_layout_positions_types_and_truncation():
  docs = tf.ragged.constant([[5, 6, 7, 8, 9, 10, 11, 12, 13, 14], [20]], dtype=tf.int64)
  packed = input_packing.pack_joint_input(docs, [1, 2, 3], CLS, SEP, max_seq_length=14)
  # 14 - 3 labels - 3 specials leaves 8 document wordpieces.
  assert packed["input_ids"].to_list() == [
      [CLS, 5, 6, 7, 8, 9, 10, 11, 12, SEP, 1, 2, 3, SEP],
      [CLS, 20, SEP, 1, 2, 3, SEP]]
  assert packed["token_type_ids"].to_list() == [
      [0] * 10 + [1] * 4, [0, 0, 0, 1, 1, 1, 1]]
  assert packed["doc_length"].numpy().tolist() == [8, 1]
  positions = input_packing.label_positions(packed["doc_length"], 3).numpy()
  assert positions.tolist() == [[10, 11, 12], [3, 4, 5]]


def test_empty_document_still_has_all_label_tokens():
  packed = input_packing.pack_joint_input(tf.ragged.constant([[]], dtype=tf.int64), [7, 8],
                                          CLS, SEP, 20)
  assert packed["input_ids"].to_list() == [[CLS, SEP, 7, 8, SEP]]
  assert packed["doc_length"].numpy().tolist() == [0]


def test_max_length_too_small_for_labels_names_the_flag_and_shortfall():
  with pytest.raises(InputError, match=r"--max_seq_length=20 cannot hold 12 label tokens.*"
                     r"short by 3.*at least 23"):
    input_packing.max_doc_tokens(20, 12)


def test_label_tokens_use_unused_slots_in_order_and_skip_special_tokens():
  vocab = ["[PAD]", "[unused1]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello",
           "[unused2]", "[unused10]"]
  assert tokenization.label_token_ids(vocab, 4) == [2, 1, 8, 9]


def test_too_few_unused_slots_is_an_error_with_the_shortfall():
  vocab = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]"]
  with pytest.raises(InputError, match=r"3 labels but .* only 2 \[unusedN\] slots.*short by 1"):
    tokenization.label_token_ids(vocab, 3)
