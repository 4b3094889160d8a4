//! Policy components: loading, checking against the contract, and the built-in default.
//!
//! A policy is accepted only once it has been compiled, type-checked against the
//! `agent-memory:policy` world (every import provided by the host, the `memory` export with the
//! right types) and instantiated once on trial. A component that asks for anything else, WASI
//! included, is refused here, not at its first call.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, ComponentExportIndex, Linker};

use crate::contract::MEMORY_INTERFACE;
use crate::contract::declared::{self, check_declaration};
use crate::contract::{Policy as PolicyBindings, PolicyPre};

use crate::call_state::{self, CallState};
use crate::compile_cache;
pub use crate::contract::declared::{SettingKind, SettingSpec};
pub use crate::contract::{CONTRACT_VERSION, CONTRACT_WIT};
use crate::error::LoadError;
use crate::runtime::{PolicyRuntime, RuntimeConfig};
use crate::settings::{Limits, Settings, SettingsError};

/// The default policy's component, built from `guest/` by the build script.
pub const DEFAULT_POLICY_WASM: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/default_policy.wasm"));

/// The tool-safe policy's component (`guest/` built with its `tool-safe` feature): a window
/// that never splits a tool call from its results, with the first system message pinned and
/// an optional token budget.
pub const TOOL_SAFE_POLICY_WASM: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tool_safe_policy.wasm"));

/// Largest policy component file accepted: 32 MiB. The default policy is about 130 KB; a
/// policy hundreds of times larger is a mistake (or not a policy), and reading stops there
/// rather than filling memory.
pub const MAX_POLICY_BYTES: u64 = 32 << 20;

/// The bytes of the policy file at `path`: a regular file (not a FIFO, which would block, nor a
/// device such as `/dev/zero`, which never ends) of at most [`MAX_POLICY_BYTES`].
pub fn read_policy_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    use std::io::Read as _;
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    // `metadata` follows symlinks and does not open the file, so a FIFO is refused before it
    // could block.
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    if !metadata.is_file() {
        return Err(LoadError::NotAFile(path.to_path_buf()));
    }
    if metadata.len() > MAX_POLICY_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_POLICY_BYTES,
        });
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_POLICY_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    // The file may have grown since it was measured.
    if bytes.len() as u64 > MAX_POLICY_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_POLICY_BYTES,
        });
    }
    Ok(bytes)
}

/// A policy component, compiled and checked, ready to serve calls. Cheap to clone.
#[derive(Clone)]
pub struct Policy {
    inner: Arc<Loaded>,
}

pub(crate) struct Loaded {
    /// The runtime it was compiled in, where its calls run.
    runtime: PolicyRuntime,
    pub(crate) pre: PolicyPre<CallState>,
    /// Where each function of the `memory` export is, found once: an instance of the same
    /// component has them at the same places.
    pub(crate) exports: MemoryExports,
    /// The settings it declares it reads.
    settings: Vec<SettingSpec>,
    digest: String,
    origin: String,
}

/// The functions of the `memory` export, by index into the component.
pub(crate) struct MemoryExports {
    pub(crate) get_context: ComponentExportIndex,
    pub(crate) add_message: ComponentExportIndex,
    pub(crate) add_messages: ComponentExportIndex,
    pub(crate) add_and_get_context: ComponentExportIndex,
    pub(crate) clear: ComponentExportIndex,
}

