//! Expected instants are written as literal UTC times, derived by hand from each zone's
//! offsets (Europe/Berlin: CET +01:00, CEST +02:00 from the last Sunday of March 02:00 to
//! the last Sunday of October 03:00; Australia/Sydney: AEST +10:00, AEDT +11:00 from the
//! first Sunday of October 02:00 to the first Sunday of April 03:00).

use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time as KubeTime;
use midihub_api::{HubPort, Weekday::*, Window};

const EVERY_DAY: &[Weekday] = &[Mon, Tue, Wed, Thu, Fri, Sat, Sun];

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn hub(schedule: Option<Schedule>) -> MidiHubSpec {
    MidiHubSpec {
        ports: vec![HubPort {
            port: 5004,
            name: None,
            allow: Vec::new(),
        }],
        region: None,
        schedule,
        suspend: false,
        wake_until: None,
        overtime: None,
        listed: false,
        pod: Default::default(),
    }
}

fn scheduled(zone: &str, windows: &[(&[Weekday], &str, &str)]) -> MidiHubSpec {
    hub(Some(Schedule {
        time_zone: zone.to_owned(),
        windows: windows
            .iter()
            .map(|(days, start, end)| Window {
                days: days.to_vec(),
                start: (*start).to_owned(),
                end: (*end).to_owned(),
            })
            .collect(),
    }))
}

fn woken_until(mut spec: MidiHubSpec, until: &str) -> MidiHubSpec {
    spec.wake_until = Some(KubeTime(at(until)));
    spec
}

fn decide_at(spec: &MidiHubSpec, now: &str) -> Decision {
    decide(spec, at(now)).unwrap()
}

/// Asserts awake-ness and the instant and direction of the next flip.
fn assert_state(decision: &Decision, awake: bool, next_flip: &str) {
    assert_eq!(decision.awake, awake, "{decision:?}");
    let next = decision.next.as_ref().expect("a next transition");
    assert_eq!(next.at, at(next_flip), "{decision:?}");
    assert_eq!(next.wakes, !awake, "{decision:?}");
}

fn evening_berlin() -> MidiHubSpec {
    scheduled(
        "Europe/Berlin",
        &[(&[Mon, Tue, Wed, Thu, Fri], "19:00", "23:00")],
    )
}

// 2026-01-05 is a Monday; Berlin is on CET (+01:00) in January.

#[test]
fn inside_a_window_is_awake_until_its_end() {
    let decision = decide_at(&evening_berlin(), "2026-01-05T20:00:00Z");
    assert_state(&decision, true, "2026-01-05T22:00:00Z");
    assert_eq!(decision.reason, AwakeReason::InWindow);
    assert_eq!(decision.recheck_at, Some(at("2026-01-05T22:00:00Z")));
}

#[test]
fn outside_windows_is_asleep_until_the_next_start() {
    let decision = decide_at(&evening_berlin(), "2026-01-05T12:00:00Z");
    assert_state(&decision, false, "2026-01-05T18:00:00Z");
    assert_eq!(decision.reason, AwakeReason::OutsideWindows);
    assert_eq!(decision.recheck_at, Some(at("2026-01-05T18:00:00Z")));
}

#[test]
fn exactly_at_the_start_is_awake() {
    let decision = decide_at(&evening_berlin(), "2026-01-05T18:00:00Z");
    assert_state(&decision, true, "2026-01-05T22:00:00Z");
}

#[test]
fn exactly_at_the_end_is_asleep_until_the_next_day() {
    let decision = decide_at(&evening_berlin(), "2026-01-05T22:00:00Z");
    assert_state(&decision, false, "2026-01-06T18:00:00Z");
}

#[test]
fn weekend_without_windows_sleeps_until_monday() {
    // Friday 23:00 local, after the last window of the week.
    let decision = decide_at(&evening_berlin(), "2026-01-09T22:00:00Z");
    assert_state(&decision, false, "2026-01-12T18:00:00Z");
    assert_eq!(
        decision.next.unwrap().summary,
        "wake Mon 19:00 Europe/Berlin"
    );
}

// 2026-01-09 is a Friday.

fn friday_night_utc() -> MidiHubSpec {
    scheduled("UTC", &[(&[Fri], "22:00", "02:00")])
}

