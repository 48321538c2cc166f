"""The time-driven rules of the state machine: when an item's next one is due, and which.

:class:`gateway.state.StoreTracker` keeps one deadline per item
(:mod:`gateway.deadlines`) at the time :meth:`Timers.due` gives, and applies
the rule of that kind when it falls due (``StoreTracker._fire``).  The rules:

* ``EXIT``: an exit episode that is a passage (short, enough reads, fresh or
  strong) followed by silence everywhere departs the item -- not while its zone
  is impaired, nor before the zone's readers delivered past the deadline;
* ``POS_LEAVE``: an item that arrived at a till and is no longer read there nor
  on a shelf was sold (not while a shelf zone is impaired: it may be there);
* ``DWELL``: an item read in a transit zone longer than anything stays there is
  the shelf item beside it (dwell prior);
* ``UNOBSERVED``: present -> unobserved after the zone's unconfirmed limit;
* ``VANISH``: silence far beyond the item's own read rate (:mod:`gateway.presence`);
* ``EXITING``: a legacy exiting item silent for ``exit_silence_us`` departs;
* ``RECHECK``: nothing to apply yet; look again then (impaired zone, reads in flight).

Pure: no I/O; ``now`` is passed in.
"""

from __future__ import annotations

from gateway.item import TrackedItem, end_exit_episode
from gateway.policy import Policy
from gateway.presence import PresenceModel
from gateway.zone_health import ZoneHealth
from gateway.zones import ZoneModel
from tagledger.ledger.model import ItemState
from tagledger.site import ZoneRole

PRESENT = ItemState.PRESENT
RETURNED = ItemState.RETURNED
EXITING = ItemState.EXITING
SOLD = ItemState.SOLD
DEPARTED = ItemState.DEPARTED_EXIT
MISSING = ItemState.MISSING
DUPLICATED = ItemState.DUPLICATED

# What a due deadline means.
RECHECK, EXIT, POS_LEAVE, DWELL, UNOBSERVED, VANISH, EXITING_SILENT = range(7)


