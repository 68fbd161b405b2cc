"""Scheduling: allowed minutes are exact across DST, picks keep every rule and are uniform."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from drills.programme.drill_plans import (
    Blackout,
    BusinessHours,
    DateRange,
    DayRange,
    DrillPlan,
    DrillPlanError,
)
from drills.programme.schedule import (
    MinuteSet,
    ScheduledDrill,
    SchedulingError,
    allowed_minutes,
    pick_times,
)
from engine.errors import InputError

ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # half-hour DST at 02:00
    "America/Santiago",  # DST changes at local midnight
    "Pacific/Chatham",  # +12:45 / +13:45
    "Asia/Kolkata",
    "UTC",
)
# Days around DST changes in 2027 (Berlin, New York, Lord Howe, Santiago, Chatham).
ANCHORS = (
    date(2027, 3, 28),
    date(2027, 10, 31),
    date(2027, 3, 14),
    date(2027, 11, 7),
    date(2027, 4, 4),
    date(2027, 10, 3),
    date(2027, 9, 5),
    date(2027, 9, 26),
    date(2027, 1, 15),
)
ENV = Path("/srv/env/demo.yaml")
PLAYBOOK = Path("/srv/playbooks/storefront-down.yaml")


def weekdays(*ranges: str) -> BusinessHours:
    """The same ranges every day of the week."""
    day = tuple(DayRange.parse(r) for r in ranges)
    return BusinessHours((day,) * 7)


def make_plan(**overrides: object) -> DrillPlan:
    """A plan with sensible defaults; keyword arguments override fields."""
    fields: dict[str, object] = {
        "client": "Demo Bakery Ltd",
        "environment": ENV,
        "playbooks": (PLAYBOOK,),
        "window": DateRange(date(2027, 1, 1), date(2027, 3, 31)),
        "time_zone": "Europe/Berlin",
        "business_hours": weekdays("09:30-17:00"),
        "drill_length_s": 3600,
    }
    fields.update(overrides)
    return DrillPlan(**fields)  # type: ignore[arg-type]


def utc_minute(text: str) -> int:
    """UTC epoch minute of an ISO time written in UTC."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) // 60


def runs_utc(plan: DrillPlan) -> list[tuple[str, str]]:
    """Allowed runs as readable UTC ``HH:MM`` texts (start, exclusive end)."""

    def text(minute: int) -> str:
        return datetime.fromtimestamp(minute * 60, UTC).strftime("%m-%d %H:%M")

    return [(text(a), text(b)) for a, b in allowed_minutes(plan).runs]


# ---------------------------------------------------------------- an independent oracle


def in_business_hours(plan: DrillPlan, minute: int) -> bool:
    """Whether the UTC minute's local wall-clock time is inside the plan's business hours."""
    local = datetime.fromtimestamp(minute * 60, ZoneInfo(plan.time_zone))
    day = local.date()
    if day not in plan.window or plan.blacked_out(day):
        return False
    clock = local.hour * 60 + local.minute
    return any(r.start_min <= clock < r.end_min for r in plan.business_hours.on(day))


def drill_fits(plan: DrillPlan, start_minute: int) -> bool:
    """Whether every minute the drill occupies is in business hours."""
    minutes = math.ceil(plan.drill_length_s / 60)
    return all(in_business_hours(plan, start_minute + k) for k in range(minutes))


def brute_force_allowed(plan: DrillPlan) -> set[int]:
    """Every allowed start minute, by checking each minute around the window."""
    first = utc_minute(f"{plan.window.first - timedelta(days=1)}T00:00") - 14 * 60
    last = utc_minute(f"{plan.window.last + timedelta(days=2)}T00:00") + 14 * 60
    business = [in_business_hours(plan, m) for m in range(first, last)]
    needed = math.ceil(plan.drill_length_s / 60)
    allowed: set[int] = set()
    streak = 0
    for offset in range(len(business) - 1, -1, -1):  # streak = business minutes from here on
        streak = streak + 1 if business[offset] else 0
        if streak >= needed:
            allowed.add(first + offset)
    return allowed


# ---------------------------------------------------------------- strategies


@st.composite
def day_ranges(draw: st.DrawFn) -> tuple[DayRange, ...]:
    """Zero to two ranges in a day, biased towards the small hours where DST changes happen."""
    count = draw(st.integers(0, 2))
    ranges = []
    for _ in range(count):
        start = draw(st.one_of(st.integers(0, 5 * 60), st.integers(0, 24 * 60 - 1)))
        end = draw(st.integers(start + 1, min(24 * 60, start + 10 * 60)))
        ranges.append(DayRange(start, end))
    return tuple(ranges)


