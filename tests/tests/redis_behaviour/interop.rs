//! The Python original and this library on one session, both ways, byte for byte.

use super::*;

pub(super) async fn what_python_writes_we_read_with_every_member_intact(d: &Deployment) {
    let python = d.python();
    let written: Vec<String> = tricky_messages().iter().map(Value::to_string).collect();
    let args: Vec<&str> = written.iter().map(String::as_str).collect();
    python.add("from-python", &args);
    let context = d
        .memory(Settings::default())
        .get_context("from-python")
        .await
        .unwrap();
    assert_eq!(context.skipped, []);
    assert_eq!(context.degraded, None);
    let read: Vec<Value> = context
        .messages
        .iter()
        .map(|message| message.to_json().unwrap())
        .collect();
    assert_eq!(read, tricky_messages());
    // And what Python reads back of its own writes agrees.
    assert_eq!(python.get("from-python"), Value::Array(tricky_messages()));
}

pub(super) async fn our_entries_are_what_python_json_dumps_writes_and_python_reads_them(
    d: &Deployment,
) {
    let messages: Vec<Message> = tricky_messages()
        .into_iter()
        .map(|value| Message::from_json(&value).unwrap())
        .collect();
    let memory = d.memory(Settings::default());
    stored(memory.add_messages("to-python", messages).await.unwrap());
    let python = d.python();
    // json.loads gives dicts equal (==, member order aside) to what was written, every member
    // intact: as the original returns them, and entry by entry.
    assert_eq!(python.get("to-python"), Value::Array(tricky_messages()));
    let equal = python.eval_on_entries(
        "to-python",
        "[json.loads(e) for e in entries] == json.loads(arg)",
        &Value::Array(tricky_messages()).to_string(),
    );
    assert_eq!(equal, "True");
    // Byte for byte what json.dumps writes, for messages in the member order a dict literal
    // gives (role, content, ...): ours writes role and content first.
    let role_first: Vec<Message> = tricky_messages()
        .into_iter()
        .filter(|value| {
            value.as_object().unwrap().keys().next().map(String::as_str) == Some("role")
        })
        .map(|value| Message::from_json(&value).unwrap())
        .collect();
    let count = role_first.len();
    assert!(count >= 6);
    stored(
        memory
            .add_messages("to-python-bytes", role_first)
            .await
            .unwrap(),
    );
    let identical = python.eval_on_entries(
        "to-python-bytes",
        "len(entries) == int(arg) and all(json.dumps(json.loads(e)).encode() == e for e in entries)",
        &count.to_string(),
    );
    assert_eq!(identical, "True");
}

pub(super) async fn python_and_rust_append_to_one_session_and_share_its_window(d: &Deployment) {
    let memory = d.memory(settings(6));
    let python = d.python();
    for i in 0..5 {
        // The original's own window is 50; ours trims to 6 on each of our writes.
        python.add(
            "shared",
            &[&json!({"role": "user", "content": format!("py {i}")}).to_string()],
        );
        stored(
            memory
                .add_message("shared", Message::assistant(format!("rs {i}")))
                .await
                .unwrap(),
        );
    }
    let ours: Vec<Value> = memory
        .get_context("shared")
        .await
        .unwrap()
        .messages
        .iter()
        .map(|message| message.to_json().unwrap())
        .collect();
    assert_eq!(ours.len(), 6);
    assert_eq!(Value::Array(ours.clone()), python.get("shared"));
    assert_eq!(ours[0], json!({"role": "user", "content": "py 2"}));
    assert_eq!(ours[5], json!({"role": "assistant", "content": "rs 4"}));
}
