//! The one wasmtime [`Engine`] of the process, and the clock that interrupts runaway policies.
//!
//! Compiling a component is costly (tens of milliseconds optimised, a second unoptimised) and
//! an `Engine` owns compiled code, so the process shares one, and with it every compiled
//! policy. The configuration is fixed: async (store calls await I/O), the component model,
//! and epoch interruption for the CPU budget.

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Config, Engine};

/// How often the epoch advances. A policy's CPU budget is checked at this granularity: 5 ms
/// keeps the ticker thread's own cost negligible while overshooting a budget by little.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The shared engine; the first call starts the epoch ticker thread.
pub(crate) fn shared() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let engine = Engine::new(&config())
            // The configuration is constant and valid for every target wasmtime supports
            // with cranelift; failing here is a build defect, not a runtime condition.
            .expect("the fixed wasmtime configuration is valid");
        start_ticker(engine.clone());
        engine
    })
}

fn config() -> Config {
    let mut config = Config::new();
    // Async support is implied by wasmtime 48's async instantiate and call functions.
    config.wasm_component_model(true).epoch_interruption(true);
    config
}

/// Advance the engine's epoch every [`EPOCH_TICK`] for the life of the process. The engine is
/// process-wide, so the thread is too.
fn start_ticker(engine: Engine) {
    let spawned = std::thread::Builder::new()
        .name("agent-memory-epoch".to_string())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
    if let Err(error) = spawned {
        // Without the ticker a policy's CPU budget would never be checked; the wall-clock
        // call timeout still bounds every call.
        tracing::error!(%error, "cannot start the epoch ticker: CPU budgets are not enforced");
    }
}

/// The number of ticks that covers `budget`, at least one.
pub(crate) fn ticks_for(budget: Duration) -> u64 {
    let ticks = budget.as_micros().div_ceil(EPOCH_TICK.as_micros());
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}
