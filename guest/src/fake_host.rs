//! A [`Host`] for the policies' unit tests: lists in memory with Redis semantics for every list
//! operation of the contract, a queue of errors to return before serving requests, a log of the
//! store calls, and writes "by another client" to run just before the next transaction.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use crate::policy::Host;
use crate::types::{Applied, Level, ListOp, Range, Settings, StoreError};

/// A write by another client, run just before the next transaction.
type Interference = Box<dyn FnOnce(&mut HashMap<String, Vec<Vec<u8>>>)>;

/// See the module documentation.
pub struct FakeHost {
    /// The lists, by key.
    pub lists: RefCell<HashMap<String, Vec<Vec<u8>>>>,
    /// Errors to return, one per store call, before serving any.
    pub failures: RefCell<VecDeque<StoreError>>,
    /// `read KEY` or `apply KEY` for each store call.
    pub calls: RefCell<Vec<String>>,
    /// Writes of another client, one before each of the next transactions.
    pub interference: RefCell<VecDeque<Interference>>,
    /// Lines the policy logged.
    pub logged: RefCell<Vec<(Level, String)>>,
    /// The settings served.
    pub settings: Settings,
}

impl FakeHost {
    /// A host whose settings keep `max_messages`, with nothing else set.
    pub fn with_window(max_messages: u32) -> Self {
        Self::with_settings(max_messages, &[])
    }

    /// A host whose settings keep `max_messages` and carry `extra`.
    pub fn with_settings(max_messages: u32, extra: &[(&str, &str)]) -> Self {
        Self {
            settings: Settings {
                max_messages,
                ttl_seconds: 3600,
                key_prefix: "ai:memory:".to_string(),
                max_message_bytes: 100_000,
                extra: extra
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_string()))
                    .collect(),
            },
            lists: RefCell::default(),
            failures: RefCell::default(),
            calls: RefCell::default(),
            interference: RefCell::default(),
            logged: RefCell::default(),
        }
    }

    /// The list at `key`, or an empty one.
    pub fn list(&self, key: &str) -> Vec<Vec<u8>> {
        self.lists.borrow().get(key).cloned().unwrap_or_default()
    }
}

fn index(len: usize, i: i64) -> i64 {
    if i < 0 { len as i64 + i } else { i }
}

/// The indexes LRANGE/LTRIM `range` selects in a list of `len`.
fn selected(len: usize, range: Range) -> std::ops::Range<usize> {
    let start = index(len, range.start).max(0);
    let stop = index(len, range.stop).min(len as i64 - 1);
    if stop < start {
        0..0
    } else {
        start as usize..stop as usize + 1
    }
}

impl Host for FakeHost {
    fn settings(&self) -> Settings {
        self.settings.clone()
    }

    fn read_range(&self, key: &str, range: Range) -> Result<Vec<Vec<u8>>, StoreError> {
        self.calls.borrow_mut().push(format!("read {key}"));
        if let Some(error) = self.failures.borrow_mut().pop_front() {
            return Err(error);
        }
        let list = self.list(key);
        Ok(list[selected(list.len(), range)].to_vec())
    }

    fn apply(&self, key: &str, ops: &[ListOp]) -> Result<Applied, StoreError> {
        self.calls.borrow_mut().push(format!("apply {key}"));
        if let Some(error) = self.failures.borrow_mut().pop_front() {
            return Err(error);
        }
        if let Some(interfere) = self.interference.borrow_mut().pop_front() {
            interfere(&mut self.lists.borrow_mut());
        }
        let mut lists = self.lists.borrow_mut();
        let mut list = lists.get(key).cloned().unwrap_or_default();
        let mut applied = Applied {
            length_after_push: None,
            deleted: None,
            read: None,
        };
        for op in ops {
            match op {
                ListOp::Expect(expected) => {
                    if &list != expected {
                        return Err(StoreError::Conflict);
                    }
                }
                ListOp::Push(values) => {
                    list.extend(values.iter().cloned());
                    applied.length_after_push = Some(list.len() as u64);
                }
                ListOp::PushFront(values) => {
                    list.splice(0..0, values.iter().cloned());
                    applied.length_after_push = Some(list.len() as u64);
                }
                ListOp::Trim(range) => {
                    list = list[selected(list.len(), *range)].to_vec();
                }
                ListOp::Delete => {
                    applied.deleted = Some(list.len() as u64);
                    list.clear();
                }
                ListOp::Read(range) => {
                    applied.read = Some(Ok(list[selected(list.len(), *range)].to_vec()));
                }
                ListOp::Expire(_) => {}
            }
        }
        if list.is_empty() {
            lists.remove(key);
        } else {
            lists.insert(key.to_string(), list);
        }
        Ok(applied)
    }

    fn log(&self, level: Level, message: &str) {
        self.logged.borrow_mut().push((level, message.to_string()));
    }
}
