//! Deliveries that join a pending one instead of going out alone: batch windows (records of
//! separate commits share a batch) and debounce (at most one delivery per device per
//! interval). Backends look up the newest delivery of the planned one's key and do what
//! [`place`] says, in the ingest transaction; the arithmetic lives here, once.

use std::borrow::Cow;

use crate::clock::Millis;
use crate::id::DeliveryId;

use super::NewDelivery;

/// How a planned delivery joins the open delivery of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Its records are appended, up to `max` per delivery; with `early`, a full delivery is
    /// due at once (a batch window ends when the batch is full).
    Append { max: usize, early: bool },
    /// Only the newest record is kept: the one of greater `rank` (the device's time of it),
    /// the later arrival on a tie or when either has none.
    Latest { rank: Option<Millis> },
}

/// What a planned delivery needs to join others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coalescing {
    /// Deliveries of one webhook with the same key join while the newest is open.
    pub key: String,
    pub merge: Merge,
    /// The least time between the first due times of successive deliveries of the key: a
    /// debounce's interval, 0 for a batch window.
    pub spacing: Millis,
    /// Records of the same commit the planner already left out for this one's (`Latest`).
    pub superseded: u32,
}

/// The newest stored delivery of a key, as [`place`] needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newest {
    pub id: DeliveryId,
    /// Pending, never attempted, not leased and not released: records may still join it.
    pub open: bool,
    pub record_ids: Vec<String>,
    /// When it was first due.
    pub planned_at: Millis,
    pub next_attempt_at: Millis,
    pub rank: Option<Millis>,
    pub coalesced: u32,
    pub superseded: u32,
}

/// What the backend writes for a planned delivery with a coalescing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement<'a> {
    /// Insert it with these records (the planned ones), first due at `due_at`.
    Insert(Insert<'a>),
    /// Change the open delivery to `open`; lower the reference count of each `dropped`
    /// record (no delivery carries it now); insert `rest`, the records that did not fit.
    Join {
        open: Newest,
        dropped: Vec<String>,
        rest: Option<Insert<'a>>,
    },
}

/// A delivery row to insert: its records, first due time, and coalescing columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert<'a> {
    pub record_ids: Cow<'a, [String]>,
    pub due_at: Millis,
    pub rank: Option<Millis>,
    pub coalesced: u32,
    pub superseded: u32,
}

impl<'a> Insert<'a> {
    /// A delivery as planned, without a coalescing key.
    pub fn planned(delivery: &'a NewDelivery) -> Self {
        Self {
            record_ids: Cow::Borrowed(&delivery.record_ids),
            due_at: delivery.due_at,
            rank: None,
            coalesced: delivery.record_ids.len() as u32,
            superseded: 0,
        }
    }
}

