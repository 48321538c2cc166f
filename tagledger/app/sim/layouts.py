"""Store plans for the accuracy scenarios (:mod:`tagledger.app.sim.scenarios`).

Three plans that differ where location inference is fragile, so that no
parameter can be tuned to one of them:

``boutique``
    16 x 12 m.  One sales floor; the till stands on the floor 4 m from a floor
    antenna, with an impulse shelf beside it (items there are nearer the till
    antenna than any floor antenna); the exit portal reaches the first shelves;
    a curtained fitting room; backroom and goods-in behind a wall.
``department``
    40 x 26 m.  Two sales floors side by side (items move between them), two
    tills, a wide exit with three portal antennas, two fitting rooms, a large
    backroom; sparse floor antennas (some shelves 7 m from the nearest one).
``corner``
    22 x 14 m, entrance on the side wall with the till right beside the door
    (till and exit fields overlap), backroom across the floor.  Its readers
    publish Impinj IoT events themselves (no edge agent).

Coordinates in metres; ``y < 0`` (or ``x > width`` for ``corner``) is the street.
Zones are looked up in order, so a small zone listed before the floor cuts its
area out of the floor's rectangle.
"""

from __future__ import annotations

from tagledger.app.sim.world import AntennaSpec, Layout, ReaderSpec, Rect, ZoneSpec
from tagledger.site import ZoneRole

R = ZoneRole

# Antenna powers (mean RSSI at 1 m): ceiling floor antennas are strong; the till
# antenna under the counter and the fitting-room antenna are turned down; exit
# portals in between.
FLOOR_DBM = -34.0
TILL_DBM = -47.0
PORTAL_DBM = -44.0
ROOM_DBM = -42.0
WALL_DB = 12.0
CURTAIN_DB = 4.0


def boutique() -> Layout:
    zones = (
        ZoneSpec("till", R.POS, (Rect(11.0, 1.0, 13.5, 3.0),)),
        ZoneSpec("door", R.EXIT, (Rect(6.0, -2.0, 9.0, 0.0),)),
        ZoneSpec("fitting", R.FITTING_ROOM, (Rect(0.0, 5.0, 3.0, 8.0),), wall_db=CURTAIN_DB),
        ZoneSpec("backroom", R.BACKROOM, (Rect(0.0, 8.0, 10.0, 12.0),), wall_db=WALL_DB),
        ZoneSpec("goods-in", R.RECEIVING, (Rect(10.0, 8.0, 16.0, 12.0),), wall_db=WALL_DB),
        ZoneSpec("floor", R.SALES_FLOOR, (Rect(0.0, 0.0, 16.0, 8.0),)),
    )
    antennas = (
        AntennaSpec("b-floor", 1, "floor", 3.5, 2.5, FLOOR_DBM),
        AntennaSpec("b-floor", 2, "floor", 8.0, 2.5, FLOOR_DBM),
        AntennaSpec("b-floor", 3, "floor", 7.0, 6.0, FLOOR_DBM),
        AntennaSpec("b-floor", 4, "floor", 13.5, 6.0, FLOOR_DBM),
        AntennaSpec("b-floor", 5, "fitting", 1.5, 6.5, ROOM_DBM),
        AntennaSpec("b-till", 1, "till", 12.2, 2.0, TILL_DBM),
        AntennaSpec("b-door", 1, "door", 6.2, -1.0, PORTAL_DBM),
        AntennaSpec("b-door", 2, "door", 8.8, -1.0, PORTAL_DBM),
        AntennaSpec("b-back", 1, "backroom", 2.5, 10.0, FLOOR_DBM),
        AntennaSpec("b-back", 2, "backroom", 7.5, 10.0, FLOOR_DBM),
        AntennaSpec("b-back", 3, "goods-in", 13.0, 10.0, FLOOR_DBM),
    )
    readers = (
        ReaderSpec("b-floor", capacity_per_s=60.0),
        ReaderSpec("b-till", capacity_per_s=20.0),
        ReaderSpec("b-door", capacity_per_s=20.0),
        ReaderSpec("b-back", capacity_per_s=40.0),
    )
    return Layout("boutique", zones, readers, antennas, door=(7.5, -0.2), outside=(7.5, -6.0), backroom_door=(5, 8))