#[test]
fn midnight_crossing_window_lasts_into_the_next_day() {
    let decision = decide_at(&friday_night_utc(), "2026-01-10T01:00:00Z");
    assert_state(&decision, true, "2026-01-10T02:00:00Z");
}

#[test]
fn midnight_crossing_window_ends_at_its_end_on_the_next_day() {
    let decision = decide_at(&friday_night_utc(), "2026-01-10T02:00:00Z");
    assert_state(&decision, false, "2026-01-16T22:00:00Z");
}

#[test]
fn midnight_crossing_window_does_not_cover_the_night_before_its_day() {
    // Thursday 23:00: the window starts on Fridays only.
    let decision = decide_at(&friday_night_utc(), "2026-01-08T23:00:00Z");
    assert_state(&decision, false, "2026-01-09T22:00:00Z");
}

#[test]
fn sunday_window_crossing_midnight_wraps_into_monday() {
    // 2026-01-11 is a Sunday.
    let spec = scheduled("UTC", &[(&[Sun], "20:00", "01:00")]);
    let decision = decide_at(&spec, "2026-01-12T00:30:00Z");
    assert_state(&decision, true, "2026-01-12T01:00:00Z");
    let decision = decide_at(&spec, "2026-01-12T01:00:00Z");
    assert_state(&decision, false, "2026-01-18T20:00:00Z");
}

#[test]
fn window_on_monday_is_found_from_sunday_across_the_week_wrap() {
    let spec = scheduled("UTC", &[(&[Mon], "08:00", "09:00")]);
    let decision = decide_at(&spec, "2026-01-11T23:00:00Z");
    assert_state(&decision, false, "2026-01-12T08:00:00Z");
}

#[test]
fn adjacent_windows_merge_into_one_awake_period() {
    let spec = scheduled(
        "UTC",
        &[(&[Mon], "18:00", "20:00"), (&[Mon], "20:00", "22:00")],
    );
    let decision = decide_at(&spec, "2026-01-05T19:00:00Z");
    assert_state(&decision, true, "2026-01-05T22:00:00Z");
    let decision = decide_at(&spec, "2026-01-05T20:00:00Z");
    assert_state(&decision, true, "2026-01-05T22:00:00Z");
}

#[test]
fn overlapping_windows_merge_into_one_awake_period() {
    let spec = scheduled(
        "UTC",
        &[(&[Mon], "20:00", "23:00"), (&[Mon], "18:00", "21:00")],
    );
    let decision = decide_at(&spec, "2026-01-05T18:30:00Z");
    assert_state(&decision, true, "2026-01-05T23:00:00Z");
    let decision = decide_at(&spec, "2026-01-05T12:00:00Z");
    assert_state(&decision, false, "2026-01-05T18:00:00Z");
}

#[test]
fn midnight_crossing_window_merges_with_the_next_days_window() {
    let spec = scheduled(
        "UTC",
        &[(&[Sun], "22:00", "02:00"), (&[Mon], "01:00", "03:00")],
    );
    let decision = decide_at(&spec, "2026-01-11T23:00:00Z");
    assert_state(&decision, true, "2026-01-12T03:00:00Z");
}

#[test]
fn windows_covering_the_whole_week_never_end() {
    let spec = scheduled(
        "Europe/Berlin",
        &[(EVERY_DAY, "00:00", "12:00"), (EVERY_DAY, "12:00", "00:00")],
    );
    let decision = decide_at(&spec, "2026-03-28T12:00:00Z");
    assert!(decision.awake);
    assert_eq!(decision.reason, AwakeReason::InWindow);
    assert_eq!(decision.next, None);
    assert_eq!(decision.recheck_at, None);
}

#[test]
fn awake_period_of_nearly_a_week_ends_at_its_only_gap() {
    // Awake from Monday 00:00 to Sunday 23:00 every week: one period of nearly seven
    // days, found from a Monday morning.
    let spec = scheduled(
        "UTC",
        &[
            (&[Mon, Tue, Wed, Thu, Fri, Sat], "00:00", "12:00"),
            (&[Mon, Tue, Wed, Thu, Fri, Sat], "12:00", "00:00"),
            (&[Sun], "00:00", "23:00"),
        ],
    );
    let decision = decide_at(&spec, "2026-01-05T06:00:00Z");
    assert_state(&decision, true, "2026-01-11T23:00:00Z");
}

