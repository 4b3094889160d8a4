//! Builds the built-in policy components from `guest/` and embeds them in the host:
//! `src/policy.rs` includes `OUT_DIR/default_policy.wasm` and `OUT_DIR/tool_safe_policy.wasm`.
//! So a plain `cargo build` or `cargo test` is all it takes, given the wasm target is installed.

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
    Ok(())
}
