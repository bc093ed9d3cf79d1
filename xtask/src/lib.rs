//! Building plugins for `wasm32-wasip2`, shared by `cargo xtask` and the
//! tests crate's build script so both build the same way into the same place.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target every protection is built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";
/// The cargo profile plugins are built with (see the workspace Cargo.toml).
pub const PROFILE: &str = "plugin";

/// One plugin crate.
#[derive(Debug, Clone)]
pub struct PluginCrate {
    /// The package name, e.g. `flooding` or `bad-spec`.
    pub name: String,
    pub dir: PathBuf,
}

impl PluginCrate {
    /// Where cargo leaves the built component.
    pub fn artifact(&self, target_dir: &Path) -> PathBuf {
        target_dir.join(WASM_TARGET).join(PROFILE).join(format!("{}.wasm", self.name.replace('-', "_")))
    }
}

/// The plugin crates directly under `dir` (each a folder with a Cargo.toml).
pub fn plugin_crates(dir: &Path) -> Result<Vec<PluginCrate>, String> {
    let mut crates = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?.path();
        let manifest = path.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text =
            std::fs::read_to_string(&manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
        let name = package_name(&text).ok_or_else(|| format!("{}: no package name", manifest.display()))?;
        crates.push(PluginCrate { name, dir: path });
    }
    crates.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(crates)
}

/// `name = "…"` in the `[package]` table, without a TOML parser.
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(rest) = line.strip_prefix("name") {
            let value = rest.trim_start().strip_prefix('=')?.trim();
            return Some(value.trim_matches('"').to_owned());
        }
    }
    None
}

/// Installs the wasm target for the pinned toolchain if it is missing
/// (rustup does not do it by itself when cargo runs).
pub fn ensure_wasm_target(workspace: &Path) -> Result<(), String> {
    let sysroot = Command::new(rustc()).args(["--print", "sysroot"]).current_dir(workspace).output();
    if let Ok(out) = &sysroot {
        let root = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if root.join("lib/rustlib").join(WASM_TARGET).join("lib").is_dir() {
            return Ok(());
        }
    }
    eprintln!("installing the {WASM_TARGET} target (rustup toolchain install)");
    let status = Command::new("rustup")
        .args(["toolchain", "install"])
        .current_dir(workspace)
        .env_remove("RUSTUP_TOOLCHAIN")
        .status()
        .map_err(|e| {
            format!(
                "cannot run rustup to install {WASM_TARGET}: {e}; install it with `rustup target add {WASM_TARGET}`"
            )
        })?;
    if !status.success() {
        return Err(format!(
            "`rustup toolchain install` failed; install the target with `rustup target add {WASM_TARGET}`"
        ));
    }
    Ok(())
}

fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned())
}

/// Builds the plugins in release (`plugin` profile) for `wasm32-wasip2` into
/// `target_dir`, and returns each plugin with the path of its component.
/// Cargo skips what is up to date, so this is cheap when nothing changed.
pub fn build_plugins(
    workspace: &Path,
    crates: &[PluginCrate],
    target_dir: &Path,
) -> Result<Vec<(PluginCrate, PathBuf)>, String> {
    build_plugins_showing(workspace, crates, target_dir, false)
}

/// [`build_plugins`], with cargo's own progress shown (`show`) for a person
/// at a terminal (`cargo xtask plugins`, the demo).
pub fn build_plugins_showing(
    workspace: &Path,
    crates: &[PluginCrate],
    target_dir: &Path,
    show: bool,
) -> Result<Vec<(PluginCrate, PathBuf)>, String> {
    ensure_wasm_target(workspace)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.current_dir(workspace).arg("build");
    if !show {
        command.arg("--quiet");
    }
    command.args(["--profile", PROFILE, "--target", WASM_TARGET, "--target-dir"]).arg(target_dir);
    for c in crates {
        command.args(["--package", &c.name]);
    }
    // A build script's environment describes the outer build (host flags,
    // target, jobserver); none of it applies to this one.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let keep = key == "CARGO_HOME"
            || key.starts_with("CARGO_NET_")
            || key.starts_with("CARGO_HTTP_")
            || key.starts_with("CARGO_REGISTR");
        let outer = key.starts_with("CARGO_")
            || key.starts_with("DEP_")
            || matches!(
                key.as_str(),
                "RUSTC"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTDOC"
                    | "RUSTFLAGS"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "OPT_LEVEL"
                    | "PROFILE"
                    | "DEBUG"
                    | "NUM_JOBS"
                    | "RUSTC_LINKER"
            );
        if outer && !keep {
            command.env_remove(&key);
        }
    }
    let status = command.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building plugins for {WASM_TARGET} failed ({status})"));
    }
    let mut built = Vec::new();
    for c in crates {
        let artifact = c.artifact(target_dir);
        check_component(&artifact)?;
        built.push((c.clone(), artifact));
    }
    Ok(built)
}

