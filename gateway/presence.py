"""Presence as a probability, from each item's own read rate.

A fixed "unread for N minutes" rule treats a tag read every second and a tag
behind metal read twice an hour alike: either the first lingers as ghost stock
or the second is declared gone.  Instead each item's read rate is learned while
it is present -- the mean gap between its reads, and the largest recent gap --
and silence is judged against *that item's* rate: a tag read every window that
misses a hundred windows is gone, a tag behind metal that misses three is not.

Model: reads of a present item in a healthy zone arrive at a steady rate, so
the probability of a silence of ``s`` is about ``exp(-s / gap)``.  Rates drift
(a shopper moves the item to a darker corner), so the model departs an item only
when the silence exceeds ``vanish_mean_gaps`` mean gaps *and*
``vanish_max_gaps`` of the largest recent gaps *and* ``vanish_min_us``: a margin
of many orders of magnitude over the Poisson figure, paid for by a slower
verdict on real losses.  Silence is counted only while the item's zone is
healthy (:mod:`gateway.zone_health`, :mod:`gateway.reader_health`).

The model's state is on :class:`gateway.item.TrackedItem`: the learned
``gap``, ``gap_max`` and ``gaps``, and the window of reads not yet folded into
them (``w_start``, ``w_n``, ``w_max``).  A read costs one count and one
comparison (:meth:`PresenceModel.learn`, inlined on the read hot path of
:meth:`gateway.state.StoreTracker.observe_reads`); the window is folded into
the learned figures whenever the item's deadline is evaluated, off the hot
path (about once per unconfirmed limit for an item read steadily).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from gateway.item import TrackedItem
from gateway.policy import Policy
from tagledger.ledger.model import COUNTED_STATES, ReadRate

#: Presence probability when the silence reaches the item's vanish limit.
_AT_LIMIT = 0.02
_LN_AT_LIMIT = -math.log(_AT_LIMIT)
#: How fast the largest-gap memory forgets, per learned gap.
GAP_MAX_FORGET = 1 / 64


class PresenceModel:
    """Learns read rates and turns silence into a presence probability.

    * :meth:`learn` -- a read at ``at_us`` (call before updating ``last_seen_us``);
    * :meth:`vanish_after_us` -- the silence after which the item is gone;
    * :meth:`presence` -- probability the item is still here after a silence;
    * :meth:`restore` / :meth:`snapshot` -- the learned rate, for persistence.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._min_gap = policy.gap_min_us
        self._weight = policy.gap_weight
        self._warm = round(1 / policy.gap_weight)
        self._saved_gap: dict[str, float] = {}  # epc -> learned gap last handed out to be saved

    def learn(self, item: TrackedItem, at_us: int) -> None:
        """A read at ``at_us``; call before updating ``item.last_seen_us``.

        Per read only a count and a maximum are kept (the hot path inlines
        this); :meth:`fold` turns the window into the learned rate off the hot
        path.  A gap shorter than ``gap_min_us`` is the same round seen twice.
        """
        last = item.last_seen_us
        gap = at_us - last
        if gap >= self._min_gap:
            if not last:
                return
            item.w_n += 1
            item.w_max = max(item.w_max, gap)

    def fold(self, item: TrackedItem) -> None:
        """Fold the reads since the last fold into the learned mean and largest gap."""
        n = item.w_n
        if not n or not item.w_start:
            item.w_start = item.last_seen_us
            item.w_n = item.w_max = 0
            return
        mean = max(item.last_seen_us - item.w_start, 0) / n
        g = item.gaps
        w = min(1.0, n * self._weight) if g >= self._warm else n / (g + n)
        item.gap += (mean - item.gap) * w
        item.gaps = g + n
        forget = (1 - GAP_MAX_FORGET) ** n
        item.gap_max = max(float(item.w_max), item.gap_max * forget)
        item.w_start = item.last_seen_us
        item.w_n = item.w_max = 0

    def known(self, item: TrackedItem) -> bool:
        self.fold(item)
        return item.gaps >= self.policy.gap_min_samples

    def vanish_after_us(self, item: TrackedItem) -> int:
        self.fold(item)
        p = self.policy
        if item.gaps < p.gap_min_samples:
            return p.vanish_max_us
        limit = max(p.vanish_min_us, p.vanish_mean_gaps * item.gap, p.vanish_max_gaps * item.gap_max)
        return round(min(limit, p.vanish_max_us))

    def presence(self, item: TrackedItem, silence_us: int) -> float:
        """Probability the item is still here after ``silence_us`` of healthy silence."""
        if silence_us <= 0:
            return 1.0
        return math.exp(-_LN_AT_LIMIT * silence_us / self.vanish_after_us(item))

    def exit_silence_us(self, item: TrackedItem) -> int:
        """Silence after an exit passage that departs the item (scaled by its rate)."""
        self.fold(item)
        p = self.policy
        if item.gaps < p.gap_min_samples:
            return p.exit_silence_us
        return round(min(max(p.exit_silence_us, p.exit_silence_gaps * item.gap), p.vanish_min_us))

    def snapshot(self, item: TrackedItem) -> tuple[float, float, int]:
        self.fold(item)
        return item.gap, item.gap_max, item.gaps

    @staticmethod
    def restore(item: TrackedItem, gap: float, gap_max: float, gaps: int) -> None:
        item.gap, item.gap_max, item.gaps = gap, gap_max, gaps
        item.w_start = item.w_n = item.w_max = 0

    def load(self, item: TrackedItem, rate: ReadRate) -> None:
        """Restore a persisted rate (and remember it as saved)."""
        self.restore(item, rate.gap_us, rate.gap_max_us, rate.gaps)
        self._saved_gap[rate.epc] = rate.gap_us

    def rates(self, store_id: str, items: Iterable[TrackedItem]) -> list[ReadRate]:
        """The learned rates of the counted items among ``items``."""
        known = self.known
        return [ReadRate(store_id, i.epc, *self.snapshot(i)) for i in items if i.state in COUNTED_STATES and known(i)]

    def changed(self, rates: Iterable[ReadRate]) -> list[ReadRate]:
        """Those of ``rates`` that moved by more than a tenth since they were last returned here."""
        saved = self._saved_gap
        out: list[ReadRate] = []
        for rate in rates:
            old = saved.get(rate.epc)
            if old is None or abs(rate.gap_us - old) > 0.1 * old:
                saved[rate.epc] = rate.gap_us
                out.append(rate)
        return out
