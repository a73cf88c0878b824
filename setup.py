"""The recipes in pipelines/ ship inside the wheel as audiotools/recipes/ (no symlink); the rest of
the metadata is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["audiotools", "audiotools.*"]), "audiotools.recipes"],
    package_dir={"audiotools.recipes": "pipelines"},
)