/// The first bytes of a component (not a core module).
pub fn check_component(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.get(..8) != Some(&[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00][..]) {
        return Err(format!("{} is not a WebAssembly component", path.display()));
    }
    Ok(())
}

// ---- protections in Python (componentize-py) --------------------------------

/// The componentize-py release Python protections are built with; installed
/// from PyPI into `.venv-componentize` at the workspace root.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// One protection written in Python: a folder under `plugins/` with an
/// `app.py` (the module componentize-py builds) and no Cargo.toml.
#[derive(Debug, Clone)]
pub struct PythonPlugin {
    /// The folder's name, which is the protection's name.
    pub name: String,
    pub dir: PathBuf,
}

/// The Python protections directly under `dir`.
pub fn python_plugins(dir: &Path) -> Result<Vec<PythonPlugin>, String> {
    let mut plugins = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?.path();
        if path.join("app.py").is_file() && !path.join("Cargo.toml").exists() {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            plugins.push(PythonPlugin { name, dir: path });
        }
    }
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(plugins)
}

fn componentize_venv(workspace: &Path) -> PathBuf {
    workspace.join(".venv-componentize")
}

/// The componentize-py this project installs, when it is there at the pinned version.
pub fn componentize_py(workspace: &Path) -> Option<PathBuf> {
    let tool = componentize_venv(workspace).join("bin/componentize-py");
    let out = Command::new(&tool).arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&out.stdout);
    (out.status.success() && version.split_whitespace().any(|w| w == COMPONENTIZE_PY_VERSION)).then_some(tool)
}

/// Installs componentize-py from PyPI into `.venv-componentize` unless it is
/// there already (what `cargo xtask test` does before building plugins).
pub fn install_componentize_py(workspace: &Path) -> Result<PathBuf, String> {
    if let Some(tool) = componentize_py(workspace) {
        return Ok(tool);
    }
    let venv = componentize_venv(workspace);
    eprintln!("installing componentize-py {COMPONENTIZE_PY_VERSION} into {} (first use)", venv.display());
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| format!("cannot run python3 to create {}: {e}", venv.display()))?;
    if !status.success() {
        return Err(format!("`python3 -m venv {}` failed ({status})", venv.display()));
    }
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", &format!("componentize-py=={COMPONENTIZE_PY_VERSION}")])
        .status()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    if !status.success() {
        return Err(format!("`pip install componentize-py=={COMPONENTIZE_PY_VERSION}` failed ({status})"));
    }
    componentize_py(workspace).ok_or_else(|| "componentize-py was installed but does not run".to_owned())
}

/// Builds each Python protection into `out_dir/NAME.wasm` against the newest
/// contract (`wit/0.2.0`), unless the component is newer than its sources.
/// `Ok(None)` when componentize-py is not installed: the caller says so.
pub fn build_python_plugins(
    workspace: &Path,
    plugins: &[PythonPlugin],
    out_dir: &Path,
) -> Result<Option<Vec<(PythonPlugin, PathBuf)>>, String> {
    if plugins.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let Some(tool) = componentize_py(workspace) else { return Ok(None) };
    std::fs::create_dir_all(out_dir).map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let wit = workspace.join("wit/0.2.0");
    let mut built = Vec::new();
    for plugin in plugins {
        let out = out_dir.join(format!("{}.wasm", plugin.name));
        let sources = [plugin.dir.join("app.py"), wit.join("protection.wit")];
        if !newer_than(&out, &sources) {
            eprintln!("building the Python protection {} with componentize-py", plugin.name);
            let status = Command::new(&tool)
                .arg("-d")
                .arg(&wit)
                .args(["-w", "plugin", "componentize", "-p"])
                .arg(&plugin.dir)
                .args(["app", "-o"])
                .arg(&out)
                .stdout(std::process::Stdio::null())
                .status()
                .map_err(|e| format!("cannot run componentize-py: {e}"))?;
            if !status.success() {
                return Err(format!("componentize-py failed on {} ({status})", plugin.dir.display()));
            }
        }
        check_component(&out)?;
        built.push((plugin.clone(), out));
    }
    Ok(Some(built))
}

/// Whether `out` exists and was written after every one of `sources`.
fn newer_than(out: &Path, sources: &[PathBuf]) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match modified(out) {
        Some(built) => sources.iter().all(|s| modified(s).is_some_and(|m| m <= built)),
        None => false,
    }
}
