//! What `wharf check` found, as data: the JSON output is this structure serialized
//! (see [`SCHEMA`]), and the text output is rendered from it.

use serde::Serialize;

/// The JSON schema version; bumped when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

/// The JSON output, described for `wharf check --help`.
pub const SCHEMA: &str = "\
JSON OUTPUT (--json), schema version 1:
  { \"schema\": 1,
    \"summary\": { \"files\", \"stack_files\", \"fragments\", \"skipped\", \"invalid\",
                 \"services\", \"exposed\", \"routers\", \"errors\", \"warnings\" },
    \"files\": [ {
      \"path\": \"dir/stack.yml\",
      \"kind\": \"stack\" | \"fragment\" | \"skipped\" | \"invalid\",
      \"stack\": \"dir\" | null,  \"stack_source\": \"directory\" | \"option\" | null,
      \"issues\": [ ISSUE ],                      // about the file as a whole
      \"services\": [ {
        \"name\": \"web\",  \"swarm_name\": \"dir_web\",
        \"status\": \"exposed\" | \"not_exposed\" | \"invalid\",
        \"reason\": \"why not exposed\" | null,
        \"network\": \"traefik-public\" | null,  \"lbswarm\": false,
        \"routers\": [ {
          \"protocol\": \"http\" | \"tcp\" | \"udp\",  \"name\": \"web\",
          \"rule\": \"Host(`a.example.com`)\" | null,  \"rule_syntax\": \"v3\" | null,
          \"default_rule\": false,                  // true: no rule label, defaultRule
          \"priority\": 22,  \"priority_source\": \"explicit\" | \"rule length\",
          \"entrypoints\": [\"websecure\"],          // empty: every entrypoint
          \"tls\": null | { \"cert_resolver\": \"le\" | null, \"options\": null,
                          \"passthrough\": false, \"domains\": [ { \"main\", \"sans\": [] } ] },
          \"middlewares\": [\"auth\"],  \"service\": \"web\" | null,
          \"port\": \"8080\" | null } ],            // the service's server port
        \"services\":    [ { \"protocol\", \"name\", \"port\": \"8080\" | null, \"scheme\": null } ],
        \"middlewares\": [ { \"name\": \"auth\", \"type\": \"basicauth\" } ],
        \"issues\": [ ISSUE ] } ] } ] }
  ISSUE = { \"severity\": \"error\" | \"warning\", \"label\": \"traefik....\" | null,
            \"line\": 12 | null, \"message\": \"...\" }
  Lines are 1-based; a label's line is where its key is written (before interpolation).";

/// Whether an issue blocks the deployment or only deserves attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The stack would not deploy, or Traefik would reject or drop part of it.
    Error,
    /// Worth a look; the stack works as written.
    Warning,
}

/// One problem, about a file, a service or a label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// How serious it is.
    pub severity: Severity,
    /// The label concerned, if any.
    pub label: Option<String>,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// What is wrong, and how to fix it when there is an obvious fix.
    pub message: String,
}

impl Issue {
    /// An error.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            label: None,
            line: None,
            message: message.into(),
        }
    }

    /// A warning.
    pub fn warning(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(message)
        }
    }

    /// The same issue, about `label`.
    pub fn with_label(mut self, label: Option<String>) -> Self {
        self.label = label;
        self
    }

    /// The same issue, at `line`.
    pub fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}

/// The whole result of one `wharf check` run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// Counts over every file.
    pub summary: Summary,
    /// Every file read, in path order.
    pub files: Vec<FileReport>,
}

/// Counts over every file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Files read.
    pub files: usize,
    /// Stack (compose) files.
    pub stack_files: usize,
    /// Fragments: services without a top-level `services:` key.
    pub fragments: usize,
    /// YAML files that are not stack files.
    pub skipped: usize,
    /// Files that could not be read or parsed.
    pub invalid: usize,
    /// Services in stack files and fragments.
    pub services: usize,
    /// Services the proxy would route to.
    pub exposed: usize,
    /// Routers, every protocol.
    pub routers: usize,
    /// Errors.
    pub errors: usize,
    /// Warnings.
    pub warnings: usize,
}

/// What kind of file this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A compose file with `services:`.
    Stack,
    /// Service definitions without the `services:` key around them.
    Fragment,
    /// Valid YAML that is not a stack file (not checked).
    Skipped,
    /// Unreadable, or not valid YAML.
    Invalid,
}

/// Where the stack name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StackSource {
    /// The file's parent directory name.
    Directory,
    /// `--stack NAME`.
    Option,
}

