//! Builds the hostile policy fixture (tests/fixtures/hostile-policy) into
//! `OUT_DIR/hostile_policy.wasm`, which `src/lib.rs` includes.

fn main() -> anyhow::Result<()> {
    let component = agent_memory_build::build_component(
        "agent-memory-hostile-policy",
        "tests/fixtures/hostile-policy",
    )?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("hostile_policy.wasm"), component)?;
    Ok(())
}
