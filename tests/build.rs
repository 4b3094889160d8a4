//! Builds the components the tests run into `OUT_DIR`, which `src/lib.rs` includes: the hostile
//! policy fixture (tests/fixtures/hostile-policy) and the example agent component
//! (examples/chat-agent).

fn main() -> anyhow::Result<()> {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let hostile = agent_memory_build::build_component(
        "agent-memory-hostile-policy",
        "tests/fixtures/hostile-policy",
    )?;
    std::fs::write(out_dir.join("hostile_policy.wasm"), hostile)?;
    let agent = agent_memory_build::build_component(
        "agent-memory-example-chat-agent",
        "examples/chat-agent",
    )?;
    std::fs::write(out_dir.join("chat_agent.wasm"), agent)?;
    Ok(())
}
