"""Decoding what an LLRP client asks of the simulated reader: ADD_ROSPEC, SET_READER_CONFIG, spec ids.

The frame, the parameters and the records they decode into are in
:mod:`tagledger.app.sim.llrp_codec`; the endpoint acts on the records.
"""

from __future__ import annotations

import struct

from tagledger.app.sim import llrp_codec as codec


def _u8(b: bytes, off: int = 0) -> int:
    return b[off]


def decode_add_rospec(body: bytes) -> codec.ROSpec:
    params = codec.iter_params(body)
    if not params or params[0].type != codec.P.ROSPEC:
        raise codec.CodecError("ADD_ROSPEC without an codec.ROSpec parameter")
    rs = params[0].body
    if len(rs) < 6:
        raise codec.CodecError("truncated codec.ROSpec")
    (rospec_id,) = struct.unpack("!I", rs[:4])
    spec = codec.ROSpec(rospec_id=rospec_id)
    for p in codec.iter_params(rs[6:]):
        if p.type == codec.P.RO_BOUNDARY_SPEC:
            for b in codec.iter_params(p.body):
                if b.type == codec.P.ROSPEC_START_TRIGGER:
                    spec.start_trigger = _u8(b.body)
        elif p.type == codec.P.AISPEC:
            (n,) = struct.unpack("!H", p.body[:2])
            spec.antennas = list(struct.unpack(f"!{n}H", p.body[2 : 2 + 2 * n]))
            for a in codec.iter_params(p.body[2 + 2 * n :]):
                if a.type == codec.P.AISPEC_STOP_TRIGGER:
                    for t in codec.iter_params(a.body[5:]):
                        if t.type == codec.P.TAG_OBSERVATION_TRIGGER:
                            _, _, ntags, _, _, timeout = struct.unpack("!BBHHHI", t.body[:12])
                            spec.report_every_n_tags = ntags
                            spec.report_timeout_ms = timeout
                elif a.type == codec.P.INVENTORY_PARAMETER_SPEC:
                    _decode_inventory_parameter_spec(a.body, spec)
        elif p.type == codec.P.RO_REPORT_SPEC:
            _, n = struct.unpack("!BH", p.body[:3])
            if n and not spec.report_every_n_tags:
                spec.report_every_n_tags = n
            for s in codec.iter_params(p.body[3:]):
                if s.type == codec.P.TAG_REPORT_CONTENT_SELECTOR:
                    (flags,) = struct.unpack("!H", s.body[:2])
                    spec.selector = codec.ContentSelector.from_flags(flags)
    return spec


def _decode_inventory_parameter_spec(body: bytes, spec: codec.ROSpec) -> None:
    for ac in codec.iter_params(body[3:]):
        if ac.type != codec.P.ANTENNA_CONFIGURATION:
            continue
        (antenna,) = struct.unpack("!H", ac.body[:2])
        for sub in codec.iter_params(ac.body[2:]):
            if sub.type == codec.P.RF_TRANSMITTER:
                _, _, power = struct.unpack("!HHH", sub.body[:6])
                spec.tx_power_index[antenna] = power
            elif sub.type == codec.P.C1G2_INVENTORY_COMMAND:
                for c in codec.iter_params(sub.body[1:]):
                    if c.type == codec.P.C1G2_SINGULATION_CONTROL:
                        spec.session = c.body[0] >> 6
                        (spec.tag_population,) = struct.unpack("!H", c.body[1:3])
                    elif c.type == codec.P.C1G2_RF_CONTROL:
                        (spec.mode_identifier,) = struct.unpack("!H", c.body[:2])
                    elif c.type == codec.P.CUSTOM and len(c.body) >= 10:
                        vendor, subtype, mode = struct.unpack("!IIH", c.body[:10])
                        if (vendor, subtype) == (codec.VENDOR_IMPINJ, codec.IMPINJ_INVENTORY_SEARCH_MODE):
                            spec.impinj_search_mode = mode


def decode_set_reader_config(body: bytes) -> codec.ReaderConfigChange:
    if not body:
        raise codec.CodecError("empty SET_READER_CONFIG")
    change = codec.ReaderConfigChange(reset_to_factory_defaults=bool(body[0] & 0x80))
    for p in codec.iter_params(body[1:]):
        if p.type == codec.P.KEEPALIVE_SPEC:
            trigger, interval = struct.unpack("!BI", p.body[:5])
            change.keepalive_ms = interval if trigger == 1 else 0
        elif p.type == codec.P.READER_EVENT_NOTIFICATION_SPEC:
            for s in codec.iter_params(p.body):
                if s.type == codec.P.EVENT_NOTIFICATION_STATE:
                    ev, flags = struct.unpack("!HB", s.body[:3])
                    change.events[ev] = bool(flags & 0x80)
    return change


def decode_spec_id(body: bytes) -> int:
    """ROSpecID / AccessSpecID of the messages that carry only that."""
    if len(body) < 4:
        raise codec.CodecError("missing spec id")
    (spec_id,) = struct.unpack("!I", body[:4])
    return int(spec_id)
