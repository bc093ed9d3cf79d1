//! Server rules become one `m.room.server_acl` content. The same rules
//! always give the same content (sorted, deduplicated), so an unchanged ACL
//! compares equal and is not sent again; the bot's own server is never denied.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::index::Index;
use crate::rule::{Entity, EntityKind};

/// What goes into `m.room.server_acl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAcl {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub allow_ip_literals: bool,
}

/// The ACL, and the server rules left out of it with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub acl: ServerAcl,
    pub left_out: Vec<String>,
}

impl ServerAcl {
    pub fn content(&self) -> Value {
        json!({ "allow": self.allow, "deny": self.deny, "allow_ip_literals": self.allow_ip_literals })
    }

    /// Reads an ACL event's content; `None` if it is not one.
    pub fn from_content(content: &Value) -> Option<ServerAcl> {
        let list = |key: &str| -> Option<Vec<String>> {
            match content.get(key) {
                None => Some(Vec::new()),
                Some(v) => v.as_array()?.iter().map(|s| s.as_str().map(str::to_owned)).collect(),
            }
        };
        Some(ServerAcl {
            allow: list("allow")?,
            deny: list("deny")?,
            allow_ip_literals: content.get("allow_ip_literals").and_then(Value::as_bool).unwrap_or(true),
        })
    }

    /// Same meaning, whatever the order of entries.
    pub fn same_as(&self, other: &ServerAcl) -> bool {
        let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<String>>();
        set(&self.allow) == set(&other.allow)
            && set(&self.deny) == set(&other.deny)
            && self.allow_ip_literals == other.allow_ip_literals
    }
}

/// The ACL for the server rules in effect. `own_server` (the bot's) is never
/// denied: a rule that would deny it is left out and named.
pub fn compile(index: &Index, own_server: &str) -> Compiled {
    let own = own_server.to_ascii_lowercase();
    let mut deny = BTreeSet::new();
    let mut left_out = BTreeSet::new();
    for rule in index.rules(EntityKind::Server).filter(|r| r.recommendation.acts()) {
        match &rule.entity {
            Entity::Hashed(_) => {
                left_out.insert(format!("{}: a hashed server rule cannot be written into an ACL", rule.entity));
            }
            entity if entity.matches(EntityKind::Server, &own) => {
                left_out.insert(format!("{entity}: it would deny this bot's own server {own}"));
            }
            Entity::Literal(s) => {
                deny.insert(s.clone());
            }
            Entity::Glob(g) => {
                deny.insert(g.as_str().to_owned());
            }
        }
    }
    Compiled {
        acl: ServerAcl { allow: vec!["*".to_owned()], deny: deny.into_iter().collect(), allow_ip_literals: false },
        left_out: left_out.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::PolicyList;

    fn index_of(servers: &[(&str, &str)]) -> Index {
        let mut list = PolicyList::new("!list");
        let mut index = Index::new();
        for (i, (entity, recommendation)) in servers.iter().enumerate() {
            let content = format!(r#"{{"entity": "{entity}", "recommendation": "{recommendation}"}}"#);
            if let Some(change) = list.apply("m.policy.rule.server", &format!("k{i}"), &content) {
                index.apply_change(&change);
            }
        }
        index
    }

    #[test]
    fn server_rules_become_a_sorted_deny_list() {
        let index = index_of(&[
            ("evil.example", "m.ban"),
            ("*.bad.example", "m.takedown"),
            ("EVIL.example", "org.matrix.mjolnir.ban"),
            ("watch.example", "org.example.watch"),
        ]);
        let compiled = compile(&index, "good.example");
        assert_eq!(compiled.acl.deny, ["*.bad.example", "evil.example"]);
        assert_eq!(compiled.acl.allow, ["*"]);
        assert!(compiled.left_out.is_empty());
        assert_eq!(
            compiled.acl.content(),
            json!({"allow": ["*"], "deny": ["*.bad.example", "evil.example"], "allow_ip_literals": false})
        );
    }

    #[test]
    fn the_own_server_is_never_denied() {
        let index =
            index_of(&[("*", "m.ban"), ("good.example", "m.ban"), ("*.example", "m.ban"), ("evil.org", "m.ban")]);
        let compiled = compile(&index, "Good.Example");
        assert_eq!(compiled.acl.deny, ["evil.org"]);
        assert_eq!(compiled.left_out.len(), 3, "{:?}", compiled.left_out);
        assert!(compiled.left_out.iter().all(|l| l.contains("own server good.example")));
    }

    #[test]
    fn the_same_rules_give_an_equal_acl() {
        let a = compile(&index_of(&[("a.example", "m.ban"), ("b.example", "m.ban")]), "me.example").acl;
        let b = compile(&index_of(&[("b.example", "m.ban"), ("a.example", "m.ban")]), "me.example").acl;
        assert_eq!(a, b);
        let reordered = ServerAcl::from_content(
            &json!({"allow": ["*"], "deny": ["b.example", "a.example"], "allow_ip_literals": false}),
        )
        .unwrap();
        assert!(a.same_as(&reordered));
        let edited = ServerAcl::from_content(&json!({"allow": ["*"], "deny": ["a.example"]})).unwrap();
        assert!(!a.same_as(&edited));
        assert!(ServerAcl::from_content(&json!({"deny": "nope"})).is_none());
    }
}
