//! Object ids: a visible prefix and a ULID (`dlv_01J…`), so ids sort by creation time and
//! say what they name.

use std::sync::Mutex;

use ulid::Generator;

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

/// A new id with the given prefix, e.g. `new_id("dlv")`. Ids made by one process are strictly
/// increasing, so "newest first" paging by id is exact within a process.
pub fn new_id(prefix: &str) -> String {
    let mut guard = GENERATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let generator = guard.get_or_insert_with(Generator::new);
    let ulid = generator.generate().unwrap_or_else(|_| ulid::Ulid::new());
    format!("{prefix}_{ulid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_increase() {
        let a = new_id("dlv");
        let b = new_id("dlv");
        assert!(a.starts_with("dlv_") && a.len() == 4 + 26);
        assert!(b > a);
    }
}
