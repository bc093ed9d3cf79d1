//! `cargo xtask plugins` builds every protection into `target/plugins/`;
//! `cargo xtask test` runs every test (what CI runs); `cargo xtask fuzz`
//! runs just the fuzz tests, for longer.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use xtask::plugin_crates;

mod demo;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_owned()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("plugins") => plugins().map(|_| ()),
        Some("test") => test(&args[1..]),
        Some("demo") => match &args[1..] {
            [] => demo::run(&workspace(), plugins, true),
            [flag] if flag == "--no-scene" => demo::run(&workspace(), plugins, false),
            _ => Err("usage: cargo xtask demo [--no-scene]".to_owned()),
        },
        Some("fuzz") => fuzz(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <demo [--no-scene] | plugins | test | fuzz [--seconds N]>");
            eprintln!("  demo     run Gleipnir against a local Synapse, play a short scene (--no-scene: skip it),");
            eprintln!("           and leave it running with a moderator account to log in with");
            eprintln!("  plugins  build every protection under plugins/ into target/plugins/NAME.wasm");
            eprintln!("  test     build plugins, run every test, clippy and rustfmt (what CI runs)");
            eprintln!("  fuzz     run the fuzz tests (fuzz_*) for N seconds each (default {FUZZ_SECONDS})");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds `plugins/*` and copies each component to `target/plugins/NAME.wasm`.
fn plugins() -> Result<Vec<PathBuf>, String> {
    let root = workspace();
    let crates = plugin_crates(&root.join("plugins"))?;
    let built = xtask::build_plugins_showing(&root, &crates, &root.join("target/wasm"), true)?;
    let out_dir = root.join("target/plugins");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let mut outputs = Vec::new();
    for (plugin, artifact) in built {
        outputs.push(install(&artifact, &out_dir, &plugin.name, "")?);
    }
    // Protections in other languages, built with their own toolchain.
    let python = xtask::python_plugins(&root.join("plugins"))?;
    match xtask::build_python_plugins(&root, &python, &root.join("target/wasm/python"))? {
        None => {
            let names: Vec<&str> = python.iter().map(|p| p.name.as_str()).collect();
            eprintln!(
                "skipped the Python protection(s) {}: componentize-py {} is not installed \
                 (`cargo xtask test` installs it into .venv-componentize)",
                names.join(", "),
                xtask::COMPONENTIZE_PY_VERSION
            );
        }
        Some(built) => {
            for (plugin, artifact) in built {
                outputs.push(install(&artifact, &out_dir, &plugin.name, ", Python")?);
            }
        }
    }
    Ok(outputs)
}

/// Copies a built component to `out_dir/NAME.wasm` under a temporary name
/// and renames it (a running bot watching the folder never sees half a
/// file); says where it went and how big it is.
fn install(artifact: &Path, out_dir: &Path, name: &str, note: &str) -> Result<PathBuf, String> {
    let dest = out_dir.join(format!("{name}.wasm"));
    let tmp = out_dir.join(format!(".{name}.wasm.tmp"));
    std::fs::copy(artifact, &tmp)
        .and_then(|_| std::fs::rename(&tmp, &dest))
        .map_err(|e| format!("cannot copy {} to {}: {e}", artifact.display(), dest.display()))?;
    let size = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
    println!("{} ({} KiB{note})", dest.display(), size / 1024);
    Ok(dest)
}

fn run(description: &str, command: &mut Command) -> Result<(), String> {
    eprintln!("==> {description}");
    let status = command.current_dir(workspace()).status().map_err(|e| format!("{description}: cannot start: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{description} failed ({status})")) }
}

fn test(extra: &[String]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // Every protection is built and tested, those in Python included.
    xtask::install_componentize_py(&workspace())?;
    plugins()?;
    run(
        "cargo test",
        Command::new(&cargo)
            .args(["test", "--workspace", "--all-targets"])
            .args(extra)
            .env("GLEIPNIR_ALL_PLUGINS", "1"),
    )?;
    run("doc tests", Command::new(&cargo).args(["test", "--workspace", "--doc"]))?;
    run(
        "clippy",
        Command::new(&cargo).args(["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"]),
    )?;
    run("rustfmt", Command::new(&cargo).args(["fmt", "--all", "--check"]))?;
    eprintln!("==> all tests passed");
    Ok(())
}

/// Seconds each fuzz test searches under `cargo xtask fuzz` by default.
const FUZZ_SECONDS: u32 = 60;

/// The crates with fuzz tests (each a `fuzz_*` test in the library or binary).
const FUZZED: &[&str] = &["gleipnir-policy", "gleipnir-runtime", "gleipnir"];

/// Runs only the fuzz tests, each for `--seconds N`: every test run runs
/// them for about a second, this runs them long enough to find more.
fn fuzz(args: &[String]) -> Result<(), String> {
    let seconds = match args {
        [] => FUZZ_SECONDS.to_string(),
        [flag, n] if flag == "--seconds" => match n.parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 => n.clone(),
            _ => return Err(format!("--seconds `{n}` is not a positive number of seconds")),
        },
        _ => return Err("usage: cargo xtask fuzz [--seconds N]".to_owned()),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(&cargo);
    command.arg("test");
    for package in FUZZED {
        command.args(["-p", package]);
    }
    // Libraries and binaries hold the fuzz tests; the filter picks them out.
    command.args(["--lib", "--bins", "fuzz_"]).env("GLEIPNIR_FUZZ_SECONDS", &seconds);
    run(&format!("fuzz tests, {seconds} s each"), &mut command)
}