impl MemoryExports {
    /// The indices in `component`; `None` when an export is missing (which `PolicyPre::new`
    /// has already refused).
    fn find(component: &Component) -> Option<Self> {
        let memory = component.get_export_index(None, MEMORY_INTERFACE)?;
        let function = |name: &str| component.get_export_index(Some(&memory), name);
        Some(Self {
            get_context: function("get-context")?,
            add_message: function("add-message")?,
            add_messages: function("add-messages")?,
            add_and_get_context: function("add-and-get-context")?,
            clear: function("clear")?,
        })
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("origin", &self.inner.origin)
            .field("digest", &self.inner.digest)
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// The built-in default policy: the Python original's behaviour. Compiled once per process.
    pub fn default_policy() -> Result<Self, LoadError> {
        static DEFAULT: OnceLock<Policy> = OnceLock::new();
        if let Some(policy) = DEFAULT.get() {
            return Ok(policy.clone());
        }
        let policy = Self::from_bytes(DEFAULT_POLICY_WASM, "built-in default")?;
        Ok(DEFAULT.get_or_init(|| policy).clone())
    }

    /// The built-in tool-safe policy (see [`TOOL_SAFE_POLICY_WASM`]). Compiled once per
    /// process. Its settings (`Settings::extra`): `max-tokens` (a positive integer: an
    /// approximate token budget, encoded bytes / 4) and `report-evicted` (`true` to have
    /// writes report the messages they evicted).
    pub fn tool_safe() -> Result<Self, LoadError> {
        static TOOL_SAFE: OnceLock<Policy> = OnceLock::new();
        if let Some(policy) = TOOL_SAFE.get() {
            return Ok(policy.clone());
        }
        let policy = Self::from_bytes(TOOL_SAFE_POLICY_WASM, "built-in tool-safe")?;
        Ok(TOOL_SAFE.get_or_init(|| policy).clone())
    }

    /// A built-in policy by name: `default` (the Python original's behaviour) or `tool-safe`.
    pub fn builtin(name: &str) -> Option<Result<Self, LoadError>> {
        match name {
            "default" => Some(Self::default_policy()),
            "tool-safe" => Some(Self::tool_safe()),
            _ => None,
        }
    }

    /// Load a policy component from its bytes, in the shared runtime
    /// ([`PolicyRuntime::shared`]); `origin` names it in logs and errors.
    ///
    /// Compiling takes tens of milliseconds (more for a large component): from async code, call
    /// this on a blocking thread (`tokio::task::spawn_blocking`), as
    /// [`crate::Memory::replace_policy_bytes`] does.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self, LoadError> {
        PolicyRuntime::shared().load(bytes, origin)
    }

    /// Like [`Policy::from_bytes`], compiled in the embedder's own `engine` (so a runtime that
    /// already has one, for its agent components, keeps one code cache and one configuration),
    /// in a new [`PolicyRuntime`] over it with the default configuration. To share call slots
    /// and the idle-instance budget among several policies, make the runtime once
    /// ([`PolicyRuntime::with_engine`]) and load each with [`PolicyRuntime::load`].
    ///
    /// The engine must have the component model and fuel enabled
    /// (`Config::wasm_component_model(true)`, `Config::consume_fuel(true)`: fuel is the
    /// policy's compute budget); an engine without fuel is refused with [`LoadError::Engine`].
    pub fn from_bytes_in(engine: &Engine, bytes: &[u8], origin: &str) -> Result<Self, LoadError> {
        PolicyRuntime::with_engine(engine.clone(), RuntimeConfig::default())?.load(bytes, origin)
    }

    /// Compile and check `bytes` in `runtime` (what [`PolicyRuntime::load`] does).
    pub(crate) fn load_in(
        runtime: &PolicyRuntime,
        bytes: &[u8],
        origin: &str,
    ) -> Result<Self, LoadError> {
        let component =
            Component::new(runtime.engine(), bytes).map_err(|error| compile_error(bytes, error))?;
        Self::check(runtime, component, digest(bytes), origin)
    }

    /// Load a policy component file (a regular file of at most [`MAX_POLICY_BYTES`]).
    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        let bytes = read_policy_file(path)?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Like [`Policy::from_bytes`], keeping the compiled code in `cache_dir` so the next
    /// process skips compilation (which dominates a short CLI run).
    ///
    /// The cache file is named by the component's SHA-256 and the engine's compatibility hash
    /// (wasmtime version and configuration), and wasmtime itself refuses an artifact made by
    /// another version or configuration; such a file is recompiled and replaced. Only point
    /// this at a directory that no one else can write: compiled code is trusted as it is.
    pub fn from_bytes_cached(
        bytes: &[u8],
        origin: &str,
        cache_dir: &Path,
    ) -> Result<Self, LoadError> {
        PolicyRuntime::shared().load_cached(bytes, origin, cache_dir)
    }