/// Where `planned` goes, given the newest delivery of its key (if any), at `now`.
pub fn place<'a>(
    planned: &'a NewDelivery,
    coalescing: &Coalescing,
    newest: Option<&Newest>,
    now: Millis,
) -> Placement<'a> {
    let spaced = |due: Millis| match newest {
        Some(last) => due.max(last.planned_at.saturating_add(coalescing.spacing)),
        None => due,
    };
    let fresh = |record_ids: Cow<'a, [String]>, rank: Option<Millis>, superseded: u32| {
        let full_early = matches!(coalescing.merge, Merge::Append { max, early: true } if record_ids.len() >= max);
        Insert {
            due_at: spaced(if full_early { now } else { planned.due_at }),
            coalesced: record_ids.len() as u32 + superseded,
            record_ids,
            rank,
            superseded,
        }
    };
    let Some(open) = newest.filter(|n| n.open) else {
        let rank = match coalescing.merge {
            Merge::Latest { rank } => rank,
            Merge::Append { .. } => None,
        };
        return Placement::Insert(fresh(Cow::Borrowed(&planned.record_ids), rank, coalescing.superseded));
    };
    let mut joined = open.clone();
    match coalescing.merge {
        Merge::Latest { rank } => {
            let newer = match (rank, open.rank) {
                (Some(new), Some(old)) => new >= old,
                _ => true,
            };
            let dropped = if newer {
                joined.rank = rank;
                std::mem::replace(&mut joined.record_ids, planned.record_ids.clone())
            } else {
                planned.record_ids.clone()
            };
            joined.coalesced += planned.record_ids.len() as u32 + coalescing.superseded;
            joined.superseded += dropped.len() as u32 + coalescing.superseded;
            Placement::Join {
                open: joined,
                dropped,
                rest: None,
            }
        }
        Merge::Append { max, early } => {
            let room = max.saturating_sub(open.record_ids.len()).min(planned.record_ids.len());
            joined.record_ids.extend_from_slice(&planned.record_ids[..room]);
            joined.coalesced += room as u32;
            if early && joined.record_ids.len() >= max {
                joined.next_attempt_at = joined.next_attempt_at.min(now);
            }
            let left = &planned.record_ids[room..];
            let rest = (!left.is_empty()).then(|| {
                let mut rest = fresh(Cow::Borrowed(left), None, 0);
                rest.due_at = rest.due_at.max(open.planned_at.saturating_add(coalescing.spacing));
                rest
            });
            Placement::Join {
                open: joined,
                dropped: Vec::new(),
                rest,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 10_000;

    fn planned(ids: &[&str], due_at: Millis) -> NewDelivery {
        NewDelivery {
            id: DeliveryId::generate(),
            workspace_id: "ws".into(),
            webhook_id: "wh".into(),
            record_ids: ids.iter().map(|s| s.to_string()).collect(),
            created_at: NOW,
            due_at,
            ordering_key: None,
            coalescing: None,
            lease: None,
        }
    }

    fn newest(ids: &[&str], open: bool, planned_at: Millis, rank: Option<Millis>) -> Newest {
        Newest {
            id: DeliveryId::generate(),
            open,
            record_ids: ids.iter().map(|s| s.to_string()).collect(),
            planned_at,
            next_attempt_at: planned_at,
            rank,
            coalesced: ids.len() as u32,
            superseded: 0,
        }
    }

    fn coalescing(merge: Merge, spacing: Millis) -> Coalescing {
        Coalescing {
            key: "dev-1".into(),
            merge,
            spacing,
            superseded: 0,
        }
    }

    #[test]
    fn a_batch_window_fills_the_open_batch_and_is_due_at_once_when_full() {
        let window = coalescing(Merge::Append { max: 3, early: true }, 0);
        let open = newest(&["r1"], true, NOW + 2000, None);
        let three = planned(&["r2", "r3", "r4"], NOW + 2000);
        let Placement::Join { open: joined, rest, .. } = place(&three, &window, Some(&open), NOW) else {
            panic!("joins the open batch")
        };
        assert_eq!(joined.record_ids, ["r1", "r2", "r3"]);
        assert_eq!(joined.next_attempt_at, NOW, "full: due at once");
        let rest = rest.expect("the record that did not fit");
        assert_eq!(
            (&rest.record_ids[..], rest.due_at),
            (&["r4".to_string()][..], NOW + 2000)
        );
        let one = planned(&["r1"], NOW + 2000);
        let Placement::Insert(first) = place(&one, &window, None, NOW) else {
            panic!("nothing to join")
        };
        assert_eq!(first.due_at, NOW + 2000, "waits for company");
    }

    #[test]
    fn a_debounce_keeps_the_newest_by_device_time_and_spaces_deliveries() {
        let debounce = |rank| coalescing(Merge::Latest { rank }, 1000);
        let open = newest(&["old"], true, NOW, Some(500));
        let Placement::Join {
            open: joined, dropped, ..
        } = place(&planned(&["new"], NOW), &debounce(Some(600)), Some(&open), NOW)
        else {
            panic!("joins")
        };
        assert_eq!(
            (joined.record_ids, dropped),
            (vec!["new".to_string()], vec!["old".to_string()])
        );
        assert_eq!((joined.coalesced, joined.superseded), (2, 1));
        let Placement::Join {
            open: kept, dropped, ..
        } = place(&planned(&["late"], NOW), &debounce(Some(400)), Some(&open), NOW)
        else {
            panic!("joins")
        };
        assert_eq!(
            (kept.record_ids, dropped),
            (vec!["old".to_string()], vec!["late".to_string()])
        );
        let sent = newest(&["old"], false, NOW - 200, Some(500));
        let new = planned(&["new"], NOW);
        let Placement::Insert(next) = place(&new, &debounce(None), Some(&sent), NOW) else {
            panic!("the newest went out")
        };
        assert_eq!(next.due_at, NOW + 800, "one interval after the last one was due");
    }
}
