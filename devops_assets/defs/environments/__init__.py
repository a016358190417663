"""Environments: configuration drift between staging and production."""