#[test]
fn window_on_no_day_never_wakes() {
    let spec = scheduled("UTC", &[(&[], "19:00", "23:00")]);
    let decision = decide_at(&spec, "2026-01-05T12:00:00Z");
    assert!(!decision.awake);
    assert_eq!(decision.reason, AwakeReason::OutsideWindows);
    assert_eq!(decision.next, None);
    assert_eq!(decision.recheck_at, None);
    assert_eq!(
        decision.message(),
        "outside the schedule; no window ever starts"
    );
}

// Daylight saving in Europe/Berlin, 2026: spring forward on Sunday 29 March at 02:00 CET
// (01:00 UTC), fall back on Sunday 25 October at 03:00 CEST (01:00 UTC).

#[test]
fn berlin_evening_window_keeps_local_hours_across_spring_forward() {
    let spec = scheduled("Europe/Berlin", &[(EVERY_DAY, "19:00", "23:00")]);
    // Saturday on CET: 19:00–23:00 is 18:00–22:00 UTC.
    assert_state(
        &decide_at(&spec, "2026-03-28T18:30:00Z"),
        true,
        "2026-03-28T22:00:00Z",
    );
    // Sunday 00:00 CET; Sunday's window is on CEST: 17:00–21:00 UTC.
    assert_state(
        &decide_at(&spec, "2026-03-28T23:00:00Z"),
        false,
        "2026-03-29T17:00:00Z",
    );
    assert_state(
        &decide_at(&spec, "2026-03-29T17:30:00Z"),
        true,
        "2026-03-29T21:00:00Z",
    );
}

#[test]
fn berlin_evening_window_keeps_local_hours_across_fall_back() {
    let spec = scheduled("Europe/Berlin", &[(EVERY_DAY, "19:00", "23:00")]);
    // Saturday on CEST: 17:00–21:00 UTC.
    assert_state(
        &decide_at(&spec, "2026-10-24T17:00:00Z"),
        true,
        "2026-10-24T21:00:00Z",
    );
    // Sunday 00:00 CEST; Sunday's window is on CET: 18:00–22:00 UTC.
    assert_state(
        &decide_at(&spec, "2026-10-24T22:00:00Z"),
        false,
        "2026-10-25T18:00:00Z",
    );
    assert_state(
        &decide_at(&spec, "2026-10-25T21:59:00Z"),
        true,
        "2026-10-25T22:00:00Z",
    );
}

#[test]
fn berlin_night_window_across_spring_forward_is_an_hour_shorter() {
    // Saturday 22:00 CET (21:00 UTC) to Sunday 04:00 CEST (02:00 UTC): five hours.
    let spec = scheduled("Europe/Berlin", &[(&[Sat], "22:00", "04:00")]);
    assert_state(
        &decide_at(&spec, "2026-03-28T12:00:00Z"),
        false,
        "2026-03-28T21:00:00Z",
    );
    assert_state(
        &decide_at(&spec, "2026-03-28T21:30:00Z"),
        true,
        "2026-03-29T02:00:00Z",
    );
    assert!(!decide_at(&spec, "2026-03-29T02:00:00Z").awake);
}

#[test]
fn berlin_night_window_across_fall_back_is_an_hour_longer() {
    // Saturday 22:00 CEST (20:00 UTC) to Sunday 04:00 CET (03:00 UTC): seven hours.
    let spec = scheduled("Europe/Berlin", &[(&[Sat], "22:00", "04:00")]);
    assert_state(
        &decide_at(&spec, "2026-10-24T12:00:00Z"),
        false,
        "2026-10-24T20:00:00Z",
    );
    assert_state(
        &decide_at(&spec, "2026-10-25T02:30:00Z"),
        true,
        "2026-10-25T03:00:00Z",
    );
}

