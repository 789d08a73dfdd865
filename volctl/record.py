"""Frozen value classes without `dataclasses`, for the records every command builds at import.

`@dataclass(frozen=True)` compiles six methods per class with exec() when the module is imported
(and `import dataclasses` brings `inspect`, `ast` and `dis`): volctl.model alone spent ~6 ms of
each command's start-up there (BENCHMARKS.md, issue 20), about 40 ms under the guest's TCG. A
Record gives what volctl uses of a frozen dataclass, written once: the fields are the parameters
of the subclass's own `__init__`, in order (which stores them with `self._init(locals())`), and
equality, hashing, repr and the refusal to assign follow them as a frozen dataclass's do.
`vars(record)` holds exactly the fields, so `Cls(**{**vars(r), "field": new})` is a copy with one
field changed, and `dataclasses.replace`, `fields` and `asdict` work on a Record as on a frozen
dataclass: `__dataclass_fields__` is made, with dataclasses' own public API, when first asked for.
"""

from __future__ import annotations


class _DataclassFields:
    """A Record's `__dataclass_fields__`: real dataclasses.Field objects, made on first use (so only
    what calls dataclasses.replace/fields/asdict on a Record imports dataclasses)."""

    def __get__(self, instance: object, cls: type[Record]) -> dict:
        made = cls.__dict__.get("_dataclass_fields")
        if made is None:
            import dataclasses

            init = cls.__init__
            defaults = dict(zip(reversed(cls._fields), reversed(init.__defaults__ or ())))
            specs = [(name, object, dataclasses.field(default=defaults[name]) if name in defaults else dataclasses.field())
                     for name in cls._fields]
            made = dict(dataclasses.make_dataclass(cls.__name__, specs, frozen=True).__dataclass_fields__)
            cls._dataclass_fields = made
        return made


class Record:
    _fields: tuple[str, ...] = ()
    __dataclass_fields__ = _DataclassFields()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        code = cls.__init__.__code__
        cls._fields = code.co_varnames[1:code.co_argcount + code.co_kwonlyargcount]

    def _init(self, values: dict) -> None:
        """Store the fields from __init__'s locals()."""
        own = self.__dict__
        for name in self._fields:
            own[name] = values[name]

    def _values(self) -> tuple:
        own = self.__dict__
        return tuple(own[name] for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()  # type: ignore[attr-defined]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self._values()))
        return f"{self.__class__.__qualname__}({fields})"

    def but(self, **changes: object):
        """A copy with these fields changed (dataclasses.replace, without importing dataclasses)."""
        return self.__class__(**{**self.__dict__, **changes})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")
