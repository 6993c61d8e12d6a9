//! EventBridge Scheduler's schedule expressions, parsed and evaluated: `rate(5 minutes)`,
//! `cron(0 12 * * ? *)` and `at(2030-01-31T12:00:00)`, each in an IANA time zone.
//!
//! This module is pure (no IO, no clock): [`Schedule::parse`] turns an expression and a time
//! zone into a typed [`Schedule`], and [`Schedule::next_after`] answers the first firing
//! strictly after an instant. The daemon's timer ([`crate::schedule_runner`]) and the provider's
//! `check` both use it, so a bad expression fails at preview with the same words the daemon
//! would use.
//!
//! The semantics follow AWS's documentation of Scheduler (not a Unix cron):
//!
//! - **cron** has six fields: `minutes hours day-of-month month day-of-week year`. Exactly one
//!   of day-of-month and day-of-week is `?`. Day-of-week counts **1 = SUN … 7 = SAT**. Wildcards:
//!   `,` `-` `*` `/` everywhere but day-of-week's `/`; `L` (last day of the month; in
//!   day-of-week alone, Saturday; `6L` the last Friday), `W` (`15W`, the weekday nearest the
//!   15th, not crossing into another month; `LW`, the last weekday), `#` (`3#2`, the second
//!   Tuesday; alone in its field). Names `JAN`–`DEC`, `SUN`–`SAT` (any case). Years 1970–2199.
//! - **Daylight saving time**: a cron time that does not exist (the hour skipped in spring) is
//!   skipped; a time that happens twice (the hour repeated in autumn) fires once, the first
//!   time. `at()` times use the usual resolution (a skipped time moves forward by the gap; a
//!   repeated one is the first).
//! - **rate** is a fixed duration (`rate(1 day)` is 24 hours, whatever the time zone) counted
//!   from the schedule's start; AWS starts a rate schedule without `StartDate` at once, so the
//!   first firing is the start itself (see [`Schedule::starting_at`]). `1` takes the singular
//!   unit and more the plural, as Scheduler requires.
//! - **at** fires once.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};

/// The years Scheduler accepts in a cron expression.
const FIRST_YEAR: i16 = 1970;
const LAST_YEAR: i16 = 2199;

/// An expression that is not one Scheduler accepts, with what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    pub expression: String,
    pub reason: String,
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad schedule expression {:?}: {}", self.expression, self.reason)
    }
}

impl std::error::Error for ScheduleError {}

/// A time zone Scheduler would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeZoneError {
    pub name: String,
}

impl fmt::Display for TimeZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown time zone {:?}: use an IANA name such as \"UTC\", \"Europe/Paris\" or \"America/New_York\"",
            self.name
        )
    }
}

impl std::error::Error for TimeZoneError {}

/// A parsed schedule expression with its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
    tz: TimeZone,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Every `seconds`, counted from `start` (the deploy time, set by [`Schedule::starting_at`]).
    Rate {
        seconds: i64,
        start: Option<Timestamp>,
    },
    Cron(Box<Cron>),
    At(DateTime),
}

/// The six fields, as sets.
#[derive(Debug, Clone, PartialEq)]
struct Cron {
    minutes: u64,
    hours: u32,
    day_of_month: DayOfMonth,
    months: u16,
    day_of_week: DayOfWeek,
    /// Bit `y - 1970`.
    years: [u64; 4],
}

#[derive(Debug, Clone, PartialEq)]
enum DayOfMonth {
    /// `?`
    Any,
    /// Bit `d` for day `d`.
    Days(u32),
    /// `L`
    Last,
    /// `LW`
    LastWeekday,
    /// `15W`
    NearestWeekday(i8),
}

#[derive(Debug, Clone, PartialEq)]
enum DayOfWeek {
    /// `?`
    Any,
    /// Bit `d` for day `d` (1 = SUN … 7 = SAT).
    Days(u8),
    /// `5L`: the last such day of the month.
    Last(i8),
    /// `3#2`: the `n`th such day of the month.
    Nth(i8, i8),
}

impl Schedule {
    /// Parses `expression` (`rate(…)`, `cron(…)` or `at(…)`) to be evaluated in `time_zone`
    /// (an IANA name; `UTC` when Scheduler's default applies).
    pub fn parse(expression: &str, time_zone: &str) -> Result<Schedule, ParseError> {
        let tz = TimeZone::get(time_zone)
            .map_err(|_| ParseError::TimeZone(TimeZoneError { name: time_zone.to_string() }))?;
        let kind = parse_kind(expression).map_err(|reason| {
            ParseError::Expression(ScheduleError { expression: expression.to_string(), reason })
        })?;
        Ok(Schedule { kind, tz })
    }

    /// The same schedule with a rate counted from `start` (the first firing is `start`
    /// itself). Has no effect on cron and at schedules.
    pub fn starting_at(mut self, start: Timestamp) -> Schedule {
        if let Kind::Rate { start: s, .. } = &mut self.kind {
            *s = Some(start);
        }
        self
    }

    /// Whether this is a one-time `at()` schedule.
    pub fn is_one_time(&self) -> bool {
        matches!(self.kind, Kind::At(_))
    }

    /// The first firing strictly after `after`, or `None` when there is none (an `at()` in
    /// the past, a cron whose years are over, a day that never comes such as `30 FEB`).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match &self.kind {
            Kind::Rate { seconds, start } => {
                // In milliseconds: a start and an instant within the same second still order.
                let (period, start, now) =
                    (seconds * 1000, start.unwrap_or(after).as_millisecond(), after.as_millisecond());
                let next = if now < start { start } else { start + ((now - start) / period + 1) * period };
                Timestamp::from_millisecond(next).ok()
            }
            Kind::At(dt) => {
                let t = self.tz.to_ambiguous_timestamp(*dt).compatible().ok()?;
                (t > after).then_some(t)
            }
            Kind::Cron(c) => next_cron(c, &self.tz, after),
        }
    }

    /// The next `n` firings after `after`.
    pub fn upcoming(&self, after: Timestamp, n: usize) -> Vec<Timestamp> {
        let mut out = Vec::new();
        let mut t = after;
        while out.len() < n {
            match self.next_after(t) {
                Some(next) => {
                    out.push(next);
                    t = next;
                }
                None => break,
            }
        }
        out
    }
}