#[test]
fn berlin_window_starting_in_the_missing_hour_starts_an_hour_later_by_the_clock() {
    // 02:30 does not exist on 29 March: it resolves to 03:30 CEST (01:30 UTC); the end,
    // 05:00 CEST, is 03:00 UTC.
    let spec = scheduled("Europe/Berlin", &[(&[Sun], "02:30", "05:00")]);
    let decision = decide_at(&spec, "2026-03-28T12:00:00Z");
    assert_state(&decision, false, "2026-03-29T01:30:00Z");
    assert_eq!(
        decision.next.unwrap().summary,
        "wake Sun 03:30 Europe/Berlin"
    );
    // 03:15 CEST, after the missing hour but before the resolved start.
    assert!(!decide_at(&spec, "2026-03-29T01:15:00Z").awake);
    assert_state(
        &decide_at(&spec, "2026-03-29T01:30:00Z"),
        true,
        "2026-03-29T03:00:00Z",
    );
}

#[test]
fn berlin_window_entirely_in_the_missing_hour_moves_an_hour_later() {
    // 02:15–02:45 does not exist on 29 March: it becomes 03:15–03:45 CEST, 01:15–01:45 UTC.
    let spec = scheduled("Europe/Berlin", &[(&[Sun], "02:15", "02:45")]);
    assert_state(
        &decide_at(&spec, "2026-03-28T12:00:00Z"),
        false,
        "2026-03-29T01:15:00Z",
    );
    assert_state(
        &decide_at(&spec, "2026-03-29T01:15:00Z"),
        true,
        "2026-03-29T01:45:00Z",
    );
}

#[test]
fn berlin_window_swallowed_by_the_missing_hour_does_not_happen_that_day() {
    // 02:30 moves to 03:30 CEST, after the end 03:15 CEST: no window on 29 March; the next
    // is on 5 April, 02:30 CEST = 00:30 UTC, more than six days ahead.
    let spec = scheduled("Europe/Berlin", &[(&[Sun], "02:30", "03:15")]);
    let decision = decide_at(&spec, "2026-03-28T12:00:00Z");
    assert_state(&decision, false, "2026-04-05T00:30:00Z");
    assert_eq!(
        decision.next.unwrap().summary,
        "wake 2026-04-05 02:30 Europe/Berlin"
    );
    assert!(!decide_at(&spec, "2026-03-29T01:10:00Z").awake);
}

#[test]
fn berlin_window_starting_in_the_repeated_hour_starts_at_its_first_occurrence() {
    // 02:30 happens twice on 25 October; the first is 02:30 CEST = 00:30 UTC. The end,
    // 05:00 CET, is 04:00 UTC.
    let spec = scheduled("Europe/Berlin", &[(&[Sun], "02:30", "05:00")]);
    assert_state(
        &decide_at(&spec, "2026-10-24T12:00:00Z"),
        false,
        "2026-10-25T00:30:00Z",
    );
    assert_state(
        &decide_at(&spec, "2026-10-25T00:45:00Z"),
        true,
        "2026-10-25T04:00:00Z",
    );
}

// Daylight saving in Australia/Sydney, 2026: fall back on Sunday 5 April at 03:00 AEDT
// (16:00 UTC on 4 April), spring forward on Sunday 4 October at 02:00 AEST (16:00 UTC on
// 3 October).

#[test]
fn sydney_evening_window_keeps_local_hours_across_fall_back_in_april() {
    let spec = scheduled("Australia/Sydney", &[(EVERY_DAY, "19:00", "23:00")]);
    // Saturday on AEDT: 19:00 is 08:00 UTC.
    assert_state(
        &decide_at(&spec, "2026-04-04T07:00:00Z"),
        false,
        "2026-04-04T08:00:00Z",
    );
    // Sunday 00:00 AEDT; Sunday's window is on AEST: 09:00–13:00 UTC.
    let decision = decide_at(&spec, "2026-04-04T13:00:00Z");
    assert_state(&decision, false, "2026-04-05T09:00:00Z");
    assert_eq!(
        decision.next.unwrap().summary,
        "wake Sun 19:00 Australia/Sydney"
    );
    assert_state(
        &decide_at(&spec, "2026-04-05T09:00:00Z"),
        true,
        "2026-04-05T13:00:00Z",
    );
}

#[test]
fn sydney_evening_window_keeps_local_hours_across_spring_forward_in_october() {
    let spec = scheduled("Australia/Sydney", &[(EVERY_DAY, "19:00", "23:00")]);
    // Saturday on AEST: 19:00–23:00 is 09:00–13:00 UTC.
    assert_state(
        &decide_at(&spec, "2026-10-03T09:00:00Z"),
        true,
        "2026-10-03T13:00:00Z",
    );
    // Sunday 00:00 AEST; Sunday's window is on AEDT: 08:00–12:00 UTC.
    assert_state(
        &decide_at(&spec, "2026-10-03T14:00:00Z"),
        false,
        "2026-10-04T08:00:00Z",
    );
}

