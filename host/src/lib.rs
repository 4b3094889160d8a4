pub mod store;
mod bindings;
