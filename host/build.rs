//! Builds the default policy component and embeds it in the host.
//!
//! Runs a nested `cargo rustc` of `guest/` for `wasm32-unknown-unknown` (a std guest on
//! `wasm32-wasip2` would import ~13 WASI interfaces; this target imports nothing but our WIT),
//! then turns the core module into a component with `wit-component`. The component lands in
//! `OUT_DIR/default_policy.wasm`, which `src/policy.rs` includes. So a plain `cargo build` or
//! `cargo test` is all it takes, given the wasm target is installed.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const GUEST_TARGET: &str = "wasm32-unknown-unknown";
const GUEST_PROFILE: &str = "policy";

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir.parent().context("host/ has a parent")?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    for watched in [
        "guest/src",
        "guest/Cargo.toml",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    let target_dir = guest_target_dir(&out_dir);
    let core = build_core_module(workspace, &target_dir)?;
    let component = wit_component::ComponentEncoder::default()
        .module(&std::fs::read(&core).with_context(|| format!("reading {}", core.display()))?)?
        .validate(true)
        .encode()
        .context("encoding the policy component")?;
    std::fs::write(out_dir.join("default_policy.wasm"), component)?;
    Ok(())
}

/// Where the nested build keeps its artifacts: `<target>/policy-guest`, shared by every profile
/// of the host so the guest is built once, not once per `OUT_DIR`. The target directory is the
/// first ancestor of `OUT_DIR` that holds cargo's `CACHEDIR.TAG`.
fn guest_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map_or_else(
            || out_dir.join("policy-guest"),
            |target| target.join("policy-guest"),
        )
}

fn build_core_module(workspace: &Path, target_dir: &Path) -> anyhow::Result<PathBuf> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "rustc",
            "--package",
            "agent-memory-policy",
            "--lib",
            "--crate-type",
            "cdylib",
        ])
        .args(["--target", GUEST_TARGET, "--profile", GUEST_PROFILE])
        .arg("--target-dir")
        .arg(target_dir)
        // Flags meant for the host (sanitizers, target-cpu=native, coverage) must not reach
        // the wasm build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    println!("building the policy guest: {command:?}");
    let status = command
        .status()
        .context("running cargo for the policy guest")?;
    if !status.success() {
        bail!(
            "building the policy guest failed ({status}). If the error above says the \
             `{GUEST_TARGET}` target may not be installed, run `rustup target add {GUEST_TARGET}` \
             (scripts/setup does)."
        );
    }
    Ok(target_dir
        .join(GUEST_TARGET)
        .join(GUEST_PROFILE)
        .join("agent_memory_policy.wasm"))
}
