//! Configuration: the static configuration (what to listen on, which providers to run)
//! and the dynamic configuration (routers, services, middlewares) that providers produce.

pub mod duration;
pub mod dynamic;
pub mod load;
pub mod static_config;
pub mod tree;

pub use duration::GoDuration;
pub use dynamic::DynamicConfig;
pub use load::{load, parse_address, ConfigError, Loaded, Loader, Origin};
pub use static_config::StaticConfig;
pub use tree::{Shape, Tree, TreeError};
