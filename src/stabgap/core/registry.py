"""One way to add anything: an extension declares itself, and a registry of its kind holds it.

Every kind of extension (datasets, streams, models, optimisers, memories, remedies,
methods) is a subclass of
:class:`Extension` in a module of its kind's folder, registered by its kind's registry::

    @STREAMS.register
    class Rotated(Stream):
        name = "rotated"
        help = "one rotation of the whole dataset a task"
        fields = {"rotations": (tuple[float, ...], option((0.0, 80.0, 160.0), "..."))}
        uses = ("rotations",)
        ...

What it declares is all the rest of stabgap needs: its config fields join the run's config
(:class:`stabgap.core.config.RunConfig`), so they become CLI flags, TOML keys, stamps and
record fields; a field set away from its default must be used by the run's choice of that
kind (`uses`), or the config is refused; the fields it uses are all it is built from (a
:class:`~stabgap.core.fields.ConfigView`), so they are what caches and stamps key on; and
what it ``needs`` of the others (a remedy that needs "linear layers") is checked against
what they ``supports``.

The built-in extensions are the modules of each kind's folder, imported when a registry is
first read; a user's own are modules named in ``$STABGAP_PLUGINS`` (comma-separated),
imported after them, in every process (worker processes inherit the environment, Ray tasks
get it shipped). docs/extending.md has a worked example of each kind.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from stabgap.core.fields import ConfigView, supported_type
from stabgap.errors import StabgapError

if TYPE_CHECKING:
    from stabgap.core.config import RunConfig

PLUGINS_ENV = "STABGAP_PLUGINS"
# The folders of the kinds: each holds its registry and its built-in extensions.
KINDS = (
    "stabgap.core.data",
    "stabgap.core.streams",
    "stabgap.core.models",
    "stabgap.core.optim",
    "stabgap.core.memories",
    "stabgap.core.remedies",
    "stabgap.core.methods",
)


class Extension:
    """What every extension declares (class attributes).

    Attributes:
        name: its name in a config (``stream = "rotated"``), its registry key.
        help: one line for ``stabgap run --help`` and ``stabgap presets``.
        fields: the config fields it declares, ``{name: (type, option(...))}``.
        uses: every config field it reads: its own and its kind's shared ones.
        supports: capabilities it offers to the others (a model: ``"linear layers"``).
        needs: capabilities it needs of the run's dataset, stream, model or optimiser.
    """

    kind: ClassVar[str] = ""  # set by the registry: "stream", "model", ...
    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    fields: ClassVar[dict[str, tuple[Any, Any]]] = {}
    uses: ClassVar[tuple[str, ...]] = ()
    supports: ClassVar[frozenset[str]] = frozenset()
    needs: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def check(cls, config: RunConfig) -> None:
        """Refuse (StabgapError) settings of a run using it that cannot work together; each
        field's own range is checked by its option."""

    @classmethod
    def caution(cls, config: RunConfig) -> str | None:
        """A setting of a run using it that runs but may not mean what the user wants (said
        as a warning before any work), or None."""
        return None


E = TypeVar("E", bound=type[Extension])