#[test]
fn sydney_night_window_across_spring_forward_is_an_hour_shorter() {
    // Saturday 22:00 AEST (12:00 UTC) to Sunday 04:00 AEDT (17:00 UTC, still 3 October).
    let spec = scheduled("Australia/Sydney", &[(&[Sat], "22:00", "04:00")]);
    assert_state(
        &decide_at(&spec, "2026-10-03T00:00:00Z"),
        false,
        "2026-10-03T12:00:00Z",
    );
    assert_state(
        &decide_at(&spec, "2026-10-03T16:30:00Z"),
        true,
        "2026-10-03T17:00:00Z",
    );
}

#[test]
fn sydney_night_window_across_fall_back_is_an_hour_longer() {
    // Saturday 22:00 AEDT (11:00 UTC) to Sunday 04:00 AEST (18:00 UTC, still 4 April).
    let spec = scheduled("Australia/Sydney", &[(&[Sat], "22:00", "04:00")]);
    assert_state(
        &decide_at(&spec, "2026-04-04T00:00:00Z"),
        false,
        "2026-04-04T11:00:00Z",
    );
    assert_state(
        &decide_at(&spec, "2026-04-04T17:30:00Z"),
        true,
        "2026-04-04T18:00:00Z",
    );
}

#[test]
fn sydney_window_starting_in_the_missing_hour_starts_an_hour_later_by_the_clock() {
    // 02:30 does not exist on 4 October: it becomes 03:30 AEDT = 16:30 UTC on 3 October;
    // the end, 05:00 AEDT, is 18:00 UTC.
    let spec = scheduled("Australia/Sydney", &[(&[Sun], "02:30", "05:00")]);
    let decision = decide_at(&spec, "2026-10-03T00:00:00Z");
    assert_state(&decision, false, "2026-10-03T16:30:00Z");
    assert_eq!(
        decision.next.unwrap().summary,
        "wake Sun 03:30 Australia/Sydney"
    );
    assert_state(
        &decide_at(&spec, "2026-10-03T16:30:00Z"),
        true,
        "2026-10-03T18:00:00Z",
    );
}

#[test]
fn sydney_window_starting_in_the_repeated_hour_starts_at_its_first_occurrence() {
    // 02:30 happens twice on 5 April; the first is 02:30 AEDT = 15:30 UTC on 4 April. The
    // end, 05:00 AEST, is 19:00 UTC.
    let spec = scheduled("Australia/Sydney", &[(&[Sun], "02:30", "05:00")]);
    assert_state(
        &decide_at(&spec, "2026-04-04T00:00:00Z"),
        false,
        "2026-04-04T15:30:00Z",
    );
    assert_state(
        &decide_at(&spec, "2026-04-04T15:30:00Z"),
        true,
        "2026-04-04T19:00:00Z",
    );
}

// Overrides.

#[test]
fn suspend_beats_the_schedule() {
    let mut spec = evening_berlin();
    spec.suspend = true;
    let decision = decide_at(&spec, "2026-01-05T20:00:00Z");
    assert_eq!(
        decision,
        Decision {
            awake: false,
            reason: AwakeReason::Suspended,
            next: None,
            recheck_at: None,
            overtime: None,
        }
    );
}

#[test]
fn suspend_beats_wake_until() {
    // Admission refuses both at once; should they meet anyway, sleeping is the safe side.
    let mut spec = woken_until(hub(None), "2026-01-05T23:00:00Z");
    spec.suspend = true;
    let decision = decide_at(&spec, "2026-01-05T20:00:00Z");
    assert!(!decision.awake);
    assert_eq!(decision.reason, AwakeReason::Suspended);
    assert_eq!(decision.recheck_at, None);
}

