//! A cluster: sessions spread over every master, and no request redirected.

use super::*;

/// The commands the default policy sends, and EXEC (refused when a queued command was).
const KEYED_COMMANDS: [&str; 6] = ["pttl", "rpush", "ltrim", "expire", "lrange", "exec"];

pub(super) async fn sessions_spread_over_every_master_and_no_request_is_redirected(d: &Deployment) {
    let memory = d.memory(Settings {
        key_prefix: "spread:".to_string(),
        ..Settings::default()
    });
    let servers = d.masters();
    let rejected_before: Vec<u64> = servers
        .iter()
        .map(|server| {
            KEYED_COMMANDS
                .iter()
                .map(|command| command_calls(server, command).1)
                .sum()
        })
        .collect();
    let sessions: Vec<String> = (0..60).map(|i| format!("spread-{i}")).collect();
    for session in &sessions {
        stored(
            memory
                .add_message(session.as_str(), Message::user("x"))
                .await
                .unwrap(),
        );
        assert_eq!(
            texts(&memory.get_context(session.as_str()).await.unwrap()),
            ["x"]
        );
    }
    for (server, before) in servers.iter().zip(rejected_before) {
        // Routed by our own slot computation, every request met its master the first time.
        let rejected: u64 = KEYED_COMMANDS
            .iter()
            .map(|command| command_calls(server, command).1)
            .sum();
        assert_eq!(rejected, before, "requests redirected by {}", server.url());
        let mut redis = server.connection();
        let held: Vec<String> = redis.keys("spread:*").unwrap();
        assert!(
            !held.is_empty(),
            "no session landed on {} of {} servers",
            server.url(),
            servers.len()
        );
    }
    assert_eq!(memory.sessions().await.unwrap().len(), sessions.len());
}
