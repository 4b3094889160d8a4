//! `policy new` and `policy build`: a policy project in Rust, Python or JavaScript, from a
//! working template to a component, with the contract this binary speaks
//! ([`agent_memory::policy::CONTRACT_WIT`]) so that an author needs neither this repository nor its WIT
//! files.
//!
//! The templates are the repository's own example policies (`examples/policies/`), which the
//! test suite builds and runs against real Redis: what `policy new` writes is what is tested.
//! Each language's tool does the build; this module only finds the tool, names the command
//! that installs a missing one, and hands it the contract.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};

use super::args::PolicyLang;

/// The componentize-py version the Python template is built and tested with.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// A template: files as (path in the project, contents).
type Template = &'static [(&'static str, &'static str)];

/// The Python window: the original's window, written with Python's own `json`.
const PYTHON: Template = &[
    (
        "app.py",
        include_str!("../../examples/policies/window-python/app.py"),
    ),
    (
        "window.py",
        include_str!("../../examples/policies/window-python/window.py"),
    ),
    (
        "guarded_json.py",
        include_str!("../../examples/policies/window-python/guarded_json.py"),
    ),
    (
        "wit_adapter.py",
        include_str!("../../examples/policies/window-python/wit_adapter.py"),
    ),
    (
        "fake_host.py",
        include_str!("../../examples/policies/window-python/fake_host.py"),
    ),
    (
        "test_window.py",
        include_str!("../../examples/policies/window-python/test_window.py"),
    ),
    (
        "test_guarded_json.py",
        include_str!("../../examples/policies/window-python/test_guarded_json.py"),
    ),
    (".gitignore", "__pycache__/\n*.wasm\n"),
    (
        "README.md",
        include_str!("../../examples/policies/templates/python-README.md"),
    ),
];

/// The JavaScript window, with its exact `json.dumps` layer and its tests (the property tests
/// run `python3` as the oracle).
const JS: Template = &[
    (
        "policy.js",
        include_str!("../../examples/policies/window-js/policy.js"),
    ),
    (
        "window.js",
        include_str!("../../examples/policies/window-js/window.js"),
    ),
    (
        "codec.js",
        include_str!("../../examples/policies/window-js/codec.js"),
    ),
    (
        "pyjson.js",
        include_str!("../../examples/policies/window-js/pyjson.js"),
    ),
    (
        "componentize-workarounds.js",
        include_str!("../../examples/policies/window-js/componentize-workarounds.js"),
    ),
    (
        "test/window.test.js",
        include_str!("../../examples/policies/window-js/test/window.test.js"),
    ),
    (
        "test/pyjson.test.js",
        include_str!("../../examples/policies/window-js/test/pyjson.test.js"),
    ),
    (
        "test/property.test.js",
        include_str!("../../examples/policies/window-js/test/property.test.js"),
    ),
    (
        "test/fake-host.js",
        include_str!("../../examples/policies/window-js/test/fake-host.js"),
    ),
    (
        "test/gen.js",
        include_str!("../../examples/policies/window-js/test/gen.js"),
    ),
    (
        "test/oracle.py",
        include_str!("../../examples/policies/window-js/test/oracle.py"),
    ),
    (
        "package.json",
        include_str!("../../examples/policies/templates/js-package.json"),
    ),
    (".gitignore", "node_modules/\n*.wasm\n"),
    (
        "README.md",
        include_str!("../../examples/policies/templates/js-README.md"),
    ),
];

/// The Rust window, over the storage format crate (vendored: it is not on crates.io).
const RUST: Template = &[
    (
        "Cargo.toml",
        include_str!("../../examples/policies/window-rust/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../examples/policies/window-rust/src/lib.rs"),
    ),
    (
        "agent-memory-format/Cargo.toml",
        include_str!("../../examples/policies/templates/format-Cargo.toml"),
    ),
    (
        "agent-memory-format/src/lib.rs",
        include_str!("../../format/src/lib.rs"),
    ),
    (
        "agent-memory-format/src/json/mod.rs",
        include_str!("../../format/src/json/mod.rs"),
    ),
    (
        "agent-memory-format/src/json/decode.rs",
        include_str!("../../format/src/json/decode.rs"),
    ),
    (
        "agent-memory-format/src/json/parse.rs",
        include_str!("../../format/src/json/parse.rs"),
    ),
    (
        "agent-memory-format/src/json/write.rs",
        include_str!("../../format/src/json/write.rs"),
    ),
    (
        "agent-memory-format/src/entry.rs",
        include_str!("../../format/src/entry.rs"),
    ),
    (".gitignore", "target/\n*.wasm\n"),
    (
        "README.md",
        include_str!("../../examples/policies/templates/rust-README.md"),
    ),
];

/// Where the contract goes in a project: written by `policy new`, for the author to read (and
/// for Rust's bindings macro). Every `policy build` builds against the binary's own copy, so a
/// component is always built for the contract of the host that will run it.
const WIT_FILE: &str = "wit/policy.wit";

