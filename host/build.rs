//! Builds the built-in policy components from `guest/` and embeds them in the host:
//! `src/policy.rs` includes `OUT_DIR/default_policy.wasm` and `OUT_DIR/tool_safe_policy.wasm`.
//! So a plain `cargo build` or `cargo test` is all it takes, given the wasm target is installed.
//!
//! It also reads the contract's version from `wit/policy.wit` (`package
//! agent-memory:policy@X.Y.Z;`) into `OUT_DIR/contract_version.rs`, so the WIT file is the one
//! place the version is written (`src/contract/mod.rs` includes it).

use anyhow::{Context as _, bail};

fn main() -> anyhow::Result<()> {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let default = agent_memory_build::build_component("agent-memory-policy", "guest")?;
    std::fs::write(out_dir.join("default_policy.wasm"), default)?;
    let tool_safe = agent_memory_build::build_component_with_features(
        "agent-memory-policy",
        "guest",
        &["tool-safe"],
    )?;
    std::fs::write(out_dir.join("tool_safe_policy.wasm"), tool_safe)?;

    let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/policy.wit");
    println!("cargo::rerun-if-changed={}", wit.display());
    let text =
        std::fs::read_to_string(&wit).with_context(|| format!("reading {}", wit.display()))?;
    let version = contract_version(&text).with_context(|| {
        format!(
            "{}: no `package agent-memory:policy@VERSION;`",
            wit.display()
        )
    })?;
    std::fs::write(
        out_dir.join("contract_version.rs"),
        format!(
            "/// The contract version from `wit/policy.wit`, as a literal for `concat!`.\n\
             macro_rules! contract_version {{\n    () => {{\n        \"{version}\"\n    }};\n}}\n"
        ),
    )?;
    Ok(())
}

/// The version in the WIT's `package agent-memory:policy@X.Y.Z;` line: digits and dots only,
/// since it lands in a Rust string literal.
fn contract_version(wit: &str) -> anyhow::Result<&str> {
    let Some(line) = wit
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("package agent-memory:policy@"))
    else {
        bail!("no package line");
    };
    let version = line
        .trim_start_matches("package agent-memory:policy@")
        .trim_end_matches(';')
        .trim();
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_digit() || c == '.') {
        bail!("the version {version:?} is not digits and dots");
    }
    Ok(version)
}
