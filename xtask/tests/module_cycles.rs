//! No two modules of a host crate depend on each other, directly or through
//! others (ARCHITECTURE.md). A module depends on another when its code (tests
//! aside) names it through `crate::` or `super::`; a module and its own
//! submodules are one family and not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `bot/commands/mod.rs` → `bot::commands`; `lib.rs` and `main.rs` are the root.
fn module_name(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    let name = parts.join("::");
    (!matches!(name.as_str(), "lib" | "main" | "")).then_some(name)
}

/// The module paths a source names, without its `#[cfg(test)] mod tests`.
fn named_paths(text: &str, module: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let parent: Vec<&str> = module.split("::").collect();
    let mut out = BTreeSet::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent[..parent.len() - 1].to_vec())] {
        for (at, _) in code.match_indices(prefix) {
            // Not the tail of a longer path (`super::super::x` is read from its first `super::`).
            if code[..at].ends_with("::") || code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let mut rest = &code[at + prefix.len()..];
            let mut path = base.iter().map(|p| p.to_string()).collect::<Vec<_>>();
            while let Some(after) = rest.strip_prefix("super::") {
                path.pop();
                rest = after;
            }
            add_paths(rest, &mut path, &mut out);
        }
    }
    out
}

/// Adds `base::a`, `base::a::b`, … for the path at the start of `rest`,
/// following `{x, y::z}` groups.
fn add_paths(rest: &str, base: &mut Vec<String>, out: &mut BTreeSet<String>) {
    let depth = base.len();
    let mut rest = rest;
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let mut level = 0;
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => level += 1,
                    '}' if level == 0 => {
                        add_paths(group[item_start..i].trim_start(), base, out);
                        break;
                    }
                    '}' => level -= 1,
                    ',' if level == 0 => {
                        add_paths(group[item_start..i].trim_start(), base, out);
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
            break;
        }
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let word = &rest[..end];
        if word.is_empty() || !word.starts_with(|c: char| c.is_lowercase()) {
            break;
        }
        base.push(word.to_owned());
        out.insert(base.join("::"));
        match rest[end..].strip_prefix("::") {
            Some(after) => rest = after,
            None => break,
        }
    }
    base.truncate(depth);
}

fn cycles_in(src: &Path) -> Vec<Vec<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut named: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        if let Some(module) = module_name(src, file) {
            named.insert(module.clone(), named_paths(&std::fs::read_to_string(file).unwrap(), &module));
        }
    }
    let modules: BTreeSet<String> = named.keys().cloned().collect();
    let family = |a: &str, b: &str| a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"));
    let edges: BTreeMap<String, BTreeSet<String>> = named
        .iter()
        .map(|(module, paths)| {
            let targets = paths
                .iter()
                .filter(|p| modules.contains(*p))
                .filter(|t| *t != module && !family(module, t))
                .cloned()
                .collect();
            (module.clone(), targets)
        })
        .collect();
    // A cycle: a module that reaches itself. Report each once, shortest first.
    let mut found: Vec<Vec<String>> = Vec::new();
    for start in edges.keys() {
        let mut queue = vec![vec![start.clone()]];
        let mut seen = BTreeSet::new();
        while let Some(path) = (!queue.is_empty()).then(|| queue.remove(0)) {
            let last = path.last().unwrap();
            for next in &edges[last] {
                if next == start {
                    let mut cycle = path.clone();
                    cycle.sort();
                    if !found.contains(&cycle) {
                        found.push(cycle);
                    }
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    queue.push(longer);
                }
            }
        }
    }
    found
}

#[test]
fn no_module_of_a_host_crate_depends_on_itself_through_others() {
    let host = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host");
    for krate in ["runtime", "daemon", "policy"] {
        let cycles = cycles_in(&host.join(krate).join("src"));
        assert!(cycles.is_empty(), "import cycles in host/{krate}: {cycles:?}");
    }
}

#[test]
fn a_cycle_is_found() {
    let dir = std::env::temp_dir().join(format!("gleipnir-cycles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bot")).unwrap();
    std::fs::write(dir.join("main.rs"), "mod a;\nmod b;\nmod bot;\n").unwrap();
    std::fs::write(dir.join("a.rs"), "use crate::{bot, b::{self, thing}};\n").unwrap();
    std::fs::write(dir.join("b.rs"), "pub fn thing() { crate::a::other() }\n").unwrap();
    std::fs::write(dir.join("bot/mod.rs"), "mod x;\nmod y;\n").unwrap();
    std::fs::write(dir.join("bot/x.rs"), "use super::y::Y;\n").unwrap();
    std::fs::write(dir.join("bot/y.rs"), "use super::Bot;\n#[cfg(test)]\nmod tests { use super::super::x; }\n")
        .unwrap();
    let cycles = cycles_in(&dir);
    assert_eq!(cycles, vec![vec!["a".to_owned(), "b".to_owned()]], "x → y only; y's tests and its parent do not count");
    std::fs::remove_dir_all(&dir).unwrap();
}
