"""The site file: stores, zones, readers, antennas, and the product master.

One declarative YAML file describes the whole estate and every role loads it:
the edge agent finds its reader and antennas, the gateway maps antennas to zones
and zone roles, the API lists stores and their coordinates.  See
``docs/site-file.md`` for the format and ``examples/site.yaml`` for a store.

A bad file is refused with :class:`SiteError`, whose message names the file, the
path inside it (``stores[0].readers[1].antennas[2].zone``) and the problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tagledger.wire import Ident

# Bundled with the package so that `tagledger demo` needs no file of its own.
EXAMPLE_SITE = Path(__file__).parent / "examples" / "site.yaml"


class ZoneRole(StrEnum):
    """What a read in a zone means."""

    SALES_FLOOR = "sales_floor"
    BACKROOM = "backroom"
    FITTING_ROOM = "fitting_room"
    POS = "pos"  # a read here is a sale signal
    EXIT = "exit"  # an unsold item that wins this zone and falls silent is a loss
    RECEIVING = "receiving"  # a read here adds stock


class Mobility(StrEnum):
    """How readily items in a zone move, which sets how sticky zone assignment is.

    Shelf stock is ``stationary``: a cross-read from the next zone must not move
    it.  POS, exit and fitting rooms are ``transit``: items pass through quickly
    and must be followed at once.
    """

    STATIONARY = "stationary"
    NORMAL = "normal"
    TRANSIT = "transit"


DEFAULT_MOBILITY = {
    ZoneRole.SALES_FLOOR: Mobility.STATIONARY,
    ZoneRole.BACKROOM: Mobility.STATIONARY,
    ZoneRole.FITTING_ROOM: Mobility.TRANSIT,
    ZoneRole.POS: Mobility.TRANSIT,
    ZoneRole.EXIT: Mobility.TRANSIT,
    ZoneRole.RECEIVING: Mobility.NORMAL,
}

ReaderModel = Literal["impinj_r700", "impinj_r420", "zebra_fx9600", "simulated"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Zone(_Strict):
    id: Ident
    name: str = ""
    role: ZoneRole
    mobility: Mobility | None = Field(
        default=None, description="Defaults by role: stationary for shelves and backroom, transit for POS/exit."
    )
    unconfirmed_after_s: float | None = Field(
        default=None,
        ge=10,
        le=7 * 86_400,
        description="Overrides the store's unconfirmed_after_s for the items of this zone.",
    )

    @property
    def effective_mobility(self) -> Mobility:
        return self.mobility or DEFAULT_MOBILITY[self.role]


class Antenna(_Strict):
    port: int = Field(ge=1, le=64)
    zone: Ident
    tx_power_dbm: float | None = Field(default=None, ge=0, le=33)


class Reader(_Strict):
    id: Ident
    host: str = Field(min_length=1, description="Host name or address of the reader (LLRP, TCP 5084).")
    port: int = Field(default=5084, ge=1, le=65535)
    model: ReaderModel = "impinj_r700"
    profile: str = Field(default="sales_floor", description="Reader profile name from firmware-config/.")
    format: Literal["llrp", "impinj_iot", "zebra_iot"] = Field(
        default="llrp",
        description="llrp: read by a tagledger edge agent; impinj_iot / zebra_iot: the reader publishes MQTT itself.",
    )
    antennas: list[Antenna] = Field(min_length=1)

    @field_validator("antennas")
    @classmethod
    def _unique_ports(cls, antennas: list[Antenna]) -> list[Antenna]:
        seen: set[int] = set()
        for a in antennas:
            if a.port in seen:
                raise ValueError(f"antenna port {a.port} listed twice")
            seen.add(a.port)
        return antennas


class Store(_Strict):
    id: Ident
    name: str = Field(min_length=1)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    timezone: str = "UTC"
    gln: str | None = Field(default=None, pattern=r"^[0-9]{13}$", description="GS1 Global Location Number.")
    gln_company_prefix_length: int | None = Field(
        default=None,
        ge=6,
        le=12,
        description=(
            "Digits of the GS1 company prefix at the start of the GLN: an SGLN (EPCIS readPoint and"
            " bizLocation) splits the GLN there, and the GLN alone does not say where. Needed for EPCIS export."
        ),
    )
    zones: list[Zone] = Field(min_length=1)
    readers: list[Reader] = Field(default_factory=list)
    unconfirmed_after_s: float | None = Field(
        default=None,
        ge=10,
        le=7 * 86_400,
        description=(
            "An item without a read for this long becomes unobserved: still on hand, no longer"
            " available to sell (shown as unconfirmed). Default 300 s."
        ),
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, tz: str) -> str:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {tz!r} (e.g. 'Europe/Paris')") from None
        return tz

    def unconfirmed_after_s_for(self, zone_id: str) -> float | None:
        """The zone's own silence limit, else the store's, else None (the gateway's default)."""
        own = self.zone(zone_id).unconfirmed_after_s
        return own if own is not None else self.unconfirmed_after_s

    def zone(self, zone_id: str) -> Zone:
        for z in self.zones:
            if z.id == zone_id:
                return z
        raise KeyError(zone_id)

    def reader(self, reader_id: str) -> Reader:
        for r in self.readers:
            if r.id == reader_id:
                return r
        raise KeyError(reader_id)


class Product(_Strict):
    gtin: Annotated[str, Field(pattern=r"^[0-9]{14}$", description="GTIN-14, zero-padded.")]
    name: str = ""
    category: str = ""
    floor_target: int | None = Field(
        default=None, ge=0, le=100_000, description="Units wanted on the sales floor; overrides the category's."
    )


class Replenishment(_Strict):
    """Floor targets: how many units of a product staff keep on the sales floor (the rest wait in the backroom)."""

    default_floor_target: int = Field(default=0, ge=0, le=100_000, description="For products without a rule; 0: none.")
    categories: dict[str, Annotated[int, Field(ge=0, le=100_000)]] = Field(
        default_factory=dict, description="Floor target per product category, e.g. {shirts: 4}."
    )


class Site(_Strict):
    version: Literal[1] = 1
    stores: list[Store] = Field(min_length=1)
    products: list[Product] = Field(default_factory=list)
    replenishment: Replenishment = Field(default_factory=Replenishment)

    @model_validator(mode="after")
    def _cross_references(self) -> Site:
        # Cross-references are checked here (not in Store) so that every error
        # carries its full path from the top of the file.
        problems: list[tuple[tuple[str | int, ...], str]] = []
        seen_stores: set[str] = set()
        seen_readers: dict[str, str] = {}
        seen_endpoints: dict[tuple[str, int], str] = {}
        for si, store in enumerate(self.stores):
            if store.id in seen_stores:
                problems.append((("stores", si, "id"), f"store id {store.id!r} is used twice"))
            seen_stores.add(store.id)
            zone_ids = [z.id for z in store.zones]
            for zi, zid in enumerate(zone_ids):
                if zone_ids.index(zid) != zi:
                    problems.append((("stores", si, "zones", zi, "id"), f"zone id {zid!r} is used twice"))
            for ri, reader in enumerate(store.readers):
                if reader.id in seen_readers:
                    problems.append(
                        (
                            ("stores", si, "readers", ri, "id"),
                            f"reader id {reader.id!r} is already used in store {seen_readers[reader.id]!r};"
                            " reader ids are unique across the site",
                        )
                    )
                seen_readers[reader.id] = store.id
                endpoint = (reader.host, reader.port)
                if endpoint in seen_endpoints:
                    problems.append(
                        (
                            ("stores", si, "readers", ri, "port"),
                            f"reader {seen_endpoints[endpoint]!r} already uses {reader.host}:{reader.port};"
                            " two agents must not drive one reader",
                        )
                    )
                seen_endpoints[endpoint] = reader.id
                for ai, antenna in enumerate(reader.antennas):
                    if antenna.zone not in zone_ids:
                        problems.append(
                            (
                                ("stores", si, "readers", ri, "antennas", ai, "zone"),
                                f"unknown zone {antenna.zone!r}; zones of store {store.id!r}: {', '.join(zone_ids)}",
                            )
                        )
        gtins = [p.gtin for p in self.products]
        for pi, gtin in enumerate(gtins):
            if gtins.index(gtin) != pi:
                problems.append((("products", pi, "gtin"), f"GTIN {gtin} listed twice"))
        if problems:
            raise _CrossReferenceError(problems)
        return self

    # Look-ups used by every role ------------------------------------------
    # By id through dicts built on first use: the API looks a store (and a product, for
    # its safety stock) up on every availability request, and a chain has 1,000+ stores.
    # The model is frozen, so the dicts cannot go stale.
    @cached_property
    def _stores_by_id(self) -> dict[str, Store]:
        return {s.id: s for s in self.stores}

    @cached_property
    def _products_by_gtin(self) -> dict[str, Product]:
        return {p.gtin: p for p in self.products}

    def store(self, store_id: str) -> Store:
        return self._stores_by_id[store_id]  # KeyError for an unknown id, as callers expect

    def find_reader(self, reader_id: str) -> tuple[Store, Reader]:
        for s in self.stores:
            for r in s.readers:
                if r.id == reader_id:
                    return s, r
        raise KeyError(reader_id)

    def find_reader_by_host(self, host: str) -> tuple[Store, Reader]:
        for s in self.stores:
            for r in s.readers:
                if r.host == host:
                    return s, r
        raise KeyError(host)

    def readers(self) -> Iterator[tuple[Store, Reader]]:
        for s in self.stores:
            for r in s.readers:
                yield s, r

    def product(self, gtin: str) -> Product | None:
        return self._products_by_gtin.get(gtin)

    def floor_target(self, gtin: str) -> int:
        """Units of the GTIN wanted on the sales floor: the product's own, its category's, else the default."""
        product = self._products_by_gtin.get(gtin)
        if product is not None:
            if product.floor_target is not None:
                return product.floor_target
            own = self.replenishment.categories.get(product.category)
            if own is not None:
                return own
        return self.replenishment.default_floor_target


class _CrossReferenceError(ValueError):
    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(msg for _, msg in problems))
        self.problems = problems