def department() -> Layout:
    zones = (
        ZoneSpec("till-1", R.POS, (Rect(16.0, 2.0, 19.0, 4.5),)),
        ZoneSpec("till-2", R.POS, (Rect(21.0, 2.0, 24.0, 4.5),)),
        ZoneSpec("entrance", R.EXIT, (Rect(15.0, -2.5, 25.0, 0.0),)),
        ZoneSpec("fitting-w", R.FITTING_ROOM, (Rect(0.0, 14.0, 4.0, 20.0),), wall_db=CURTAIN_DB),
        ZoneSpec("fitting-m", R.FITTING_ROOM, (Rect(36.0, 14.0, 40.0, 20.0),), wall_db=CURTAIN_DB),
        ZoneSpec("stock", R.BACKROOM, (Rect(0.0, 20.0, 30.0, 26.0),), wall_db=WALL_DB),
        ZoneSpec("dock", R.RECEIVING, (Rect(30.0, 20.0, 40.0, 26.0),), wall_db=WALL_DB),
        ZoneSpec("womens", R.SALES_FLOOR, (Rect(0.0, 0.0, 20.0, 20.0),)),
        ZoneSpec("mens", R.SALES_FLOOR, (Rect(20.0, 0.0, 40.0, 20.0),)),
    )
    floor = [(5.0, 5.0), (12.0, 5.0), (5.0, 13.0), (13.0, 14.0), (27.0, 6.0), (34.0, 6.0), (27.0, 14.0), (34.0, 13.0)]
    antennas = [
        *(AntennaSpec("d-floor-w", p, "womens", x, y, FLOOR_DBM) for p, (x, y) in enumerate(floor[:4], 1)),
        AntennaSpec("d-floor-w", 5, "fitting-w", 2.0, 17.0, ROOM_DBM),
        *(AntennaSpec("d-floor-m", p, "mens", x, y, FLOOR_DBM) for p, (x, y) in enumerate(floor[4:], 1)),
        AntennaSpec("d-floor-m", 5, "fitting-m", 38.0, 17.0, ROOM_DBM),
        AntennaSpec("d-tills", 1, "till-1", 17.5, 3.0, TILL_DBM),
        AntennaSpec("d-tills", 2, "till-2", 22.5, 3.0, TILL_DBM),
        AntennaSpec("d-gate", 1, "entrance", 16.0, -1.2, PORTAL_DBM),
        AntennaSpec("d-gate", 2, "entrance", 20.0, -1.2, PORTAL_DBM),
        AntennaSpec("d-gate", 3, "entrance", 24.0, -1.2, PORTAL_DBM),
        AntennaSpec("d-stock", 1, "stock", 5.0, 23.0, FLOOR_DBM),
        AntennaSpec("d-stock", 2, "stock", 15.0, 23.0, FLOOR_DBM),
        AntennaSpec("d-stock", 3, "stock", 25.0, 23.0, FLOOR_DBM),
        AntennaSpec("d-stock", 4, "dock", 35.0, 23.0, FLOOR_DBM),
    ]
    readers = (
        ReaderSpec("d-floor-w", capacity_per_s=70.0),
        ReaderSpec("d-floor-m", capacity_per_s=70.0),
        ReaderSpec("d-tills", capacity_per_s=20.0),
        ReaderSpec("d-gate", capacity_per_s=26.0),
        ReaderSpec("d-stock", capacity_per_s=60.0),
    )
    return Layout(
        "department", zones, readers, tuple(antennas), door=(20.0, -0.2), outside=(20.0, -8.0), backroom_door=(15, 20)
    )


def corner() -> Layout:
    zones = (
        ZoneSpec("checkout", R.POS, (Rect(18.0, 1.0, 20.0, 4.0),)),
        ZoneSpec("gate", R.EXIT, (Rect(20.0, 4.0, 22.0, 8.0),)),
        ZoneSpec("changing", R.FITTING_ROOM, (Rect(0.0, 0.0, 3.0, 4.0),), wall_db=CURTAIN_DB),
        ZoneSpec("reserve", R.BACKROOM, (Rect(0.0, 10.0, 14.0, 14.0),), wall_db=WALL_DB),
        ZoneSpec("unload", R.RECEIVING, (Rect(14.0, 10.0, 20.0, 14.0),), wall_db=WALL_DB),
        ZoneSpec("shop", R.SALES_FLOOR, (Rect(0.0, 0.0, 20.0, 10.0),)),
    )
    antennas = (
        AntennaSpec("c-shop", 1, "shop", 4.0, 6.0, FLOOR_DBM),
        AntennaSpec("c-shop", 2, "shop", 10.0, 3.0, FLOOR_DBM),
        AntennaSpec("c-shop", 3, "shop", 15.0, 7.0, FLOOR_DBM),
        AntennaSpec("c-shop", 4, "changing", 1.5, 2.0, ROOM_DBM),
        AntennaSpec("c-front", 1, "checkout", 19.0, 2.5, TILL_DBM),
        AntennaSpec("c-front", 2, "gate", 21.0, 4.5, PORTAL_DBM),
        AntennaSpec("c-front", 3, "gate", 21.0, 7.5, PORTAL_DBM),
        AntennaSpec("c-back", 1, "reserve", 4.0, 12.0, FLOOR_DBM),
        AntennaSpec("c-back", 2, "reserve", 10.0, 12.0, FLOOR_DBM),
        AntennaSpec("c-back", 3, "unload", 17.0, 12.0, FLOOR_DBM),
    )
    readers = (
        ReaderSpec("c-shop", "impinj_iot", 60.0),
        ReaderSpec("c-front", "impinj_iot", 23.0),
        ReaderSpec("c-back", "impinj_iot", 40.0),
    )
    return Layout("corner", zones, readers, antennas, door=(20.2, 6.0), outside=(28.0, 6.0), backroom_door=(7, 10))


LAYOUTS = {"boutique": boutique, "department": department, "corner": corner}
