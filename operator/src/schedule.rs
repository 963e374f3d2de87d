//! Schedule evaluation: is a hub awake now, why, and when does that change?
//!
//! A pure function of the hub's spec and the current instant ([`decide`]); the controller
//! passes the clock in and requeues itself at [`Decision::recheck_at`].
//!
//! Precedence: `spec.suspend` (asleep) beats `spec.wakeUntil` in the future (awake), which
//! beats the schedule; without a schedule the hub is always awake. A schedule that cannot be
//! evaluated (unknown time zone, malformed time) is an error whatever the overrides say, so a
//! broken spec is always reported instead of hidden behind an override.
//!
//! Windows are weekly and written in wall-clock time of the schedule's IANA zone. Each
//! concrete window (one per day it starts on) is resolved to instants with jiff's
//! "compatible" disambiguation, so 19:00–23:00 stays 19:00–23:00 local on both sides of a
//! daylight-saving change:
//! - a wall time that does not exist (the spring-forward gap, e.g. 02:30 in Europe/Berlin on
//!   the last Sunday of March) moves forward by the gap's length (03:30 local time);
//! - a wall time that occurs twice (the fall-back fold) means its earlier occurrence.
//!
//! A window that becomes empty that way (02:30–03:15 on the spring-forward day in Berlin
//! would start at 03:30, after its end) does not happen on that day. Overlapping and adjacent windows merge into one awake period, also across
//! midnight, so no spurious sleep/wake is reported between them.

use jiff::civil::{Date, Time, Weekday as CivilWeekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use midihub_api::contract::reasons::awake;
use midihub_api::{MidiHubSpec, OvertimeStatus, Schedule, Weekday};

/// Whether a hub should run now, why, and when that changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub awake: bool,
    pub reason: AwakeReason,
    /// The next time `awake` flips, if it ever does on its own (None for AlwaysOn/Suspended).
    pub next: Option<Transition>,
    /// The earliest instant at which `decide` may return something different (awake OR reason);
    /// the controller requeues itself then. E.g. for ManualWake inside a schedule window it is
    /// `wake_until` even though `awake` does not flip there.
    pub recheck_at: Option<Timestamp>,
    /// While the hub is in overtime (see [`crate::overtime`]), what its status keeps of it.
    pub overtime: Option<OvertimeStatus>,
}

impl Decision {
    /// A one-line message for the hub's `Awake` condition.
    pub fn message(&self) -> String {
        match self.reason {
            AwakeReason::AlwaysOn => "no schedule: always awake".to_owned(),
            AwakeReason::Suspended => "suspended by spec.suspend".to_owned(),
            AwakeReason::ManualWake => {
                let mut message = "woken by spec.wakeUntil".to_owned();
                if let Some(until) = self.recheck_at {
                    message.push_str(" until ");
                    message.push_str(&format_utc(until));
                }
                // Say so when the schedule keeps the hub awake beyond wakeUntil.
                if let (Some(next), Some(until)) = (&self.next, self.recheck_at)
                    && next.at > until
                {
                    message.push_str(", then inside the schedule; ");
                    message.push_str(&next.summary);
                }
                message
            }
            AwakeReason::InWindow => match &self.next {
                Some(next) => format!("inside the schedule; {}", next.summary),
                None => "inside the schedule, whose windows cover the whole week".to_owned(),
            },
            AwakeReason::Overtime => match &self.next {
                Some(next) => format!(
                    "awake past the end of its window while a room is occupied: {}; at the latest {}",
                    next.summary,
                    format_utc(next.at)
                ),
                None => "awake past the end of its window while a room is occupied".to_owned(),
            },
            AwakeReason::OutsideWindows => match &self.next {
                Some(next) => format!("outside the schedule; {}", next.summary),
                None => "outside the schedule; no window ever starts".to_owned(),
            },
        }
    }
}

/// Why a hub is awake or asleep; used as the `Awake` condition's reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwakeReason {
    /// No schedule: the hub always runs.
    AlwaysOn,
    /// Inside one of the schedule's windows.
    InWindow,
    /// Outside all of the schedule's windows.
    OutsideWindows,
    /// `spec.suspend` is set.
    Suspended,
    /// `spec.wakeUntil` is in the future.
    ManualWake,
    /// The window (or `spec.wakeUntil`) ended while a room was occupied.
    Overtime,
}

