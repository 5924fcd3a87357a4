"""Weights: the manifest (and `data/`, the files bundled in the package), selection of a weights argument,
files (manifest entry -> verified local file -> state dict), serialization, presets, housekeeping."""