/// `policy new --lang LANG DIR`: write a working policy project into `dir` (new or empty).
pub fn new_project(lang: PolicyLang, dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} is not empty: `policy new` writes a project into a new or empty directory",
                dir.display()
            );
        }
    }
    let template = match lang {
        PolicyLang::Rust => RUST,
        PolicyLang::Python => PYTHON,
        PolicyLang::Js => JS,
    };
    for (path, contents) in template
        .iter()
        .chain([&(WIT_FILE, agent_memory::policy::CONTRACT_WIT)])
    {
        write_file(&dir.join(path), contents)?;
    }
    if lang == PolicyLang::Rust {
        // The package is named after the directory, as `cargo new` does, and depends on the
        // vendored format crate instead of the repository's.
        let manifest = dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)?
            .replace("agent-memory-window-rust", &package_name(dir))
            .replace(
                "path = \"../../../format\"",
                "path = \"agent-memory-format\"",
            );
        write_file(&manifest, &text)?;
    }
    println!(
        "wrote a {} policy project in {}",
        lang.name(),
        dir.display()
    );
    println!("{}", next_steps(lang, dir));
    Ok(())
}

fn next_steps(lang: PolicyLang, dir: &Path) -> String {
    let dir = dir.display();
    // Each step runs from where `policy new` ran: the tests in a subshell.
    let test = match lang {
        PolicyLang::Rust => format!("(cd {dir} && cargo test)"),
        PolicyLang::Python => format!("(cd {dir} && python3 -m unittest)"),
        PolicyLang::Js => format!("(cd {dir} && npm install && npm test)"),
    };
    format!(
        "next:\n  {test}\n  agent-memory policy build {dir} -o policy.wasm\n  \
         agent-memory --policy policy.wasm add s1 hello"
    )
}

/// `policy build DIR -o OUT`: build the project in `dir` into a component at `out`.
pub fn build_project(dir: &Path, out: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        bail!("{} does not exist", dir.display());
    }
    if !dir.is_dir() {
        bail!(
            "{} is not a directory: give the project's directory",
            dir.display()
        );
    }
    let lang = detect(dir)?;
    // Checked before a build that can take minutes, not after it.
    if out.is_dir() {
        bail!(
            "{} is a directory: -o names the component file to write",
            out.display()
        );
    }
    let parent = out.parent().filter(|parent| !parent.as_os_str().is_empty());
    if let Some(parent) = parent.filter(|parent| !parent.is_dir()) {
        bail!(
            "cannot write {}: the directory {} does not exist",
            out.display(),
            parent.display()
        );
    }
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot open {}", dir.display()))?;
    let out = absolute(out)?;
    // Rust's bindings macro reads the contract from the project; the Python and JavaScript
    // tools take it from a directory of its own, so the project is left as it is.
    let contract = tempfile::tempdir()?;
    let wit_dir = match lang {
        PolicyLang::Rust => dir.join("wit"),
        PolicyLang::Python | PolicyLang::Js => contract.path().to_path_buf(),
    };
    write_file(
        &wit_dir.join("policy.wit"),
        agent_memory::policy::CONTRACT_WIT,
    )?;
    // The tool is found before anything is printed: a missing one is a one-line failure.
    let command = match lang {
        PolicyLang::Python => {
            let tool = find_tool(&dir, &[".venv/bin/componentize-py"], "componentize-py")
                .with_context(|| {
                    format!(
                        "componentize-py is not installed: `pip install {COMPONENTIZE_PY}` \
                         (or in a venv of the project: `python3 -m venv {0}/.venv && \
                         {0}/.venv/bin/pip install {COMPONENTIZE_PY}`)",
                        dir.display()
                    )
                })?;
            let mut command = Command::new(tool);
            command
                .current_dir(&dir)
                .arg("--wit-path")
                .arg(&wit_dir)
                .args(["--world", "policy", "componentize", "app", "-p", "."])
                .arg("-o")
                .arg(&out)
                // No WASI: a policy is granted nothing but the contract's imports.
                .arg("--stub-wasi");
            Some(command)
        }
        PolicyLang::Js => {
            let tool = find_tool(&dir, &["node_modules/.bin/jco"], "jco").with_context(|| {
                format!(
                    "jco is not installed: run `npm install` in {} (its package.json pins \
                     @bytecodealliance/jco and @bytecodealliance/componentize-js)",
                    dir.display()
                )
            })?;
            // The contract's imports are the component's, not modules to bundle: saying so
            // keeps the bundler from warning about each of them.
            let bundle_config = contract.path().join("rolldown.config.js");
            write_file(
                &bundle_config,
                "export default { external: [/^agent-memory:policy\\//] };\n",
            )?;
            let mut command = Command::new(tool);
            command
                .current_dir(&dir)
                // --bundle: the policy is several modules; ComponentizeJS takes one.
                .args(["componentize", "policy.js", "--bundle", "--bundle-config"])
                .arg(&bundle_config)
                .arg("--wit")
                .arg(&wit_dir)
                .args(["--world-name", "policy"])
                // No WASI, no fetch, no clocks, no random: the contract's imports only.
                .args(["--disable", "all"])
                .arg("-o")
                .arg(&out);
            Some(command)
        }
        PolicyLang::Rust => None,
    };
    let started = Instant::now();
    eprintln!("building the {} policy in {}", lang.name(), dir.display());
    match command {
        Some(mut command) => run(&mut command)?,
        None => build_rust(&dir, &out)?,
    }
    eprintln!(
        "built {} ({}) in {} s",
        out.display(),
        super::output::byte_size(std::fs::metadata(&out)?.len()),
        started.elapsed().as_secs()
    );
    Ok(())
}

