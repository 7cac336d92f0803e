//! The file backend against the conformance suite (several `FileStore`s on one
//! directory, as several nodes would share one), across processes, and on its own
//! file layout.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::{FileStore, FileStoreOptions};
use crate::store::{Expect, LockError, Store, StoreError};
use crate::testutil::TempDir;

fn fast_options() -> FileStoreOptions {
    FileStoreOptions {
        poll_interval: Duration::from_millis(100),
        ..FileStoreOptions::default()
    }
}

/// A factory of independent `FileStore`s on one fresh directory.
fn nodes(options: FileStoreOptions) -> impl Fn() -> Arc<dyn Store> + Send + Sync {
    let dir = TempDir::new();
    move || {
        Arc::new(FileStore::open(dir.path().join("store"), options.clone()).unwrap())
            as Arc<dyn Store>
    }
}

mod conformance_cases {
    crate::store_conformance_tests!(super::nodes(super::fast_options()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_with_default_options() {
    crate::store::conformance::run_all(nodes(FileStoreOptions::default())).await;
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn files_are_private_and_laid_out_per_key() {
    let dir = TempDir::new();
    let root = dir.path().join("store");
    let store = FileStore::open(&root, fast_options()).unwrap();
    store.put("a/b", b"v".to_vec(), Expect::Any).await.unwrap();
    store
        .put("a/b/c", b"w".to_vec(), Expect::Any)
        .await
        .unwrap();
    let lock = store
        .lock("issue/x", Duration::from_secs(5), Duration::ZERO)
        .await
        .unwrap();
    for d in ["kv", "kv/a", "kv/a/b", "kv/a/b/c", "locks/issue/x"] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d}");
    }
    for f in [
        "kv/a/b/.entry",
        "kv/a/b/.lock",
        "kv/a/b/c/.entry",
        "locks/issue/x/.lease",
    ] {
        assert_eq!(mode(&root.join(f)), 0o600, "{f}");
    }
    let raw = std::fs::read(root.join("kv/a/b/.entry")).unwrap();
    assert_eq!(raw, b"wharf-entry 1 1 1\nv");
    let lease: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("locks/issue/x/.lease")).unwrap()).unwrap();
    assert_eq!(lease["token"], 1);
    assert!(lease["owner"]
        .as_str()
        .unwrap()
        .contains(&std::process::id().to_string()));
    lock.release().await.unwrap();
    let names: Vec<String> = std::fs::read_dir(root.join("kv/a/b"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(names.is_empty(), "no temporary files left: {names:?}");
}

#[tokio::test]
async fn corrupt_entries_are_reported_with_their_path() {
    let dir = TempDir::new();
    let store = FileStore::open(dir.path(), fast_options()).unwrap();
    store
        .put("x/ok", b"fine".to_vec(), Expect::Any)
        .await
        .unwrap();
    store
        .put("x/bad", b"fine".to_vec(), Expect::Any)
        .await
        .unwrap();
    let path = dir.path().join("kv/x/bad/.entry");
    std::fs::write(&path, b"wharf-entry 1 3 99\nshort").unwrap();
    match store.get("x/bad").await {
        Err(StoreError::Corrupt { key, path: p, .. }) => {
            assert_eq!(key, "x/bad");
            assert_eq!(p, path);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(
        store.put("x/bad", vec![], Expect::Any).await.is_err(),
        "no blind overwrite"
    );
    let listed = store.list("x").await.unwrap();
    assert_eq!(listed.len(), 1, "the corrupt entry is left out of listings");
    assert_eq!(listed[0].0, "x/ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_fires_when_renewals_keep_failing() {
    let dir = TempDir::new();
    let store = FileStore::open(dir.path(), fast_options()).unwrap();
    let ttl = Duration::from_millis(900);
    let lock = store.lock("l", ttl, Duration::ZERO).await.unwrap();
    // The lock directory disappears: every renewal fails with an I/O error.
    std::fs::rename(dir.path().join("locks/l"), dir.path().join("moved")).unwrap();
    let started = tokio::time::Instant::now();
    tokio::time::timeout(ttl, lock.lost())
        .await
        .expect("lost before the lease can expire");
    assert!(started.elapsed() >= ttl / 3, "lost only after retrying");
}

#[tokio::test]
async fn lock_rejects_out_of_range_ttls() {
    let dir = TempDir::new();
    let store = FileStore::open(dir.path(), fast_options()).unwrap();
    for ttl in [
        Duration::ZERO,
        Duration::from_millis(99),
        Duration::from_secs(100_000),
    ] {
        let r = store.lock("l", ttl, Duration::ZERO).await;
        assert!(
            matches!(r, Err(LockError::InvalidTtl { .. })),
            "{ttl:?}: {r:?}"
        );
    }
}

// ---- Several processes on one directory ------------------------------------------

/// Set in a child process to the role it plays (see `child`).
const CHILD_ENV: &str = "WHARF_STORE_TEST_CHILD";

/// Runs this test binary again as a child playing `role` on the store at `dir`.
fn spawn_child(role: &str, dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::file::tests::child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{role}|{}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The `RESULT` line a child printed.
fn child_result(child: std::process::Child) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    stdout
        .lines()
        .find_map(|l| {
            l.split_once("RESULT ")
                .map(|(_, r)| r.split_whitespace().next())
        })
        .flatten()
        .unwrap_or_else(|| panic!("no result from child: {stdout}"))
        .to_string()
}

/// Not a test on its own: the body of the child processes, a no-op otherwise.
#[test]
fn child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (role, dir) = spec.split_once('|').unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(async {
        let store = FileStore::open(dir, fast_options()).unwrap();
        // Start together: wait for the parent's signal.
        while !Path::new(dir).join("go").exists() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        match role {
            "lock" => {
                let ttl = Duration::from_secs(1);
                match store
                    .lock("contended", ttl, Duration::from_millis(1500))
                    .await
                {
                    Ok(lock) => {
                        // Hold it across several renewals, longer than the others wait.
                        tokio::time::sleep(Duration::from_millis(3000)).await;
                        assert!(!lock.is_lost(), "lock lost while holding it");
                        lock.release().await.unwrap();
                        "won".to_string()
                    }
                    Err(LockError::Busy { .. }) => "busy".to_string(),
                    Err(e) => panic!("lock failed: {e}"),
                }
            }
            "incr" => {
                for _ in 0..20 {
                    loop {
                        let e = store.get("counter").await.unwrap().unwrap();
                        let n: u64 = String::from_utf8(e.value).unwrap().parse().unwrap();
                        let next = (n + 1).to_string().into_bytes();
                        match store.put("counter", next, Expect::Version(e.version)).await {
                            Ok(_) => break,
                            Err(e) if e.is_conflict() => continue,
                            Err(e) => panic!("put failed: {e}"),
                        }
                    }
                }
                "done".to_string()
            }
            other => panic!("unknown role {other}"),
        }
    });
    println!("RESULT {result}");
}

#[test]
fn processes_contending_for_a_lock_only_one_wins() {
    let dir = TempDir::new();
    let children: Vec<_> = (0..3).map(|_| spawn_child("lock", dir.path())).collect();
    std::fs::write(dir.path().join("go"), b"").unwrap();
    let mut results: Vec<String> = children.into_iter().map(child_result).collect();
    results.sort();
    assert_eq!(results, ["busy", "busy", "won"]);
}

#[test]
fn processes_incrementing_with_cas_lose_no_update() {
    let dir = TempDir::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = FileStore::open(dir.path(), fast_options()).unwrap();
        store
            .put("counter", b"0".to_vec(), Expect::Absent)
            .await
            .unwrap();
    });
    let children: Vec<_> = (0..2).map(|_| spawn_child("incr", dir.path())).collect();
    std::fs::write(dir.path().join("go"), b"").unwrap();
    for c in children {
        assert_eq!(child_result(c), "done");
    }
    rt.block_on(async {
        let store = FileStore::open(dir.path(), fast_options()).unwrap();
        assert_eq!(store.get("counter").await.unwrap().unwrap().value, b"40");
    });
}
