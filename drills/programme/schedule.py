"""Unannounced scheduling: a secret drill moment, uniformly random over allowed minutes.

Time is counted in UTC epoch minutes. A plan's business hours are local wall-clock ranges;
they are turned into UTC intervals exactly, across DST changes: an instant is in business
hours when its local wall-clock time on that local date is inside a range. Local times that
do not exist (spring forward) belong to no instant, so a range starting in the gap starts at
the change; local times that occur twice (fall back) count both times. Adjacent intervals
(e.g. ``00:00-24:00`` on consecutive days) join, and a drill must fit entirely in one.

Drills are drawn one at a time. For each, the set of start minutes that are allowed *and*
keep every constraint (client spacing, environment overlap, MSP capacity per day) is built
exactly as interval arithmetic and one minute is drawn uniformly from it — the same
distribution as rejection sampling over the allowed minutes, without the unbounded loop,
and with a precise reason when nothing is left.
"""

from __future__ import annotations

import bisect
import random
import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import structlog

from drills.programme.drill_plans import DrillPlan, valid_time_zone
from engine.errors import InputError

log = structlog.get_logger(__name__)

MINUTE = 60
DAY = 86400
_SAMPLE_STEP_S = 6 * 3600  # tz offsets are sampled this often, then changes bisected
_MARGIN_S = 2 * DAY  # covers any UTC offset (-12h..+14h) around local dates
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

Span = tuple[int, int]  # half-open [start, end)


class SchedulingError(InputError):
    """No drill moment satisfies a plan's constraints; names the plan and the reason."""

    def __init__(self, plan: DrillPlan, reason: str) -> None:
        super().__init__(f"cannot schedule a drill for plan {plan.name}: {reason}")
        self.client = plan.client
        self.source = plan.source
        self.reason = reason


# ---------------------------------------------------------------- minute sets


