"""Reading corpora and turning them into model inputs: reader -> tokenization -> input packing -> TFRecords -> tf.data."""
