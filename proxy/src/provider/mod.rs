//! Providers: sources of dynamic configuration. Each provider sends its whole current
//! configuration as a [`ProviderUpdate`] whenever it changes; the aggregator keeps the
//! latest one per provider, merges them and compiles the route table.

use crate::config::DynamicConfig;

pub mod activity;
pub mod cluster;
pub mod docker;
pub mod file;
pub mod labels;

/// One provider's complete, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderUpdate {
    /// The provider's name, used to qualify resource names (`router@file`).
    pub provider: &'static str,
    /// Its whole configuration; replaces the previous one from the same provider.
    pub config: DynamicConfig,
}