@st.composite
def plans(draw: st.DrawFn, max_days: int = 6, client: str | None = None) -> DrillPlan:
    """Random plans near DST changes, with blackouts."""
    first = draw(st.sampled_from(ANCHORS)) + timedelta(days=draw(st.integers(-3, 3)))
    last = first + timedelta(days=draw(st.integers(0, max_days - 1)))
    window = DateRange(first, last)
    hours = BusinessHours(tuple(draw(day_ranges()) for _ in range(7)))
    if not any(hours.days):
        hours = weekdays("01:30-03:30")
    blackout_days = draw(st.lists(st.integers(0, window.length_days - 1), max_size=2))
    blackouts = tuple(
        Blackout(DateRange(first + timedelta(days=d), first + timedelta(days=d)), "closed")
        for d in blackout_days
    )
    return make_plan(
        client=client or draw(st.sampled_from(("Bakery", "Garage", "Dentist"))),
        environment=Path(f"/srv/env/{draw(st.sampled_from(('a', 'b')))}.yaml"),
        playbooks=tuple(Path(f"/srv/pb/{n}.yaml") for n in range(draw(st.integers(1, 3)))),
        window=window,
        time_zone=draw(st.sampled_from(ZONES)),
        business_hours=hours,
        blackouts=blackouts,
        drill_length_s=draw(st.sampled_from((60, 90, 15 * 60, 3600, 2 * 3600 + 30))),
        min_spacing_s=draw(st.sampled_from((0, 3600, 86400))),
        quota=draw(st.integers(1, 3)),
    )


# ---------------------------------------------------------------- allowed minutes


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_allowed_minutes_equal_a_minute_by_minute_check(plan: DrillPlan) -> None:
    allowed = allowed_minutes(plan)
    expected = brute_force_allowed(plan)
    got = {m for a, b in allowed.runs for m in range(a, b)}
    assert got == expected
    assert allowed.total == len(expected)


def test_berlin_spring_forward_day_is_shorter_in_real_time() -> None:
    plan = make_plan(
        window=DateRange(date(2027, 3, 27), date(2027, 3, 28)),
        business_hours=weekdays("01:00-04:00"),
        drill_length_s=30 * 60,
    )
    # 27th: 01:00-04:00 CET = 00:00-03:00 UTC. 28th: 01:00 CET..04:00 CEST = 00:00-02:00 UTC.
    assert runs_utc(plan) == [("03-27 00:00", "03-27 02:31"), ("03-28 00:00", "03-28 01:31")]


def test_berlin_fall_back_day_counts_the_repeated_hour_twice() -> None:
    plan = make_plan(
        window=DateRange(date(2027, 10, 31), date(2027, 10, 31)),
        business_hours=weekdays("02:15-02:45"),
        drill_length_s=60,
    )
    # 02:15-02:45 happens in CEST (00:15 UTC) and again in CET (01:15 UTC).
    assert runs_utc(plan) == [("10-31 00:15", "10-31 00:45"), ("10-31 01:15", "10-31 01:45")]


def test_range_starting_in_the_spring_gap_starts_at_the_change() -> None:
    plan = make_plan(
        window=DateRange(date(2027, 3, 28), date(2027, 3, 28)),
        business_hours=weekdays("02:30-05:00"),
        drill_length_s=60,
    )
    # 02:30 does not exist; the first moment after it is 03:00 CEST = 01:00 UTC.
    assert runs_utc(plan) == [("03-28 01:00", "03-28 03:00")]


def test_office_hours_are_seven_and_a_half_local_hours_on_dst_days() -> None:
    plan = make_plan(
        window=DateRange(date(2027, 3, 27), date(2027, 3, 29)),
        business_hours=weekdays("09:30-17:00"),
        drill_length_s=60,
    )
    assert allowed_minutes(plan).total == 3 * (7 * 60 + 30)
    assert runs_utc(plan) == [
        ("03-27 08:30", "03-27 16:00"),
        ("03-28 07:30", "03-28 15:00"),
        ("03-29 07:30", "03-29 15:00"),
    ]


