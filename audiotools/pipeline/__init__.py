"""Recipes (YAML) and the steps they run."""
