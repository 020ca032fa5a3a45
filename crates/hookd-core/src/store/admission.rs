//! The one rule for "may this lane take another slot now?", asked by claims (which deliveries
//! a claim round takes, which webhooks it leaves out) and by the hand-off of new deliveries
//! alike. A lane is a webhook. Per-device ordering adds a precedence, not a lane: which of a
//! device's deliveries may go is read from the store by the claim (ADR 13); how many of a
//! webhook's may is this rule.

/// Lanes with fewer attempts than this in flight may use the reserved slots.
pub const RESERVE_BELOW: usize = 16;

/// The limits on attempts in flight for one round of taking slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Slots free at the start of the round.
    pub free: usize,
    /// Attempts one lane may have in flight at once.
    pub per_lane: usize,
    /// Of the free slots, the last this many only go to lanes with fewer than
    /// [`RESERVE_BELOW`] in flight, so lanes holding many slow requests can never take every
    /// slot from the others.
    pub reserve: usize,
}

impl Admission {
    /// Whether a lane holding `held` attempts may take one more slot after `taken` of the free
    /// slots went this round. A half-open breaker lets one attempt at a time through.
    pub fn admits(&self, taken: usize, held: usize, half_open: bool) -> bool {
        let limit = if half_open { 1 } else { self.per_lane };
        let in_reserve = taken >= self.free.saturating_sub(self.reserve);
        taken < self.free && held < limit && (!in_reserve || held < RESERVE_BELOW)
    }

    /// Whether a lane holding `held` attempts can take no slot at all this round.
    pub fn blocks(&self, held: usize) -> bool {
        !self.admits(0, held, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: Admission = Admission {
        free: 10,
        per_lane: 20,
        reserve: 2,
    };

    #[test]
    fn a_lane_takes_a_slot_below_its_limit_while_slots_are_free() {
        assert!(RULE.admits(0, 19, false), "one below its own limit");
        assert!(!RULE.admits(0, 20, false), "at its own limit");
        assert!(!RULE.admits(10, 0, false), "no slot left");
        assert!(RULE.admits(9, 0, false), "the last slot");
        assert!(
            RULE.admits(0, 0, true) && !RULE.admits(0, 1, true),
            "half-open: one at a time"
        );
    }

    #[test]
    fn only_lanes_with_few_in_flight_take_the_reserve() {
        assert!(
            RULE.admits(7, RESERVE_BELOW, false),
            "before the reserve: many in flight is fine"
        );
        assert!(!RULE.admits(8, RESERVE_BELOW, false), "in the reserve: not with many");
        assert!(RULE.admits(8, RESERVE_BELOW - 1, false), "in the reserve: with few");
        let all_reserved = Admission { free: 2, ..RULE };
        assert!(all_reserved.blocks(RESERVE_BELOW) && !all_reserved.blocks(RESERVE_BELOW - 1));
        assert!(
            !Admission { free: 3, ..RULE }.blocks(RESERVE_BELOW),
            "one slot more than the reserve"
        );
        assert!(RULE.blocks(20) && !RULE.blocks(19));
    }
}