def test_lord_howe_half_hour_change() -> None:
    plan = make_plan(
        time_zone="Australia/Lord_Howe",
        window=DateRange(date(2027, 10, 3), date(2027, 10, 3)),
        business_hours=weekdays("01:00-03:00"),
        drill_length_s=60,
    )
    # 02:00 +10:30 jumps to 02:30 +11:00: the day's range is 1.5 h of real time.
    assert allowed_minutes(plan).total == 90
    assert runs_utc(plan) == [("10-02 14:30", "10-02 16:00")]


def test_drill_may_run_across_midnight_when_both_days_are_open() -> None:
    plan = make_plan(
        time_zone="UTC",
        window=DateRange(date(2027, 1, 4), date(2027, 1, 5)),
        business_hours=weekdays("22:00-24:00", "00:00-02:00"),
        drill_length_s=3 * 3600,
    )
    # Only 4th 22:00..5th 02:00 is four hours long.
    assert runs_utc(plan) == [("01-04 22:00", "01-04 23:01")]


def test_blackouts_and_closed_days_have_no_minutes() -> None:
    hours = BusinessHours(((DayRange.parse("09:00-17:00"),),) * 5 + ((), ()))
    plan = make_plan(
        time_zone="UTC",
        window=DateRange(date(2027, 1, 4), date(2027, 1, 10)),  # Mon..Sun
        business_hours=hours,
        blackouts=(Blackout(DateRange(date(2027, 1, 5), date(2027, 1, 6)), "stocktake"),),
        drill_length_s=60,
    )
    days = {datetime.fromtimestamp(a * 60, UTC).date() for a, _ in allowed_minutes(plan).runs}
    assert days == {date(2027, 1, 4), date(2027, 1, 7), date(2027, 1, 8)}


def test_minute_set_indexing_and_subtraction() -> None:
    minutes = MinuteSet.of([(10, 13), (20, 22), (12, 15)])
    assert minutes.runs == ((10, 15), (20, 22))
    assert [minutes.minute_at(i) for i in range(minutes.total)] == [10, 11, 12, 13, 14, 20, 21]
    assert 14 in minutes and 15 not in minutes and 9 not in minutes
    assert minutes.without([(11, 13), (21, 40)]).runs == ((10, 11), (13, 15), (20, 21))
    with pytest.raises(IndexError):
        minutes.minute_at(7)


# ---------------------------------------------------------------- picking


def assert_schedule_holds(
    chosen: tuple[ScheduledDrill, ...],
    all_plans: list[DrillPlan],
    existing: tuple[ScheduledDrill, ...],
    capacity: int,
    msp_zone: str,
) -> None:
    """Every rule, checked independently of the scheduler's own interval arithmetic."""
    for plan in all_plans:
        mine = [d for d in chosen if (d.client, d.environment) == (plan.client, str(plan.environment))]
        assert len(mine) == plan.quota
    for drill in chosen:
        plan = next(
            p for p in all_plans if p.client == drill.client and str(p.environment) == drill.environment
        )
        minute = drill.start_s // 60
        assert drill.start_s % 60 == 0
        assert drill_fits(plan, minute), drill
        assert minute in allowed_minutes(plan)
        assert drill.playbook in {str(p) for p in plan.playbooks}
    everything = list(chosen) + list(existing)
    for i, a in enumerate(everything):
        for b in everything[i + 1 :]:
            if a.client == b.client:
                gap = max(a.min_spacing_s, b.min_spacing_s)
                assert abs(a.start_s - b.start_s) >= gap, (a, b)
            if a.environment == b.environment:
                assert a.end <= b.start or b.end <= a.start, (a, b)
    zone = ZoneInfo(msp_zone)
    per_day = Counter(d.start.astimezone(zone).date() for d in everything)
    assert max(per_day.values()) <= capacity


