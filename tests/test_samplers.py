"""PLCP/CLCP draws: validity, ratio gamma, masks, and determinism (paper 3.4)."""

import numpy as np
import pytest
import tensorflow as tf

from laco_tf.data import samplers


def _draw_plcp(labels, n_docs, gamma, pairs=4, epoch=0):
  out = [samplers.sample_plcp_pairs(tf.constant(labels, tf.float32),
                                    samplers.example_seed(7, epoch, i), pairs, gamma)
         for i in range(n_docs)]
  return [tuple(x.numpy() for x in o) for o in out]


def test_plcp_pairs_are_valid_and_drawn_in_ratio_gamma():
  labels = np.array([1, 0, 1, 1, 0, 0, 1, 0])
  draws = _draw_plcp(labels, 400, gamma=0.5)
  is_co = np.concatenate([t for _, t, _ in draws])
  # IsCo-occur : NotCo-occur = gamma => IsCo share gamma / (1 + gamma) = 1/3.
  assert is_co.mean() == pytest.approx(1 / 3, abs=0.03)
  for pairs, targets, mask in draws:
    assert mask == 1.0
    for (a, b), t in zip(pairs, targets):
      assert a != b
      if t == 1:
        assert labels[a] == 1 and labels[b] == 1
      else:
        assert labels[a] + labels[b] == 1
  firsts = np.array([labels[p[0]] for pairs, t, _ in draws for p, tt in zip(pairs, t)
                     if tt == 0])
  assert 0.4 < firsts.mean() < 0.6  # NotCo pairs come in both orders.


def test_plcp_gamma_two_gives_two_thirds_isco():
  draws = _draw_plcp(np.array([1, 1, 0, 1, 0]), 400, gamma=2.0)
  assert np.concatenate([t for _, t, _ in draws]).mean() == pytest.approx(2 / 3, abs=0.03)


@pytest.mark.parametrize("labels", [[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
def test_plcp_masks_documents_that_cannot_supply_both_kinds(labels):
  _, _, mask = _draw_plcp(np.array(labels), 1, gamma=0.5)[0]
  assert mask == 0.0


def test_clcp_given_set_is_s_relevant_labels_and_masks_short_documents():
  labels = tf.constant([0, 1, 1, 0, 1, 0], tf.float32)
  chosen = []
  for i in range(300):
    given, mask = samplers.sample_clcp_given(labels, samplers.example_seed(1, 0, i), 2)
    given = given.numpy()
    assert mask == 1.0 and given.sum() == 2 and np.all(given <= labels.numpy())
    chosen.append(given)
  # Each of the three relevant labels is given in about 2/3 of the draws.
  np.testing.assert_allclose(np.mean(chosen, 0)[[1, 2, 4]], [2 / 3] * 3, atol=0.08)
  given, mask = samplers.sample_clcp_given(tf.constant([0, 1, 0, 0], tf.float32),
                                           samplers.example_seed(1, 0, 0), 2)
  assert mask == 0.0 and given.numpy().sum() == 0


def test_draws_repeat_for_the_same_seed_and_change_with_the_epoch():
  labels = np.array([1, 1, 0, 1, 0, 1, 0, 0, 1])
  first = _draw_plcp(labels, 20, 0.5, epoch=0)
  again = _draw_plcp(labels, 20, 0.5, epoch=0)
  other = _draw_plcp(labels, 20, 0.5, epoch=1)
  assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again))
  assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other))
