"""Helpers shared by the state machine tests: a store, sightings, a tracker on a ManualClock."""

from __future__ import annotations

from gateway.policy import Policy
from gateway.records import Sighting
from gateway.state import StoreTracker
from tagledger.clock import US_PER_S, ManualClock
from tagledger.ledger.model import Transition
from tagledger.site import Store, parse_site

# zone -> (reader, antenna)
ANTENNA = {
    "floor": ("r1", 1),
    "floor2": ("r1", 3),
    "backroom": ("r1", 2),
    "pos": ("r2", 1),
    "exit": ("r3", 1),
    "receiving": ("r4", 1),
    "fitting": ("r5", 1),
}

SITE = {
    "stores": [
        {
            "id": "s1",
            "name": "Test",
            "latitude": 0,
            "longitude": 0,
            "zones": [
                {"id": "floor", "role": "sales_floor"},
                {"id": "floor2", "role": "sales_floor"},
                {"id": "backroom", "role": "backroom"},
                {"id": "pos", "role": "pos"},
                {"id": "exit", "role": "exit"},
                {"id": "receiving", "role": "receiving"},
                {"id": "fitting", "role": "fitting_room"},
            ],
            "readers": [
                {
                    "id": "r1",
                    "host": "h1",
                    "antennas": [
                        {"port": 1, "zone": "floor"},
                        {"port": 2, "zone": "backroom"},
                        {"port": 3, "zone": "floor2"},
                    ],
                },
                {"id": "r2", "host": "h2", "antennas": [{"port": 1, "zone": "pos"}]},
                {"id": "r3", "host": "h3", "antennas": [{"port": 1, "zone": "exit"}]},
                {"id": "r4", "host": "h4", "antennas": [{"port": 1, "zone": "receiving"}]},
                {"id": "r5", "host": "h5", "antennas": [{"port": 1, "zone": "fitting"}]},
            ],
        }
    ]
}

EPC_A = "3074257BF7194E4000001A85"  # sgtin-96, GTIN 80614141123458, serial 6789
EPC_B = "3034257BF400B7800004CB2F"
EPC_SSCC = "3114257BF4003E8000000457"


def store(**overrides: object) -> Store:
    """The test store; ``overrides`` are merged into its site-file entry (e.g. ``unconfirmed_after_s``)."""
    return parse_site({"stores": [{**SITE["stores"][0], **overrides}]}).stores[0]


def sight(epc: str, zone: str, at_us: int, rssi: float = -55.0, count: int = 1, span_us: int = 0) -> Sighting:
    reader, antenna = ANTENNA[zone]
    return Sighting("s1", reader, antenna, zone, epc, at_us - span_us, at_us, count, rssi, rssi)


class Sim:
    """A tracker with a manual clock and a transcript of every transition."""

    def __init__(self, policy: Policy | None = None, the_store: Store | None = None) -> None:
        self.clock = ManualClock()
        self.tracker = StoreTracker(the_store or store(), self.clock, policy)
        self.log: list[Transition] = []

    @property
    def now(self) -> int:
        return self.clock.now_us()

    def see(self, epc: str, zone: str, rssi: float = -55.0, count: int = 1, span_us: int = 0) -> list[Transition]:
        out = self.tracker.observe([sight(epc, zone, self.now, rssi, count, span_us)])
        self.log.extend(out)
        return out

    def tick(self) -> list[Transition]:
        out = self.tracker.tick()
        self.log.extend(out)
        return out

    def advance(self, seconds: float, tick_every: float = 1.0) -> list[Transition]:
        """Advance time, ticking as the runtime would."""
        out: list[Transition] = []
        end = self.now + round(seconds * US_PER_S)
        step = round(tick_every * US_PER_S)
        while self.now + step <= end:
            self.clock.advance(tick_every)
            out += self.tick()
        self.clock.set(end)
        out += self.tick()
        return out

    def reads(
        self, epc: str, zone: str, seconds: float, every: float = 1.0, rssi: float = -55.0, tick: bool = True
    ) -> list[Transition]:
        """Read ``epc`` in ``zone`` every ``every`` s for ``seconds`` (ticking as the runtime would)."""
        out: list[Transition] = []
        for _ in range(round(seconds / every)):
            self.clock.advance(every)
            out += self.see(epc, zone, rssi)
            if tick:
                out += self.tick()
        return out

    def place(self, epc: str, zone: str, rssi: float = -50.0) -> None:
        """Make ``epc`` an item present in ``zone`` (admitted by a multi-read observation)."""
        out = self.see(epc, zone, rssi, count=3, span_us=500_000)
        assert out
        assert out[-1].to_zone == zone

    def state(self, epc: str) -> tuple[str | None, str | None]:
        rec = self.tracker.item(epc)
        return (rec.state.value, rec.zone) if rec else (None, None)