/// Why [`Schedule::parse`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Expression(ScheduleError),
    TimeZone(TimeZoneError),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Expression(e) => e.fmt(f),
            ParseError::TimeZone(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ParseError {}

const FORMS: &str = "write rate(5 minutes), cron(0 12 * * ? *) or at(2030-01-31T12:00:00)";
const CRON_FORM: &str = "(minutes hours day-of-month month day-of-week year), e.g. cron(0 12 * * ? *)";

fn parse_kind(expression: &str) -> Result<Kind, String> {
    let e = expression.trim();
    let inner = |prefix: &str| e.strip_prefix(prefix).and_then(|r| r.strip_suffix(')'));
    if let Some(r) = inner("rate(") {
        parse_rate(r)
    } else if let Some(r) = inner("cron(") {
        parse_cron(r).map(|c| Kind::Cron(Box::new(c)))
    } else if let Some(r) = inner("at(") {
        parse_at(r)
    } else {
        Err(format!("not a schedule expression; {FORMS}"))
    }
}

fn parse_rate(r: &str) -> Result<Kind, String> {
    const RATE_FORM: &str = "rate takes a positive whole number and a unit (minute, minutes, hour, hours, \
                             day, days), e.g. rate(5 minutes) or rate(1 hour)";
    let parts: Vec<&str> = r.split_whitespace().collect();
    let [value, unit] = parts.as_slice() else { return Err(RATE_FORM.into()) };
    let n: i64 = match value.parse() {
        Ok(n) if n > 0 && value.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Err(format!("`{value}` is not a positive whole number; {RATE_FORM}")),
    };
    let (unit_seconds, singular) = match *unit {
        "minute" => (60, true),
        "minutes" => (60, false),
        "hour" => (3600, true),
        "hours" => (3600, false),
        "day" => (86400, true),
        "days" => (86400, false),
        other => return Err(format!("`{other}` is not a unit; {RATE_FORM}")),
    };
    if singular != (n == 1) {
        let hint = if n == 1 { unit.trim_end_matches('s').to_string() } else { format!("{unit}s") };
        return Err(format!("write rate({n} {hint}): 1 takes the singular unit, more the plural"));
    }
    let seconds = n
        .checked_mul(unit_seconds)
        .filter(|s| *s <= 200 * 366 * 86400)
        .ok_or_else(|| format!("rate({n} {unit}) is longer than a schedule can wait; {RATE_FORM}"))?;
    Ok(Kind::Rate { seconds, start: None })
}

fn parse_at(r: &str) -> Result<Kind, String> {
    let form = "at takes a local date and time, yyyy-mm-ddThh:mm:ss, e.g. at(2030-01-31T12:00:00)";
    let b = r.as_bytes();
    let shape = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return Err(format!("`{r}` is not yyyy-mm-ddThh:mm:ss; {form}"));
    }
    let num = |a: usize, z: usize| r[a..z].parse::<i16>().unwrap_or(-1);
    let dt = DateTime::new(
        num(0, 4),
        num(5, 7) as i8,
        num(8, 10) as i8,
        num(11, 13) as i8,
        num(14, 16) as i8,
        num(17, 19) as i8,
        0,
    )
    .map_err(|_| format!("`{r}` is not a real date and time; {form}"))?;
    Ok(Kind::At(dt))
}

/// One field's description, for its parser and its messages.
struct Field {
    name: &'static str,
    min: i16,
    max: i16,
    names: &'static [&'static str],
    range_hint: &'static str,
}

const MINUTES: Field = Field { name: "minutes", min: 0, max: 59, names: &[], range_hint: "0-59" };
const HOURS: Field = Field { name: "hours", min: 0, max: 23, names: &[], range_hint: "0-23" };
const DAY_OF_MONTH: Field = Field { name: "day-of-month", min: 1, max: 31, names: &[], range_hint: "1-31" };
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
    range_hint: "1-12 or JAN-DEC",
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 1,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    range_hint: "1-7 or SUN-SAT, 1 is Sunday",
};
const YEAR: Field =
    Field { name: "year", min: FIRST_YEAR, max: LAST_YEAR, names: &[], range_hint: "1970-2199" };

impl Field {
    fn value(&self, s: &str) -> Result<i16, String> {
        let v = if let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            self.min + i as i16
        } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.len() <= 4 {
            s.parse::<i16>().map_err(|_| self.bad(s))?
        } else {
            return Err(self.bad(s));
        };
        if v < self.min || v > self.max {
            return Err(format!("{}: `{s}` is out of range ({})", self.name, self.range_hint));
        }
        Ok(v)
    }

    fn bad(&self, s: &str) -> String {
        format!("{}: `{s}` is not a value ({})", self.name, self.range_hint)
    }

    /// `*`, `5`, `1-5`, `*/10`, `5/10`, `1-30/10` and lists of them, as the values they
    /// stand for. `slash` is false where Scheduler does not allow `/` (day-of-week).
    fn values(&self, field: &str, slash: bool) -> Result<Vec<i16>, String> {
        let mut out = Vec::new();
        for item in field.split(',') {
            if item.is_empty() {
                return Err(format!("{}: `{field}` has an empty list item", self.name));
            }
            let (range, step) = match item.split_once('/') {
                Some(_) if !slash => {
                    return Err(format!("{}: `/` is not allowed here; list the days instead", self.name));
                }
                Some((r, s)) => {
                    let step: i16 = s
                        .parse()
                        .ok()
                        .filter(|n| *n > 0 && s.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| {
                            format!("{}: `{item}`: the step after `/` must be a positive number", self.name)
                        })?;
                    (r, step)
                }
                None => (item, 1),
            };
            let (lo, hi) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    return Err(format!(
                        "{}: the range `{range}` goes backwards; write it from low to high (a list can join two ranges)",
                        self.name
                    ));
                }
                (a, b)
            } else {
                let a = self.value(range)?;
                // `5/10` runs from 5 to the end of the field.
                (a, if item.contains('/') { self.max } else { a })
            };
            let mut v = lo;
            while v <= hi {
                out.push(v);
                v += step;
            }
        }
        Ok(out)
    }
}

