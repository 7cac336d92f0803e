//! Checks across every file checked: router references to middlewares and services
//! that none of the files defines, and references to `@docker`, Traefik v2's name
//! for the provider that the Swarm provider replaces.

use std::collections::BTreeSet;

use super::report::{FileReport, Issue, Status};

/// Providers whose resources cannot be seen from stack files.
const ELSEWHERE: [&str; 2] = ["file", "internal"];

/// Adds the warnings to the services whose routers hold the references.
pub fn check(files: &mut [FileReport], provider: &str) {
    let mut services = BTreeSet::new();
    let mut middlewares = BTreeSet::new();
    for svc in files.iter().flat_map(|f| &f.services) {
        if svc.status == Status::Exposed {
            services.extend(
                svc.services
                    .iter()
                    .filter(|s| s.protocol == "http")
                    .map(|s| s.name.clone()),
            );
            middlewares.extend(svc.middlewares.iter().map(|m| m.name.clone()));
        }
    }
    for svc in files.iter_mut().flat_map(|f| f.services.iter_mut()) {
        let mut found = Vec::new();
        for router in svc.routers.iter().filter(|r| r.protocol == "http") {
            for mw in &router.middlewares {
                found.extend(reference(
                    &router.name,
                    "middleware",
                    mw,
                    &middlewares,
                    provider,
                ));
            }
            if let Some(target) = &router.service {
                found.extend(reference(
                    &router.name,
                    "service",
                    target,
                    &services,
                    provider,
                ));
            }
        }
        svc.issues.extend(found);
    }
}

fn reference(
    router: &str,
    kind: &str,
    target: &str,
    defined: &BTreeSet<String>,
    provider: &str,
) -> Option<Issue> {
    let (name, qualifier) = match target.rsplit_once('@') {
        Some((name, p)) => (name, Some(p)),
        None => (target, None),
    };
    match qualifier {
        Some(p) if ELSEWHERE.contains(&p) => None,
        Some("docker") if provider == "swarm" => Some(Issue::warning(format!(
            "router `{router}`: {kind} `{target}` names the `docker` provider, Traefik v2's \
             provider for Swarm; the Swarm provider's resources are `{name}@swarm` (or \
             `{name}` without a provider)"
        ))),
        Some(p) if p != provider => None,
        _ if defined.contains(name) => None,
        _ => Some(Issue::warning(format!(
            "router `{router}`: {kind} `{name}` is not defined by the files checked; the \
             router fails unless another stack defines it (use `{name}@file` for the file \
             provider)"
        ))),
    }
}