@dataclass(frozen=True)
class MinuteSet:
    """A set of UTC epoch minutes as sorted, disjoint ``[start, end)`` runs.

    ``cumulative[i]`` is the number of minutes in ``runs[: i + 1]``, so the n-th minute is
    found by bisection: a year of business hours is a few hundred runs, not millions of
    datetimes.
    """

    runs: tuple[Span, ...]
    cumulative: tuple[int, ...]

    @classmethod
    def of(cls, runs: Iterable[Span]) -> MinuteSet:
        """Build from any runs: empty ones dropped, overlapping or touching ones joined."""
        merged = merge_spans(runs)
        totals: list[int] = []
        count = 0
        for start, end in merged:
            count += end - start
            totals.append(count)
        return cls(tuple(merged), tuple(totals))

    @property
    def total(self) -> int:
        """Number of minutes in the set."""
        return self.cumulative[-1] if self.cumulative else 0

    def minute_at(self, index: int) -> int:
        """The ``index``-th smallest minute (0-based); ``IndexError`` when out of range."""
        if not 0 <= index < self.total:
            raise IndexError(f"minute index {index!r} outside 0..{self.total - 1}")
        run = bisect.bisect_right(self.cumulative, index)
        before = self.cumulative[run - 1] if run else 0
        return self.runs[run][0] + index - before

    def __contains__(self, minute: object) -> bool:
        if not isinstance(minute, int):
            return False
        run = bisect.bisect_right(self.runs, (minute, float("inf"))) - 1
        return run >= 0 and self.runs[run][0] <= minute < self.runs[run][1]

    def without(self, removed: Iterable[Span]) -> MinuteSet:
        """This set minus every minute in ``removed``."""
        cuts = merge_spans(removed)
        kept: list[Span] = []
        for start, end in self.runs:
            kept.extend(_cut(start, end, cuts))
        return MinuteSet.of(kept)

    def first(self) -> int:
        """The smallest minute (the set must not be empty)."""
        return self.runs[0][0]

    def last(self) -> int:
        """The largest minute (the set must not be empty)."""
        return self.runs[-1][1] - 1


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Sort spans and join those that overlap or touch; drop empty ones."""
    merged: list[Span] = []
    for start, end in sorted(s for s in spans if s[0] < s[1]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _cut(start: int, end: int, cuts: list[Span]) -> list[Span]:
    """``[start, end)`` minus sorted disjoint ``cuts``."""
    pieces: list[Span] = []
    first = max(bisect.bisect_right(cuts, (start, start)) - 1, 0)
    for cut_start, cut_end in cuts[first:]:
        if cut_start >= end:
            break
        if cut_end <= start:
            continue
        if cut_start > start:
            pieces.append((start, cut_start))
        start = max(start, cut_end)
    if start < end:
        pieces.append((start, end))
    return pieces


# ---------------------------------------------------------------- local time -> UTC


@dataclass(frozen=True)
class OffsetPeriod:
    """UTC seconds ``[start_s, end_s)`` during which local time is UTC + ``offset_s``."""

    start_s: int
    end_s: int
    offset_s: int


def _offset_at(zone: ZoneInfo, utc_s: int) -> int:
    offset = datetime.fromtimestamp(utc_s, zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


@lru_cache(maxsize=256)
def offset_periods(time_zone: str, start_s: int, end_s: int) -> tuple[OffsetPeriod, ...]:
    """The zone's constant-offset periods covering UTC seconds ``[start_s, end_s)``.

    Offsets are sampled every few hours and each change is bisected to the second; two
    changes closer together than the sampling step would be missed (no zone has any).
    """
    zone = ZoneInfo(time_zone)
    periods: list[OffsetPeriod] = []
    period_start, current = start_s, _offset_at(zone, start_s)
    probe = start_s
    while probe < end_s - 1:
        nxt = min(probe + _SAMPLE_STEP_S, end_s - 1)
        if _offset_at(zone, nxt) == current:
            probe = nxt
            continue
        change = _first_change(zone, probe, nxt, current)
        periods.append(OffsetPeriod(period_start, change, current))
        period_start, current, probe = change, _offset_at(zone, change), change
    periods.append(OffsetPeriod(period_start, end_s, current))
    return tuple(periods)


def _first_change(zone: ZoneInfo, low: int, high: int, offset: int) -> int:
    """First second in ``(low, high]`` whose offset is not ``offset`` (``high``'s isn't)."""
    while high - low > 1:
        mid = (low + high) // 2
        if _offset_at(zone, mid) == offset:
            low = mid
        else:
            high = mid
    return high


def local_seconds(day: date, minute_of_day: int) -> int:
    """A local wall-clock time as seconds since 1970-01-01 00:00 *on that clock*."""
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY + minute_of_day * MINUTE


def local_to_utc_spans(periods: Sequence[OffsetPeriod], start: int, end: int) -> list[Span]:
    """UTC seconds whose local wall-clock time lies in local seconds ``[start, end)``.

    Exact across offset changes: a gap contributes nothing, a repeated hour contributes
    both of its occurrences (as two spans).
    """
    spans: list[Span] = []
    for period in periods:
        low = max(period.start_s, start - period.offset_s)
        high = min(period.end_s, end - period.offset_s)
        if low < high:
            spans.append((low, high))
    return spans


def _window_periods(time_zone: str, first: date, last: date) -> tuple[OffsetPeriod, ...]:
    start = local_seconds(first, 0) - _MARGIN_S
    end = local_seconds(last + timedelta(days=1), 0) + _MARGIN_S
    return offset_periods(time_zone, start, end)


def business_spans(plan: DrillPlan) -> list[Span]:
    """UTC seconds inside the plan's business hours on window days that are not blacked out."""
    periods = _window_periods(plan.time_zone, plan.window.first, plan.window.last)
    spans: list[Span] = []
    for day in plan.window.days():
        if plan.blacked_out(day):
            continue
        for hours in plan.hours_on(day):
            start = local_seconds(day, hours.start_min)
            end = local_seconds(day, hours.end_min)
            spans.extend(local_to_utc_spans(periods, start, end))
    return merge_spans(spans)