    /// Compile `bytes` in `runtime` through the cache in `cache_dir` (what
    /// [`PolicyRuntime::load_cached`] does).
    pub(crate) fn load_cached_in(
        runtime: &PolicyRuntime,
        bytes: &[u8],
        origin: &str,
        cache_dir: &Path,
    ) -> Result<Self, LoadError> {
        let engine = runtime.engine();
        let digest = digest(bytes);
        let path = compile_cache::path(engine, cache_dir, &digest);
        if let Some(artifact) = compile_cache::read(&path) {
            // SAFETY: `deserialize` trusts the artifact's machine code. The file is one this
            // function wrote from a component it compiled, in the caller's private cache
            // directory (see `Policy::from_bytes_cached`), and wasmtime checks its header,
            // version and configuration before use.
            match unsafe { Component::deserialize(engine, &artifact) } {
                Ok(component) => return Self::check(runtime, component, digest, origin),
                Err(error) => {
                    tracing::debug!(%error, path = %path.display(), "compiled policy cache refused; recompiling");
                }
            }
        }
        let component =
            Component::new(engine, bytes).map_err(|error| compile_error(bytes, error))?;
        if let Err(error) = compile_cache::write(&component, &path) {
            tracing::debug!(%error, path = %path.display(), "could not write the compiled policy cache");
        }
        compile_cache::evict(cache_dir, compile_cache::MAX_CACHE_BYTES);
        Self::check(runtime, component, digest, origin)
    }

    fn check(
        runtime: &PolicyRuntime,
        component: Component,
        digest: String,
        origin: &str,
    ) -> Result<Self, LoadError> {
        let engine = runtime.engine();
        let linker = linker(engine).map_err(|error| LoadError::Contract {
            reason: None,
            engine: Some(error.into()),
        })?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|error| contract_error(engine, &component, error))?;
        let pre = PolicyPre::new(instance_pre)
            .map_err(|error| contract_error(engine, &component, error))?;
        let exports = MemoryExports::find(&component).ok_or_else(|| LoadError::Contract {
            reason: Some(format!(
                "no `{MEMORY_INTERFACE}` export with every function"
            )),
            engine: None,
        })?;
        let declared = trial(&pre, &Limits::default(), runtime.config())?;
        let settings: Vec<SettingSpec> = declared.into_iter().map(Into::into).collect();
        check_declaration(&settings).map_err(|problem| LoadError::Contract {
            reason: Some(format!("its `describe.settings` {problem}")),
            engine: None,
        })?;
        Ok(Self {
            inner: Arc::new(Loaded {
                runtime: runtime.clone(),
                pre,
                exports,
                settings,
                digest,
                origin: origin.to_string(),
            }),
        })
    }

    /// Instantiate the policy once with `limits` (see [`trial`]): done at load with the
    /// default limits, and again with a handle's own limits before the handle takes it.
    pub(crate) fn trial_instantiation(&self, limits: &Limits) -> Result<(), LoadError> {
        trial(&self.inner.pre, limits, self.inner.runtime.config()).map(|_| ())
    }

    /// The settings the policy reads from [`crate::Settings::extra`], as it declares them.
    pub fn settings(&self) -> &[SettingSpec] {
        &self.inner.settings
    }

    /// Whether `settings` suit this policy: every extra setting one it declares, with a value
    /// the declaration accepts. [`crate::MemoryBuilder::build`] and every swap check it.
    pub fn check_settings(&self, settings: &Settings) -> Result<(), SettingsError> {
        declared::check(&self.inner.settings, &settings.extra, self.origin())
    }

    /// SHA-256 of the component bytes, hex: what identifies a policy version in logs.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// The first 12 hex digits of [`Policy::digest`]: how logs name the version.
    pub fn short_digest(&self) -> &str {
        &self.inner.digest[..12]
    }

    /// Where the policy came from: a path, or "built-in default".
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The interfaces the component imports, such as `agent-memory:policy/store@0.3.0`.
    pub fn imports(&self) -> Vec<String> {
        let component = self.inner.pre.instance_pre().component().component_type();
        names(component.imports(self.inner.engine()))
    }

    /// The interfaces the component exports.
    pub fn exports(&self) -> Vec<String> {
        let component = self.inner.pre.instance_pre().component().component_type();
        names(component.exports(self.inner.engine()))
    }

    /// The runtime it was compiled in, where its calls run.
    pub fn runtime(&self) -> &PolicyRuntime {
        &self.inner.runtime
    }

    pub(crate) fn loaded(&self) -> &Loaded {
        &self.inner
    }
}

