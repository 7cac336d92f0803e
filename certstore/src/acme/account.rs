//! The ACME account of a resolver: one per CA directory and email, stored so every
//! instance uses the same one. Registration happens once, under the account's lock.

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{Account, AccountCredentials, ExternalAccountKey, NewAccount};

use super::client::AcmeHttp;
use super::{AcmeError, ResolverSettings};
use crate::model::{self, AccountEntry};
use crate::store::{Expect, Store};

/// Lease of the account registration lock.
const LOCK_TTL: Duration = Duration::from_secs(60);

/// How long to wait for another instance's registration.
const LOCK_WAIT: Duration = Duration::from_secs(90);

/// The resolver's account: restored from the store, or registered (once, under the
/// lock) and stored.
pub async fn account(
    store: &Arc<dyn Store>,
    settings: &ResolverSettings,
    http: &AcmeHttp,
) -> Result<Account, AcmeError> {
    let key = model::account_key(&settings.directory_url, &settings.email)?;
    if let Some(account) = restore(store.as_ref(), &key, http).await? {
        return Ok(account);
    }
    let lock_name = model::account_lock(&settings.directory_url, &settings.email)?;
    let lock = store.lock(&lock_name, LOCK_TTL, LOCK_WAIT).await?;
    // Another instance may have registered while we waited.
    if let Some(account) = restore(store.as_ref(), &key, http).await? {
        release(lock).await;
        return Ok(account);
    }
    let result = register(store.as_ref(), &key, settings, http).await;
    if lock.is_lost() && result.is_ok() {
        tracing::warn!(lock = %lock_name, "account lock lost during registration");
    }
    release(lock).await;
    result
}

async fn restore(
    store: &dyn Store,
    key: &str,
    http: &AcmeHttp,
) -> Result<Option<Account>, AcmeError> {
    let Some((entry, _)) = model::load::<AccountEntry>(store, key).await? else {
        return Ok(None);
    };
    let credentials: AccountCredentials =
        serde_json::from_value(entry.credentials).map_err(AcmeError::Credentials)?;
    let account = Account::builder_with_http(Box::new(http.clone()))
        .from_credentials(credentials)
        .await
        .map_err(AcmeError::acme("restoring the ACME account"))?;
    Ok(Some(account))
}

async fn register(
    store: &dyn Store,
    key: &str,
    settings: &ResolverSettings,
    http: &AcmeHttp,
) -> Result<Account, AcmeError> {
    let contact = format!("mailto:{}", settings.email.trim());
    let contacts: Vec<&str> = if settings.email.trim().is_empty() {
        Vec::new()
    } else {
        vec![contact.as_str()]
    };
    let eab = settings
        .eab
        .as_ref()
        .map(|e| ExternalAccountKey::new(e.kid.clone(), &e.hmac_key));
    let (account, credentials) = Account::builder_with_http(Box::new(http.clone()))
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory_url.clone(),
            eab.as_ref(),
        )
        .await
        .map_err(AcmeError::acme("registering the ACME account"))?;
    let entry = AccountEntry {
        directory_url: settings.directory_url.clone(),
        email: settings.email.clone(),
        credentials: serde_json::to_value(&credentials).map_err(AcmeError::Credentials)?,
        created: model::unix_now(),
    };
    model::save(store, key, &entry, Expect::Absent).await?;
    tracing::info!(resolver = %settings.name, directory = %settings.directory_url, account = account.id(), "ACME account registered");
    Ok(account)
}

/// Removes the stored account if it is still the one with id `stale_id` (another
/// instance may have registered a new one already).
pub async fn forget(
    store: &dyn Store,
    settings: &ResolverSettings,
    stale_id: &str,
) -> Result<(), AcmeError> {
    let key = model::account_key(&settings.directory_url, &settings.email)?;
    let Some((entry, version)) = model::load::<AccountEntry>(store, &key).await? else {
        return Ok(());
    };
    if entry.credentials.get("id").and_then(|v| v.as_str()) == Some(stale_id) {
        match store.delete(&key, Expect::Version(version)).await {
            Err(e) if !e.is_conflict() => return Err(e.into()),
            _ => {}
        }
    }
    Ok(())
}

async fn release(lock: crate::store::Lock) {
    let name = lock.name().to_string();
    if let Err(e) = lock.release().await {
        tracing::warn!(lock = %name, error = %e, "cannot release lock; it expires after its TTL");
    }
}
