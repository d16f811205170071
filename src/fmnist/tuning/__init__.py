"""Hyper-parameter search on Optuna: per-model search spaces, a study in SQLite or PostgreSQL
that any number of workers can join, and the winner retrained as a normal run folder."""
