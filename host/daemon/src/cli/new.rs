//! `gleipnir plugin new NAME [--lang rust|python]`: a protection that builds
//! and whose test passes as written, to change into one's own: a Rust crate
//! on the SDK, or a Python module for componentize-py with a case file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

const CARGO_TOML: &str = include_str!("new/Cargo.toml.txt");
const LIB_RS: &str = include_str!("new/lib.rs.txt");
const README: &str = include_str!("new/README.md.txt");
const PYTHON_APP: &str = include_str!("new/python/app.py.txt");
const PYTHON_CASES: &str = include_str!("new/python/cases.json.txt");
const PYTHON_README: &str = include_str!("new/python/README.md.txt");
/// The contract a new protection speaks, copied into a Python one.
const CONTRACT: &str = include_str!("../../../../wit/0.2.0/protection.wit");

/// The languages `plugin new` writes a protection in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Lang {
    Rust,
    Python,
}

/// The SDK this binary was built with, when its sources are still there.
fn built_with_sdk() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk");
    sdk.join("Cargo.toml").is_file().then(|| sdk.canonicalize().ok()).flatten()
}

pub(crate) fn new(name: &str, dir: Option<PathBuf>, sdk: Option<PathBuf>, lang: Lang) -> anyhow::Result<ExitCode> {
    if !gleipnir_runtime::settings::is_kebab(name) || name.len() > 64 {
        bail!("`{name}` is not a protection name: lower-case kebab-case, e.g. `link-limit`");
    }
    if lang == Lang::Python {
        return new_python(name, dir.unwrap_or_else(|| PathBuf::from(name)));
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

/// A Python protection: `app.py`, the contract in `wit/`, a case file and a README.
fn new_python(name: &str, dir: PathBuf) -> anyhow::Result<ExitCode> {
    if dir.exists() {
        bail!("{} exists already; nothing was written", dir.display());
    }
    std::fs::create_dir_all(dir.join("wit")).with_context(|| format!("cannot create {}", dir.display()))?;
    let files = [
        ("app.py", PYTHON_APP),
        ("cases.json", PYTHON_CASES),
        ("README.md", PYTHON_README),
        ("wit/protection.wit", CONTRACT),
    ];
    for (file, template) in files {
        let path = dir.join(file);
        let text = if file.ends_with(".wit") { template.to_owned() } else { template.replace("{{NAME}}", name) };
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "Created the Python protection `{name}` in {}: README.md says how to build it with componentize-py \
         and test it with `gleipnir plugin test {name}.wasm cases.json --limit instances=16`.",
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
