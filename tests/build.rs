//! Builds the components the tests run into `OUT_DIR`: the hostile policy fixture
//! (tests/fixtures/hostile-policy) and the example agent component (examples/chat-agent), which
//! `src/lib.rs` includes; and, with the `language-policies` feature (on by default), the
//! example policies in Python and JavaScript (examples/policies), which it reads at run time,
//! built with the pinned tools `scripts/setup` installs: componentize-py in `.venv`, jco and
//! ComponentizeJS in `examples/policies/node_modules`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
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
    if std::env::var_os("CARGO_FEATURE_LANGUAGE_POLICIES").is_none() {
        return Ok(());
    }

    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("..");
    let policies = root.join("examples/policies");
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    for (dir, app, paths, out) in [
        ("window-python", "app", &["."][..], "window_python.wasm"),
        (
            "redact-python",
            "redact_app",
            &[".", "../window-python"][..],
            "redact_python.wasm",
        ),
        (
            "hostile-python",
            "hostile_app",
            &[".", "../window-python"][..],
            "hostile_python.wasm",
        ),
    ] {
        let dir = policies.join(dir);
        rerun_if_sources_change(&dir, "py")?;
        componentize_py(&root, &dir, app, paths, &out_dir.join(out))?;
    }
    for (dir, entry, out) in [
        ("window-js", "policy.js", "window_js.wasm"),
        ("hostile-js", "hostile.js", "hostile_js.wasm"),
    ] {
        let dir = policies.join(dir);
        rerun_if_sources_change(&dir, "js")?;
        jco_componentize(&policies, &dir, entry, &root, &out_dir.join(out))?;
    }
    Ok(())
}

fn componentize_py(
    root: &Path,
    dir: &Path,
    app: &str,
    paths: &[&str],
    out: &Path,
) -> anyhow::Result<()> {
    let tool = root.join(".venv/bin/componentize-py");
    if !tool.is_file() {
        bail!("{} is missing: run scripts/setup", tool.display());
    }
    let mut command = Command::new(tool);
    command
        .current_dir(dir)
        .arg("--wit-path")
        .arg(root.join("wit"))
        .args(["--world", "policy", "componentize", app]);
    for path in paths {
        command.args(["-p", path]);
    }
    command.arg("-o").arg(out).arg("--stub-wasi");
    run(&mut command)
}

fn jco_componentize(
    policies: &Path,
    dir: &Path,
    entry: &str,
    root: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    let tool = policies.join("node_modules/.bin/jco");
    if !tool.is_file() {
        bail!("{} is missing: run scripts/setup", tool.display());
    }
    run(Command::new(tool)
        .current_dir(dir)
        .args(["componentize", entry, "--bundle", "--wit"])
        .arg(root.join("wit"))
        .args(["--world-name", "policy", "--disable", "all", "-o"])
        .arg(out))
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    if !output.status.success() {
        bail!(
            "{shown} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// `cargo:rerun-if-changed` for every source file with extension `ext` in `dir` (tests too:
/// cheap, and a directory-wide rerun would also see `__pycache__`).
fn rerun_if_sources_change(dir: &Path, ext: &str) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|found| found == ext) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Ok(())
}
