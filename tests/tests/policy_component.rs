//! The policy component as the host sees it: what it imports, and what is refused at load.

use agent_memory::error::EngineError;
use agent_memory::{LoadError, Policy};

#[test]
fn the_built_in_policies_import_only_our_own_interfaces() {
    for policy in [Policy::default_policy(), Policy::tool_safe()] {
        let policy = policy.unwrap();
        let mut imports = policy.imports();
        imports.sort();
        assert_eq!(
            imports,
            [
                "agent-memory:policy/config@0.3.0",
                "agent-memory:policy/log@0.3.0",
                "agent-memory:policy/store@0.3.0",
                "agent-memory:policy/types@0.3.0",
            ],
            "{}",
            policy.origin()
        );
        assert_eq!(
            policy.exports(),
            [
                "agent-memory:policy/memory@0.3.0",
                "agent-memory:policy/describe@0.3.0"
            ]
        );
    }
}

#[test]
fn the_default_policy_is_identified_by_its_digest() {
    let policy = Policy::default_policy().unwrap();
    assert_eq!(policy.digest().len(), 64);
    assert_eq!(policy.origin(), "built-in default");
}

#[test]
fn bytes_that_are_not_a_component_are_refused() {
    let error = Policy::from_bytes(b"not wasm at all", "garbage").unwrap_err();
    assert!(matches!(error, LoadError::Compile { .. }), "{error}");
    assert!(
        error.to_string().contains("not a WebAssembly file"),
        "{error}"
    );
    // A core module is WebAssembly, but not a component: the missing step is named.
    let core = wat::parse_str("(module)").unwrap();
    let error = Policy::from_bytes(&core, "core module").unwrap_err();
    assert!(matches!(error, LoadError::Compile { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("a core WebAssembly module, not a component: turn it into one with `wasm-tools component new`"),
        "{error}"
    );
    // The host's words lead; wasmtime's own error is kept whole as the source.
    assert!(error.names_its_reason());
    let engine = std::error::Error::source(&error)
        .and_then(|source| source.downcast_ref::<EngineError>())
        .expect("wasmtime's error as the source");
    assert!(engine.to_string().contains("component parser"), "{engine}");
}

#[test]
fn where_only_wasmtime_can_say_why_its_error_is_the_source() {
    // Our own interface, but not as the contract defines it (an empty instance): the host has
    // no words of its own for that, so the refusal says what failed and wasmtime says why.
    let wrong = wat::parse_str(
        r#"(component
             (import "agent-memory:policy/store@0.3.0" (instance)))"#,
    )
    .unwrap();
    let error = Policy::from_bytes(&wrong, "wrong shape").unwrap_err();
    assert!(
        matches!(error, LoadError::Contract { reason: None, .. }),
        "{error:?}"
    );
    assert!(!error.names_its_reason());
    let engine = std::error::Error::source(&error)
        .and_then(|source| source.downcast_ref::<EngineError>())
        .expect("wasmtime's error as the source");
    assert!(!engine.to_string().is_empty());
    assert_eq!(engine.trap(), None);
}

#[test]
fn a_component_that_imports_wasi_is_refused_at_load() {
    let wasi = wat::parse_str(
        r#"(component
             (import "wasi:cli/environment@0.2.0" (instance
               (export "get-arguments" (func (result (list string))))))
           )"#,
    )
    .unwrap();
    let error = Policy::from_bytes(&wasi, "wasi").unwrap_err();
    assert!(matches!(error, LoadError::Contract { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("it imports WASI (wasi:cli/environment@0.2.0)")
            && text.contains("wasm32-unknown-unknown")
            && !text.contains("linker"),
        "{text}"
    );
}

#[test]
fn a_component_built_for_another_contract_version_is_refused_with_both_versions() {
    let old = wat::parse_str(
        r#"(component
             (import "agent-memory:policy/log@0.2.0" (instance
               (export "log" (func (param "message" string)))))
           )"#,
    )
    .unwrap();
    let error = Policy::from_bytes(&old, "old").unwrap_err();
    assert!(matches!(error, LoadError::Contract { .. }), "{error}");
    assert!(
        error.to_string().contains(&format!(
            "built for contract 0.2.0; this host speaks {}",
            agent_memory::policy::CONTRACT_VERSION
        )),
        "{error}"
    );
}

#[test]
fn a_component_without_the_memory_export_is_refused_at_load() {
    let empty = wat::parse_str("(component)").unwrap();
    let error = Policy::from_bytes(&empty, "empty").unwrap_err();
    assert!(matches!(error, LoadError::Contract { .. }), "{error}");
}

#[test]
fn a_missing_policy_file_is_a_read_error() {
    let error = Policy::from_file(std::path::Path::new("/nonexistent/policy.wasm")).unwrap_err();
    assert!(matches!(error, LoadError::Read { .. }), "{error}");
}

#[test]
fn the_compile_cache_is_reused_and_a_corrupt_cache_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = agent_memory::policy::DEFAULT_POLICY_WASM;
    let first = Policy::from_bytes_cached(bytes, "cached", dir.path()).unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let second = Policy::from_bytes_cached(bytes, "cached", dir.path()).unwrap();
    assert_eq!(first.digest(), second.digest());
    // A damaged artifact is refused by wasmtime's checks and rebuilt, never run.
    std::fs::write(&files[0], b"garbage").unwrap();
    let third = Policy::from_bytes_cached(bytes, "cached", dir.path()).unwrap();
    assert_eq!(third.imports(), first.imports());
    assert!(std::fs::read(&files[0]).unwrap().len() > 1000);
}
