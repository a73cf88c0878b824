"""Recipes (YAML) and the steps they run."""

from audiotools.pipeline.recipe import Recipe, load_recipe

__all__ = ["Recipe", "load_recipe"]