/// One file's result.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The path, as given or found.
    pub path: String,
    /// What kind of file it is.
    pub kind: FileKind,
    /// The stack name used to build Swarm service names.
    pub stack: Option<String>,
    /// Where the stack name comes from.
    pub stack_source: Option<StackSource>,
    /// Problems with the file as a whole.
    pub issues: Vec<Issue>,
    /// Services, in file order.
    pub services: Vec<ServiceReport>,
}

/// Whether the proxy routes to a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The labels produce a configuration.
    Exposed,
    /// Not routed (no proxy labels, disabled, or filtered out).
    NotExposed,
    /// The labels are rejected as a whole.
    Invalid,
}

/// One service's result.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    /// The compose service name.
    pub name: String,
    /// The Swarm service name, `<stack>_<name>`.
    pub swarm_name: String,
    /// Whether the proxy routes to it.
    pub status: Status,
    /// Why it is not exposed.
    pub reason: Option<String>,
    /// The network the proxy would reach it on (`traefik.docker.network` or the option).
    pub network: Option<String>,
    /// Whether the proxy uses the service's virtual IP (`lbswarm`).
    pub lbswarm: bool,
    /// Routers, HTTP then TCP then UDP, by name.
    pub routers: Vec<RouterSummary>,
    /// Services defined by the labels.
    pub services: Vec<ServiceSummary>,
    /// Middlewares defined by the labels.
    pub middlewares: Vec<MiddlewareSummary>,
    /// Problems, by line (those without a line last).
    pub issues: Vec<Issue>,
}

/// A router as the proxy would build it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouterSummary {
    /// `http`, `tcp` or `udp`.
    pub protocol: &'static str,
    /// Router name.
    pub name: String,
    /// The rule (none for UDP).
    pub rule: Option<String>,
    /// The rule dialect, when the labels set one.
    pub rule_syntax: Option<String>,
    /// Whether the rule is the provider's default rule (no `rule` label).
    pub default_rule: bool,
    /// Effective priority.
    pub priority: i64,
    /// `explicit` or `rule length`.
    pub priority_source: &'static str,
    /// Entrypoints; empty means every entrypoint.
    pub entrypoints: Vec<String>,
    /// TLS settings, when the router serves TLS.
    pub tls: Option<TlsSummary>,
    /// Middlewares, in order.
    pub middlewares: Vec<String>,
    /// Target service.
    pub service: Option<String>,
    /// The target service's server port, when it is defined by the same labels.
    pub port: Option<String>,
}

/// A router's TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsSummary {
    /// Certificate resolver.
    pub cert_resolver: Option<String>,
    /// TLS options name.
    pub options: Option<String>,
    /// TCP passthrough.
    pub passthrough: bool,
    /// Explicit certificate domains.
    pub domains: Vec<DomainSummary>,
}

/// A certificate domain set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainSummary {
    /// Main name.
    pub main: String,
    /// Alternative names.
    pub sans: Vec<String>,
}

/// A service defined by labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceSummary {
    /// `http`, `tcp` or `udp`.
    pub protocol: &'static str,
    /// Service name.
    pub name: String,
    /// Server port (`loadbalancer.server.port`).
    pub port: Option<String>,
    /// Server scheme (`loadbalancer.server.scheme`).
    pub scheme: Option<String>,
}

/// A middleware defined by labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MiddlewareSummary {
    /// Middleware name.
    pub name: String,
    /// Its type (`basicauth`, `redirectscheme`, …), lowercase.
    #[serde(rename = "type")]
    pub kind: String,
}

impl Report {
    /// Whether any error was found.
    pub fn has_errors(&self) -> bool {
        self.summary.errors > 0
    }

    /// Fills [`Report::summary`] from the files.
    pub fn summarize(&mut self) {
        let mut s = Summary {
            files: self.files.len(),
            ..Summary::default()
        };
        for file in &self.files {
            match file.kind {
                FileKind::Stack => s.stack_files += 1,
                FileKind::Fragment => s.fragments += 1,
                FileKind::Skipped => s.skipped += 1,
                FileKind::Invalid => s.invalid += 1,
            }
            let issues = file
                .issues
                .iter()
                .chain(file.services.iter().flat_map(|svc| svc.issues.iter()));
            for issue in issues {
                match issue.severity {
                    Severity::Error => s.errors += 1,
                    Severity::Warning => s.warnings += 1,
                }
            }
            s.services += file.services.len();
            for svc in &file.services {
                s.exposed += usize::from(svc.status == Status::Exposed);
                s.routers += svc.routers.len();
            }
        }
        self.summary = s;
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
