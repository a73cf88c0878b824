"""Recipes: a YAML file names the pipeline's steps and sets their parameters.

A recipe may set only the parameters a step declares (the fields of its options class, see
:mod:`audiotools.options`); every step not named runs with its defaults. Defaults are filled once,
when the recipe is loaded; a :class:`Recipe` is never changed afterwards: command-line flags make a
new one with :meth:`Recipe.replace`. The recipes are the repository's ``pipelines/`` folder,
shipped in the wheel as ``audiotools/recipes/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audiotools.errors import UsageError
from audiotools.options import Options
from audiotools.pipeline.steps import STEP_ORDER, registry

RECIPE_DIRS = (Path(__file__).resolve().parents[1] / "recipes", Path(__file__).resolve().parents[2] / "pipelines")


@dataclass(frozen=True)
class Recipe:
    """A loaded recipe: every step's options, defaults filled in."""

    name: str
    description: str = ""
    path: str | None = None
    steps: Mapping[str, Options] = field(default_factory=dict)

    def __post_init__(self) -> None:
        known = registry()
        filled = {s: self.steps.get(s) or known[s].options() for s in STEP_ORDER}
        object.__setattr__(self, "steps", filled)

    def options(self, step: str) -> Any:
        if step not in self.steps:
            raise UsageError(f"unknown step {step!r} (known: {', '.join(STEP_ORDER)})")
        return self.steps[step]

    def enabled(self, step: str) -> bool:
        return getattr(self.options(step), "enabled", True)

    def replace(self, step: str, **values: Any) -> Recipe:
        """A copy with ``values`` set on ``step``; a value of None leaves that parameter as it is."""
        new = self.options(step).replace(**values)
        return Recipe(self.name, self.description, self.path, {**self.steps, step: new})

    def parameters(self) -> dict:
        """The parameters as run, as the transcript records them (``parameters``), with ``content``:
        the identifiers of the files that enabled steps read (:meth:`Options.content_ids`), when any."""
        params: dict = {"pipeline": self.name, "steps": {s: o.to_params() for s, o in self.steps.items()}}
        content = {s: ids for s, o in self.steps.items() if getattr(o, "enabled", True) and (ids := o.content_ids())}
        if content:
            params["content"] = content
        return params

    @property
    def needs_channels(self) -> bool:
        return self.options("diarize").channels == "split"


def available_recipes() -> dict[str, Path]:
    folder = next((d for d in RECIPE_DIRS if d.is_dir()), RECIPE_DIRS[-1])
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def load_recipe(name_or_path: str | os.PathLike | None = None) -> Recipe:
    """Load a recipe by name (``default``, ``gpu-batch`` ...) or path."""
    name_or_path = str(name_or_path or "default")
    p = Path(name_or_path)
    if not p.is_file():
        recipes = available_recipes()
        if name_or_path not in recipes:
            raise UsageError(
                f"unknown pipeline {name_or_path!r}: not a file, and not one of "
                f"{', '.join(recipes) or '(none installed)'}"
            )
        p = recipes[name_or_path]
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise UsageError(f"{p}: cannot read pipeline recipe: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("steps", {}), dict):
        raise UsageError(f"{p}: a recipe is a mapping with a 'steps' mapping")
    known = registry()
    steps = {}
    for step, params in (raw.get("steps") or {}).items():
        if step not in known:
            raise UsageError(f"{p}: unknown step {step!r} (known: {', '.join(STEP_ORDER)})")
        if params is not None and not isinstance(params, dict):
            raise UsageError(f"{p}: step {step!r} needs a mapping of parameters")
        steps[step] = known[step].options.from_params(params, where=str(p))
    return Recipe(
        name=str(raw.get("name", p.stem)), description=str(raw.get("description", "")), path=str(p), steps=steps
    )
