"""Package zones that are one energy counter read through several names, told apart by what they read.

Multi-die CPUs expose one ``package-X-die-Y`` zone per die. On AMD Threadripper/EPYC every die's zone
mirrors the same socket-wide counter (codecarbon: ``package-0-die-0: 68 W | package-0-die-1: 68 W``
summed to 137 W on a Threadripper 1950X, mlco2/codecarbon issues #1274 and #1379, pull request #1276),
so summing them counts the socket two or four times. On multi-die Intel parts the per-die zones are
distinct counters that must be summed. Names cannot tell the two apart; the readings can:

* two zones are taken for one counter while their readings agree (within the energy of the gap
  between two consecutive reads) and every interval's energy agrees;
* a pair that disagrees once is two counters for good, and the later zone then counts *all* its energy
  since the first read (no joule is lost while the question was open);
* after ``SETTLE_READS`` intervals in which both moved and agreed, the pair is one counter for good;
* when the zone counted fails to read and its mirror does not, the mirror takes over from then on.

Every member keeps being read; a mirror reports a constant, so the totals count it zero.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Callable, Sequence

SETTLE_READS = 5  #: intervals of agreeing movement after which two zones are one counter for good
REL_TOLERANCE = 0.01  #: two mirrors' energies over one interval agree within 1 % (reads are µs apart)
ABS_TOLERANCE_J = 1.0  #: and their readings within 1 J (the energy of the gap between two reads, and more)
FLOOR_UJ = 1000  #: below a millijoule two intervals' energies are not told apart


def _delta_uj(before: int, now: int, wrap_uj: int) -> int:
    return now - before if now >= before else now + wrap_uj - before


def _apart_uj(a: int, b: int, wrap_uj: int) -> int:
    gap = abs(a - b)
    return min(gap, wrap_uj - gap) if wrap_uj else gap


class MirrorGroup:
    """The package zones of one control type, read together; each member's energy counted once."""

    def __init__(self, raw_reads: Sequence[Callable[[], int]], wraps_uj: Sequence[int]) -> None:
        self.raw_reads = tuple(raw_reads)  #: each zone's ``energy_uj`` read as an integer
        self.wraps_uj = tuple(wraps_uj)
        n = len(self.raw_reads)
        self._raw: list[int | None] = [None] * n
        self._errors: list[BaseException | None] = [None] * n
        self._joules = [0.0] * n  # each member's own energy since the first read
        self._offset = [0.0] * n  # energy a member took over with (counted before by the zone it mirrored)
        self._leader: list[int | None] = [None] * n  # the earlier zone a member is taken to mirror
        self._agreed = [0] * n  # intervals with agreeing movement, per linked member
        self._settled = [False] * n
        self._pass = 0
        self._consumed = [-1] * n  # the pass each member last reported

    def mirror_of(self, member: int) -> int | None:
        """The zone this member is counted as a mirror of (None: counted on its own)."""
        return self._leader[member]

    def settled(self, member: int) -> bool:
        """The member's mirror link is final."""
        return self._settled[member]

    def _refresh(self) -> None:
        before = list(self._raw)
        for i, read_raw in enumerate(self.raw_reads):
            try:
                self._raw[i] = read_raw()
                self._errors[i] = None
            except (OSError, ValueError) as exc:
                self._errors[i] = exc
        deltas: list[int | None] = [None] * len(self.raw_reads)
        for i, now in enumerate(self._raw):
            if now is not None and before[i] is not None and self._errors[i] is None:
                deltas[i] = _delta_uj(before[i], now, self.wraps_uj[i])  # type: ignore[arg-type]
                self._joules[i] += deltas[i] / 1e6  # type: ignore[operator]
        if self._pass == 0:
            self._link_first_readings()
        else:
            self._check_links(deltas)
        self._pass += 1

    def _link_first_readings(self) -> None:
        """Zones whose first readings agree are taken for one counter until shown otherwise."""
        roots: list[int] = []
        for j, raw in enumerate(self._raw):
            if raw is None or self._errors[j] is not None:
                continue
            for i in roots:
                if (self.wraps_uj[i] == self.wraps_uj[j] and raw > 0
                        and _apart_uj(self._raw[i], raw, self.wraps_uj[j]) <= ABS_TOLERANCE_J * 1e6):  # type: ignore[arg-type]
                    self._leader[j] = i
                    break
            else:
                roots.append(j)

    def _check_links(self, deltas: list[int | None]) -> None:
        heirs: dict[int, int] = {}  # a counted zone that failed to read → the mirror counting in its place
        for j, i in enumerate(self._leader):
            if i is None:
                continue
            dj, di = deltas[j], deltas[i]
            if di is None and dj is not None and self._errors[i] is not None:
                if i in heirs:
                    self._leader[j] = heirs[i]  # another mirror already counts for it: follow that one
                else:
                    heirs[i] = j  # j takes over from this interval on (the failed zone counted until now)
                    self._leader[j], self._offset[j] = None, self._joules[j] - dj / 1e6
                continue
            if self._settled[j] or dj is None or di is None:
                continue  # settled, or a failed read: no evidence either way
            tolerance_uj = REL_TOLERANCE * max(di, dj) + FLOOR_UJ
            readings_apart = _apart_uj(self._raw[i], self._raw[j], self.wraps_uj[j])  # type: ignore[arg-type]
            if abs(di - dj) > tolerance_uj or readings_apart > max(tolerance_uj, ABS_TOLERANCE_J * 1e6):
                self._leader[j] = None  # two counters: j now counts everything since its first read
            elif di > 0:
                self._agreed[j] += 1
                self._settled[j] = self._agreed[j] >= SETTLE_READS

    def read(self, member: int) -> float:
        """The member's counted joules: its own energy since the first read, or 0.0 while it mirrors another."""
        if self._consumed[member] >= self._pass - 1:
            self._refresh()  # a new pass: the first member to ask reads every zone at once
        self._consumed[member] = self._pass - 1
        error = self._errors[member]
        if error is not None:
            raise error
        return 0.0 if self._leader[member] is not None else self._joules[member] - self._offset[member]
