use std::sync::Arc;

use super::*;
use crate::store::{validate_key, FileStore, FileStoreOptions};

fn issued() -> IssuedCertificate {
    IssuedCertificate {
        chain_pem: "-----BEGIN CERTIFICATE-----\n...".into(),
        key_pem: "-----BEGIN PRIVATE KEY-----\n...".into(),
        not_before: 1_767_225_600,
        not_after: 1_775_001_600,
        ari_cert_id: Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".into()),
    }
}

#[test]
fn domains_are_normalized() {
    let d = Domains::new(
        "Example.COM.",
        &["www.example.com", "example.com", "WWW.example.com"],
    );
    assert_eq!(d.main, "example.com");
    assert_eq!(d.sans, ["www.example.com"]);
    assert_eq!(d.sorted(), ["example.com", "www.example.com"]);
}

#[test]
fn certificate_keys_identify_the_name_set() {
    let a = Domains::new("example.com", &["www.example.com", "api.example.com"]);
    let b = Domains::new("example.com", &["api.example.com", "www.example.com"]);
    let c = Domains::new("example.com", &["www.example.com"]);
    let ka = certificate_key("le", &a).unwrap();
    assert!(ka.starts_with("certificates/le/example.com-"), "{ka}");
    assert_eq!(ka.len(), "certificates/le/example.com-".len() + 16);
    assert_eq!(ka, certificate_key("le", &b).unwrap());
    let raw = Domains {
        main: "EXAMPLE.com.".into(),
        sans: vec![
            "api.example.com".into(),
            "www.example.com".into(),
            "example.com".into(),
        ],
    };
    assert_eq!(
        ka,
        certificate_key("le", &raw).unwrap(),
        "names are normalized"
    );
    assert_ne!(ka, certificate_key("le", &c).unwrap());
    assert_ne!(ka, certificate_key("staging", &a).unwrap());
    assert_eq!(certificate_lock("le", &a).unwrap(), ka);
    let wild = certificate_key("le", &Domains::new("*.example.com", &[])).unwrap();
    assert!(
        wild.starts_with("certificates/le/wildcard_.example.com-"),
        "{wild}"
    );
    assert!(certificate_key("a/b", &a).is_err());
    assert!(certificate_key("..", &a).is_err());
    assert_eq!(certificate_prefix("le").unwrap(), "certificates/le");
    validate_key(&ka).unwrap();
}

#[test]
fn account_keys_use_the_directory_host() {
    let le = "https://acme-v02.api.letsencrypt.org/directory";
    assert_eq!(
        account_key(le, "Ops+LE@Example.com").unwrap(),
        "accounts/acme-v02.api.letsencrypt.org/ops+le@example.com"
    );
    assert_eq!(
        account_key("https://localhost:14000/dir", "").unwrap(),
        "accounts/localhost_14000/no-email"
    );
    assert_eq!(
        account_key(le, "we ird/..@x").unwrap(),
        "accounts/acme-v02.api.letsencrypt.org/we_ird_..@x"
    );
    assert_eq!(
        account_lock(le, "a@b").unwrap(),
        account_key(le, "a@b").unwrap()
    );
    assert!(account_key("https:///dir", "a@b").is_err());
}

