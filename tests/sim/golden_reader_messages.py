"""The reader-side messages frozen in tests/sim/golden/reader_*.bin, from fixed inputs.

Run ``python -m tests.sim.golden_reader_messages`` to rewrite them after a deliberate
codec change; tests/edge/test_llrp.py checks that sllurp decodes every one of them.
"""

from __future__ import annotations

from pathlib import Path

from tagledger.app.sim import llrp_codec as c
from tagledger.app.sim.endpoint import DEFAULT_RF_MODES

GOLDEN = Path(__file__).parent / "golden"
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
EPC = bytes.fromhex("3034257BF400004000003039")
FULL = c.ContentSelector(antenna_id=True, peak_rssi=True, first_seen=True, last_seen=True, tag_seen_count=True)


def reader_messages() -> dict[str, bytes]:
    return {
        "reader_connection_attempt_event": c.connection_attempt_event(1, T0),
        "reader_antenna_event": c.antenna_event(2, T0, 3, connected=False),
        "reader_capabilities_response": c.capabilities_response(
            7, c.Capabilities(max_antennas=4, rf_modes=DEFAULT_RF_MODES[:7])
        ),
        "reader_config_response": c.reader_config_response(
            8, b"paris-01-r1", [(1, True), (2, True), (3, False), (4, False)], 2000, {c.EVENT_ANTENNA: True}
        ),
        "reader_add_rospec_response": c.status_response(c.Msg.ADD_ROSPEC_RESPONSE, 9),
        "reader_keepalive": c.keepalive(10),
        "reader_error_message": c.error_message(11, c.Status.UNSUPPORTED_MESSAGE, "message type 1023 is not supported"),
        "reader_ro_access_report": c.ro_access_report(
            12,
            [
                c.TagEntry(EPC, 1, -52, T0 + 1_000, T0 + 250_000, 7),
                c.TagEntry(bytes.fromhex("3034257BF400004000003040"), 2, -71, T0 + 5_000, T0 + 5_000, 1),
            ],
            FULL,
        ),
    }


if __name__ == "__main__":
    for name, data in reader_messages().items():
        (GOLDEN / f"{name}.bin").write_bytes(data)
        print(f"wrote {name}.bin ({len(data)} bytes)")
