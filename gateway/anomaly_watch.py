"""The state machine's side of tag anomalies: what :class:`gateway.state.StoreTracker` shows the detector.

Pure: no I/O, time from the caller.  :class:`gateway.state.StoreTracker` owns one
:class:`AnomalyWatch` per store; the detector itself (:mod:`gateway.anomalies`)
is ``watch.detector`` (the tracker's ``anomalies``)::

    watch.sample(reader_id, reads)     # each delivered batch; kept until the next tick
    watch.read(item, sighting) -> bool   # a read on the general path; True: EPC duplicated
    watch.tick(now, items, set_home)   # learn from the samples, forget quiet EPCs

Off the read hot path: the reads of each reader since the last tick, sampled
then, teach the detector what a strong read is; an EPC it is ``watching`` is kept
off the hot path (the tracker's ``_set_home``) so that it sees all its reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from gateway.anomalies import AnomalyDetector
from gateway.item import TrackedItem, WireObservation
from gateway.records import Sighting
from tagledger.site import Store

#: Reads per reader and tick that teach the anomaly detector what a strong read is
#: (about: every n-th read of the first few batches since the last tick).
_ANOMALY_SAMPLE = 32
_ANOMALY_BATCHES = 16


class AnomalyWatch:
    def __init__(self, store: Store) -> None:
        self.detector = AnomalyDetector(store)
        self._samples: dict[str, list[Sequence[WireObservation] | Sequence[Sighting]]] = {}
        self._sweep_us = 0

    def read(self, item: TrackedItem, s: Sighting) -> bool:
        """Show a read of a known item to the detector; True if it found the EPC duplicated.

        Only reads on the general path get here; an EPC the detector is watching
        loses ``item.home`` so that all its reads come here.
        """
        detector = self.detector
        if detector.read(s, item.zone):
            return True
        if item.home is not None and detector.watching(item.epc):
            item.home = None
        return False

    def sample(self, reader_id: str, reads: Sequence[WireObservation] | Sequence[Sighting]) -> None:
        """Keep (a reference to) the first few batches of each reader until the next tick."""
        kept = self._samples.get(reader_id)
        if kept is None:
            self._samples[reader_id] = [reads]
        elif len(kept) < _ANOMALY_BATCHES:
            kept.append(reads)

    def tick(self, now: int, items: Mapping[str, TrackedItem], set_home: Callable[[TrackedItem], None]) -> None:
        """A sample of each reader's reads since the last tick teaches the detector what a strong read is.

        EPCs the detector stopped watching get their ``item.home`` back (``set_home``).
        """
        samples = self._samples
        if samples:
            learn = self.detector.learn
            for reader_id, batches in samples.items():
                n = sum(len(b) for b in batches)
                step = max(1, n // _ANOMALY_SAMPLE)
                for reads in batches:
                    learn(reads[::step], None if isinstance(reads[0], Sighting) else reader_id)
            samples.clear()
        if now >= self._sweep_us:
            self._sweep_us = now + self.detector.policy.window_us // 3
            for epc in self.detector.forget_quiet(now):
                item = items.get(epc)
                if item is not None and item.home is None:
                    set_home(item)
