"""Evaluation: metrics and significance tests for fitted models, and the comparison of a suite."""
