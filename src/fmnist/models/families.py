"""Imports every module that registers models. One line per family module."""
