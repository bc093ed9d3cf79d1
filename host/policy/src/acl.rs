//! Server rules become one `m.room.server_acl` content. The same rules
//! always give the same content (sorted, deduplicated), so an unchanged ACL
//! compares equal and is not sent again; the bot's own server is never denied.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};

use serde_json::{Value, json};

use crate::index::Index;
use crate::rule::{EntityKind, EntityRef};

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

/// The ACL for the server rules in effect. `own_server` (the bot's, the part
/// of its user id after the `:`, port and all) is never denied: a rule that
/// would deny it is left out and named. Homeservers match an ACL against a
/// server name without its port, ignoring case, so that is what the rules
/// are compared with; and when the bot's server is an IP literal, IP
/// literals stay allowed, or the ACL would deny it.
pub fn compile(index: &Index, own_server: &str) -> Compiled {
    let own = host_of(own_server);
    let mut deny = BTreeSet::new();
    let mut left_out = BTreeSet::new();
    for rule in index.rules(EntityKind::Server).filter(|r| r.recommendation.acts()) {
        match rule.entity() {
            entity @ EntityRef::Hashed(_) => {
                left_out.insert(format!("{entity}: a hashed server rule cannot be written into an ACL"));
            }
            entity if entity.matches(EntityKind::Server, &own) => {
                left_out.insert(format!("{entity}: it would deny this bot's own server {own}"));
            }
            EntityRef::Literal(s) | EntityRef::Glob(s) => {
                deny.insert(s.to_owned());
            }
        }
    }
    Compiled {
        acl: ServerAcl {
            allow: vec!["*".to_owned()],
            deny: deny.into_iter().collect(),
            allow_ip_literals: is_ip_literal(&own),
        },
        left_out: left_out.into_iter().collect(),
    }
}

/// A server name (`host[:port]`, the host a DNS name, an IPv4 address or an
/// IPv6 address in brackets) without its port, in lower case: what a
/// homeserver matches ACL entries against.
pub(crate) fn host_of(server_name: &str) -> String {
    let host = if server_name.starts_with('[') {
        // `[v6]:port`: the colons inside the brackets are the address's.
        server_name.find(']').map_or(server_name, |end| &server_name[..=end])
    } else if server_name.parse::<Ipv6Addr>().is_ok() {
        // Not a valid server name, but unambiguous: all of it is the address.
        server_name
    } else {
        server_name.split_once(':').map_or(server_name, |(host, _port)| host)
    };
    host.to_ascii_lowercase()
}

/// What `allow_ip_literals: false` denies: an IPv4 address, or anything in
/// brackets (an IPv6 address).
fn is_ip_literal(host: &str) -> bool {
    host.starts_with('[') || host.parse::<IpAddr>().is_ok()
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

    /// Compiles `rules` (all `m.ban`) for the bot's server `own` and renders
    /// the ACL as `deny=[…] ip_literals=BOOL left_out=N`.
    fn check(rules: &[&str], own: &str, expected: &str) {
        let bans: Vec<(&str, &str)> = rules.iter().map(|r| (*r, "m.ban")).collect();
        let compiled = compile(&index_of(&bans), own);
        let got = format!(
            "deny={:?} ip_literals={} left_out={}",
            compiled.acl.deny,
            compiled.acl.allow_ip_literals,
            compiled.left_out.len()
        );
        assert_eq!(got, expected, "rules {rules:?}, own server {own}");
    }

    #[test]
    fn the_own_server_is_compared_without_its_port() {
        // Synapse matches ACLs against the server name without the port.
        check(&["example.org", "evil.org"], "example.org:8448", r#"deny=["evil.org"] ip_literals=false left_out=1"#);
        check(&["EXAMPLE.org"], "Example.ORG:8448", "deny=[] ip_literals=false left_out=1");
        check(&["*.org"], "example.org:8448", "deny=[] ip_literals=false left_out=1");
        check(&["exa?ple.*"], "example.org:443", "deny=[] ip_literals=false left_out=1");
        check(&["*:8448"], "example.org:8448", r#"deny=["*:8448"] ip_literals=false left_out=0"#);
        check(&["example.org"], "example.org", "deny=[] ip_literals=false left_out=1");
        check(&["other.org"], "example.org:8448", r#"deny=["other.org"] ip_literals=false left_out=0"#);
    }

    #[test]
    fn an_ip_literal_own_server_keeps_ip_literals_allowed() {
        check(&["evil.org"], "127.0.0.1:8008", r#"deny=["evil.org"] ip_literals=true left_out=0"#);
        check(&["evil.org"], "127.0.0.1", r#"deny=["evil.org"] ip_literals=true left_out=0"#);
        check(&["127.0.0.1", "127.*"], "127.0.0.1:8008", "deny=[] ip_literals=true left_out=2");
        check(&["10.0.0.1"], "127.0.0.1:8008", r#"deny=["10.0.0.1"] ip_literals=true left_out=0"#);
        check(&["evil.org"], "[::1]:8448", r#"deny=["evil.org"] ip_literals=true left_out=0"#);
        check(&["evil.org"], "[::1]", r#"deny=["evil.org"] ip_literals=true left_out=0"#);
        check(&["[::1]", "[::*"], "[::1]:8448", "deny=[] ip_literals=true left_out=2");
        check(&["[2001:DB8::1]"], "[2001:db8::1]:8448", "deny=[] ip_literals=true left_out=1");
        // A name that looks like a number is not an address.
        check(&["evil.org"], "1.2.3.example:8448", r#"deny=["evil.org"] ip_literals=false left_out=0"#);
        check(&["evil.org"], "256.0.0.1", r#"deny=["evil.org"] ip_literals=false left_out=0"#);
    }

    #[test]
    fn server_names_split_into_host_and_port() {
        for (name, host) in [
            ("example.org", "example.org"),
            ("Example.org:8448", "example.org"),
            ("127.0.0.1:8008", "127.0.0.1"),
            ("[::1]:8448", "[::1]"),
            ("[::1]", "[::1]"),
            ("::1", "::1"),
            ("", ""),
            ("[::1", "[::1"),
        ] {
            assert_eq!(host_of(name), host, "{name}");
        }
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
