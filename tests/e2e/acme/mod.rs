//! ACME against a real Pebble: issuance over HTTP-01 and TLS-ALPN-01 verified with a
//! TLS client trusting only Pebble's root, renewal without dropping connections,
//! restarts that reuse stored certificates, CA outages with backoff, and two nodes
//! sharing one store (a directory, or Consul through the Consul double). Each test
//! runs its own Pebble on free ports.

mod cluster;
mod cluster3;
mod consul;
mod issuance;
mod node;
mod pebble;

use std::path::PathBuf;
use std::time::Duration;

use crate::harness::free_port;

/// How long a certificate may take to appear (issuance usually takes 1-3 s).
pub const ISSUE_TIMEOUT: Duration = Duration::from_secs(60);

/// A fresh directory for one test; removed on success.
pub struct TestDir(pub PathBuf);

impl TestDir {
    /// Creates it.
    pub fn new(name: &str) -> TestDir {
        let dir = std::env::temp_dir().join(format!(
            "wharf-e2e-acme-{name}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("test directory");
        TestDir(dir)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
