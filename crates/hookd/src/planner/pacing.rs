//! Cutting a paced webhook's matches into deliveries: per-device lanes in the devices' own
//! time order (`ordering: "device"`), a debounce's one delivery per device per interval
//! (`min_interval`, `coalesce`), and batches that wait for company (`batch_window`). What
//! joins what across commits is the store's part ([`hookd_core::store::place`]).

use std::collections::BTreeMap;

use hookd_core::clock::Millis;
use hookd_core::record::RecordIn;
use hookd_core::store::{Coalescing, Merge, NewDelivery};
use hookd_core::webhook::{Coalesce, Ordering, WebhookSpec};

/// Whether the webhook's deliveries are anything but "now, in any order".
pub(super) fn paced(spec: &WebhookSpec) -> bool {
    let pacing = &spec.pacing;
    pacing.ordering == Ordering::Device || pacing.debounced() || !pacing.batch_window.is_zero()
}

/// Appends the deliveries of `matched` (records and their ids, in arrival order) to `out`;
/// `delivery` makes one due now with no keys.
pub(super) fn cut(
    spec: &WebhookSpec,
    matched: &[(&RecordIn, &str)],
    now: Millis,
    delivery: impl Fn(Vec<String>) -> NewDelivery,
    out: &mut Vec<NewDelivery>,
) {
    let pacing = &spec.pacing;
    let per_device = pacing.ordering == Ordering::Device || pacing.debounced();
    // A record without a device shares the lane of the others without one.
    let mut lanes: BTreeMap<&str, Vec<(Option<Millis>, &str)>> = BTreeMap::new();
    for (record, id) in matched {
        let lane = if per_device {
            record.device_id().unwrap_or("")
        } else {
            ""
        };
        lanes.entry(lane).or_default().push((record.device_time(), id));
    }
    let max = spec.records_per_delivery();
    let spacing = pacing.min_interval.as_millis() as Millis;
    for (lane, mut records) in lanes {
        if per_device {
            in_device_order(&mut records);
        }
        let ordering_key = (pacing.ordering == Ordering::Device).then(|| lane.to_owned());
        let keyed = |ids: &[(Option<Millis>, &str)], coalescing: Option<Coalescing>, due_at: Millis| {
            let mut d = delivery(ids.iter().map(|(_, id)| (*id).to_owned()).collect());
            d.due_at = due_at;
            d.ordering_key = ordering_key.clone();
            d.coalescing = coalescing;
            d
        };
        let coalescing = |merge: Merge, spacing: Millis, superseded: u32| Coalescing {
            key: lane.to_owned(),
            merge,
            spacing,
            superseded,
        };
        if pacing.debounced() && pacing.coalesce == Coalesce::Latest {
            // The newest comes last in device order; the others are superseded now.
            let (rank, _) = *records.last().expect("a lane has records");
            let superseded = records.len() as u32 - 1;
            let merge = Merge::Latest { rank };
            out.push(keyed(
                &records[records.len() - 1..],
                Some(coalescing(merge, spacing, superseded)),
                now,
            ));
        } else if pacing.debounced() {
            let merge = Merge::Append { max, early: false };
            out.extend(
                records
                    .chunks(max)
                    .map(|chunk| keyed(chunk, Some(coalescing(merge, spacing, 0)), now)),
            );
        } else if !pacing.batch_window.is_zero() {
            let merge = Merge::Append { max, early: true };
            let due = now + pacing.batch_window.as_millis() as Millis;
            out.extend(
                records
                    .chunks(max)
                    .map(|chunk| keyed(chunk, Some(coalescing(merge, 0, 0)), due)),
            );
        } else {
            out.extend(records.chunks(max).map(|chunk| keyed(chunk, None, now)));
        }
    }
}

/// Sorts a device's records by their own time, then arrival. A record without a time keeps
/// its place after the one that arrived before it.
fn in_device_order(records: &mut [(Option<Millis>, &str)]) {
    let mut last = Millis::MIN;
    let mut keyed: Vec<(Millis, usize)> = records
        .iter()
        .enumerate()
        .map(|(i, (time, _))| {
            last = time.unwrap_or(last);
            (last, i)
        })
        .collect();
    keyed.sort();
    let sorted: Vec<(Option<Millis>, &str)> = keyed.iter().map(|(_, i)| records[*i]).collect();
    records.copy_from_slice(&sorted);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_s_records_go_by_their_own_time_then_arrival() {
        let mut records = vec![
            (Some(30), "c"),
            (Some(10), "a"),
            (None, "a2"),
            (Some(20), "b"),
            (Some(10), "a3"),
        ];
        in_device_order(&mut records);
        let ids: Vec<&str> = records.iter().map(|(_, id)| *id).collect();
        assert_eq!(ids, ["a", "a2", "a3", "b", "c"]);
    }
}
