//! wharf's proxy: entrypoints (listeners), TLS termination, routing rules, load
//! balancing, middlewares, configuration providers and the admin API.
//!
//! Data flows one way: providers produce a [`config::DynamicConfig`], which is
//! validated and compiled into one immutable route table, swapped atomically;
//! the request path reads the current table without locks.

pub mod accesslog;
pub mod admin;
pub mod body;
pub mod certs;
pub mod check;
pub mod config;
pub mod error;
pub mod forward;
pub mod lb;
pub mod metrics;
pub mod middleware;
pub mod provider;
pub mod router;
pub mod rules;
pub mod runtime;
pub mod server;
pub mod tls;
