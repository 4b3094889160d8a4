//! One operation's round trip to one node, as a span with OpenTelemetry's database semantic
//! conventions, so `tracing-opentelemetry` users get Redis client spans as they expect them.
//!
//! The span carries what the conventions ask of a Redis client span (`db.system.name`,
//! `db.operation.name`, `db.namespace`, `server.address`, `server.port`, and `error.type` plus
//! `db.response.status_code` when it fails) and nothing of the data: no key (it holds the
//! session id), no `db.query.text` (it holds the messages), no credentials. A redirected
//! request is two round trips and two spans, the first ending in `MOVED` or `ASK`.

use tracing::Instrument;
use tracing::field::Empty;

use super::classify::Failure;
use super::commands::KeyOperation;
use super::node::Node;

/// Run `operation` on `node` (after `ASKING` when `asking`) inside its round-trip span.
pub(super) async fn run<O: KeyOperation>(
    operation: &O,
    node: &Node,
    asking: bool,
) -> Result<O::Output, Failure> {
    let command = operation.command_name();
    // The fields are evaluated only when a subscriber wants the span; the server's address is
    // looked up once, and only then.
    let span = tracing::info_span!(
        target: "agent_memory::store",
        "agent_memory.store",
        otel.name = command,
        otel.kind = "client",
        db.system.name = "redis",
        db.operation.name = command,
        db.operation.batch.size = operation.batch_size(),
        db.namespace = %node.db(),
        server.address = Empty,
        server.port = Empty,
        error.type = Empty,
        db.response.status_code = Empty,
    );
    if !span.is_disabled() {
        let (address, port) = node.server_address();
        span.record("server.address", address);
        if let Some(port) = port {
            span.record("server.port", port);
        }
    }
    let result = operation.run(node, asking).instrument(span.clone()).await;
    if let Err(failure) = &result
        && !span.is_disabled()
    {
        match failure {
            Failure::Redirect(redirect) => {
                let code = redirect.kind.code();
                span.record("error.type", code);
                span.record("db.response.status_code", code);
            }
            Failure::Store(error) => {
                span.record("error.type", error.kind());
            }
        }
    }
    result
}
