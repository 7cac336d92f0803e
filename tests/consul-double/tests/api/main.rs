//! The double exercised over real HTTP, case by case from Consul's API documentation
//! (api-docs/kv, api-docs/session, features/blocking).

mod blocking;
mod common;
mod kv;
mod server;
mod session;
