"""Training and evaluating under tf.distribute: the step loop, optimisers, metrics, decision rules."""