class Registry(Mapping[str, Any], Generic[E]):
    """The extensions of one kind, by name, in the order they registered.

    Args:
        kind: what they are ("stream").
        package: the folder of the built-in ones ("stabgap.core.streams").
        selector: the config field that names the one a run uses (``stream``); None where a
            run uses any number of them at once (remedies, turned on by their own fields).
        shared: config fields declared for the kind as a whole, which several of its
            extensions use (``n_tasks`` of the permuted and homogeneous streams).
        plural: how help texts name several of them (default: the kind and an s).
    """

    def __init__(
        self,
        kind: str,
        package: str,
        selector: str | None = None,
        shared: dict[str, tuple[Any, Any]] | None = None,
        plural: str = "",
    ) -> None:
        self.kind, self.package, self.selector = kind, package, selector
        self.plural = plural or kind + "s"  # "the streams permuted, homogeneous"
        self.shared = dict(shared or {})
        self._entries: dict[str, E] = {}
        _REGISTRIES.append(self)

    def register(self, cls: E) -> E:
        """Class decorator: add an extension of this kind."""
        if not cls.name:
            raise TypeError(f"{cls.__name__} needs a name")
        if cls.name in self._entries and self._entries[cls.name] is not cls:
            raise TypeError(f"a {self.kind} named '{cls.name}' is already registered")
        unknown = set(cls.fields) & set(self.shared)
        if unknown:
            raise TypeError(f"{self.kind} {cls.name} declares the shared field(s) {unknown}")
        for other in _REGISTRIES:
            # a remedy and a method share the cost table and a run's record: one name each
            shares_tables = {self.kind, other.kind} == {"remedy", "method"}
            if shares_tables and cls.name in other._entries:
                raise TypeError(f"a {other.kind} named '{cls.name}' is already registered")
            for name in cls.fields:
                owner = _declarer(other, name, cls)
                if owner:
                    raise TypeError(
                        f"{self.kind} {cls.name} declares the config field '{name}', which "
                        f"{owner} declares already: rename it"
                    )
        for name, (hint, _) in cls.fields.items():
            if not supported_type(hint):
                raise TypeError(
                    f"config field '{name}' of {self.kind} {cls.name} is declared as "
                    f"{getattr(hint, '__name__', hint)}: declare bool, int, float, str, a "
                    "tuple of one of them (tuple[float, ...] for a list), or one of these | None"
                )
        cls.kind = self.kind
        self._entries[cls.name] = cls
        return cls

    # --- a mapping of name -> extension, complete once the modules are loaded ----------------
    def __getitem__(self, name: str) -> E:
        load_extensions()
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        load_extensions()
        return iter(self._entries)

    def __len__(self) -> int:
        load_extensions()
        return len(self._entries)

    # --- what the config is made of ----------------------------------------------------------
    def declared_fields(self) -> dict[str, tuple[Any, Any]]:
        """The kind's shared fields, then each extension's own, in registration order."""
        fields = dict(self.shared)
        for ext in self.values():
            for name, declared in ext.fields.items():
                if name in fields:
                    raise TypeError(f"config field '{name}' is declared twice ({self.plural})")
                fields[name] = declared
        return fields

    def chosen(self, config: RunConfig) -> E:
        """The extension of this kind that `config` names (kinds with a selector)."""
        return self[getattr(config, self.selector)]

    def view(self, config: RunConfig, **extra: Any) -> ConfigView:
        """What the chosen extension may read of `config`: the fields it uses (and `extra`)."""
        ext = self.chosen(config)
        values = {name: getattr(config, name) for name in ext.uses}
        return ConfigView(f"{self.kind} {ext.name}", {**values, **extra})


def _declarer(registry: Registry, name: str, newcomer: type) -> str:
    """Who in `registry` declares config field `name` ("" where none does, or only
    `newcomer`, registered again)."""
    if name in registry.shared:
        return f"every {registry.kind}"
    for ext in registry._entries.values():
        if name in ext.fields and ext is not newcomer:
            return f"{registry.kind} {ext.name}"
    return ""


_REGISTRIES: list[Registry] = []
_LOADED = False
_PLUGINS: list[str] = []  # the plugin modules loaded, by name


def registries() -> list[Registry]:
    """Every kind's registry, loaded, in the order of :data:`KINDS`."""
    load_extensions()
    rank = {package: i for i, package in enumerate(KINDS)}
    return sorted(_REGISTRIES, key=lambda r: rank.get(r.package, len(KINDS)))


def plugin_names() -> list[str]:
    """The plugin modules this process loaded from ``$STABGAP_PLUGINS`` (worker processes
    and Ray tasks load the same ones)."""
    load_extensions()
    return list(_PLUGINS)


def load_extensions() -> None:
    """Import every kind's built-in modules, then the user's plugins, once."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for package in KINDS:
        importlib.import_module(package)  # creates its registry
    for registry in list(_REGISTRIES):
        package = importlib.import_module(registry.package)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_") and module.name != "base":
                importlib.import_module(f"{registry.package}.{module.name}")
    for name in filter(None, (n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(","))):
        # Raised while the config is being assembled, before any command can catch an
        # error: a one-line exit, not a traceback.
        try:
            importlib.import_module(name)
            _PLUGINS.append(name)
        except ImportError as e:
            exit_on_mistake(
                f"cannot import plugin module '{name}' named in ${PLUGINS_ENV}: {e}; fix the "
                "name or your PYTHONPATH"
            )
        except Exception as e:  # a mistake in the plugin itself: said where it is
            exit_on_mistake(f"plugin module '{name}' cannot be loaded: {e}")


def exit_on_mistake(message: str) -> None:
    """A user's mistake found while importing: one line, and the exit status of a bad input
    (2), as the commands give it."""
    print(f"stabgap: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_needs(config: RunConfig, extensions: list[type[Extension]]) -> None:
    """Refuse a run whose extensions need a capability the run's others do not offer."""
    offered = frozenset().union(*(e.supports for e in extensions))
    for ext in extensions:
        for need in sorted(ext.needs - offered):
            givers = [
                f"{r.kind} {name}"
                for r in registries()
                if r.selector
                for name, e in r.items()
                if need in e.supports
            ]
            raise StabgapError(
                f"invalid config: {ext.kind} {ext.name} needs {need}, which this run's "
                + ", ".join(f"{e.kind} {e.name}" for e in extensions if e.kind != ext.kind)
                + " do not offer"
                + (f" ({' or '.join(givers)} does)" if givers else "")
            )
