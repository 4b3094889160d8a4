//! The one wasmtime [`Engine`] of the process.
//!
//! Compiling a component is costly (tens of milliseconds optimised, a second unoptimised) and
//! an `Engine` owns compiled code, so the process shares one, and with it every compiled
//! policy. The configuration is fixed: async (store calls await I/O), the component model, and
//! fuel for the compute budget.
//!
//! Why fuel and not epochs or thread CPU time: a budget must stop a runaway policy, and must
//! never stop a legitimate call because the machine is busy. Epoch deadlines measure wall time,
//! which a loaded machine stretches (the foundation subtracted store waits from wall time, and
//! still failed large legitimate reads under load). Per-thread CPU time would need reading the
//! clock around every host call and every fiber switch, and a policy's fiber moves between
//! executor threads. Fuel counts the policy's own instructions: the same call costs the same
//! fuel on an idle or a saturated machine. Its price is a counter update per basic block of
//! guest code: measured with `tests/examples/policy_cost.rs` (the default policy alone over the
//! in-memory store, best of 5 rounds of 2000 calls, three runs alternating with a build using
//! epochs instead), an add took 93.7 µs against 93.0 µs, a read of 50 messages 179–198 µs against
//! 177–188 µs: 1–3 %, inside the machine's noise, and far below one Redis round trip.

use std::sync::OnceLock;

use wasmtime::{Config, Engine};

/// The shared engine.
pub(crate) fn shared() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(&config())
            // The configuration is constant and valid for every target wasmtime supports
            // with cranelift; failing here is a build defect, not a runtime condition.
            .expect("the fixed wasmtime configuration is valid")
    })
}

fn config() -> Config {
    let mut config = Config::new();
    // Async support is implied by wasmtime 48's async instantiate and call functions.
    config.wasm_component_model(true).consume_fuel(true);
    config
}
