//! `agent-memory policy new` and `policy build`, as a policy author uses them: a project in
//! each language, its own tests run natively, built with the contract embedded in the binary
//! (no checkout of this repository, no WIT files), and then used by the CLI against a real
//! Redis and read by the Python original. A missing tool is named with its install command.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use agent_memory_tests::cli::{Cli, assert_one_line_failure, stderr, stdout};
use agent_memory_tests::{PythonOriginal, RedisServer, workspace_root};

const BINARY: &str = env!("CARGO_BIN_EXE_agent-memory");

/// `PATH` with `dirs` in front: where the pinned tools of `scripts/setup` are.
fn path_with(dirs: &[PathBuf]) -> OsString {
    let current = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(dirs.iter().cloned().chain(std::env::split_paths(&current))).unwrap()
}

fn run_ok(command: &mut Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// New project, its own tests, build, then the CLI serves with it and Python reads it.
fn author_and_use(lang: &str, native_test: &[&str], tool_dirs: &[PathBuf], envs: &[(&str, &Path)]) {
    let cli = Cli::new(BINARY);
    let new = cli.run(&["policy", "new", "--lang", lang, "my-policy"]);
    assert!(new.status.success(), "{}", stderr(&new));
    assert!(stdout(&new).contains("policy build"), "{}", stdout(&new));
    let project = cli.home().join("my-policy");
    assert!(project.join("wit/policy.wit").is_file());

    let mut test = Command::new(native_test[0]);
    test.args(&native_test[1..]).current_dir(&project);
    for (name, value) in envs {
        test.env(name, value);
    }
    run_ok(&mut test, &format!("{lang}: the project's own tests"));

    let mut build = cli.command(&["policy", "build", "my-policy", "-o", "p.wasm"]);
    build.env("PATH", path_with(tool_dirs));
    for (name, value) in envs {
        build.env(name, value);
    }
    let built = run_ok(&mut build, &format!("{lang}: policy build"));
    assert!(built.contains("ok: fits the contract"), "{built}");

    let server = RedisServer::start();
    let url = server.url();
    let add = cli.run(&["--store", &url, "--policy", "p.wasm", "add", "s1", "héllo"]);
    assert!(add.status.success(), "{lang}: {}", stderr(&add));
    let get = cli.run(&["--store", &url, "--policy", "p.wasm", "get", "s1"]);
    assert!(stdout(&get).contains("héllo"), "{lang}: {}", stdout(&get));
    assert_eq!(
        PythonOriginal::new(&url).get("s1"),
        serde_json::json!([{"role": "user", "content": "héllo"}]),
        "{lang}"
    );
}

#[test]
fn a_python_policy_goes_from_policy_new_to_serving() {
    let root = workspace_root();
    author_and_use(
        "python",
        &["python3", "-m", "unittest"],
        &[root.join(".venv/bin")],
        &[],
    );
}

#[test]
fn a_javascript_policy_goes_from_policy_new_to_serving() {
    let root = workspace_root();
    author_and_use(
        "js",
        &["node", "--test"],
        &[root.join("examples/policies/node_modules/.bin")],
        &[],
    );
}

#[test]
fn a_rust_policy_goes_from_policy_new_to_serving() {
    // One target directory for every run, so the template's dependencies compile once.
    let target = workspace_root().join("target/policy-template");
    author_and_use(
        "rust",
        &["cargo", "test", "--quiet"],
        &[],
        &[("CARGO_TARGET_DIR", &target)],
    );
}

#[test]
fn a_missing_tool_is_named_with_the_command_that_installs_it() {
    let cli = Cli::new(BINARY);
    for (lang, install) in [
        ("python", "pip install componentize-py==0.25.1"),
        ("js", "npm install"),
    ] {
        let dir = format!("{lang}-project");
        assert!(
            cli.run(&["policy", "new", "--lang", lang, &dir])
                .status
                .success()
        );
        let mut build = cli.command(&["policy", "build", &dir]);
        // A PATH with nothing on it: neither the tools nor `node` nor `python3`.
        build.env("PATH", cli.home().join("empty"));
        let output = build.output().unwrap();
        let line = assert_one_line_failure(&output);
        assert!(line.contains(install), "{lang}: {line}");
    }
}

#[test]
fn policy_new_refuses_a_directory_with_files_and_build_refuses_what_is_not_a_project() {
    let cli = Cli::new(BINARY);
    std::fs::create_dir(cli.home().join("taken")).unwrap();
    std::fs::write(cli.home().join("taken/notes.txt"), "mine").unwrap();
    let line = assert_one_line_failure(&cli.run(&["policy", "new", "--lang", "python", "taken"]));
    assert!(line.contains("not empty"), "{line}");
    assert_eq!(
        std::fs::read_to_string(cli.home().join("taken/notes.txt")).unwrap(),
        "mine"
    );
    let line = assert_one_line_failure(&cli.run(&["policy", "build", "taken"]));
    assert!(line.contains("policy new"), "{line}");
    let line = assert_one_line_failure(&cli.run(&["policy", "build", "missing"]));
    assert!(line.contains("missing does not exist"), "{line}");
    let line = assert_one_line_failure(&cli.run(&["policy", "build", "taken/notes.txt"]));
    assert!(line.contains("is not a directory"), "{line}");
    // The output is checked before a build that can take minutes: none runs here (the PATH
    // has no tool, so a build would fail on that instead).
    assert!(
        cli.run(&["policy", "new", "--lang", "python", "p"])
            .status
            .success()
    );
    let mut build = cli.command(&["policy", "build", "p", "-o", "no/such/dir/p.wasm"]);
    build.env("PATH", cli.home().join("empty"));
    let line = assert_one_line_failure(&build.output().unwrap());
    assert!(
        line.contains("the directory no/such/dir does not exist"),
        "{line}"
    );
    let mut build = cli.command(&["policy", "build", "p", "-o", "taken"]);
    build.env("PATH", cli.home().join("empty"));
    let line = assert_one_line_failure(&build.output().unwrap());
    assert!(line.contains("taken is a directory"), "{line}");
}

#[test]
fn the_example_policies_own_tests_pass() {
    let policies = workspace_root().join("examples/policies");
    for example in ["window-python", "redact-python", "hostile-python"] {
        run_ok(
            Command::new("python3")
                .args(["-m", "unittest"])
                .current_dir(policies.join(example)),
            example,
        );
    }
    // window-js and hostile-js: the policy, the JSON layer and the property tests against
    // python3 (the tests that need a built component run in tests/tests/policy_languages.rs).
    run_ok(
        Command::new("npm").args(["test"]).current_dir(&policies),
        "the JavaScript examples",
    );
}