#[test]
fn challenge_keys_refuse_hostile_input() {
    assert_eq!(
        http01_challenge_key("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0").unwrap(),
        "challenges/http-01/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
    );
    for bad in ["", "..", "a/b", "a.b", "%2e%2e", &"a".repeat(129)] {
        assert!(http01_challenge_key(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        tls_alpn01_challenge_key("WWW.Example.com.").unwrap(),
        "challenges/tls-alpn-01/www.example.com"
    );
    let long = format!("{}.example.com", vec!["a".repeat(63); 3].join("."));
    tls_alpn01_challenge_key(&long).unwrap();
    for bad in [
        "",
        ".",
        "a..b",
        ".a",
        "a/b",
        "*.example.com",
        "a b",
        &"a".repeat(64),
    ] {
        assert!(tls_alpn01_challenge_key(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn records_round_trip_as_json() {
    let cert = CertificateEntry {
        domains: Domains::new("example.com", &["www.example.com"]),
        directory_url: "https://acme-v02.api.letsencrypt.org/directory".into(),
        certificate: Some(issued()),
        last_attempt: Some(1_767_225_000),
        last_error: None,
    };
    let json = serde_json::to_value(&cert).unwrap();
    assert_eq!(json["domains"]["sans"][0], "www.example.com");
    assert_eq!(json["certificate"]["not_after"], 1_775_001_600);
    assert_eq!(
        serde_json::from_value::<CertificateEntry>(json).unwrap(),
        cert
    );
    // Missing optional fields and unknown ones are accepted.
    let minimal: CertificateEntry = serde_json::from_str(
        r#"{"domains":{"main":"a.test"},"directory_url":"https://ca/dir","future":1}"#,
    )
    .unwrap();
    assert!(minimal.certificate.is_none() && minimal.domains.sans.is_empty());

    let account = AccountEntry {
        directory_url: "https://ca/dir".into(),
        email: "a@b".into(),
        credentials: serde_json::json!({"id": "https://ca/acct/1", "key_pkcs8": "..."}),
        created: 1,
    };
    let text = serde_json::to_string(&account).unwrap();
    assert_eq!(
        serde_json::from_str::<AccountEntry>(&text).unwrap(),
        account
    );
    assert!(
        !format!("{account:?}").contains("key_pkcs8"),
        "Debug hides credentials"
    );
    assert!(
        !format!("{:?}", issued()).contains("PRIVATE"),
        "Debug hides keys"
    );

    let http = ChallengeEntry::Http01 {
        token: "tok".into(),
        key_authorization: "tok.thumb".into(),
        expires: 100,
    };
    let json = serde_json::to_value(&http).unwrap();
    assert_eq!(json["type"], "http-01");
    assert_eq!(
        serde_json::from_value::<ChallengeEntry>(json).unwrap(),
        http
    );
    assert_eq!(http.key().unwrap(), "challenges/http-01/tok");
    assert!(!http.is_expired(99) && http.is_expired(100));
    let alpn = ChallengeEntry::TlsAlpn01 {
        domain: "a.test".into(),
        cert_pem: "c".into(),
        key_pem: "k".into(),
        expires: 5,
    };
    let json = serde_json::to_value(&alpn).unwrap();
    assert_eq!(json["type"], "tls-alpn-01");
    assert_eq!(
        serde_json::from_value::<ChallengeEntry>(json).unwrap(),
        alpn
    );
    assert_eq!(alpn.key().unwrap(), "challenges/tls-alpn-01/a.test");
}

#[tokio::test]
async fn load_and_save_through_a_store() {
    let dir = crate::testutil::TempDir::new();
    let store: Arc<dyn Store> =
        Arc::new(FileStore::open(dir.path(), FileStoreOptions::default()).unwrap());
    let domains = Domains::new("a.test", &[]);
    let key = certificate_key("le", &domains).unwrap();
    let mut entry = CertificateEntry {
        domains,
        directory_url: "https://ca/dir".into(),
        certificate: None,
        last_attempt: Some(unix_now()),
        last_error: Some("rate limited".into()),
    };
    assert!(load::<CertificateEntry>(&*store, &key)
        .await
        .unwrap()
        .is_none());
    let v = save(&*store, &key, &entry, Expect::Absent).await.unwrap();
    entry.certificate = Some(issued());
    entry.last_error = None;
    let v2 = save(&*store, &key, &entry, Expect::Version(v))
        .await
        .unwrap();
    let err = save(&*store, &key, &entry, Expect::Version(v))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ModelError::Store(ref e) if e.is_conflict()),
        "{err}"
    );
    let (loaded, version) = load::<CertificateEntry>(&*store, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((loaded, version), (entry, v2));
    store
        .put("x", b"not json".to_vec(), Expect::Any)
        .await
        .unwrap();
    let err = load::<CertificateEntry>(&*store, "x").await.unwrap_err();
    assert!(
        matches!(err, ModelError::Decode { ref key, .. } if key == "x"),
        "{err}"
    );
}