fn parse_cron(r: &str) -> Result<Cron, String> {
    let f: Vec<&str> = r.split_whitespace().collect();
    if f.len() != 6 {
        return Err(format!("cron takes six fields {CRON_FORM}; this has {}", f.len()));
    }
    let (dom_any, dow_any) = (f[2] == "?", f[4] == "?");
    if dom_any == dow_any {
        return Err(format!(
            "exactly one of day-of-month and day-of-week must be `?` {CRON_FORM}, or cron(0 9 ? * MON-FRI *)"
        ));
    }
    for (i, field) in [(0, &MINUTES), (1, &HOURS), (3, &MONTH), (5, &YEAR)] {
        if f[i] == "?" {
            return Err(format!("{}: `?` is only for day-of-month or day-of-week", field.name));
        }
    }
    let bits64 = |v: Vec<i16>| v.iter().fold(0u64, |acc, x| acc | 1 << x);
    let minutes = bits64(MINUTES.values(f[0], true)?);
    let hours = bits64(HOURS.values(f[1], true)?) as u32;
    let months = bits64(MONTH.values(f[3], true)?) as u16;
    let mut years = [0u64; 4];
    for y in YEAR.values(f[5], true)? {
        let i = (y - FIRST_YEAR) as usize;
        years[i / 64] |= 1 << (i % 64);
    }
    let day_of_month = if dom_any { DayOfMonth::Any } else { parse_day_of_month(f[2])? };
    let day_of_week = if dow_any { DayOfWeek::Any } else { parse_day_of_week(f[4])? };
    Ok(Cron { minutes, hours, day_of_month, months, day_of_week, years })
}

fn parse_day_of_month(s: &str) -> Result<DayOfMonth, String> {
    let upper = s.to_ascii_uppercase();
    if upper == "L" {
        return Ok(DayOfMonth::Last);
    }
    if upper == "LW" || upper == "WL" {
        return Ok(DayOfMonth::LastWeekday);
    }
    if let Some(day) = upper.strip_suffix('W') {
        if day.contains([',', '-', '/', '*']) {
            return Err(format!(
                "day-of-month: `{s}`: W takes one day, e.g. 15W (the weekday nearest the 15th)"
            ));
        }
        return Ok(DayOfMonth::NearestWeekday(DAY_OF_MONTH.value(day)? as i8));
    }
    if upper.contains(['L', 'W']) {
        return Err(format!("day-of-month: `{s}`: L and W stand alone (L, LW, 15W), not in lists or ranges"));
    }
    let days = DAY_OF_MONTH.values(s, true)?;
    Ok(DayOfMonth::Days(days.iter().fold(0u32, |acc, d| acc | 1 << d)))
}

fn parse_day_of_week(s: &str) -> Result<DayOfWeek, String> {
    let upper = s.to_ascii_uppercase();
    if upper == "L" {
        // The last day of the week: Saturday.
        return Ok(DayOfWeek::Days(1 << 7));
    }
    if let Some((day, n)) = upper.split_once('#') {
        if day.contains([',', '-', '*']) || n.contains([',', '-', '#']) {
            return Err(format!(
                "day-of-week: `{s}`: # takes one day and one number, alone in the field, e.g. 3#2 (the second Tuesday)"
            ));
        }
        let day = DAY_OF_WEEK.value(day)? as i8;
        let n: i8 = n
            .parse()
            .ok()
            .filter(|n| (1..=5).contains(n))
            .ok_or_else(|| format!("day-of-week: `{s}`: the number after # is 1 to 5"))?;
        return Ok(DayOfWeek::Nth(day, n));
    }
    if let Some(day) = upper.strip_suffix('L') {
        if day.contains([',', '-', '*', '/']) {
            return Err(format!("day-of-week: `{s}`: L takes one day, e.g. 6L (the last Friday)"));
        }
        return Ok(DayOfWeek::Last(DAY_OF_WEEK.value(day)? as i8));
    }
    let days = DAY_OF_WEEK.values(s, false)?;
    Ok(DayOfWeek::Days(days.iter().fold(0u8, |acc, d| acc | 1 << d)))
}

/// 1 = SUN … 7 = SAT, as Scheduler counts.
fn weekday(d: Date) -> i8 {
    d.weekday().to_sunday_one_offset()
}

fn is_weekend(d: Date) -> bool {
    matches!(weekday(d), 1 | 7)
}

impl Cron {
    fn has_year(&self, y: i16) -> bool {
        let i = (y - FIRST_YEAR) as usize;
        (FIRST_YEAR..=LAST_YEAR).contains(&y) && self.years[i / 64] & (1 << (i % 64)) != 0
    }

    /// The days of `year`-`month` this cron runs on: bit `d` for day `d`.
    fn days(&self, year: i16, month: i8) -> u32 {
        let Ok(first) = Date::new(year, month, 1) else { return 0 };
        let len = first.days_in_month();
        let date = |d: i8| Date::new(year, month, d).ok();
        let wd = |d: i8| ((weekday(first) - 1 + (d - 1)) % 7) + 1;
        let all: u32 = ((1u64 << (len + 1)) - 2) as u32;
        match (&self.day_of_month, &self.day_of_week) {
            (DayOfMonth::Days(b), _) => b & all,
            (DayOfMonth::Last, _) => 1 << len,
            (DayOfMonth::LastWeekday, _) => {
                let mut d = len;
                while date(d).is_some_and(is_weekend) {
                    d -= 1;
                }
                1 << d
            }
            (DayOfMonth::NearestWeekday(n), _) => {
                let n = *n;
                if n > len {
                    return 0;
                }
                // The weekday nearest the day, never leaving the month: a Saturday the 1st
                // moves to Monday the 3rd, a Sunday the last to Friday.
                let d = match wd(n) {
                    7 if n == 1 => 3,
                    7 => n - 1,
                    1 if n == len => n - 2,
                    1 => n + 1,
                    _ => n,
                };
                1 << d
            }
            (DayOfMonth::Any, DayOfWeek::Days(b)) => {
                (1..=len).filter(|d| b & (1 << wd(*d)) != 0).fold(0, |acc, d| acc | 1 << d)
            }
            (DayOfMonth::Any, DayOfWeek::Last(day)) => {
                (1..=len).rev().find(|d| wd(*d) == *day).map(|d| 1 << d).unwrap_or(0)
            }
            (DayOfMonth::Any, DayOfWeek::Nth(day, n)) => {
                let first_match = 1 + (day - weekday(first)).rem_euclid(7);
                let d = first_match + 7 * (n - 1);
                if d <= len { 1 << d } else { 0 }
            }
            (DayOfMonth::Any, DayOfWeek::Any) => 0,
        }
    }
}