@st.composite
def schedules(draw: st.DrawFn) -> tuple[list[DrillPlan], int, str, int]:
    """One to three plans with distinct (client, environment) pairs, plus scheduling knobs."""
    count = draw(st.integers(1, 3))
    chosen: list[DrillPlan] = []
    for _ in range(count):
        plan = draw(plans(max_days=40))
        if all((p.client, p.environment) != (plan.client, plan.environment) for p in chosen):
            chosen.append(plan)
    capacity = draw(st.integers(1, 3))
    msp_zone = draw(st.sampled_from(("UTC", "Europe/Berlin", "America/New_York")))
    seed = draw(st.integers(0, 2**32 - 1))
    return chosen, capacity, msp_zone, seed


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules())
def test_picked_moments_keep_every_rule(case: tuple[list[DrillPlan], int, str, int]) -> None:
    all_plans, capacity, msp_zone, seed = case
    try:
        chosen = pick_times(all_plans, random.Random(seed), capacity, msp_time_zone=msp_zone)
    except SchedulingError as error:
        event("impossible")
        assert error.reason and error.client in {p.client for p in all_plans}
        assert error.client in str(error)
        return
    event("scheduled")
    assert len(chosen) == sum(p.quota for p in all_plans)
    assert_schedule_holds(chosen, all_plans, (), capacity, msp_zone)


def test_existing_drills_count_for_spacing_overlap_and_capacity() -> None:
    plan = make_plan(
        window=DateRange(date(2027, 2, 1), date(2027, 2, 5)),
        time_zone="UTC",
        business_hours=weekdays("09:00-12:00"),
        min_spacing_s=2 * 86400,
    )
    busy = ScheduledDrill(
        client=plan.client,
        environment=str(plan.environment),
        playbook=str(PLAYBOOK),
        start=datetime(2027, 2, 3, 9, 0, tzinfo=UTC),
        length_s=3600,
        min_spacing_s=2 * 86400,
        time_zone="UTC",
    )
    for seed in range(40):
        (drill,) = pick_times([plan], random.Random(seed), existing=[busy])
        assert drill.start.date() in {date(2027, 2, 1), date(2027, 2, 5)}
        assert_schedule_holds((drill,), [plan], (busy,), 1, "UTC")


def test_playbooks_are_used_once_each_before_repeating() -> None:
    books = tuple(Path(f"/srv/pb/{n}.yaml") for n in range(3))
    plan = make_plan(playbooks=books, quota=3, window=DateRange(date(2027, 1, 1), date(2027, 12, 31)))
    for seed in range(10):
        chosen = pick_times([plan], random.Random(seed))
        assert sorted(d.playbook for d in chosen) == sorted(str(b) for b in books)


def test_same_seed_gives_same_schedule_and_default_rng_works() -> None:
    plan = make_plan(quota=2, min_spacing_s=30 * 86400)
    assert pick_times([plan], random.Random(7)) == pick_times([plan], random.Random(7))
    chosen = pick_times([plan])  # secrets.SystemRandom
    assert_schedule_holds(chosen, [plan], (), 1, "UTC")


def test_not_before_excludes_the_past() -> None:
    plan = make_plan(window=DateRange(date(2027, 1, 1), date(2027, 1, 31)))
    cutoff = datetime(2027, 1, 20, 12, 0, tzinfo=UTC)
    for seed in range(30):
        (drill,) = pick_times([plan], random.Random(seed), not_before=cutoff)
        assert drill.start >= cutoff
    with pytest.raises(SchedulingError, match="already past"):
        pick_times([plan], random.Random(1), not_before=datetime(2027, 2, 1, tzinfo=UTC))


# ---------------------------------------------------------------- impossible plans


def test_spacing_that_cannot_fit_in_the_window_is_named() -> None:
    plan = make_plan(window=DateRange(date(2027, 1, 1), date(2027, 2, 9)), quota=3, min_spacing_s=30 * 86400)
    with pytest.raises(SchedulingError, match=r"quota 3 with min_spacing 2592000s") as caught:
        pick_times([plan], random.Random(1))
    assert "Demo Bakery Ltd" in str(caught.value)
    assert caught.value.exit_code == 2


def test_window_entirely_blacked_out_is_named() -> None:
    window = DateRange(date(2027, 1, 1), date(2027, 1, 31))
    plan = make_plan(window=window, blackouts=(Blackout(window, "migration"),))
    with pytest.raises(SchedulingError, match="no business-hours slot"):
        pick_times([plan], random.Random(1))


def test_drill_longer_than_any_slot_is_named() -> None:
    plan = make_plan(drill_length_s=8 * 3600)
    with pytest.raises(SchedulingError, match="no business-hours slot of 28800s"):
        pick_times([plan], random.Random(1))


def test_environment_overlap_is_named() -> None:
    one_slot = DateRange(date(2027, 1, 4), date(2027, 1, 4))
    hours = weekdays("09:00-10:30")
    first = make_plan(client="A", window=one_slot, business_hours=hours, time_zone="UTC")
    second = make_plan(client="B", window=one_slot, business_hours=hours, time_zone="UTC")
    with pytest.raises(SchedulingError, match="environment busy"):
        pick_times([first, second], random.Random(1), capacity_per_day=5)


