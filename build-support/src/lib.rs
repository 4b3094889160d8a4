//! Build-script helper shared by the host (the default policy) and the tests (hostile fixtures):
//! compile a guest crate of this workspace into a policy component.
//!
//! The guest is built by a nested `cargo rustc --crate-type cdylib` for `wasm32-unknown-unknown`
//! (a std guest on `wasm32-wasip2` would import ~13 WASI interfaces; this target imports nothing
//! but our WIT), then turned into a component with `wit-component`.

#![deny(missing_docs)]

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The guest target: no WASI, so the component's only imports are our interfaces.
pub const GUEST_TARGET: &str = "wasm32-unknown-unknown";

/// Initial linear memory of a guest, in bytes (a multiple of the 64 KiB wasm page): 4 MiB, of
/// which 1 MiB is the stack and nearly 3 MiB heap before the first `memory.grow`. Pages that
/// are never touched cost nothing (the host maps them lazily and resets only dirty ones).
pub const GUEST_INITIAL_MEMORY: u32 = 4 << 20;

/// The cargo profile guests are built with (defined in the workspace `Cargo.toml`).
pub const GUEST_PROFILE: &str = "policy";

/// Build the workspace package `package` (a guest crate) into a component and return its bytes.
///
/// Prints `cargo:rerun-if-changed` for the package, the WIT, the workspace manifests and every
/// source file the nested build read (from its dep-info, so a change in a path dependency such
/// as `format/` rebuilds the component too). The nested build keeps its artifacts in
/// `<target>/policy-guest`, shared by every profile and every crate that builds guests, so each
/// guest is compiled once, not once per `OUT_DIR`.
pub fn build_component(package: &str, package_dir: &str) -> anyhow::Result<Vec<u8>> {
    build_component_with_features(package, package_dir, &[])
}

/// Like [`build_component`], with these cargo `features` of the package enabled (how one guest
/// crate yields several components, such as the default and the tool-safe policy). Each
/// feature set is compiled once and cached; the component is read right after its build.
pub fn build_component_with_features(
    package: &str,
    package_dir: &str,
    features: &[&str],
) -> anyhow::Result<Vec<u8>> {
    let workspace = workspace_root()?;
    for watched in [package_dir, "wit", "Cargo.toml", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").context("OUT_DIR is set by cargo")?);
    let target_dir = guest_target_dir(&out_dir);
    let core = build_core_module(&workspace, &target_dir, package, features)?;
    for source in dep_info_sources(&core.with_extension("d"))? {
        println!("cargo:rerun-if-changed={}", source.display());
    }
    let module = std::fs::read(&core).with_context(|| format!("reading {}", core.display()))?;
    wit_component::ComponentEncoder::default()
        .module(&module)?
        .validate(true)
        .encode()
        .with_context(|| format!("encoding {package} as a component"))
}

/// The source files listed in a cargo dep-info file (`target: dep dep ...`, spaces in paths
/// escaped with a backslash).
fn dep_info_sources(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut sources = Vec::new();
    for line in text.lines() {
        let Some((_, deps)) = line.split_once(": ") else {
            continue;
        };
        let mut current = String::new();
        let mut chars = deps.chars();
        while let Some(ch) = chars.next() {
            match ch {
                '\\' => current.extend(chars.next()),
                ' ' => {
                    if !current.is_empty() {
                        sources.push(PathBuf::from(std::mem::take(&mut current)));
                    }
                }
                other => current.push(other),
            }
        }
        if !current.is_empty() {
            sources.push(PathBuf::from(current));
        }
    }
    Ok(sources)
}

/// The workspace root: the parent of the calling crate's directory.
fn workspace_root() -> anyhow::Result<PathBuf> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    manifest_dir
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file() && dir.join("wit").is_dir())
        .map(Path::to_path_buf)
        .context("no workspace root (with Cargo.lock and wit/) above the crate")
}

/// `<target>/policy-guest`, where the target directory is the first ancestor of `OUT_DIR` that
/// holds cargo's `CACHEDIR.TAG`.
fn guest_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map_or_else(
            || out_dir.join("policy-guest"),
            |target| target.join("policy-guest"),
        )
}

fn build_core_module(
    workspace: &Path,
    target_dir: &Path,
    package: &str,
    features: &[&str],
) -> anyhow::Result<PathBuf> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "rustc",
            "--locked",
            "--package",
            package,
            "--lib",
            "--crate-type",
            "cdylib",
        ])
        .args(["--target", GUEST_TARGET, "--profile", GUEST_PROFILE])
        .args(if features.is_empty() {
            Vec::new()
        } else {
            vec!["--features".to_string(), features.join(",")]
        })
        .arg("--target-dir")
        .arg(target_dir)
        // Start the linear memory large enough for an ordinary call (the 1 MiB stack, data,
        // and heap for a window of messages), so a call rarely grows it: every growth is an
        // mprotect when the host's pooling allocator reuses the slot.
        .args([
            "--",
            "-C",
            &format!("link-arg=--initial-memory={GUEST_INITIAL_MEMORY}"),
        ])
        // Flags meant for the host (sanitizers, target-cpu=native, coverage, clippy's wrapper)
        // must not reach the wasm build, and would needlessly invalidate its cache.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    println!("building {package}: {command:?}");
    let status = command
        .status()
        .with_context(|| format!("running cargo for {package}"))?;
    if !status.success() {
        bail!(
            "building {package} for {GUEST_TARGET} failed ({status}). If the error above says \
             the target may not be installed, run `rustup target add {GUEST_TARGET}` \
             (scripts/setup does)."
        );
    }
    Ok(target_dir
        .join(GUEST_TARGET)
        .join(GUEST_PROFILE)
        .join(format!("{}.wasm", package.replace('-', "_"))))
}