impl AwakeReason {
    /// The reason as written in a condition.
    pub fn as_str(self) -> &'static str {
        match self {
            AwakeReason::AlwaysOn => awake::ALWAYS_ON,
            AwakeReason::InWindow => awake::IN_WINDOW,
            AwakeReason::OutsideWindows => awake::OUTSIDE_WINDOWS,
            AwakeReason::Suspended => awake::SUSPENDED,
            AwakeReason::ManualWake => awake::MANUAL_WAKE,
            AwakeReason::Overtime => awake::OVERTIME,
        }
    }
}

/// The next time a hub wakes or goes to sleep on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub at: Timestamp,
    /// true: the hub wakes at `at`; false: it goes to sleep.
    pub wakes: bool,
    /// For `kubectl get` (the Next column), e.g. "wake Fri 19:00 Europe/Berlin" when within the
    /// next 6 days, else "sleep 2026-12-24 23:00 UTC"; in the schedule's zone, UTC without one.
    pub summary: String,
}

/// A schedule that cannot be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("unknown time zone {zone:?}: use an IANA name such as Europe/Berlin or UTC")]
    UnknownTimeZone {
        zone: String,
        #[source]
        source: jiff::Error,
    },
    #[error(
        "invalid time {value:?} in spec.schedule.windows[{window}].{field}: write a 24-hour HH:MM time such as 19:00"
    )]
    InvalidTime {
        value: String,
        /// Index of the window in `spec.schedule.windows`.
        window: usize,
        /// `start` or `end`.
        field: &'static str,
    },
    #[error(
        "spec.schedule.windows[{window}] starts and ends at {time}: give it a different end, e.g. 23:59 for a whole day"
    )]
    EmptyWindow { window: usize, time: String },
    #[error("cannot evaluate the schedule at this date")]
    OutOfRange {
        #[source]
        source: jiff::Error,
    },
}

impl ScheduleError {
    /// CamelCase reason for the `Awake` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            ScheduleError::UnknownTimeZone { .. } => awake::UNKNOWN_TIME_ZONE,
            ScheduleError::InvalidTime { .. } => awake::INVALID_TIME,
            ScheduleError::EmptyWindow { .. } => awake::EMPTY_WINDOW,
            ScheduleError::OutOfRange { .. } => awake::TIME_OUT_OF_RANGE,
        }
    }
}

impl From<jiff::Error> for ScheduleError {
    fn from(source: jiff::Error) -> Self {
        ScheduleError::OutOfRange { source }
    }
}

/// Decides whether the hub described by `spec` is awake at `now`, why, and when that changes.
pub fn decide(spec: &MidiHubSpec, now: Timestamp) -> Result<Decision, ScheduleError> {
    let schedule = spec
        .schedule
        .as_ref()
        .map(WeeklySchedule::parse)
        .transpose()?;

    if spec.suspend {
        return Ok(Decision {
            awake: false,
            reason: AwakeReason::Suspended,
            next: None,
            recheck_at: None,
            overtime: None,
        });
    }

    let wake_until = spec
        .wake_until
        .as_ref()
        .map(|time| time.0)
        .filter(|until| *until > now);
    if let Some(until) = wake_until {
        let next = match &schedule {
            None => None,
            Some(schedule) => {
                let after_wake = schedule.state_at(until)?;
                let sleeps_at = if after_wake.awake {
                    after_wake.change
                } else {
                    Some(until)
                };
                sleeps_at.map(|at| schedule.transition(at, false, now))
            }
        };
        return Ok(Decision {
            awake: true,
            reason: AwakeReason::ManualWake,
            next,
            recheck_at: Some(until),
            overtime: None,
        });
    }

    let Some(schedule) = schedule else {
        return Ok(Decision {
            awake: true,
            reason: AwakeReason::AlwaysOn,
            next: None,
            recheck_at: None,
            overtime: None,
        });
    };
    let state = schedule.state_at(now)?;
    let next = state
        .change
        .map(|at| schedule.transition(at, !state.awake, now));
    Ok(Decision {
        awake: state.awake,
        reason: if state.awake {
            AwakeReason::InWindow
        } else {
            AwakeReason::OutsideWindows
        },
        recheck_at: next.as_ref().map(|transition| transition.at),
        overtime: None,
        next,
    })
}

/// Days of windows enumerated first around the instant asked about: one week plus margin.
const FIRST_HORIZON_DAYS: i64 = 8;
/// Beyond this many days of uninterrupted awake period, the schedule is taken to never end
/// (all its windows together cover the whole week).
const MAX_HORIZON_DAYS: i64 = 1024;
/// Transitions closer than this are shown with a weekday, later ones with a date, so that a
/// weekday never stands for two different days.
const WEEKDAY_SUMMARY_LIMIT: SignedDuration = SignedDuration::from_hours(6 * 24);

