"""Demonstrations run by ``manyfold demo``."""
