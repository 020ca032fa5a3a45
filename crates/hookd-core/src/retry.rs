//! The retry policy: when to try a failed delivery again. Pure: the caller supplies the
//! jitter and whatever `Retry-After` the receiver sent.

use std::time::Duration;

/// The longest `Retry-After` hookd honours. A receiver asking for more is retried after a day,
/// which keeps one bad header from parking a delivery for months.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(24 * 3600);

/// The default schedule after the immediate first attempt: 5s, 5m, 30m, 2h, 5h, 10h, 10h.
pub fn default_schedule() -> Vec<Duration> {
    [5, 300, 1800, 7200, 18000, 36000, 36000]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}

/// Delay before the next attempt after `failures` failed ones (≥ 1), or `None` when the
/// schedule is exhausted and the delivery is dead.
///
/// Each step gets ±20 % jitter (`jitter` in [0, 1)). A `Retry-After` pushes the retry at
/// least that far (capped at [`RETRY_AFTER_MAX`]); it never adds or removes an attempt.
pub fn next_delay(
    schedule: &[Duration],
    failures: u32,
    jitter: f64,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let step = *schedule.get((failures as usize).checked_sub(1)?)?;
    let planned = step.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0));
    Some(match retry_after {
        Some(asked) => planned.max(asked.min(RETRY_AFTER_MAX)),
        None => planned,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn retry_after_is_honoured_up_to_a_day() {
        assert_eq!(RETRY_AFTER_MAX, Duration::from_secs(86_400));
        let schedule = [Duration::from_secs(5)];
        let day = Duration::from_secs(86_400);
        assert_eq!(next_delay(&schedule, 1, 0.5, Some(day)), Some(day));
        assert_eq!(next_delay(&schedule, 1, 0.5, Some(day * 3)), Some(day), "capped");
        assert_eq!(
            next_delay(&schedule, 1, 0.5, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(5)),
            "never sooner"
        );
    }

    #[test]
    fn the_schedule_ends_in_none() {
        let schedule = default_schedule();
        assert_eq!(next_delay(&schedule, 1, 0.5, None), Some(Duration::from_secs(5)));
        assert_eq!(next_delay(&schedule, 7, 0.5, None), Some(Duration::from_secs(36000)));
        assert_eq!(next_delay(&schedule, 8, 0.5, None), None);
        assert_eq!(next_delay(&[], 1, 0.5, None), None);
    }

    proptest! {
        #[test]
        fn jitter_stays_within_twenty_percent(failures in 1u32..8, jitter in 0.0f64..1.0) {
            let schedule = default_schedule();
            let base = schedule[failures as usize - 1];
            let d = next_delay(&schedule, failures, jitter, None).unwrap();
            prop_assert!(d >= base.mul_f64(0.8) && d <= base.mul_f64(1.2));
        }

        #[test]
        fn retry_after_only_postpones(failures in 1u32..10, jitter in 0.0f64..1.0, asked in 0u64..10_000_000) {
            let schedule = default_schedule();
            let planned = next_delay(&schedule, failures, jitter, None);
            let honoured = next_delay(&schedule, failures, jitter, Some(Duration::from_secs(asked)));
            prop_assert_eq!(planned.is_some(), honoured.is_some());
            if let (Some(p), Some(h)) = (planned, honoured) {
                prop_assert!(h >= p);
                prop_assert!(h >= Duration::from_secs(asked).min(RETRY_AFTER_MAX));
            }
        }
    }
}
