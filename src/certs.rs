//! `wharf certs`: the certificates in the configured store, for operators.
//!
//! Every action reads the same configuration as the proxy (`--config FILE`, flags,
//! environment) and works on `certStore` directly, so it sees what every instance
//! sharing the store sees. `renew` orders under the certificate's lock from this
//! process: the running instances answer the CA's challenge from the store and
//! start serving the new certificate when they see it there.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use wharf_certstore::acme::{status::CertificateStatus, Outcome, StoreChallenges};
use wharf_certstore::model::{self, CertificateEntry, Domains, IssuedCertificate};
use wharf_certstore::store::{Expect, Store};
use wharf_proxy::certs::setup;
use wharf_proxy::config::{load, StaticConfig};

/// How long `renew` and `import` wait for a lock another instance holds.
const LOCK_WAIT: Duration = Duration::from_secs(120);

/// One `wharf certs` action.
pub enum Action {
    /// Every stored certificate.
    List,
    /// One certificate in detail.
    Show(String),
    /// Renew now, under the lock.
    Renew(String),
    /// Store a certificate and key from files.
    Import,
    /// Write a certificate and key out.
    Export(String),
}

/// Options of `wharf certs` taken out of the flags; the rest configure wharf.
#[derive(Default)]
struct Options {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    out: Option<PathBuf>,
    resolver: Option<String>,
    json: bool,
    config_flags: Vec<String>,
}

fn parse_options(flags: Vec<String>) -> anyhow::Result<Options> {
    let mut o = Options::default();
    let mut it = flags.into_iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = |what: &str| -> anyhow::Result<String> {
            match inline.clone().or_else(|| it.next()) {
                Some(v) => Ok(v),
                None => bail!("{what} needs a value"),
            }
        };
        match name.as_str() {
            "--cert" => o.cert = Some(value("--cert")?.into()),
            "--key" => o.key = Some(value("--key")?.into()),
            "--out" => o.out = Some(value("--out")?.into()),
            "--resolver" => o.resolver = Some(value("--resolver")?),
            "--json" => o.json = true,
            _ => o.config_flags.push(arg),
        }
    }
    Ok(o)
}

/// Runs `action` with `flags` (its options and wharf's configuration flags).
pub fn run(action: Action, flags: Vec<String>) -> anyhow::Result<()> {
    let options = parse_options(flags)?;
    let cfg = load::load(&options.config_flags, std::env::vars())
        .context("invalid configuration")?
        .config;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let store = setup::open_store(&cfg.cert_store)?;
        match action {
            Action::List => list(&store, &options).await,
            Action::Show(domain) => show(&store, &domain).await,
            Action::Renew(domain) => renew(&cfg, &store, &domain).await,
            Action::Import => import(&cfg, &store, &options).await,
            Action::Export(domain) => export(&store, &domain, options.out.as_deref()).await,
        }
    })
}

/// Every certificate entry in the store: (resolver, key, entry, version).
async fn entries(
    store: &Arc<dyn Store>,
) -> anyhow::Result<Vec<(String, String, CertificateEntry, u64)>> {
    let mut out = Vec::new();
    for (key, stored) in store.list(model::CERTIFICATES).await? {
        match serde_json::from_slice::<CertificateEntry>(&stored.value) {
            Ok(entry) => {
                let resolver = key.split('/').nth(1).unwrap_or_default().to_string();
                out.push((resolver, key, entry, stored.version));
            }
            Err(e) => eprintln!("warning: {key}: undecodable entry skipped: {e}"),
        }
    }
    Ok(out)
}