#[test]
fn wake_until_beats_the_schedule_and_then_expires() {
    let spec = woken_until(evening_berlin(), "2026-01-05T14:00:00Z");
    let decision = decide_at(&spec, "2026-01-05T12:00:00Z");
    assert_state(&decision, true, "2026-01-05T14:00:00Z");
    assert_eq!(decision.reason, AwakeReason::ManualWake);
    assert_eq!(decision.recheck_at, Some(at("2026-01-05T14:00:00Z")));
    assert_eq!(
        decision.next.unwrap().summary,
        "sleep Mon 15:00 Europe/Berlin"
    );

    let expired = decide_at(&spec, "2026-01-05T14:00:00Z");
    assert_state(&expired, false, "2026-01-05T18:00:00Z");
    assert_eq!(expired.reason, AwakeReason::OutsideWindows);
}

#[test]
fn wake_until_inside_a_window_sleeps_at_the_window_end_but_rechecks_at_wake_until() {
    let spec = woken_until(evening_berlin(), "2026-01-05T19:00:00Z");
    let decision = decide_at(&spec, "2026-01-05T12:00:00Z");
    assert_state(&decision, true, "2026-01-05T22:00:00Z");
    assert_eq!(decision.reason, AwakeReason::ManualWake);
    assert_eq!(decision.recheck_at, Some(at("2026-01-05T19:00:00Z")));

    let after = decide_at(&spec, "2026-01-05T19:00:00Z");
    assert_state(&after, true, "2026-01-05T22:00:00Z");
    assert_eq!(after.reason, AwakeReason::InWindow);
}

#[test]
fn wake_until_without_a_schedule_rechecks_at_wake_until_and_never_sleeps() {
    let spec = woken_until(hub(None), "2026-11-25T23:00:00Z");
    let decision = decide_at(&spec, "2026-11-25T20:00:00Z");
    assert!(decision.awake);
    assert_eq!(decision.reason, AwakeReason::ManualWake);
    assert_eq!(decision.next, None);
    assert_eq!(decision.recheck_at, Some(at("2026-11-25T23:00:00Z")));

    let after = decide_at(&spec, "2026-11-25T23:00:00Z");
    assert_eq!(after.reason, AwakeReason::AlwaysOn);
}

#[test]
fn wake_until_in_the_past_is_ignored() {
    let spec = woken_until(evening_berlin(), "2026-01-05T11:00:00Z");
    let decision = decide_at(&spec, "2026-01-05T12:00:00Z");
    assert_state(&decision, false, "2026-01-05T18:00:00Z");
    assert_eq!(decision.reason, AwakeReason::OutsideWindows);
    assert_eq!(decision.recheck_at, Some(at("2026-01-05T18:00:00Z")));
}

#[test]
fn wake_until_equal_to_now_has_expired() {
    let spec = woken_until(evening_berlin(), "2026-01-05T12:00:00Z");
    let decision = decide_at(&spec, "2026-01-05T12:00:00Z");
    assert_eq!(decision.reason, AwakeReason::OutsideWindows);
}

#[test]
fn no_schedule_is_always_awake_with_nothing_to_recheck() {
    let decision = decide_at(&hub(None), "2026-01-05T12:00:00Z");
    assert_eq!(
        decision,
        Decision {
            awake: true,
            reason: AwakeReason::AlwaysOn,
            next: None,
            recheck_at: None,
            overtime: None,
        }
    );
}

// Errors.

#[test]
fn unknown_time_zone_is_an_error_that_says_what_to_use() {
    let spec = scheduled("Mars/Olympus", &[(&[Mon], "19:00", "23:00")]);
    let error = decide(&spec, at("2026-01-05T12:00:00Z")).unwrap_err();
    assert!(
        matches!(error, ScheduleError::UnknownTimeZone { ref zone, .. } if zone == "Mars/Olympus")
    );
    assert_eq!(error.reason(), "UnknownTimeZone");
    assert_eq!(
        error.to_string(),
        r#"unknown time zone "Mars/Olympus": use an IANA name such as Europe/Berlin or UTC"#
    );
}

#[test]
fn unknown_time_zone_is_reported_even_when_an_override_decides() {
    let mut spec = scheduled("Europe/Berln", &[(&[Mon], "19:00", "23:00")]);
    spec.suspend = true;
    let error = decide(&spec, at("2026-01-05T12:00:00Z")).unwrap_err();
    assert_eq!(error.reason(), "UnknownTimeZone");
}

