//! UTC calendar arithmetic for daily allowances and budget periods: which days a period covers
//! and when it resets. Weeks start on Monday (ISO 8601).

use time::{Date, Duration, Month, OffsetDateTime};

use crate::config::BudgetPeriod;

/// Seconds in a day.
const DAY: u64 = 86_400;

/// A moment, as the limits see it.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Unix seconds.
    pub unix: u64,
}

impl Now {
    pub fn current() -> Self {
        Now {
            unix: crate::clock::unix_now(),
        }
    }

    /// Days since 1970-01-01.
    pub fn day(&self) -> u32 {
        (self.unix / DAY) as u32
    }

    /// The days `first..=today` of the period containing today, and the day the next starts.
    pub fn period(&self, period: BudgetPeriod) -> (u32, u32) {
        let today = self.day();
        match period {
            BudgetPeriod::Day => (today, today + 1),
            BudgetPeriod::Week => {
                // 1970-01-01 was a Thursday: three days after a Monday.
                let first = today - (today + 3) % 7;
                (first, first + 7)
            }
            BudgetPeriod::Month => {
                let date = date(today);
                let first = date.replace_day(1).unwrap_or(date);
                let next = match date.month() {
                    Month::December => Date::from_calendar_date(date.year() + 1, Month::January, 1),
                    month => Date::from_calendar_date(date.year(), month.next(), 1),
                }
                .unwrap_or(first + Duration::days(31));
                (day_number(first), day_number(next))
            }
        }
    }

    /// Seconds from now until the start of `day`.
    pub fn until(&self, day: u32) -> u64 {
        (u64::from(day) * DAY).saturating_sub(self.unix)
    }
}

fn date(day: u32) -> Date {
    let start = OffsetDateTime::UNIX_EPOCH.date();
    start + Duration::days(i64::from(day))
}

fn day_number(date: Date) -> u32 {
    (date - OffsetDateTime::UNIX_EPOCH.date())
        .whole_days()
        .max(0) as u32
}

/// The start of `day` in RFC 3339, e.g. `2026-12-01T00:00:00Z`.
pub fn midnight(day: u32) -> String {
    let date = date(day);
    format!(
        "{:04}-{:02}-{:02}T00:00:00Z",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-26T16:55:35Z, a Thursday.
    const THURSDAY: Now = Now {
        unix: 1_795_712_135,
    };

    #[test]
    fn periods_cover_the_calendar() {
        let today = THURSDAY.day();
        assert_eq!(midnight(today), "2026-11-26T00:00:00Z");
        assert_eq!(THURSDAY.period(BudgetPeriod::Day), (today, today + 1));
        let (monday, next) = THURSDAY.period(BudgetPeriod::Week);
        assert_eq!(midnight(monday), "2026-11-23T00:00:00Z");
        assert_eq!(midnight(next), "2026-11-30T00:00:00Z");
        let (first, next) = THURSDAY.period(BudgetPeriod::Month);
        assert_eq!(midnight(first), "2026-11-01T00:00:00Z");
        assert_eq!(midnight(next), "2026-12-01T00:00:00Z");
        let december = Now {
            unix: 1_798_675_200,
        }; // 2026-12-31T00:00:00Z
        assert_eq!(
            midnight(december.period(BudgetPeriod::Month).1),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            THURSDAY.until(today + 1),
            86_400 - (16 * 3600 + 55 * 60 + 35)
        );
    }
}
