//! Errors of the double's library API and binary.

use std::io;
use std::net::SocketAddr;

/// Why the double could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("consul double: cannot listen on {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The bound socket's address could not be read.
    #[error("consul double: cannot read the address of the listener on {addr}: {source}")]
    LocalAddr {
        /// The requested address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The binary could not wait for a termination signal.
    #[error("consul double: cannot install the signal handler: {0}")]
    Signal(#[source] io::Error),
}