class SiteError(ValueError):
    """The site file cannot be used.  ``problems`` lists ``(path, message)`` pairs."""

    def __init__(self, file: str, problems: list[tuple[str, str]]) -> None:
        self.file = file
        self.problems = problems
        lines = [f"{file}: {path}: {msg}" if path else f"{file}: {msg}" for path, msg in problems]
        super().__init__("invalid site file\n  " + "\n  ".join(lines))


def format_path(loc: tuple[str | int, ...]) -> str:
    """``("stores", 2, "readers", 0, "zone")`` -> ``stores[2].readers[0].zone``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _problems_from(exc: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _CrossReferenceError):
            problems.extend((format_path(loc), msg) for loc, msg in ctx_error.problems)
            continue
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check its spelling; see docs/site-file.md)"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        problems.append((format_path(loc), msg))
    return problems


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping.

    Plain YAML keeps the last one silently: a store with ``zones:`` written twice
    would lose its first zones without a word.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice in the same mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_site(data: Any, file: str = "<site>") -> Site:
    try:
        return Site.model_validate(data)
    except ValidationError as exc:
        raise SiteError(file, _problems_from(exc)) from None


def load_site(path: Path | str) -> Site:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteError(str(path), [("", f"cannot read: {exc.strerror}")]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SiteError(str(path), [("", f"not valid YAML: {where}{getattr(exc, 'problem', exc)}")]) from None
    if not isinstance(data, dict):
        raise SiteError(str(path), [("", "the file must be a mapping with a 'stores' list")])
    return parse_site(data, str(path))
