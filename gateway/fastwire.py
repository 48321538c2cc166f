"""The ingest hot path's decoding of a ReadBatch: the same contract, a fraction of the cost.

``tagledger.wire.decode_as(ReadBatch, ...)`` builds one pydantic model per
observation (~6.6 µs each).  Here the same JSON is decoded and validated in C by
msgspec into slotted, GC-untracked structs that mirror
:class:`tagledger.wire.ReadBatch` field for field, with the same bounds
(~0.8 µs per observation, measured on the bench's batches; the pydantic
``TypedDict`` mirror this replaces took ~2.1 µs).  ``tests/gateway/test_fastwire.py`` checks that the
mirror's JSON Schema equals the contract's, so the two cannot drift apart
silently.

The mirror is *stricter* than the contract, never looser: msgspec refuses
what pydantic's lax JSON mode coerces (``"3"`` or ``3.0`` for an int), its
patterns end in ``\\Z`` because Python's ``$`` also matches before a trailing
newline, and every EPC must be upper-case hex (checked after decoding).
Anything the mirror refuses is decoded again by the contract itself: a
payload the contract accepts is converted (the slow path, same values), one it
refuses raises the contract's exact ``WireError`` (``malformed``,
``unknown_version``, ``invalid``, ``oversized``).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from gateway.formats import reader_zones
from gateway.records import INT4_MAX, INT8_MAX, FormatError, Sighting
from tagledger.site import Site
from tagledger.wire import MAX_PAYLOAD_BYTES, PORT_MAX, PORT_MIN, RSSI_MAX_DBM, RSSI_MIN_DBM, ReadBatch, decode_as

_Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+\Z")]
# The EPC's pattern (upper-case hex) is checked once per batch over all EPCs
# joined (``_all_hex``): msgspec runs a Python-level regex call per string,
# which was ~60 % of the decoding cost.
_EpcHex = Annotated[str, msgspec.Meta(min_length=4, max_length=124)]
_HEX_DIGITS = b"0123456789ABCDEF"
_EpochUs = Annotated[int, msgspec.Meta(ge=0, le=INT8_MAX)]  # the contract says lt=2**63: the same ints
_Rssi = Annotated[float, msgspec.Meta(ge=RSSI_MIN_DBM, le=RSSI_MAX_DBM)]


class Obs(msgspec.Struct, gc=False):
    """:class:`tagledger.wire.Observation`."""

    epc: _EpcHex
    antenna: Annotated[int, msgspec.Meta(ge=PORT_MIN, le=PORT_MAX)]
    first_seen_us: _EpochUs
    last_seen_us: _EpochUs
    # Stricter than the contract: the ledger's int4 (``gateway.vetting`` checks
    # it only for a batch the contract's lax mode decoded: ``LaxBatch``).
    count: Annotated[int, msgspec.Meta(ge=1, le=INT4_MAX)]
    peak_rssi: _Rssi
    mean_rssi: _Rssi


class GapS(msgspec.Struct, gc=False):
    """:class:`tagledger.wire.Gap`."""

    reason: Literal["queue_overflow", "spool_full", "reader_overflow", "reader_down"]
    dropped_reads: Annotated[int, msgspec.Meta(ge=0)]
    since_us: _EpochUs
    until_us: _EpochUs


class Batch(msgspec.Struct, gc=False):
    """:class:`tagledger.wire.ReadBatch` (no reference cycles: safe untracked by the GC)."""

    store_id: _Ident
    reader_id: _Ident
    boot_id: _Ident
    seq: Annotated[int, msgspec.Meta(ge=0)]
    sent_at_us: _EpochUs
    observations: Annotated[list[Obs], msgspec.Meta(max_length=50_000)]
    v: Literal[1] = 1
    kind: Literal["reads"] = "reads"
    clock_offset_us: int = 0
    gaps: list[GapS] = []  # msgspec copies empty defaults per instance
    #: Decoded by the contract's lax mode, not by this mirror: its stricter bounds were not applied.
    lax: ClassVar[bool] = False


class LaxBatch(Batch, gc=False):
    """A batch only the contract's lax mode accepts (``3.0`` for an int, a count beyond int4...)."""

    lax: ClassVar[bool] = True


_DECODER = msgspec.json.Decoder(Batch)


def decode_batch(data: bytes) -> Batch:
    """Validate a reads payload; raises :class:`tagledger.wire.WireError` exactly as ``decode_as`` would."""
    if len(data) <= MAX_PAYLOAD_BYTES:
        try:
            batch = _DECODER.decode(data)
        except (msgspec.MsgspecError, RecursionError):
            # RecursionError: nested deeper than msgspec recurses; the contract
            # refuses it as malformed.
            pass
        else:
            if _all_hex("".join([o.epc for o in batch.observations])):
                return batch
    return _from_contract(decode_as(ReadBatch, data))  # raises the contract's own WireError


def _all_hex(text: str) -> bool:
    """Only upper-case hex digits (or nothing)?

    ``isascii`` is O(1) for a str, and deleting the 16 digits from its bytes
    is a table look-up per byte: half the time of a ``[0-9A-F]*`` regex
    fullmatch over the 24,000 characters of a 1,000-read batch (~32 vs ~61 ns
    per EPC, measured).
    """
    return text.isascii() and not text.encode("ascii").translate(None, _HEX_DIGITS)


def _from_contract(m: ReadBatch) -> LaxBatch:
    """A batch only the contract's lax mode accepts, with the values the contract gave it."""
    return LaxBatch(
        store_id=m.store_id,
        reader_id=m.reader_id,
        boot_id=m.boot_id,
        seq=m.seq,
        sent_at_us=m.sent_at_us,
        observations=[
            Obs(o.epc, o.antenna, o.first_seen_us, o.last_seen_us, o.count, o.peak_rssi, o.mean_rssi)
            for o in m.observations
        ],
        v=m.v,
        kind=m.kind,
        clock_offset_us=m.clock_offset_us,
        gaps=[GapS(g.reason, g.dropped_reads, g.since_us, g.until_us) for g in m.gaps],
    )


def antenna_zones(batch: Batch | ReadBatch, site: Site) -> dict[int, str]:
    """The batch's reader's antenna -> zone map, after checking every observation's antenna.

    Raises :class:`gateway.records.FormatError` (``unknown_reader``,
    ``unknown_antenna``) before anything is observed, so a bad batch changes no
    state.
    """
    _store, reader, zones = reader_zones(site, batch.reader_id, batch.store_id)
    for antenna in {o.antenna for o in batch.observations}:
        if antenna not in zones:
            raise FormatError("unknown_antenna", f"reader {reader.id} has no antenna {antenna} in the site file")
    return zones


def sightings_from_batch(batch: Batch | ReadBatch, site: Site) -> list[Sighting]:
    """A validated batch (the contract's model or this decoder's) as sightings, reader times on the host clock.

    For tools (``tagledger audit count follow``, the accuracy bench); the
    gateway itself hands the observations to ``StoreTracker.observe_reads`` as
    they are, without a Sighting per read.
    """
    zones = antenna_zones(batch, site)
    store_id, reader_id, offset = batch.store_id, batch.reader_id, batch.clock_offset_us
    return [
        Sighting(
            store_id,
            reader_id,
            o.antenna,
            zones[o.antenna],
            o.epc,
            o.first_seen_us - offset,
            o.last_seen_us - offset,
            o.count,
            o.peak_rssi,
            o.mean_rssi,
        )
        for o in batch.observations
    ]
