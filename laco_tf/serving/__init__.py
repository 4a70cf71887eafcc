"""The exported SavedModel and what reads it: export, the Python Classifier, TF Serving's REST bodies."""
