"""Runs on disk: train a model into a run folder, save and load it without pickle, export it."""
