"""One mechanism for every step's options.

Each pipeline step declares its parameters once, as the fields of a frozen dataclass derived from
:class:`Options`. The fields are the recipe's parameters; their defaults are the defaults; their type
hints are the validation (``Literal[...]`` gives the allowed values, ``X | None`` allows null,
``tuple[...]`` accepts a YAML list); a subclass adds cross-field checks in ``check()``. Options are
built from a recipe mapping with :meth:`Options.from_params`, changed only by :meth:`Options.replace`
(a new object) and recorded with :meth:`Options.to_params`. Fields marked ``secret`` (a token) are
never recorded: their value is written as null.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from audiotools.errors import UsageError

T = TypeVar("T", bound="Options")
NoneType = type(None)


def secret(default: Any = None) -> Any:
    """A field whose value is used but never recorded (``to_params`` writes null)."""
    return dataclasses.field(default=default, repr=False, metadata={"secret": True})


def private(default: Any = None) -> Any:
    """A field recorded only as whether it is set (``to_params`` writes true or null), e.g. a path
    that should not travel with the outputs; a change between set and unset still changes the
    recorded parameters (and a batch's recipe fingerprint)."""
    return dataclasses.field(default=default, metadata={"private": True})


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def choices(cls: type, name: str) -> tuple[Any, ...]:
    """The values a ``Literal`` field accepts (None left out), e.g. for a command-line flag."""
    hint = _hints(cls)[name]
    args = get_args(hint) if _is_union(hint) else (hint,)
    for a in args:
        if get_origin(a) is Literal:
            return get_args(a)
    raise TypeError(f"{cls.__name__}.{name} is not a Literal field")


def _is_union(hint: Any) -> bool:
    return get_origin(hint) in (Union, types.UnionType)


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if _is_union(hint):
        return " or ".join(_describe(a) for a in get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in get_args(hint))
    if origin is tuple:
        return "a list"
    if hint is NoneType:
        return "null"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


_NO = object()  # what _coerce returns for a value that does not fit


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` as ``hint`` wants it (a list becomes a tuple, an int a float), or _NO."""
    origin = get_origin(hint)
    if hint is Any:
        return value
    if _is_union(hint):
        for arg in get_args(hint):
            out = _coerce(value, arg)
            if out is not _NO:
                return out
        return _NO
    if origin is Literal:
        if any(type(v) is type(value) and v == value for v in get_args(hint)):
            return value
        return _NO
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return _NO
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            items = [_coerce(v, args[0]) for v in value]
        elif len(args) == len(value):
            items = [_coerce(v, a) for v, a in zip(value, args)]
        else:
            return _NO
        return _NO if any(v is _NO for v in items) else tuple(items)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            return _NO
        return dict(value)
    if hint is NoneType:
        if value is None:
            return None
        return _NO
    if hint is bool:
        if isinstance(value, bool):
            return value
        return _NO
    if hint is int:  # numpy integers too
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        return _NO
    if hint is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        return _NO
    if hint is str:
        if isinstance(value, str):
            return value
        return _NO
    if isinstance(hint, type) and issubclass(hint, Options):
        if isinstance(value, hint):
            return value
        if isinstance(value, Mapping):
            return hint.from_params(value)
        return _NO
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    return _NO


@dataclasses.dataclass(frozen=True)
class Options:
    """Base of every step's options (see the module docstring)."""

    STEP: typing.ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            coerced = _coerce(value, hints[f.name])
            if coerced is _NO:
                raise UsageError(
                    f"{self._what()} parameter {f.name!r} must be {_describe(hints[f.name])}, got {value!r}"
                )
            if coerced is not value:
                object.__setattr__(self, f.name, coerced)
        self.check()

    def check(self) -> None:
        """Cross-field checks of a subclass (raise UsageError)."""

    @classmethod
    def _what(cls) -> str:
        return f"step {cls.STEP!r}" if cls.STEP else cls.__name__

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_params(cls: type[T], params: Mapping[str, Any] | None, where: str = "") -> T:
        """Options from a recipe mapping; an undeclared parameter is a UsageError naming the declared ones."""
        params = dict(params or {})
        unknown = set(params) - set(cls.names())
        if unknown:
            raise UsageError(
                f"{where + ': ' if where else ''}{cls._what()} has no parameter(s) {', '.join(sorted(unknown))} "
                f"(declared: {', '.join(sorted(cls.names()))})"
            )
        return cls(**params)

    def replace(self: T, **values: Any) -> T:
        """A copy with ``values`` set; a value of None leaves that field as it is."""
        values = {k: v for k, v in values.items() if v is not None}
        unknown = set(values) - set(self.names())
        if unknown:
            raise UsageError(f"{self._what()} has no parameter(s) {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **values) if values else self

    def content_ids(self) -> dict[str, Any]:
        """What the files this step's parameters name hold, as identifiers (a word file's sha256, a
        signing key's public id): the same path with other contents is another computation. The
        recipe records them beside the parameters (``Recipe.parameters``: ``content``), so the
        transcript says which contents were used and a batch re-run redoes files made with others.
        None here; a step whose parameters name such files says so."""
        return {}

    def to_params(self) -> dict[str, Any]:
        """The parameters as plain JSON values, as a recipe would give them (secrets as null, private
        fields as true when set)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = None if f.metadata.get("secret") else getattr(self, f.name)
            if f.metadata.get("private"):
                value = True if value else None
            out[f.name] = _plain(value)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, Options):
        return value.to_params()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value