/// The one entry covering `domain` (main domain preferred).
async fn find(
    store: &Arc<dyn Store>,
    domain: &str,
) -> anyhow::Result<(String, String, CertificateEntry, u64)> {
    let wanted = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let all = entries(store).await?;
    let mut matching: Vec<_> = all
        .into_iter()
        .filter(|(_, _, e, _)| e.domains.all().any(|d| d == wanted))
        .collect();
    matching.sort_by_key(|(_, _, e, _)| e.domains.main != wanted);
    match matching.len() {
        0 => bail!("no certificate for {wanted} in the store (see `wharf certs list`)"),
        1 => Ok(matching.remove(0)),
        _ if matching[0].2.domains.main == wanted && matching[1].2.domains.main != wanted => {
            Ok(matching.remove(0))
        }
        n => bail!(
            "{n} certificates cover {wanted}: {}",
            matching
                .iter()
                .map(|(_, k, _, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

async fn list(store: &Arc<dyn Store>, options: &Options) -> anyhow::Result<()> {
    let now = model::unix_now();
    let statuses: Vec<CertificateStatus> = entries(store)
        .await?
        .iter()
        .map(|(resolver, key, entry, _)| CertificateStatus::from_entry(resolver, key, entry, now))
        .collect();
    if options.json {
        println!("{}", serde_json::to_string_pretty(&statuses)?);
        return Ok(());
    }
    println!(
        "{:<12} {:<8} {:<21} {:<40} LAST ERROR",
        "RESOLVER", "STATUS", "NOT AFTER", "DOMAINS"
    );
    for s in statuses {
        println!(
            "{:<12} {:<8} {:<21} {:<40} {}",
            s.resolver,
            s.status,
            s.not_after.as_deref().unwrap_or("-"),
            s.domains.join(","),
            s.last_error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

async fn show(store: &Arc<dyn Store>, domain: &str) -> anyhow::Result<()> {
    let (resolver, key, entry, version) = find(store, domain).await?;
    let mut status = serde_json::to_value(CertificateStatus::from_entry(
        &resolver,
        &key,
        &entry,
        model::unix_now(),
    ))?;
    if let (Some(obj), Some(cert)) = (status.as_object_mut(), &entry.certificate) {
        obj.insert("version".into(), version.into());
        obj.insert("directoryUrl".into(), entry.directory_url.clone().into());
        obj.insert("ariCertId".into(), cert.ari_cert_id.clone().into());
        obj.insert("chain".into(), cert.chain_pem.clone().into());
    }
    println!("{}", serde_json::to_string_pretty(&status)?);
    Ok(())
}

async fn renew(cfg: &StaticConfig, store: &Arc<dyn Store>, domain: &str) -> anyhow::Result<()> {
    let (resolver, _, entry, _) = find(store, domain).await?;
    let settings = setup::resolvers(cfg)?
        .into_iter()
        .find(|s| s.name == resolver)
        .with_context(|| format!("certificate resolver {resolver:?} is not configured here"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let challenges = Arc::new(StoreChallenges::new(store.clone(), provider));
    let issuer = setup::issuers(store, vec![settings], &challenges)?
        .pop()
        .context("no issuer")?;
    let started = Instant::now();
    let names = entry.domains.all().collect::<Vec<_>>().join(",");
    eprintln!(
        "renewing {names} through {resolver} (the running instances answer the challenge)..."
    );
    match issuer
        .obtain(&entry.domains, entry.certificate.as_ref(), LOCK_WAIT)
        .await
    {
        Ok(Outcome::Issued(e)) => {
            let not_after = e.certificate.as_ref().map(|c| c.not_after).unwrap_or(0);
            println!(
                "renewed {names} in {:.1}s; valid until {}",
                started.elapsed().as_secs_f64(),
                wharf_certstore::acme::status::rfc3339(not_after)
            );
            Ok(())
        }
        Ok(Outcome::Current(_)) => {
            println!("{names} was renewed by another instance meanwhile; nothing ordered");
            Ok(())
        }
        Err(e) => bail!(
            "renewal of {names} failed: {}\n(the CA validates against the running wharf instances, which answer from the store: is one running and reachable by the CA?)",
            e.detail()
        ),
    }
}

async fn import(
    cfg: &StaticConfig,
    store: &Arc<dyn Store>,
    options: &Options,
) -> anyhow::Result<()> {
    let (Some(cert_path), Some(key_path)) = (&options.cert, &options.key) else {
        bail!("import needs --cert FILE and --key FILE");
    };
    let chain_pem = std::fs::read_to_string(cert_path)
        .with_context(|| format!("cannot read {}", cert_path.display()))?;
    let key_pem = std::fs::read_to_string(key_path)
        .with_context(|| format!("cannot read {}", key_path.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    wharf_certstore::pem::load_pem(chain_pem.as_bytes(), key_pem.as_bytes(), &provider)
        .context("the certificate and key cannot be served")?;
    let info = wharf_certstore::acme::keys::chain_info(&chain_pem)?;
    let Some((main, sans)) = info.names.split_first() else {
        bail!("the certificate names no DNS name");
    };
    let sans: Vec<&str> = sans.iter().map(String::as_str).collect();
    let domains = Domains::new(main, &sans);
    let resolvers: Vec<&String> = cfg.certificates_resolvers.keys().collect();
    let resolver = match (&options.resolver, resolvers.as_slice()) {
        (Some(r), _) => r.clone(),
        (None, [only]) => (*only).clone(),
        (None, []) => "imported".to_string(),
        (None, _) => bail!("several resolvers are configured: choose one with --resolver NAME"),
    };
    let key = model::certificate_key(&resolver, &domains)?;
    let directory_url = cfg
        .certificates_resolvers
        .get(&resolver)
        .and_then(|r| r.acme.as_ref())
        .map(|a| a.ca_server.clone())
        .unwrap_or_default();
    let lock = store.lock(&key, Duration::from_secs(60), LOCK_WAIT).await?;
    let entry = CertificateEntry {
        domains,
        directory_url,
        certificate: Some(IssuedCertificate {
            chain_pem,
            key_pem,
            not_before: info.validity.not_before,
            not_after: info.validity.not_after,
            ari_cert_id: info.ari_cert_id,
        }),
        last_attempt: None,
        last_error: None,
    };
    let saved = model::save(store.as_ref(), &key, &entry, Expect::Any).await;
    lock.release().await.ok();
    saved?;
    println!(
        "imported {} as {key}",
        entry.domains.all().collect::<Vec<_>>().join(",")
    );
    Ok(())
}

async fn export(store: &Arc<dyn Store>, domain: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let (_, _, entry, _) = find(store, domain).await?;
    let Some(cert) = entry.certificate else {
        bail!("{domain} has no certificate yet");
    };
    let Some(dir) = out else {
        print!("{}", cert.chain_pem);
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let base = entry.domains.main.replace('*', "_");
    let crt = dir.join(format!("{base}.crt"));
    let key = dir.join(format!("{base}.key"));
    std::fs::write(&crt, &cert.chain_pem)
        .with_context(|| format!("cannot write {}", crt.display()))?;
    write_private(&key, cert.key_pem.as_bytes())
        .with_context(|| format!("cannot write {}", key.display()))?;
    println!("{}\n{}", crt.display(), key.display());
    Ok(())
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certs_options_are_taken_out_and_the_rest_configures_wharf() {
        let flags = [
            "--cert",
            "c.pem",
            "--key=k.pem",
            "--config",
            "w.yml",
            "--json",
            "--certstore.file.directory=/d",
        ];
        let o = parse_options(flags.iter().map(|s| s.to_string()).collect()).unwrap_or_default();
        assert_eq!(o.cert.as_deref(), Some(Path::new("c.pem")));
        assert_eq!(o.key.as_deref(), Some(Path::new("k.pem")));
        assert!(o.json);
        assert_eq!(
            o.config_flags,
            vec!["--config", "w.yml", "--certstore.file.directory=/d"]
        );
        assert!(parse_options(vec!["--out".into()]).is_err());
    }
}
