//! Object ids: a visible prefix and a ULID (`dlv_01J…`), so ids sort by creation time and
//! say what they name.
//!
//! The ids that travel together through claiming and finishing — a delivery, its webhook and
//! the lease on it — each have their own type ([`DeliveryId`], [`WebhookId`], [`LeaseToken`]),
//! so a (token, webhook) pair cannot be passed where a (delivery, token) pair is meant. On
//! the wire and in the database they are plain strings.

use std::sync::Mutex;

use ulid::Generator;

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

/// A new id with the given prefix, e.g. `DeliveryId::generate()`. Ids made by one process are strictly
/// increasing, so "newest first" paging by id is exact within a process.
pub fn new_id(prefix: &str) -> String {
    let mut guard = GENERATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let generator = guard.get_or_insert_with(Generator::new);
    let ulid = generator.generate().unwrap_or_else(|_| ulid::Ulid::new());
    format!("{prefix}_{ulid}")
}

/// The lowest id with `prefix` made at `at` (ms since the epoch): as a "created before"
/// cursor, it stands for that time.
pub fn lowest_id_at(prefix: &str, at: i64) -> String {
    let ulid = ulid::Ulid::from_parts(at.max(0) as u64, 0);
    format!("{prefix}_{ulid}")
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix new ids of this kind start with (before the `_`).
            pub const PREFIX: &'static str = $prefix;

            /// A new, unique id of this kind.
            pub fn generate() -> Self {
                Self(new_id($prefix))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

typed_id!(
    /// A webhook's id (`wh_…`).
    WebhookId,
    "wh"
);
typed_id!(
    /// A delivery's id (`dlv_…`).
    DeliveryId,
    "dlv"
);
typed_id!(
    /// The token of one lease on a delivery (`lse_…`): whoever holds it may finish the attempt.
    LeaseToken,
    "lse"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_increase() {
        let a = DeliveryId::generate();
        let b = DeliveryId::generate();
        assert!(a.starts_with("dlv_") && a.len() == 4 + 26);
        assert!(b > a);
    }

    #[test]
    fn typed_ids_carry_their_kinds_prefix_and_are_plain_strings_on_the_wire() {
        let id = DeliveryId::generate();
        assert!(id.starts_with("dlv_"));
        assert!(WebhookId::generate().starts_with("wh_"));
        assert!(LeaseToken::generate().starts_with("lse_"));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<DeliveryId>(&json).unwrap(), id);
    }
}
