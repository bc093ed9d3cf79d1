//! Query grants: the host queries that read beyond the event at hand (a
//! room's history, the members a rule matches, when an account was made) and that the operator grants
//! by name. `gleipnir:protection@0.1.0` cannot gain a capability case without
//! breaking plugins built against it, so these are not capabilities a
//! protection declares: the operator lists them among a protection's grants
//! and the host checks them at each call.

use std::fmt;

/// A host query that needs the operator's grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryGrant {
    /// `history`: a sender's recent events in a protected room.
    ReadHistory,
    /// `members-matching`: the members of protected rooms a rule names.
    ReadMembers,
    /// `account-created`: when an account of the bot's homeserver was made.
    ReadAccounts,
}

impl QueryGrant {
    /// Every query grant.
    pub const ALL: [QueryGrant; 3] = [QueryGrant::ReadHistory, QueryGrant::ReadMembers, QueryGrant::ReadAccounts];

    /// The name operators write in config.
    pub fn name(self) -> &'static str {
        match self {
            QueryGrant::ReadHistory => "read-history",
            QueryGrant::ReadMembers => "read-members",
            QueryGrant::ReadAccounts => "read-accounts",
        }
    }

    /// The query grant `text` names, if it names one.
    pub fn parse(text: &str) -> Option<QueryGrant> {
        QueryGrant::ALL.into_iter().find(|g| g.name() == text)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for QueryGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of query grants. Empty unless the operator says otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryGrants(u8);

impl QueryGrants {
    pub const EMPTY: QueryGrants = QueryGrants(0);

    pub fn all() -> Self {
        QueryGrant::ALL.into_iter().collect()
    }
    pub fn contains(self, grant: QueryGrant) -> bool {
        self.0 & grant.bit() != 0
    }
    pub fn insert(&mut self, grant: QueryGrant) {
        self.0 |= grant.bit();
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = QueryGrant> {
        QueryGrant::ALL.into_iter().filter(move |g| self.contains(*g))
    }
}

impl FromIterator<QueryGrant> for QueryGrants {
    fn from_iter<I: IntoIterator<Item = QueryGrant>>(iter: I) -> Self {
        let mut set = QueryGrants::EMPTY;
        for grant in iter {
            set.insert(grant);
        }
        set
    }
}

impl fmt::Display for QueryGrants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(QueryGrant::name).collect();
        f.write_str(if names.is_empty() { "nothing" } else { "" })?;
        f.write_str(&names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sets_print_in_order() {
        for grant in QueryGrant::ALL {
            assert_eq!(QueryGrant::parse(grant.name()), Some(grant));
        }
        assert_eq!(QueryGrant::parse("redact"), None);
        assert_eq!(QueryGrants::EMPTY.to_string(), "nothing");
        let both: QueryGrants = [QueryGrant::ReadMembers, QueryGrant::ReadHistory].into_iter().collect();
        assert_eq!(both.to_string(), "read-history, read-members");
        assert_ne!(both, QueryGrants::all());
        assert_eq!(QueryGrants::all().to_string(), "read-history, read-members, read-accounts");
    }
}
