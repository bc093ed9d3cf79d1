//! `gleipnir plugin new NAME`: a protection crate that builds and whose test
//! passes as written, to change into one's own.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

const CARGO_TOML: &str = include_str!("new/Cargo.toml.txt");
const LIB_RS: &str = include_str!("new/lib.rs.txt");
const README: &str = include_str!("new/README.md.txt");

/// The SDK this binary was built with, when its sources are still there.
fn built_with_sdk() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk");
    sdk.join("Cargo.toml").is_file().then(|| sdk.canonicalize().ok()).flatten()
}

pub(crate) fn new(name: &str, dir: Option<PathBuf>, sdk: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    if !gleipnir_runtime::settings::is_kebab(name) || name.len() > 64 {
        bail!("`{name}` is not a protection name: lower-case kebab-case, e.g. `link-limit`");
    }
    let sdk = match sdk {
        Some(path) => path.canonicalize().with_context(|| format!("--sdk {}", path.display()))?,
        None => {
            built_with_sdk().context("the gleipnir-sdk sources are not where this binary was built: pass --sdk PATH")?
        }
    };
    if !sdk.join("Cargo.toml").is_file() {
        bail!("--sdk {}: no Cargo.toml there; give the gleipnir-sdk crate's folder", sdk.display());
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() {
        bail!("{} exists already; nothing was written", dir.display());
    }
    let fill = |template: &str| {
        template
            .replace("{{NAME}}", name)
            .replace("{{FILE}}", &name.replace('-', "_"))
            .replace("{{TYPE}}", &type_name(name))
            .replace("{{SDK}}", &sdk.display().to_string().replace('\\', "/"))
    };
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("cannot create {}", dir.display()))?;
    for (file, template) in [("Cargo.toml", CARGO_TOML), ("src/lib.rs", LIB_RS), ("README.md", README)] {
        let path = dir.join(file);
        std::fs::write(&path, fill(template)).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "Created the protection `{name}` in {}: `cargo test` there runs its test; \
         `cargo build --release --target wasm32-wasip2` builds it (README.md says the rest).",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `link-limit` → `LinkLimit`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}
