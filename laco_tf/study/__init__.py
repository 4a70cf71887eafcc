"""Rerunning the paper's study: linear baselines, analyses, several seeds, plots."""