#[test]
fn malformed_times_are_errors_that_name_the_field() {
    for bad in [
        "7pm", "24:00", "19:60", "9:00", "19:0", "19-00", "+1:00", "",
    ] {
        let spec = scheduled("UTC", &[(&[Mon], "18:00", "20:00"), (&[Tue], "19:00", bad)]);
        let error = decide(&spec, at("2026-01-05T12:00:00Z")).unwrap_err();
        assert_eq!(error.reason(), "InvalidTime", "{bad:?}");
        assert_eq!(
            error.to_string(),
            format!(
                "invalid time {bad:?} in spec.schedule.windows[1].end: write a 24-hour HH:MM time such as 19:00"
            )
        );
    }
}

#[test]
fn window_with_equal_start_and_end_is_an_error() {
    let spec = scheduled("UTC", &[(&[Mon], "19:00", "19:00")]);
    let error = decide(&spec, at("2026-01-05T12:00:00Z")).unwrap_err();
    assert_eq!(error.reason(), "EmptyWindow");
    assert_eq!(
        error.to_string(),
        "spec.schedule.windows[0] starts and ends at 19:00: give it a different end, e.g. 23:59 for a whole day"
    );
}

// What users read.

#[test]
fn summary_names_the_weekday_within_six_days_and_the_date_beyond() {
    let spec = friday_night_utc();
    // Saturday 22:01: the next Friday 22:00 is 5 days 23:59 away.
    let soon = decide_at(&spec, "2026-01-10T22:01:00Z");
    assert_eq!(soon.next.unwrap().summary, "wake Fri 22:00 UTC");
    // Saturday 22:00: exactly six days away.
    let far = decide_at(&spec, "2026-01-10T22:00:00Z");
    assert_eq!(far.next.unwrap().summary, "wake 2026-01-16 22:00 UTC");
    let sleeping = decide_at(&spec, "2026-01-09T23:00:00Z");
    assert_eq!(sleeping.next.unwrap().summary, "sleep Sat 02:00 UTC");
}

#[test]
fn summary_is_in_the_schedules_zone() {
    let spec = scheduled("Australia/Sydney", &[(&[Fri], "19:00", "23:00")]);
    // Friday 2026-01-09 19:00 AEDT is 08:00 UTC.
    let decision = decide_at(&spec, "2026-01-09T00:00:00Z");
    let next = decision.next.unwrap();
    assert_eq!(next.at, at("2026-01-09T08:00:00Z"));
    assert_eq!(next.summary, "wake Fri 19:00 Australia/Sydney");
}

#[test]
fn messages_say_why() {
    assert_eq!(
        decide_at(&hub(None), "2026-01-05T12:00:00Z").message(),
        "no schedule: always awake"
    );
    let mut suspended = evening_berlin();
    suspended.suspend = true;
    assert_eq!(
        decide_at(&suspended, "2026-01-05T12:00:00Z").message(),
        "suspended by spec.suspend"
    );
    assert_eq!(
        decide_at(&evening_berlin(), "2026-01-05T20:00:00Z").message(),
        "inside the schedule; sleep Mon 23:00 Europe/Berlin"
    );
    assert_eq!(
        decide_at(&evening_berlin(), "2026-01-09T22:00:00Z").message(),
        "outside the schedule; wake Mon 19:00 Europe/Berlin"
    );
    assert_eq!(
        decide_at(
            &woken_until(hub(None), "2026-11-25T23:00:00Z"),
            "2026-11-25T20:00:00Z"
        )
        .message(),
        "woken by spec.wakeUntil until 2026-11-25 23:00 UTC"
    );
    assert_eq!(
        decide_at(
            &woken_until(evening_berlin(), "2026-01-05T19:00:30Z"),
            "2026-01-05T12:00:00Z"
        )
        .message(),
        "woken by spec.wakeUntil until 2026-01-05 19:00:30 UTC, then inside the schedule; sleep Mon 23:00 Europe/Berlin"
    );
}

#[test]
fn reasons_are_condition_reasons() {
    let reasons = [
        (AwakeReason::AlwaysOn, "AlwaysOn"),
        (AwakeReason::InWindow, "InWindow"),
        (AwakeReason::OutsideWindows, "OutsideWindows"),
        (AwakeReason::Suspended, "Suspended"),
        (AwakeReason::ManualWake, "ManualWake"),
    ];
    for (reason, text) in reasons {
        assert_eq!(reason.as_str(), text);
    }
}