/// Cargo for `wasm32-unknown-unknown`, then the core module made a component with
/// `wit-component` (linked into this binary, so no `wasm-tools` is needed).
fn build_rust(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("target"));
    // `cargo rustc --crate-type cdylib` rather than a cdylib in the manifest: a native cdylib
    // cannot link the component-model export names, and the project's `cargo test` builds
    // the library natively.
    let status = Command::new(&cargo)
        .current_dir(dir)
        .args([
            "rustc",
            "--release",
            "--lib",
            "--target",
            "wasm32-unknown-unknown",
            "--crate-type",
            "cdylib",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .context("cannot run cargo: install Rust from https://rustup.rs")?;
    if !status.success() {
        bail!(
            "cargo build failed ({status}); if it says the wasm32-unknown-unknown target is \
             missing, add it with `rustup target add wasm32-unknown-unknown`"
        );
    }
    let name = manifest_package_name(dir)?.replace('-', "_");
    let module_path = target_dir
        .join("wasm32-unknown-unknown/release")
        .join(format!("{name}.wasm"));
    let module = std::fs::read(&module_path)
        .with_context(|| format!("cargo built no {}", module_path.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .context("the module carries no component type (does it call wit_bindgen::generate!?)")?
        .validate(true)
        .encode()
        .context("cannot make the module a component")?;
    std::fs::write(out, component).with_context(|| format!("cannot write {}", out.display()))
}

/// The language of the project in `dir`, from the files its template writes.
fn detect(dir: &Path) -> anyhow::Result<PolicyLang> {
    let has = |file: &str| dir.join(file).is_file();
    if has("Cargo.toml") {
        Ok(PolicyLang::Rust)
    } else if has("app.py") {
        Ok(PolicyLang::Python)
    } else if has("policy.js") {
        Ok(PolicyLang::Js)
    } else {
        bail!(
            "{} is not a policy project: it has no Cargo.toml (Rust), app.py (Python) or \
             policy.js (JavaScript); start one with `agent-memory policy new --lang \
             rust|python|js DIR`",
            dir.display()
        )
    }
}

/// The project's own copy of a tool (`local`, relative to `dir`), else `name` on the `PATH`.
fn find_tool(dir: &Path, local: &[&str], name: &str) -> anyhow::Result<PathBuf> {
    if let Some(found) = local
        .iter()
        .map(|path| dir.join(path))
        .find(|p| p.is_file())
    {
        return Ok(found);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|path| path.join(name))
        .find(|path| path.is_file())
        .with_context(|| format!("{name} was not found in {} nor on the PATH", dir.display()))
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    if !status.success() {
        bail!("{program} failed ({status}): its output above says why");
    }
    Ok(())
}

fn write_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}

/// The `name` of the `[package]` in `dir/Cargo.toml` (the first `name = "..."` line after
/// `[package]`, which is how `policy new` writes it).
fn manifest_package_name(dir: &Path) -> anyhow::Result<String> {
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))?;
    manifest
        .lines()
        .skip_while(|line| line.trim() != "[package]")
        .find_map(|line| {
            let value = line.trim().strip_prefix("name")?.trim().strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_string())
        })
        .with_context(|| format!("{}/Cargo.toml names no package", dir.display()))
}

/// A cargo package name from the directory's name: letters, digits, `-` and `_`.
fn package_name(dir: &Path) -> String {
    let name: String = dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-').to_ascii_lowercase();
    match name.chars().next() {
        Some(first) if first.is_ascii_alphabetic() => name,
        Some(_) => format!("policy-{name}"),
        None => "policy".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every source file of `dir` (recursively), relative to it.
    fn sources(dir: &Path, under: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, under, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path.strip_prefix(under).unwrap();
                found.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }

    #[test]
    fn the_rust_template_vendors_every_source_file_of_the_format_crate() {
        let format = Path::new(env!("CARGO_MANIFEST_DIR")).join("../format");
        let mut found = Vec::new();
        sources(&format.join("src"), &format, &mut found);
        found.sort();
        let mut vendored: Vec<String> = RUST
            .iter()
            .filter_map(|(path, _)| path.strip_prefix("agent-memory-format/"))
            .filter(|path| path.ends_with(".rs"))
            .map(str::to_string)
            .collect();
        vendored.sort();
        assert_eq!(
            vendored, found,
            "a file split or added in format/ is not in the template"
        );
    }
}