/// Loading policies into a runtime (here rather than in `runtime`, which knows nothing of
/// policies, so the two modules do not import each other).
impl PolicyRuntime {
    /// Compile and check the policy component `bytes` in this runtime; `origin` names it in
    /// logs and errors. See [`Policy::from_bytes`].
    pub fn load(&self, bytes: &[u8], origin: &str) -> Result<Policy, LoadError> {
        Policy::load_in(self, bytes, origin)
    }

    /// Like [`PolicyRuntime::load`], keeping the compiled code in `cache_dir` so that a later
    /// process (or a later load of the same bytes) skips compilation: a Python or JavaScript
    /// policy of 10-20 MB takes tens of seconds to compile, its cached artifact well under one.
    /// Keyed by the component's SHA-256 and the engine's compatibility hash (wasmtime version
    /// and this runtime's configuration); an artifact made under another is recompiled and
    /// replaced. Only point this at a directory no one else can write: compiled code is
    /// trusted as it is.
    pub fn load_cached(
        &self,
        bytes: &[u8],
        origin: &str,
        cache_dir: &Path,
    ) -> Result<Policy, LoadError> {
        Policy::load_cached_in(self, bytes, origin, cache_dir)
    }

    /// The built-in default policy, compiled in this runtime. Compiling takes tens of
    /// milliseconds: keep the result (the shared runtime's is cached,
    /// [`Policy::default_policy`]).
    pub fn default_policy(&self) -> Result<Policy, LoadError> {
        self.load(DEFAULT_POLICY_WASM, "built-in default")
    }

    /// The built-in tool-safe policy, compiled in this runtime (see [`Policy::tool_safe`]).
    pub fn tool_safe(&self) -> Result<Policy, LoadError> {
        self.load(TOOL_SAFE_POLICY_WASM, "built-in tool-safe")
    }
}

impl Loaded {
    /// The engine the policy was compiled in: its calls' stores are made there.
    pub(crate) fn engine(&self) -> &Engine {
        self.pre.instance_pre().component().engine()
    }
}

/// The linker holding the host's side of the world: `store`, `log` and `config`.
fn linker(engine: &Engine) -> wasmtime::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    PolicyBindings::add_to_linker::<CallState, wasmtime::component::HasSelf<CallState>>(
        &mut linker,
        |state| state,
    )?;
    Ok(linker)
}

fn names<'a, T>(items: impl Iterator<Item = (&'a str, T)>) -> Vec<String> {
    items.map(|(name, _)| name.to_string()).collect()
}

pub(crate) fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `PolicyPre::new` checks export names only; instantiating once runs the component's start
/// code and resolves every typed export — checking each function's type against the contract,
/// which calls then rely on (see `sandbox`) — so a broken component fails here. The trial also
/// asks the policy which settings it reads (`describe.settings`, which may not touch the store:
/// a trial has none).
fn trial(
    pre: &PolicyPre<CallState>,
    limits: &Limits,
    sandbox: &RuntimeConfig,
) -> Result<Vec<crate::contract::SettingSpec>, LoadError> {
    let check = async {
        let engine = pre.instance_pre().component().engine();
        let mut store = call_state::trial_store(engine, limits, sandbox);
        let instance = pre.instance_pre().instantiate_async(&mut store).await?;
        let bindings = PolicyBindings::new(&mut store, &instance)?;
        bindings
            .agent_memory_policy_describe()
            .call_settings(&mut store)
            .await
    };
    // The trial touches no store and never waits on I/O, so it completes on first poll
    // unless the component's start code runs past its CPU budget, which yields.
    futures_lite_block_on(check).map_err(|error| {
        crate::runtime::sandbox_refusal(&error).unwrap_or_else(|| LoadError::Trial(error.into()))
    })
}