class Timers:
    def __init__(
        self,
        policy: Policy,
        zones: ZoneModel,
        health: ZoneHealth,
        presence: PresenceModel,
    ) -> None:
        self.policy = policy
        self.zones = zones
        self.health = health
        self.presence = presence

    def exit_due(self, item: TrackedItem) -> int:
        return item.x_last + self.presence.exit_silence_us(item)

    def exit_read(self, item: TrackedItem, t: int, count: int, jump: bool) -> int:
        """Exit reads never make an item's zone: they make an episode, judged when it falls silent (its due time).

        An episode is a passage candidate when it is *fresh* (the exit had not
        read the item for ``exit_fresh_us``) or *strong* (it began with a read
        ``exit_jump_db`` above the exit's recent reads of the item: carried
        through the portal, not cross-read from a shelf or the till beside it).
        Such a read starts a new episode even amid weak ones.
        """
        gap = self.policy.exit_episode_gap_us
        if item.x_last and -gap <= t - item.x_last <= gap and not jump:
            item.x_first = min(item.x_first, t)
            item.x_last = max(item.x_last, t)
            item.x_reads += count
        else:
            if item.x_last:
                item.x_prev = item.x_last
            item.x_first = item.x_last = t
            item.x_reads = count
            item.x_strong = jump
        return self.exit_due(item)

    def due(self, item: TrackedItem, now: int) -> tuple[int | None, int]:
        """When the item's next time-driven rule is due, and which (None: never)."""
        state = item.state
        zone_id = item.zone
        if state is None or state is SOLD or state is DEPARTED or state is DUPLICATED or zone_id is None:
            return None, 0
        zone = self.zones.zones.get(zone_id)  # None: a zone since removed from the site file
        p = self.policy
        health = self.health
        best: int | None = None
        kind = 0
        if item.x_last:
            best, kind = self.exit_due(item), EXIT
            if best <= now:
                # A passage: a burst, nothing anywhere after it, the item's zone
                # whole and its readers' evidence reaching past the deadline.
                burst = (
                    item.x_last - item.x_first <= p.exit_burst_max_us
                    and item.x_reads >= p.exit_min_reads
                    and (item.x_strong or not item.x_prev or item.x_first - item.x_prev >= p.exit_fresh_us)
                )
                if not burst or item.last_seen_us > item.x_last + p.exit_tail_us:
                    end_exit_episode(item)
                    best = None
                elif health.down_count.get(zone_id):
                    return now + p.health_recheck_us, RECHECK
                else:
                    whole = health.up_since_us.get(zone_id, 0) + self.presence.exit_silence_us(item)
                    reach = self.zones.reach_us(zone_id)
                    if whole > now:
                        best, kind = whole, RECHECK
                    elif reach is not None and reach < best:
                        return now + p.health_recheck_us // 6, RECHECK
                    else:
                        return best, EXIT
        if state is MISSING:
            return best, kind
        if state is EXITING:
            due = item.last_seen_us + p.exit_silence_us
            return (due, EXITING_SILENT) if best is None or due < best else (best, kind)
        if health.down_count.get(zone_id):
            due = now + p.health_recheck_us
            return (due, RECHECK) if best is None or due < best else (best, kind)
        start = max(item.last_seen_us, health.up_since_us.get(zone_id, 0))
        candidates: list[tuple[int, int]] = []
        if best is not None:
            candidates.append((best, kind))
        if zone is not None and zone.role is ZoneRole.POS and state is PRESENT:
            last_pos = self.zones.last_read_us(item, zone_id, item.since_us)
            leave = last_pos + p.pos_leave_us
            if self.zones.read_elsewhere_after(item, zone_id, last_pos):
                leave = 0  # read on a shelf after the till: not leaving through it
            if leave:
                candidates.append((leave, POS_LEAVE))
            dwell = item.since_us + p.pos_dwell_max_us
            candidates.append((max(dwell, now + 1) if leave and leave <= dwell else dwell, DWELL))
        elif zone is not None and zone.role is ZoneRole.FITTING_ROOM and state is PRESENT:
            last = self.zones.last_read_us(item, zone_id, 0)
            if last and last >= item.since_us + p.fitting_dwell_max_us - p.pos_leave_us:
                candidates.append((item.since_us + p.fitting_dwell_max_us, DWELL))
            else:
                candidates.append((item.since_us + p.fitting_dwell_max_us, RECHECK))
        if state is PRESENT or state is RETURNED:
            limit = zone.unobserved_after_us if zone is not None else p.unobserved_after_us
            candidates.append((start + limit, UNOBSERVED))
        # Missing: silence at home while every zone of the store could hear the item.  One
        # that fell silent during (or just before) a deaf spell of another zone may have
        # been carried there, unheard: its silence counts from the end of the spell.
        deaf_since = health.store_down_since_us - p.carry_us
        silent_in_spell = health.store_down_since_us and item.last_seen_us >= deaf_since
        limit = self.presence.vanish_after_us(item)
        # Moved into a dark zone by gateway.dark (and not since): its silence is the
        # one it fell into at its old home, judged as any item silent in the spell.
        vanish = (item.last_seen_us if item.dark_us and item.dark_us == item.since_us else start) + limit
        if silent_in_spell and health.store_up_since_us:
            # Its own silence limit, and long enough after the spell for the zone that was
            # deaf to read it at its usual rate, had it been carried there.
            vanish = max(vanish, health.store_up_since_us + min(limit, max(p.carry_confirm_us, round(10 * item.gap))))
        candidates.append((vanish, VANISH))
        due, kind = min(candidates)
        if kind == VANISH and due <= now:
            if silent_in_spell and not health.store_up_since_us:
                return now + p.health_recheck_us, RECHECK  # carried into the deaf zone? not missing on that
            reach = self.zones.reach_us(zone_id)
            if reach is not None and reach < due:
                return now + p.health_recheck_us // 6, RECHECK  # reads still in flight
        if kind == POS_LEAVE and due <= now and health.zones_down():
            # Not read by the till any more, nor by a shelf -- but a shelf zone is
            # impaired and may hold it: not a sale on that evidence.
            return now + p.health_recheck_us // 6, RECHECK
        if kind == POS_LEAVE and due <= now:
            reach = self.zones.reach_us(zone_id)
            if reach is not None and reach < due:
                return now + p.health_recheck_us // 6, RECHECK
        return due, kind