def test_msp_capacity_is_named() -> None:
    one_day = DateRange(date(2027, 1, 4), date(2027, 1, 4))
    first = make_plan(client="A", window=one_day, environment=Path("/a.yaml"))
    second = make_plan(client="B", window=one_day, environment=Path("/b.yaml"))
    with pytest.raises(SchedulingError, match="capacity of 1 drill"):
        pick_times([first, second], random.Random(1), capacity_per_day=1)
    assert len(pick_times([first, second], random.Random(1), capacity_per_day=2)) == 2


def test_bad_scheduling_arguments_are_input_errors() -> None:
    plan = make_plan()
    with pytest.raises(InputError, match="capacity_per_day 0"):
        pick_times([plan], random.Random(1), capacity_per_day=0)
    with pytest.raises(InputError, match="'Mars/Olympus' is not an IANA zone"):
        pick_times([plan], random.Random(1), msp_time_zone="Mars/Olympus")
    with pytest.raises(InputError, match="needs a time zone"):
        pick_times([plan], random.Random(1), not_before=datetime(2027, 1, 1))


def test_plan_rejects_nonsense_at_construction() -> None:
    with pytest.raises(DrillPlanError, match="every weekday is closed"):
        make_plan(business_hours=BusinessHours(((),) * 7))
    with pytest.raises(DrillPlanError, match="not an IANA zone"):
        make_plan(time_zone="Mars/Olympus")
    with pytest.raises(DrillPlanError, match="at most 366"):
        make_plan(window=DateRange(date(2027, 1, 1), date(2028, 6, 1)))
    with pytest.raises(ValueError, match="start < end"):
        DayRange.parse("17:00-09:30")


# ---------------------------------------------------------------- uniformity


def chi_square(observed: Counter[int], expected: dict[int, float]) -> float:
    """Pearson's statistic over the bins of ``expected``."""
    return sum((observed[b] - e) ** 2 / e for b, e in expected.items())


def chi_square_critical(df: int, z: float = 3.09) -> float:
    """Upper critical value (z=3.09: p=0.001) by the Wilson-Hilferty approximation."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def test_picks_are_uniform_over_allowed_minutes_not_over_days() -> None:
    # Days of very different length, one of them a DST day: a "day first" sampler is biased.
    hours = BusinessHours(
        (
            (DayRange.parse("09:00-09:40"),),  # Monday 2027-03-22
            (DayRange.parse("09:00-17:00"),),
            (DayRange.parse("09:00-10:00"),),
            (DayRange.parse("09:00-13:00"),),
            (DayRange.parse("09:00-09:30"),),
            (DayRange.parse("08:00-12:00"),),
            (DayRange.parse("01:00-04:00"),),  # Sunday 2027-03-28: 2 real hours
        )
    )
    plan = make_plan(
        window=DateRange(date(2027, 3, 22), date(2027, 3, 28)),
        business_hours=hours,
        drill_length_s=20 * 60,
    )
    allowed = allowed_minutes(plan)
    zone = ZoneInfo(plan.time_zone)

    def bin_of(minute: int) -> int:  # local date and hour
        local = datetime.fromtimestamp(minute * 60, zone)
        return local.toordinal() * 24 + local.hour

    sizes = Counter(bin_of(allowed.minute_at(i)) for i in range(allowed.total))
    draws = 6000
    expected = {b: draws * n / allowed.total for b, n in sizes.items()}
    rng = random.Random(20270328)
    observed = Counter(bin_of(pick_times([plan], rng)[0].start_s // 60) for _ in range(draws))
    assert set(observed) <= set(expected)
    critical = chi_square_critical(len(expected) - 1)
    assert chi_square(observed, expected) < critical

    # The same test rejects a "pick a day, then a minute" sampler (it can fail).
    by_day: dict[int, list[int]] = {}
    for i in range(allowed.total):
        minute = allowed.minute_at(i)
        by_day.setdefault(bin_of(minute) // 24, []).append(minute)
    days = sorted(by_day)
    biased = Counter(bin_of(rng.choice(by_day[rng.choice(days)])) for _ in range(draws))
    assert chi_square(biased, expected) > critical
