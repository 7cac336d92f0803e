//! Traefik v1.7 labels (`traefik.frontend.*`, `traefik.backend.*`, `traefik.port`,
//! segments `traefik.<segment>.*`).

use super::assign::Built;
use super::keys::V1Entry;
use super::{IssueKind, Issues};

/// Builds the routers, services and middlewares that v1 labels describe.
pub(crate) fn build(entries: &[V1Entry], _base: &str, issues: &mut Issues) -> Built {
    if let Some(first) = entries.first() {
        issues.error(
            Some(&first.key),
            IssueKind::Unsupported,
            "Traefik v1 labels are not read yet",
        );
    }
    Built::default()
}
