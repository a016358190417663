"""Readers of the outside systems: one module per system, plain records out."""