/// The first civil minute matching `c`, in `tz`, whose instant is after `after`. Candidates
/// are walked in civil order from the civil minute of `after`; their instants (skipped times
/// dropped, repeated times at their first instant) then only grow, so the first one past
/// `after` is the answer.
fn next_cron(c: &Cron, tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    let local = tz.to_datetime(after);
    let (y0, m0, d0, h0, min0) = (local.year(), local.month(), local.day(), local.hour(), local.minute());
    for year in y0.max(FIRST_YEAR)..=LAST_YEAR {
        if !c.has_year(year) {
            continue;
        }
        for month in 1..=12i8 {
            if c.months & (1 << month) == 0 || (year, month) < (y0, m0) {
                continue;
            }
            let days = c.days(year, month);
            for day in 1..=31i8 {
                if days & (1 << day) == 0 || (year, month, day) < (y0, m0, d0) {
                    continue;
                }
                let today = (year, month, day) == (y0, m0, d0);
                for hour in 0..24i8 {
                    if c.hours & (1 << hour) == 0 || (today && hour < h0) {
                        continue;
                    }
                    for minute in 0..60i8 {
                        if c.minutes & (1 << minute) == 0 || (today && hour == h0 && minute < min0) {
                            continue;
                        }
                        let Ok(dt) = DateTime::new(year, month, day, hour, minute, 0, 0) else { continue };
                        let offset = match tz.to_ambiguous_timestamp(dt).offset() {
                            AmbiguousOffset::Unambiguous { offset } => offset,
                            // Skipped by the change to summer time: Scheduler skips it too.
                            AmbiguousOffset::Gap { .. } => continue,
                            // Repeated by the change back: it runs once, the first time.
                            AmbiguousOffset::Fold { before, .. } => before,
                        };
                        if let Ok(t) = offset.to_timestamp(dt)
                            && t > after
                        {
                            return Some(t);
                        }
                    }
                }
            }
        }
    }
    None
}

