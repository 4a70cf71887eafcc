#!/usr/bin/env python3
"""Trains, evaluates and exports a LACO multi-label text classifier.

  python run_classifier.py --task=clcp --data_dir=data/sample --output_dir=OUT

With none of --do_train/--do_eval/--do_predict/--do_export, does all four. See README.md
and `python run_classifier.py --helpfull`. The command lives in
`laco_tf/train_command.py` (installed as `laco-tf-train`); its flags are the options of
`laco_tf/options.py`.
"""

from laco_tf import train_command

if __name__ == "__main__":
  train_command.run_as("run_classifier.py")