/// A validated schedule: its zone resolved and its times parsed.
struct WeeklySchedule<'a> {
    zone_name: &'a str,
    zone: TimeZone,
    windows: Vec<WindowTimes>,
}

struct WindowTimes {
    days: Vec<CivilWeekday>,
    start: Time,
    end: Time,
}

/// The schedule's verdict at one instant.
struct ScheduleState {
    awake: bool,
    /// When `awake` flips after the instant; None if it never does.
    change: Option<Timestamp>,
}

/// A half-open span of time `[start, end)` during which the hub is awake.
#[derive(Clone, Copy)]
struct AwakeInterval {
    start: Timestamp,
    end: Timestamp,
}

impl<'a> WeeklySchedule<'a> {
    fn parse(schedule: &'a Schedule) -> Result<Self, ScheduleError> {
        let zone = jiff::tz::db().get(&schedule.time_zone).map_err(|source| {
            ScheduleError::UnknownTimeZone {
                zone: schedule.time_zone.clone(),
                source,
            }
        })?;
        let windows = schedule
            .windows
            .iter()
            .enumerate()
            .map(|(index, window)| {
                let start =
                    parse_time_of_day(&window.start).ok_or_else(|| ScheduleError::InvalidTime {
                        value: window.start.clone(),
                        window: index,
                        field: "start",
                    })?;
                let end =
                    parse_time_of_day(&window.end).ok_or_else(|| ScheduleError::InvalidTime {
                        value: window.end.clone(),
                        window: index,
                        field: "end",
                    })?;
                if start == end {
                    return Err(ScheduleError::EmptyWindow {
                        window: index,
                        time: window.start.clone(),
                    });
                }
                Ok(WindowTimes {
                    days: window.days.iter().copied().map(civil_weekday).collect(),
                    start,
                    end,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(WeeklySchedule {
            zone_name: &schedule.time_zone,
            zone,
            windows,
        })
    }

    /// Whether the schedule is awake at `at`, and when that next changes.
    fn state_at(&self, at: Timestamp) -> Result<ScheduleState, ScheduleError> {
        let today = at.to_zoned(self.zone.clone()).date();
        // No window that starts before yesterday lasts until today (windows end at most one
        // day after they start), so yesterday is the earliest day that matters.
        let first_day = today.yesterday()?;
        let mut horizon_days = FIRST_HORIZON_DAYS;
        loop {
            let last_day = today.checked_add(jiff::Span::new().days(horizon_days))?;
            let intervals = self.awake_intervals(first_day, last_day)?;
            let state = locate(&intervals, at);
            // Windows of later days start after the last day's midnight: anything before it
            // is final, anything after it may still merge with or be preceded by them.
            let known_until = self.resolve(last_day, Time::midnight())?;
            if state.change.is_some_and(|change| change < known_until) {
                return Ok(state);
            }
            if horizon_days >= MAX_HORIZON_DAYS {
                return Ok(ScheduleState {
                    awake: state.awake,
                    change: None,
                });
            }
            horizon_days = (horizon_days * 2).min(MAX_HORIZON_DAYS);
        }
    }

    /// The merged awake intervals of all windows that start on `first_day..=last_day`.
    fn awake_intervals(
        &self,
        first_day: Date,
        last_day: Date,
    ) -> Result<Vec<AwakeInterval>, ScheduleError> {
        let mut intervals = Vec::new();
        let mut day = first_day;
        while day <= last_day {
            for window in &self.windows {
                if !window.days.contains(&day.weekday()) {
                    continue;
                }
                let end_day = if window.end < window.start {
                    day.tomorrow()?
                } else {
                    day
                };
                let start = self.resolve(day, window.start)?;
                let end = self.resolve(end_day, window.end)?;
                // Empty only when the window lies inside a spring-forward gap.
                if start < end {
                    intervals.push(AwakeInterval { start, end });
                }
            }
            day = day.tomorrow()?;
        }
        intervals.sort_by_key(|interval| interval.start);
        let mut merged: Vec<AwakeInterval> = Vec::with_capacity(intervals.len());
        for interval in intervals {
            match merged.last_mut() {
                // `<=`: adjacent windows (one ends when the next starts) merge too.
                Some(last) if interval.start <= last.end => {
                    last.end = last.end.max(interval.end);
                }
                _ => merged.push(interval),
            }
        }
        Ok(merged)
    }

    /// The instant of a wall-clock time in the schedule's zone ("compatible": a time in a
    /// gap moves forward by the gap, a time in a fold means its earlier occurrence).
    fn resolve(&self, day: Date, time: Time) -> Result<Timestamp, ScheduleError> {
        Ok(self
            .zone
            .to_ambiguous_timestamp(day.to_datetime(time))
            .compatible()?)
    }

    fn transition(&self, at: Timestamp, wakes: bool, now: Timestamp) -> Transition {
        Transition {
            at,
            wakes,
            summary: transition_summary(at, wakes, now, &self.zone, self.zone_name),
        }
    }
}

/// Where `at` falls among sorted, disjoint intervals.
fn locate(intervals: &[AwakeInterval], at: Timestamp) -> ScheduleState {
    for interval in intervals {
        if interval.start <= at && at < interval.end {
            return ScheduleState {
                awake: true,
                change: Some(interval.end),
            };
        }
        if interval.start > at {
            return ScheduleState {
                awake: false,
                change: Some(interval.start),
            };
        }
    }
    ScheduleState {
        awake: false,
        change: None,
    }
}

/// "wake Fri 19:00 Europe/Berlin" within the next six days, else "sleep 2026-12-24 23:00 UTC".
fn transition_summary(
    at: Timestamp,
    wakes: bool,
    now: Timestamp,
    zone: &TimeZone,
    zone_name: &str,
) -> String {
    let verb = if wakes { "wake" } else { "sleep" };
    format!("{verb} {}", wall_time(at, now, zone, zone_name))
}

/// "Fri 19:00 Europe/Berlin" within six days of `now` (before or after), else
/// "2026-12-24 23:00 Europe/Berlin".
fn wall_time(at: Timestamp, now: Timestamp, zone: &TimeZone, zone_name: &str) -> String {
    let format = if now.duration_until(at).abs() < WEEKDAY_SUMMARY_LIMIT {
        "%a %H:%M"
    } else {
        "%Y-%m-%d %H:%M"
    };
    format!("{} {zone_name}", zone.to_datetime(at).strftime(format))
}

/// The zone a hub's times are written in, with its name: its schedule's, UTC without a
/// schedule or with a zone that cannot be had.
pub fn hub_zone(spec: &MidiHubSpec) -> (TimeZone, &str) {
    spec.schedule
        .as_ref()
        .and_then(|schedule| {
            let zone = jiff::tz::db().get(&schedule.time_zone).ok()?;
            Some((zone, schedule.time_zone.as_str()))
        })
        .unwrap_or((TimeZone::UTC, "UTC"))
}

/// `at` as the hub's users read it: in the hub's zone ([`hub_zone`]), with a weekday when near
/// `now`, e.g. "Wed 23:00 Europe/Berlin".
pub fn hub_time(spec: &MidiHubSpec, at: Timestamp, now: Timestamp) -> String {
    let (zone, name) = hub_zone(spec);
    wall_time(at, now, &zone, name)
}

/// "2026-11-25 23:00 UTC", with seconds only when there are any.
fn format_utc(at: Timestamp) -> String {
    let utc = TimeZone::UTC.to_datetime(at);
    let format = if utc.second() == 0 {
        "%Y-%m-%d %H:%M UTC"
    } else {
        "%Y-%m-%d %H:%M:%S UTC"
    };
    utc.strftime(format).to_string()
}

/// Parses a strict 24-hour `HH:MM`.
fn parse_time_of_day(text: &str) -> Option<Time> {
    let (hours, minutes) = text.split_once(':')?;
    let two_digits = |part: &str| -> Option<i8> {
        if part.len() == 2 && part.bytes().all(|byte| byte.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    Time::new(two_digits(hours)?, two_digits(minutes)?, 0, 0).ok()
}

fn civil_weekday(day: Weekday) -> CivilWeekday {
    match day {
        Weekday::Mon => CivilWeekday::Monday,
        Weekday::Tue => CivilWeekday::Tuesday,
        Weekday::Wed => CivilWeekday::Wednesday,
        Weekday::Thu => CivilWeekday::Thursday,
        Weekday::Fri => CivilWeekday::Friday,
        Weekday::Sat => CivilWeekday::Saturday,
        Weekday::Sun => CivilWeekday::Sunday,
    }
}

#[cfg(test)]
mod tests;