/// `2030-01-31T12:00:00Z`: how next run times are shown.
pub fn format_utc(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn sched(e: &str, tz: &str) -> Schedule {
        Schedule::parse(e, tz).unwrap_or_else(|err| panic!("{e}: {err}"))
    }

    /// The next `n` firings after `after`, as UTC strings.
    fn runs(e: &str, tz: &str, after: &str, n: usize) -> Vec<String> {
        sched(e, tz).upcoming(ts(after), n).into_iter().map(format_utc).collect()
    }

    fn err(e: &str) -> String {
        match Schedule::parse(e, "UTC") {
            Ok(s) => panic!("{e} parsed: {s:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn the_message_shows_the_form_and_an_example() {
        assert_eq!(
            err("cron(0 12 * * *)"),
            "bad schedule expression \"cron(0 12 * * *)\": cron takes six fields (minutes hours \
             day-of-month month day-of-week year), e.g. cron(0 12 * * ? *); this has 5"
        );
        assert!(err("every 5 minutes").contains("write rate(5 minutes), cron(0 12 * * ? *) or at("));
    }

    #[test]
    fn bad_cron_fields_name_the_field() {
        for (e, want) in [
            ("cron(0 12 * * * *)", "exactly one of day-of-month and day-of-week must be `?`"),
            ("cron(0 12 ? * ? *)", "exactly one of day-of-month and day-of-week must be `?`"),
            ("cron(60 12 * * ? *)", "minutes: `60` is out of range (0-59)"),
            ("cron(0 24 * * ? *)", "hours: `24` is out of range (0-23)"),
            ("cron(0 12 32 * ? *)", "day-of-month: `32` is out of range (1-31)"),
            ("cron(0 12 0 * ? *)", "day-of-month: `0` is out of range"),
            ("cron(0 12 ? 13 MON *)", "month: `13` is out of range (1-12 or JAN-DEC)"),
            ("cron(0 12 ? FOO MON *)", "month: `FOO` is not a value"),
            ("cron(0 12 ? * 0 *)", "day-of-week: `0` is out of range (1-7 or SUN-SAT, 1 is Sunday)"),
            ("cron(0 12 ? * 8 *)", "day-of-week: `8` is out of range"),
            ("cron(0 12 ? * MON/2 *)", "day-of-week: `/` is not allowed here"),
            ("cron(0 12 * * ? 1969)", "year: `1969` is out of range (1970-2199)"),
            ("cron(0 12 * * ? 2200)", "year: `2200` is out of range"),
            ("cron(0 12 ? * 3#6 *)", "the number after # is 1 to 5"),
            ("cron(0 12 ? * 3#1,6#3 *)", "# takes one day and one number"),
            ("cron(0 12 1,L * ? *)", "L and W stand alone"),
            ("cron(0 12 1-5W * ? *)", "W takes one day"),
            ("cron(5-1 12 * * ? *)", "the range `5-1` goes backwards"),
            ("cron(*/0 12 * * ? *)", "the step after `/` must be a positive number"),
            ("cron(0 ? * * ? *)", "hours: `?` is only for day-of-month or day-of-week"),
            ("cron(0,,1 12 * * ? *)", "empty list item"),
            ("cron(a 12 * * ? *)", "minutes: `a` is not a value"),
            ("cron(0 12 * * ? * 1)", "cron takes six fields"),
        ] {
            let got = err(e);
            assert!(got.contains(want), "{e}: {got}");
            assert!(got.starts_with(&format!("bad schedule expression \"{e}\": ")), "{got}");
        }
    }

    #[test]
    fn bad_rates_and_ats() {
        for (e, want) in [
            ("rate(0 minutes)", "`0` is not a positive whole number"),
            ("rate(-5 minutes)", "is not a positive whole number"),
            ("rate(1.5 hours)", "is not a positive whole number"),
            ("rate(5 seconds)", "`seconds` is not a unit"),
            ("rate(1 minutes)", "write rate(1 minute): 1 takes the singular unit"),
            ("rate(5 minute)", "write rate(5 minutes)"),
            ("rate(5)", "rate takes a positive whole number and a unit"),
            ("rate()", "rate takes a positive whole number and a unit"),
            ("rate(99999999 days)", "longer than a schedule can wait"),
            ("at(2030-01-31 12:00:00)", "is not yyyy-mm-ddThh:mm:ss"),
            ("at(2030-01-31T12:00)", "is not yyyy-mm-ddThh:mm:ss"),
            ("at(2030-02-30T12:00:00)", "is not a real date and time"),
            ("at(2030-01-31T24:00:00)", "is not a real date and time"),
            ("rate(5 minutes", "not a schedule expression"),
            ("", "not a schedule expression"),
        ] {
            let got = err(e);
            assert!(got.contains(want), "{e}: {got}");
        }
    }

    #[test]
    fn unknown_time_zones_are_refused() {
        let e = Schedule::parse("rate(1 hour)", "Mars/Olympus").unwrap_err();
        assert!(matches!(e, ParseError::TimeZone(_)));
        assert!(e.to_string().contains("unknown time zone \"Mars/Olympus\": use an IANA name"), "{e}");
        assert!(Schedule::parse("rate(1 hour)", "Europe/Paris").is_ok());
        assert!(Schedule::parse("rate(1 hour)", "UTC").is_ok());
    }

    #[test]
    fn rates_count_from_their_start() {
        let s = sched("rate(5 minutes)", "UTC").starting_at(ts("2026-01-01T10:00:30Z"));
        // The first firing is the start itself, as Scheduler starts a rate schedule at once.
        assert_eq!(s.next_after(ts("2026-01-01T09:00:00Z")), Some(ts("2026-01-01T10:00:30Z")));
        assert_eq!(s.next_after(ts("2026-01-01T10:00:30Z")), Some(ts("2026-01-01T10:05:30Z")));
        assert_eq!(s.next_after(ts("2026-01-01T10:07:00Z")), Some(ts("2026-01-01T10:10:30Z")));
        assert_eq!(s.next_after(ts("2026-01-02T10:10:29Z")), Some(ts("2026-01-02T10:10:30Z")));
        // Milliseconds count: just before the start is the start.
        let ms = sched("rate(1 minute)", "UTC").starting_at(ts("2026-01-01T00:00:00.500Z"));
        assert_eq!(ms.next_after(ts("2026-01-01T00:00:00.499Z")), Some(ts("2026-01-01T00:00:00.500Z")));
        assert_eq!(ms.next_after(ts("2026-01-01T00:00:00.500Z")), Some(ts("2026-01-01T00:01:00.500Z")));
        let one = sched("rate(1 minute)", "UTC").starting_at(ts("2026-01-01T00:00:00Z"));
        assert_eq!(one.next_after(ts("2026-01-01T00:00:59Z")), Some(ts("2026-01-01T00:01:00Z")));
        let hour = sched("rate(1 hour)", "UTC").starting_at(ts("2026-01-01T00:00:00Z"));
        assert_eq!(hour.next_after(ts("2026-01-01T00:00:00Z")), Some(ts("2026-01-01T01:00:00Z")));
        // Without a start, the next firing is one period away.
        let free = sched("rate(2 hours)", "UTC");
        assert_eq!(free.next_after(ts("2026-01-01T00:00:00Z")), Some(ts("2026-01-01T02:00:00Z")));
    }

    #[test]
    fn a_rate_of_days_is_24_hours_across_dst() {
        // New York moves to summer time on 2026-03-08: the next day is still 24 hours later,
        // so the local time moves from 10:00 to 11:00.
        let s = sched("rate(1 day)", "America/New_York").starting_at(ts("2026-03-07T15:00:00Z"));
        assert_eq!(
            s.upcoming(ts("2026-03-07T15:00:00Z"), 2),
            vec![ts("2026-03-08T15:00:00Z"), ts("2026-03-09T15:00:00Z")]
        );
    }

    #[test]
    fn cron_basics() {
        assert_eq!(
            runs("cron(0 12 * * ? *)", "UTC", "2026-05-10T11:00:00Z", 3),
            ["2026-05-10T12:00:00Z", "2026-05-11T12:00:00Z", "2026-05-12T12:00:00Z"]
        );
        // Strictly after: at 12:00 itself the next is tomorrow.
        assert_eq!(runs("cron(0 12 * * ? *)", "UTC", "2026-05-10T12:00:00Z", 1), ["2026-05-11T12:00:00Z"]);
        // Seconds do not matter: 12:00:30 is after 12:00.
        assert_eq!(runs("cron(0 12 * * ? *)", "UTC", "2026-05-10T12:00:30Z", 1), ["2026-05-11T12:00:00Z"]);
        assert_eq!(
            runs("cron(* * * * ? *)", "UTC", "2026-05-10T11:59:10Z", 3),
            ["2026-05-10T12:00:00Z", "2026-05-10T12:01:00Z", "2026-05-10T12:02:00Z"]
        );
        assert_eq!(
            runs("cron(0/15 * * * ? *)", "UTC", "2026-05-10T11:50:00Z", 3),
            ["2026-05-10T12:00:00Z", "2026-05-10T12:15:00Z", "2026-05-10T12:30:00Z"]
        );
        // 1/10: the 1st, 11th, 21st ... minute.
        assert_eq!(
            runs("cron(1/10 * * * ? *)", "UTC", "2026-05-10T12:00:00Z", 3),
            ["2026-05-10T12:01:00Z", "2026-05-10T12:11:00Z", "2026-05-10T12:21:00Z"]
        );
        assert_eq!(
            runs("cron(0 9-17/4 * * ? *)", "UTC", "2026-05-10T00:00:00Z", 4),
            ["2026-05-10T09:00:00Z", "2026-05-10T13:00:00Z", "2026-05-10T17:00:00Z", "2026-05-11T09:00:00Z"]
        );
        assert_eq!(
            runs("cron(15,45 10 * * ? *)", "UTC", "2026-05-10T10:20:00Z", 3),
            ["2026-05-10T10:45:00Z", "2026-05-11T10:15:00Z", "2026-05-11T10:45:00Z"]
        );
        // Every day with `*` in day-of-week instead.
        assert_eq!(runs("cron(0 8 ? * * *)", "UTC", "2026-05-10T09:00:00Z", 1), ["2026-05-11T08:00:00Z"]);
    }

    #[test]
    fn day_of_week_counts_from_sunday() {
        // 2026-05-10 is a Sunday.
        assert_eq!(runs("cron(0 9 ? * 1 *)", "UTC", "2026-05-09T00:00:00Z", 1), ["2026-05-10T09:00:00Z"]);
        assert_eq!(runs("cron(0 9 ? * SUN *)", "UTC", "2026-05-09T00:00:00Z", 1), ["2026-05-10T09:00:00Z"]);
        assert_eq!(runs("cron(0 9 ? * 7 *)", "UTC", "2026-05-10T00:00:00Z", 1), ["2026-05-16T09:00:00Z"]);
        assert_eq!(
            runs("cron(0 9 ? * MON-FRI *)", "UTC", "2026-05-08T10:00:00Z", 3),
            ["2026-05-11T09:00:00Z", "2026-05-12T09:00:00Z", "2026-05-13T09:00:00Z"]
        );
        assert_eq!(
            runs("cron(0 9 ? * mon,wed,fri *)", "UTC", "2026-05-10T00:00:00Z", 3),
            ["2026-05-11T09:00:00Z", "2026-05-13T09:00:00Z", "2026-05-15T09:00:00Z"]
        );
        // `L` alone: the last day of the week, Saturday.
        assert_eq!(runs("cron(0 9 ? * L *)", "UTC", "2026-05-10T00:00:00Z", 1), ["2026-05-16T09:00:00Z"]);
    }

    #[test]
    fn months_by_name_and_number() {
        assert_eq!(
            runs("cron(0 0 1 JAN,JUL ? *)", "UTC", "2026-02-01T00:00:00Z", 3),
            ["2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-07-01T00:00:00Z"]
        );
        assert_eq!(
            runs("cron(0 0 1 3-4 ? *)", "UTC", "2026-03-01T00:00:00Z", 2),
            ["2026-04-01T00:00:00Z", "2027-03-01T00:00:00Z"]
        );
        assert_eq!(
            runs("cron(0 0 1 */6 ? *)", "UTC", "2026-01-01T00:00:00Z", 2),
            ["2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"]
        );
    }

    #[test]
    fn last_day_of_month_and_leap_years() {
        assert_eq!(
            runs("cron(0 0 L * ? *)", "UTC", "2028-01-15T00:00:00Z", 4),
            ["2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z", "2028-04-30T00:00:00Z"]
        );
        assert_eq!(
            runs("cron(0 0 L 2 ? *)", "UTC", "2026-01-01T00:00:00Z", 3),
            ["2026-02-28T00:00:00Z", "2027-02-28T00:00:00Z", "2028-02-29T00:00:00Z"]
        );
        // The 29th of February: only leap years; 2100 is not one (divisible by 100, not 400).
        assert_eq!(
            runs("cron(0 0 29 2 ? *)", "UTC", "2026-01-01T00:00:00Z", 2),
            ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]
        );
        assert_eq!(runs("cron(0 0 29 2 ? *)", "UTC", "2097-01-01T00:00:00Z", 1), ["2104-02-29T00:00:00Z"]);
        assert_eq!(runs("cron(0 0 29 2 ? *)", "UTC", "1999-01-01T00:00:00Z", 1), ["2000-02-29T00:00:00Z"]);
        // The 31st skips short months.
        assert_eq!(
            runs("cron(0 0 31 * ? *)", "UTC", "2026-04-01T00:00:00Z", 2),
            ["2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z"]
        );
    }

    #[test]
    fn last_weekday_of_the_month() {
        // 5L: the last Friday. 2026-05-29, 2026-06-26, 2026-07-31.
        assert_eq!(
            runs("cron(0 18 ? * 6L *)", "UTC", "2026-05-01T00:00:00Z", 3),
            ["2026-05-29T18:00:00Z", "2026-06-26T18:00:00Z", "2026-07-31T18:00:00Z"]
        );
        assert_eq!(runs("cron(0 18 ? * FRIL *)", "UTC", "2026-05-01T00:00:00Z", 1), ["2026-05-29T18:00:00Z"]);
        // LW: the last weekday. May 2026 ends on a Sunday (31st): Friday the 29th.
        assert_eq!(
            runs("cron(0 0 LW * ? *)", "UTC", "2026-05-01T00:00:00Z", 2),
            ["2026-05-29T00:00:00Z", "2026-06-30T00:00:00Z"]
        );
    }

    #[test]
    fn nearest_weekday() {
        // 2026-08-15 is a Saturday: 15W is Friday the 14th. 2026-11-15 is a Sunday: Monday 16th.
        assert_eq!(runs("cron(0 0 15W 8 ? *)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-08-14T00:00:00Z"]);
        assert_eq!(runs("cron(0 0 15W 11 ? *)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-11-16T00:00:00Z"]);
        // A weekday stays: 2026-09-15 is a Tuesday.
        assert_eq!(runs("cron(0 0 15W 9 ? *)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-09-15T00:00:00Z"]);
        // 1W on a Saturday (2026-08-01) does not go back into July: Monday the 3rd.
        assert_eq!(runs("cron(0 0 1W 8 ? *)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-08-03T00:00:00Z"]);
        // 31W on a Sunday (2026-05-31) does not go into June: Friday the 29th.
        assert_eq!(runs("cron(0 0 31W 5 ? *)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-05-29T00:00:00Z"]);
        // 30W in February: no such day, no firing that month.
        assert_eq!(runs("cron(0 0 30W 2,3 ? *)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-03-30T00:00:00Z"]);
    }

    #[test]
    fn nth_weekday() {
        // 3#2: the second Tuesday. May 2026: the 12th; June: the 9th.
        assert_eq!(
            runs("cron(0 10 ? * 3#2 *)", "UTC", "2026-05-01T00:00:00Z", 2),
            ["2026-05-12T10:00:00Z", "2026-06-09T10:00:00Z"]
        );
        assert_eq!(
            runs("cron(0 10 ? * TUE#2 *)", "UTC", "2026-05-01T00:00:00Z", 1),
            ["2026-05-12T10:00:00Z"]
        );
        // The first Sunday when the month starts on one (2026-03-01).
        assert_eq!(runs("cron(0 10 ? * 1#1 *)", "UTC", "2026-02-15T00:00:00Z", 1), ["2026-03-01T10:00:00Z"]);
        // A fifth Friday exists only in some months: May 2026 (29th), then July (31st).
        assert_eq!(
            runs("cron(0 10 ? * 6#5 *)", "UTC", "2026-05-01T00:00:00Z", 2),
            ["2026-05-29T10:00:00Z", "2026-07-31T10:00:00Z"]
        );
    }

    #[test]
    fn years_bound_the_schedule() {
        assert_eq!(runs("cron(0 0 1 1 ? 2030)", "UTC", "2026-01-01T00:00:00Z", 2), ["2030-01-01T00:00:00Z"]);
        assert_eq!(
            runs("cron(0 0 1 1 ? 2027-2028)", "UTC", "2026-06-01T00:00:00Z", 3),
            ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]
        );
        assert!(sched("cron(0 0 1 1 ? 2020)", "UTC").next_after(ts("2026-01-01T00:00:00Z")).is_none());
        // A day that never comes.
        assert!(sched("cron(0 0 30 2 ? *)", "UTC").next_after(ts("2026-01-01T00:00:00Z")).is_none());
        assert_eq!(
            runs("cron(59 23 31 12 ? 2199)", "UTC", "2199-12-31T23:58:00Z", 2),
            ["2199-12-31T23:59:00Z"]
        );
    }

    #[test]
    fn time_zones_shift_the_instant() {
        // 09:00 in Paris is 07:00 UTC in summer, 08:00 in winter.
        assert_eq!(
            runs("cron(0 9 * * ? *)", "Europe/Paris", "2026-07-01T00:00:00Z", 1),
            ["2026-07-01T07:00:00Z"]
        );
        assert_eq!(
            runs("cron(0 9 * * ? *)", "Europe/Paris", "2026-12-01T00:00:00Z", 1),
            ["2026-12-01T08:00:00Z"]
        );
        // The day is the zone's day: 01:00 in Tokyo on the 2nd is 16:00 UTC on the 1st.
        assert_eq!(
            runs("cron(0 1 2 * ? *)", "Asia/Tokyo", "2026-05-01T00:00:00Z", 1),
            ["2026-05-01T16:00:00Z"]
        );
        assert_eq!(
            runs("cron(30 5 * * ? *)", "Asia/Kolkata", "2026-05-01T00:00:00Z", 1),
            ["2026-05-02T00:00:00Z"]
        );
    }

    #[test]
    fn dst_spring_forward_skips_the_missing_hour() {
        // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist that day.
        assert_eq!(
            runs("cron(30 2 * * ? *)", "America/New_York", "2026-03-07T00:00:00Z", 3),
            ["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"]
        );
        // Every 15 minutes: 01:45 EST is followed by 03:00 EDT, 15 real minutes later.
        assert_eq!(
            runs("cron(0/15 * * * ? *)", "America/New_York", "2026-03-08T06:40:00Z", 3),
            ["2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:15:00Z"]
        );
        // An hour that exists is unaffected.
        assert_eq!(
            runs("cron(0 3 * * ? *)", "America/New_York", "2026-03-08T00:00:00Z", 1),
            ["2026-03-08T07:00:00Z"]
        );
    }

    #[test]
    fn dst_fall_back_runs_the_repeated_hour_once() {
        // New York, 2026-11-01: 02:00 EDT goes back to 01:00 EST; 01:30 happens twice (05:30 and
        // 06:30 UTC). It runs once, the first time.
        assert_eq!(
            runs("cron(30 1 * * ? *)", "America/New_York", "2026-10-31T12:00:00Z", 3),
            ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", "2026-11-03T06:30:00Z"]
        );
        // Asked during the repeat (01:10 EST), the 01:30 that already ran is not run again.
        assert_eq!(
            runs("cron(30 1 * * ? *)", "America/New_York", "2026-11-01T06:10:00Z", 1),
            ["2026-11-02T06:30:00Z"]
        );
        // Hourly across the change: 01:00 EDT, then 02:00 EST two real hours later.
        assert_eq!(
            runs("cron(0 * * * ? *)", "America/New_York", "2026-11-01T04:30:00Z", 3),
            ["2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z"]
        );
        // Europe: 2026-10-25, 03:00 CEST back to 02:00 CET.
        assert_eq!(
            runs("cron(30 2 * * ? *)", "Europe/Paris", "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
        );
    }

    #[test]
    fn at_fires_once_in_its_zone() {
        let s = sched("at(2030-01-31T12:00:00)", "UTC");
        assert!(s.is_one_time());
        assert_eq!(s.next_after(ts("2026-01-01T00:00:00Z")), Some(ts("2030-01-31T12:00:00Z")));
        assert_eq!(s.next_after(ts("2030-01-31T12:00:00Z")), None);
        let ny = sched("at(2030-07-04T09:00:00)", "America/New_York");
        assert_eq!(ny.next_after(ts("2026-01-01T00:00:00Z")), Some(ts("2030-07-04T13:00:00Z")));
        // A time skipped by DST moves forward by the gap: 02:30 on 2026-03-08 is 03:30 EDT.
        let gap = sched("at(2026-03-08T02:30:00)", "America/New_York");
        assert_eq!(gap.next_after(ts("2026-01-01T00:00:00Z")), Some(ts("2026-03-08T07:30:00Z")));
        // A repeated time is the first one.
        let fold = sched("at(2026-11-01T01:30:00)", "America/New_York");
        assert_eq!(fold.next_after(ts("2026-01-01T00:00:00Z")), Some(ts("2026-11-01T05:30:00Z")));
        // Leap day.
        assert!(Schedule::parse("at(2028-02-29T00:00:00)", "UTC").is_ok());
        assert!(Schedule::parse("at(2027-02-29T00:00:00)", "UTC").is_err());
    }

    #[test]
    fn whitespace_is_tolerated() {
        assert_eq!(
            runs("  cron(0  12 * *  ? *) ", "UTC", "2026-05-10T11:00:00Z", 1),
            ["2026-05-10T12:00:00Z"]
        );
        assert!(Schedule::parse("rate( 5  minutes )", "UTC").is_ok());
    }

    /// An independent definition of the day fields, straight from AWS's wording, to check
    /// [`Cron::days`] against.
    fn day_matches(c: &Cron, d: Date) -> bool {
        let len = d.days_in_month();
        let weekday_of = |day: i8| weekday(Date::new(d.year(), d.month(), day).unwrap());
        let is_weekday = |day: i8| (2..=6).contains(&weekday_of(day));
        let dom = match &c.day_of_month {
            DayOfMonth::Any => true,
            DayOfMonth::Days(b) => b & (1 << d.day()) != 0,
            DayOfMonth::Last => d.day() == len,
            DayOfMonth::LastWeekday => is_weekday(d.day()) && (d.day() + 1..=len).all(|x| !is_weekday(x)),
            DayOfMonth::NearestWeekday(n) => {
                // The weekday of the month closest to the n-th.
                *n <= len
                    && is_weekday(d.day())
                    && (1..=len).filter(|x| is_weekday(*x)).all(|x| (x - n).abs() >= (d.day() - n).abs())
            }
        };
        let dow = match &c.day_of_week {
            DayOfWeek::Any => true,
            DayOfWeek::Days(b) => b & (1 << weekday(d)) != 0,
            DayOfWeek::Last(w) => weekday(d) == *w && d.day() + 7 > len,
            DayOfWeek::Nth(w, n) => weekday(d) == *w && (d.day() - 1) / 7 + 1 == *n,
        };
        dom && dow
    }

    /// Every firing over a whole year, against a walk over every minute of it: a minute fires
    /// when its local time matches and that local time has not fired yet (so a repeated hour
    /// runs once; a skipped hour has no minutes to walk).
    fn brute_force(e: &str, tz: &str, from: &str, to: &str) {
        let s = sched(e, tz);
        let zone = TimeZone::get(tz).unwrap();
        let Kind::Cron(c) = &s.kind else { unreachable!() };
        let mut expected = Vec::new();
        let mut fired = std::collections::HashSet::new();
        let (mut t, end) = (ts(from), ts(to));
        while t < end {
            let dt = zone.to_datetime(t);
            if day_matches(c, dt.date())
                && c.months & (1 << dt.month()) != 0
                && c.hours & (1 << dt.hour()) != 0
                && c.minutes & (1 << dt.minute()) != 0
                && fired.insert(dt)
            {
                expected.push(t);
            }
            t += jiff::SignedDuration::from_secs(60);
        }
        let mut got = Vec::new();
        let mut t = ts(from) - jiff::SignedDuration::from_secs(1);
        while let Some(n) = s.next_after(t).filter(|n| *n < end) {
            got.push(n);
            t = n;
        }
        assert!(!expected.is_empty(), "{e}");
        assert_eq!(got.len(), expected.len(), "{e} in {tz}");
        assert_eq!(got, expected, "{e} in {tz}");
    }

    #[test]
    fn agrees_with_brute_force_over_a_leap_year() {
        for e in [
            "cron(*/7 */5 ? * MON-FRI *)",
            "cron(0 0 L * ? *)",
            "cron(30 12 15W * ? *)",
            "cron(0 12 1W * ? *)",
            "cron(0 12 31W * ? *)",
            "cron(0 6 ? * 2#3 *)",
            "cron(0 6 ? * SUN#5 *)",
            "cron(45 23 ? * 1L *)",
            "cron(0 0 LW * ? *)",
            "cron(10 4 1,15,29 2-3 ? *)",
            "cron(0 0 ? * L *)",
        ] {
            brute_force(e, "UTC", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z");
        }
    }

    #[test]
    fn agrees_with_brute_force_across_dst_changes() {
        // New York in 2026: forward on March 8, back on November 1.
        for e in ["cron(0 * * * ? *)", "cron(30 1,2 * * ? *)", "cron(*/20 0-3 ? * SUN *)"] {
            brute_force(e, "America/New_York", "2026-03-01T00:00:00Z", "2026-03-15T00:00:00Z");
            brute_force(e, "America/New_York", "2026-10-25T00:00:00Z", "2026-11-08T00:00:00Z");
        }
        // Lord Howe Island moves by half an hour.
        brute_force(
            "cron(*/15 1-3 * * ? *)",
            "Australia/Lord_Howe",
            "2026-03-30T00:00:00Z",
            "2026-04-10T00:00:00Z",
        );
        brute_force(
            "cron(*/15 1-3 * * ? *)",
            "Australia/Lord_Howe",
            "2026-09-28T00:00:00Z",
            "2026-10-08T00:00:00Z",
        );
    }

    /// The day sets themselves, against dates computed by hand with jiff's calendar.
    #[test]
    fn day_sets_match_the_calendar() {
        let c = parse_cron("0 0 ? * 1 *").unwrap();
        for (y, m) in [(2026, 2), (2028, 2), (2026, 12), (2100, 2)] {
            let first = Date::new(y, m, 1).unwrap();
            let want: u32 = (1..=first.days_in_month())
                .filter(|d| Date::new(y, m, *d).unwrap().weekday() == jiff::civil::Weekday::Sunday)
                .fold(0, |acc, d| acc | 1 << d);
            assert_eq!(c.days(y, m), want, "{y}-{m}");
        }
    }
}
