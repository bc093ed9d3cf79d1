//! Policy lists, the way Matrix communities share moderation decisions:
//! rules read from policy rooms' state ([`rule`]), kept per list with every
//! change as a delta ([`list`]), indexed across lists for fast matching
//! ([`index`]), turned into bans for members ([`apply`]) and into server
//! ACLs ([`acl`]).
//!
//! Pure: no Matrix, no I/O, no clock. The daemon feeds state events in and
//! carries out what comes out.
//!
//! ```
//! use gleipnir_policy::{Index, Members, PolicyList, EntityKind, bans_for};
//!
//! let mut list = PolicyList::new("!policies:example.org");
//! let delta = list.apply_all([(
//!     "m.policy.rule.user",
//!     "ban:@*:spam.example",
//!     r#"{"entity": "@*:spam.example", "recommendation": "m.ban", "reason": "spam"}"#,
//! )]);
//! let mut index = Index::new();
//! index.apply(&delta);
//! assert!(index.acting(EntityKind::User, "@bot:spam.example").is_some());
//!
//! let mut members = Members::new();
//! members.set("!room:example.org", "@bot:spam.example", true);
//! let bans = bans_for(&delta, &members);
//! assert_eq!(bans[0].user, "@bot:spam.example");
//! ```

pub mod acl;
pub mod apply;
pub mod glob;
pub mod index;
pub mod list;
pub mod rule;

#[cfg(test)]
mod fuzz;

/// Fuzz tests bound the memory each input takes, so this test binary counts
/// allocations.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: gleipnir_fuzz::CountingAllocator = gleipnir_fuzz::CountingAllocator;

pub use acl::{ServerAcl, compile as compile_acl};
pub use apply::{Ban, Members, bans_for};
pub use index::Index;
pub use list::{Change, Delta, PolicyList};
pub use rule::{Entity, EntityKind, EntityRef, Recommendation, Rule};