/// Why `bytes` did not compile, in terms of the step that was missed: a core module that was
/// never made a component, or not WebAssembly at all. Anything else is wasmtime's own reason.
fn compile_error(bytes: &[u8], error: wasmtime::Error) -> LoadError {
    const MAGIC: &[u8] = b"\0asm";
    // The second word of the header: a core module's version, or a component's layer.
    const CORE_MODULE: &[u8] = &[1, 0, 0, 0];
    if let Some(refusal) = crate::runtime::sandbox_refusal(&error) {
        return refusal;
    }
    let reason = if !bytes.starts_with(MAGIC) {
        Some(
            "not a WebAssembly file (it does not start with the `\\0asm` header): a policy is a \
             component built from a guest crate"
                .to_string(),
        )
    } else if bytes.get(4..8) == Some(CORE_MODULE) {
        Some(
            "this is a core WebAssembly module, not a component: turn it into one with \
             `wasm-tools component new` (or build-support's build_component, as host/build.rs \
             does)"
                .to_string(),
        )
    } else {
        None
    };
    LoadError::Compile {
        reason,
        engine: Some(error.into()),
    }
}

/// Why a compiled component does not link against the host's side of the contract, named:
/// WASI imports, another contract version, or anything else the host does not provide.
fn contract_error(engine: &Engine, component: &Component, error: wasmtime::Error) -> LoadError {
    let ty = component.component_type();
    let imports: Vec<String> = names(ty.imports(engine));
    let exports: Vec<String> = names(ty.exports(engine));
    let ours = |name: &&String| name.starts_with("agent-memory:policy/");
    let other_version = imports
        .iter()
        .chain(&exports)
        .filter(ours)
        .filter_map(|name| name.rsplit_once('@').map(|(_, version)| version))
        .find(|version| *version != CONTRACT_VERSION);
    if let Some(version) = other_version {
        return named(
            format!(
                "it was built for contract {version}; this host speaks {CONTRACT_VERSION}: rebuild \
             it against wit/policy.wit {CONTRACT_VERSION}"
            ),
            error,
        );
    }
    let wasi: Vec<&String> = imports
        .iter()
        .filter(|name| name.starts_with("wasi:"))
        .collect();
    if !wasi.is_empty() {
        let shown: Vec<&str> = wasi.iter().take(3).map(|name| name.as_str()).collect();
        let more = wasi.len().saturating_sub(shown.len());
        return named(
            format!(
                "it imports WASI ({}{}), which a policy is not granted: build a Rust guest for \
             wasm32-unknown-unknown, or stub WASI out (componentize-py --stub-wasi, jco \
             componentize --disable all)",
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
            error,
        );
    }
    let foreign: Vec<&String> = imports.iter().filter(|name| !ours(name)).collect();
    if !foreign.is_empty() {
        let shown: Vec<&str> = foreign.iter().map(|name| name.as_str()).collect();
        return named(
            format!(
                "it imports {}, which the host does not provide: a policy may import only \
             agent-memory:policy/{{store,log,config}}@{CONTRACT_VERSION}",
                shown.join(", ")
            ),
            error,
        );
    }
    LoadError::Contract {
        reason: None,
        engine: Some(error.into()),
    }
}

/// A contract refusal the host can name, with wasmtime's error kept as its source.
fn named(reason: String, error: wasmtime::Error) -> LoadError {
    LoadError::Contract {
        reason: Some(reason),
        engine: Some(error.into()),
    }
}

/// Drive a future that never waits on I/O to completion on the current thread.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::yield_now();
    }
}
