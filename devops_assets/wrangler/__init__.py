"""Wrangler configuration: reading the files and resolving each environment."""
