"""TensorFlow's `saved_model_cli` with TF-Text's ops registered.

The exported signature tokenises in the graph with tensorflow-text, whose ops the plain
`saved_model_cli run` cannot load. Same arguments as `saved_model_cli`:

  python -m laco_tf.serving.saved_model_cli run --dir OUT/export/1 --tag_set serve \
      --signature_def serving_default --input_exprs 'text=["some text"]'
"""

import sys

import tensorflow_text  # noqa: F401  pylint: disable=unused-import  (registers the ops)
from tensorflow.python.tools import saved_model_cli

if __name__ == "__main__":
  sys.argv[0] = "saved_model_cli"
  saved_model_cli.main()
