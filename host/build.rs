//! Builds the default policy component from `guest/` and embeds it in the host: `src/policy.rs`
//! includes `OUT_DIR/default_policy.wasm`. So a plain `cargo build` or `cargo test` is all it
//! takes, given the wasm target is installed.

fn main() -> anyhow::Result<()> {
    let component = agent_memory_build::build_component("agent-memory-policy", "guest")?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("default_policy.wasm"), component)?;
    Ok(())
}
