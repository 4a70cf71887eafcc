"""Command-line flags of run_classifier.py: one per option declared in
`laco_tf/options.py` (help texts, defaults and choices are there), defined by the
training command, `laco_tf/train_command.py`."""

from laco_tf import train_command

FLAGS = train_command.FLAGS