@lru_cache(maxsize=1024)
def allowed_minutes(plan: DrillPlan) -> MinuteSet:
    """Every UTC minute at which a drill of ``plan`` may start and still end in business hours."""
    length = plan.drill_length_s
    runs: list[Span] = []
    for start, end in business_spans(plan):
        first = -(-start // MINUTE)  # ceil
        last = (end - length) // MINUTE  # floor: last start that still fits
        runs.append((first, last + 1))
    return MinuteSet.of(runs)


def local_day_minutes(time_zone: str, day: date) -> list[Span]:
    """UTC minutes starting on local date ``day`` in ``time_zone`` (an MSP day)."""
    periods = _window_periods(time_zone, day, day)
    spans = local_to_utc_spans(periods, local_seconds(day, 0), local_seconds(day, 24 * 60))
    return [(-(-start // MINUTE), -(-end // MINUTE)) for start, end in spans]


# ---------------------------------------------------------------- picking drills


@dataclass(frozen=True)
class ScheduledDrill:
    """A drill's secret moment: client, environment, playbook, UTC start and length."""

    client: str
    environment: str
    playbook: str
    start: datetime
    length_s: int
    min_spacing_s: int = 0
    time_zone: str = "UTC"

    @property
    def end(self) -> datetime:
        """When the drill's slot ends (UTC)."""
        return self.start + timedelta(seconds=self.length_s)

    @property
    def start_s(self) -> int:
        """Start as UTC epoch seconds."""
        return int(self.start.timestamp())

    def local_start(self) -> datetime:
        """The start on the plan's wall clock."""
        return self.start.astimezone(ZoneInfo(self.time_zone))


@dataclass(frozen=True)
class _Rules:
    capacity_per_day: int
    msp_time_zone: str
    not_before_min: int | None


class _Stuck(Exception):
    def __init__(self, plan: DrillPlan, reason: str) -> None:
        super().__init__(reason)
        self.plan = plan
        self.reason = reason


def pick_times(
    plans: Sequence[DrillPlan],
    rng: random.Random | None = None,
    capacity_per_day: int = 1,
    existing: Sequence[ScheduledDrill] = (),
    *,
    msp_time_zone: str = "UTC",
    not_before: datetime | None = None,
    attempts: int = 20,
) -> tuple[ScheduledDrill, ...]:
    """Choose ``quota`` secret drill moments for every plan, sorted by start.

    Each moment is uniform over the plan's allowed minutes that keep ``min_spacing`` from
    the client's other drills, do not overlap another drill on the same environment, and
    fall on an MSP day (in ``msp_time_zone``) with fewer than ``capacity_per_day`` drills;
    ``existing`` drills count for all three but are not returned. Drills are placed one at
    a time, most constrained plan first; if a placement gets stuck, the whole draw is
    retried up to ``attempts`` times. The default RNG is ``secrets.SystemRandom()``.
    """
    if capacity_per_day < 1:
        raise InputError(f"capacity_per_day {capacity_per_day!r} must be at least 1")
    if not_before is not None and not_before.tzinfo is None:
        raise InputError(f"not_before {not_before!r} needs a time zone")
    if not valid_time_zone(msp_time_zone):
        raise InputError(f"MSP time zone {msp_time_zone!r} is not an IANA zone like 'Europe/Berlin'")
    if rng is None:
        rng = secrets.SystemRandom()
    rules = _Rules(
        capacity_per_day,
        msp_time_zone,
        None if not_before is None else -(-int(not_before.timestamp()) // MINUTE),
    )
    ordered = sorted(plans, key=lambda p: allowed_minutes(p).total)
    for plan in ordered:
        _check_feasible(plan, rules)
    last: _Stuck | None = None
    for attempt in range(attempts):
        try:
            drills = _draw_all(ordered, rng, rules, existing)
        except _Stuck as stuck:
            log.debug("schedule.retry", attempt=attempt, reason=stuck.reason)
            last = stuck
            continue
        return tuple(sorted(drills, key=lambda d: (d.start, d.client)))
    assert last is not None
    raise SchedulingError(last.plan, f"{last.reason} (gave up after {attempts} attempts)")


def _usable(plan: DrillPlan, rules: _Rules) -> MinuteSet:
    allowed = allowed_minutes(plan)
    if rules.not_before_min is None or allowed.total == 0:
        return allowed
    return allowed.without([(allowed.first(), rules.not_before_min)])


def _check_feasible(plan: DrillPlan, rules: _Rules) -> None:
    if allowed_minutes(plan).total == 0:
        raise SchedulingError(
            plan,
            f"no business-hours slot of {plan.drill_length_s}s in window"
            f" {plan.window.first}..{plan.window.last} outside blackouts",
        )
    usable = _usable(plan, rules)
    if usable.total == 0:
        raise SchedulingError(plan, "every allowed moment in the window is already past")
    needed = (plan.quota - 1) * plan.min_spacing_s
    span = (usable.last() - usable.first()) * MINUTE
    if needed > span:
        raise SchedulingError(
            plan,
            f"quota {plan.quota} with min_spacing {plan.min_spacing_s}s needs {needed}s"
            f" between first and last drill, but allowed moments span only {span}s",
        )


def _draw_all(
    plans: Sequence[DrillPlan],
    rng: random.Random,
    rules: _Rules,
    existing: Sequence[ScheduledDrill],
) -> list[ScheduledDrill]:
    placed = list(existing)
    new: list[ScheduledDrill] = []
    for plan in plans:
        order = list(plan.playbooks)
        rng.shuffle(order)
        for index in range(plan.quota):
            minute = _draw_one(plan, rng, rules, placed)
            drill = ScheduledDrill(
                client=plan.client,
                environment=str(plan.environment),
                playbook=str(order[index % len(order)]),
                start=datetime.fromtimestamp(minute * MINUTE, UTC),
                length_s=plan.drill_length_s,
                min_spacing_s=plan.min_spacing_s,
                time_zone=plan.time_zone,
            )
            placed.append(drill)
            new.append(drill)
    return new


def _draw_one(plan: DrillPlan, rng: random.Random, rules: _Rules, placed: Sequence[ScheduledDrill]) -> int:
    candidates = _usable(plan, rules)
    steps = (
        ("min_spacing from the client's other drills", _spacing_cuts(plan, placed)),
        ("environment busy with other drills", _overlap_cuts(plan, placed)),
        (
            f"MSP capacity of {rules.capacity_per_day} drill(s) per day used up",
            _capacity_cuts(placed, rules),
        ),
    )
    for reason, cuts in steps:
        candidates = candidates.without(cuts)
        if candidates.total == 0:
            raise _Stuck(plan, f"no allowed moment left: {reason}")
    return candidates.minute_at(rng.randrange(candidates.total))


def _spacing_cuts(plan: DrillPlan, placed: Sequence[ScheduledDrill]) -> list[Span]:
    cuts: list[Span] = []
    for other in placed:
        gap = max(plan.min_spacing_s, other.min_spacing_s)
        if other.client != plan.client or gap <= 0:
            continue
        # forbidden: |m*60 - t| < gap
        cuts.append(((other.start_s - gap) // MINUTE + 1, -(-(other.start_s + gap) // MINUTE)))
    return cuts


def _overlap_cuts(plan: DrillPlan, placed: Sequence[ScheduledDrill]) -> list[Span]:
    cuts: list[Span] = []
    environment = str(plan.environment)
    for other in placed:
        if other.environment != environment:
            continue
        # overlap: t - length < m*60 < t + other.length
        low = (other.start_s - plan.drill_length_s) // MINUTE + 1
        cuts.append((low, -(-(other.start_s + other.length_s) // MINUTE)))
    return cuts


def _capacity_cuts(placed: Sequence[ScheduledDrill], rules: _Rules) -> list[Span]:
    zone = ZoneInfo(rules.msp_time_zone)
    per_day = Counter(d.start.astimezone(zone).date() for d in placed)
    cuts: list[Span] = []
    for day, count in per_day.items():
        if count >= rules.capacity_per_day:
            cuts.extend(local_day_minutes(rules.msp_time_zone, day))
    return cuts
