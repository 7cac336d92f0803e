//! `run`: watching, debouncing, reloading and sending updates.

use std::time::Duration;

use tokio::sync::mpsc;

use super::*;
use crate::provider::file::watch::{run_with, Timing};
use crate::provider::ProviderUpdate;

const WAIT: Duration = Duration::from_secs(10);
/// Long enough for a debounced burst to have been acted on.
const QUIET: Duration = Duration::from_millis(800);

fn fast_poll() -> Timing {
    Timing {
        debounce: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        poll_interval: Duration::from_millis(200),
        force_poll: true,
    }
}

/// Starts the provider with the start-up configuration already loaded, and gives
/// it time to set up its watch.
async fn start(
    cfg: FileProvider,
    timing: Option<Timing>,
) -> (mpsc::Receiver<ProviderUpdate>, tokio::task::JoinHandle<()>) {
    let initial = load(&cfg).unwrap();
    let (tx, rx) = mpsc::channel(16);
    let handle = tokio::spawn(async move {
        match timing {
            Some(timing) => run_with(cfg, Some(initial), tx, timing).await,
            None => run(cfg, Some(initial), tx).await,
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    (rx, handle)
}

async fn next_update(rx: &mut mpsc::Receiver<ProviderUpdate>) -> DynamicConfig {
    let update = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no update within the timeout")
        .expect("provider stopped");
    assert_eq!(update.provider, "file");
    update.config
}

async fn assert_no_update(rx: &mut mpsc::Receiver<ProviderUpdate>) {
    if let Ok(update) = tokio::time::timeout(QUIET, rx.recv()).await {
        panic!("unexpected update: {update:?}");
    }
}

async fn stop(rx: mpsc::Receiver<ProviderUpdate>, handle: tokio::task::JoinHandle<()>) {
    drop(rx);
    tokio::time::timeout(WAIT, handle)
        .await
        .expect("provider did not stop when the receiver closed")
        .unwrap();
}

#[tokio::test]
async fn run_sends_one_update_per_rewrite_including_atomic_renames() {
    let dir = TempDir::new();
    let path = dir.write("dynamic.yml", &router_yaml("web", "v1"));
    let (mut rx, handle) = start(file_cfg(&path), None).await;
    assert_no_update(&mut rx).await;

    dir.write("dynamic.yml", &router_yaml("web", "v2"));
    assert_eq!(rule_of(&next_update(&mut rx).await, "web"), "Host(`v2`)");
    assert_no_update(&mut rx).await;

    dir.write_atomic("dynamic.yml", &router_yaml("web", "v3"));
    assert_eq!(rule_of(&next_update(&mut rx).await, "web"), "Host(`v3`)");
    assert_no_update(&mut rx).await;

    // Rewriting the same content, or touching other files, sends nothing.
    dir.write_atomic("dynamic.yml", &router_yaml("web", "v3"));
    dir.write("unrelated.txt", "x");
    assert_no_update(&mut rx).await;

    stop(rx, handle).await;
}

#[tokio::test]
async fn run_keeps_the_last_good_config_on_an_invalid_rewrite() {
    let dir = TempDir::new();
    let path = dir.write("dynamic.yml", &router_yaml("web", "v1"));
    let (mut rx, handle) = start(file_cfg(&path), None).await;

    dir.write_atomic(
        "dynamic.yml",
        "http:\n  routers:\n    web:\n      rulez: x\n",
    );
    assert_no_update(&mut rx).await;
    dir.write_atomic("dynamic.yml", "http: [unclosed\n");
    assert_no_update(&mut rx).await;

    dir.write_atomic("dynamic.yml", &router_yaml("web", "v2"));
    assert_eq!(rule_of(&next_update(&mut rx).await, "web"), "Host(`v2`)");
    assert_no_update(&mut rx).await;

    stop(rx, handle).await;
}

#[tokio::test]
async fn run_watches_a_directory_tree() {
    let dir = TempDir::new();
    dir.write("a.yml", &router_yaml("a", "a"));
    let (mut rx, handle) = start(dir_cfg(&dir.0), None).await;

    dir.write_atomic(
        "b.toml",
        "[http.routers.b]\nrule = \"Host(`b`)\"\nservice = \"a-svc\"\n",
    );
    let config = next_update(&mut rx).await;
    assert_eq!(rule_of(&config, "b"), "Host(`b`)");

    std::fs::create_dir(dir.path("sub")).unwrap();
    dir.write("sub/c.yml", &router_yaml("c", "c"));
    let config = next_update(&mut rx).await;
    let names: Vec<&str> = config.http.routers.keys().map(String::as_str).collect();
    assert_eq!(names, ["a", "b", "c"]);

    std::fs::remove_file(dir.path("a.yml")).unwrap();
    let config = next_update(&mut rx).await;
    assert!(!config.http.routers.contains_key("a"));
    assert_no_update(&mut rx).await;

    stop(rx, handle).await;
}

#[cfg(unix)]
#[tokio::test]
async fn run_sees_kubernetes_style_symlink_swaps() {
    use std::os::unix::fs::symlink;

    let dir = TempDir::new();
    dir.write("..v1/dynamic.yml", &router_yaml("web", "v1"));
    symlink("..v1", dir.path("..data")).unwrap();
    symlink("..data/dynamic.yml", dir.path("dynamic.yml")).unwrap();
    let (mut rx, handle) = start(file_cfg(&dir.path("dynamic.yml")), None).await;

    dir.write("..v2/dynamic.yml", &router_yaml("web", "v2"));
    symlink("..v2", dir.path("..data_tmp")).unwrap();
    std::fs::rename(dir.path("..data_tmp"), dir.path("..data")).unwrap();
    assert_eq!(rule_of(&next_update(&mut rx).await, "web"), "Host(`v2`)");
    assert_no_update(&mut rx).await;

    stop(rx, handle).await;
}

#[tokio::test]
async fn run_polls_when_it_cannot_watch() {
    let dir = TempDir::new();
    let path = dir.write(
        "dynamic.toml",
        "[http.routers.web]\nrule = \"Host(`v1`)\"\n",
    );
    let (mut rx, handle) = start(file_cfg(&path), Some(fast_poll())).await;
    assert_no_update(&mut rx).await;

    // A different length (and inode) makes a different fingerprint even where
    // modification times are coarse.
    dir.write_atomic(
        "dynamic.toml",
        "[http.routers.web]\nrule = \"Host(`v2-long`)\"\n",
    );
    assert_eq!(
        rule_of(&next_update(&mut rx).await, "web"),
        "Host(`v2-long`)"
    );

    dir.write_atomic("dynamic.toml", "[http.routers.web]\nrule = ");
    assert_no_update(&mut rx).await;
    dir.write_atomic(
        "dynamic.toml",
        "[http.routers.web]\nrule = \"Host(`v3`)\"\n",
    );
    assert_eq!(rule_of(&next_update(&mut rx).await, "web"), "Host(`v3`)");

    stop(rx, handle).await;
}

#[tokio::test]
async fn run_without_initial_config_sends_the_first_load() {
    let dir = TempDir::new();
    let path = dir.write("dynamic.yml", &router_yaml("web", "v1"));
    for watch in [true, false] {
        let cfg = FileProvider {
            watch,
            ..file_cfg(&path)
        };
        let (tx, mut rx) = mpsc::channel(4);
        let handle = tokio::spawn(run(cfg, None, tx));
        assert_eq!(rule_of(&next_update(&mut rx).await, "web"), "Host(`v1`)");
        assert_no_update(&mut rx).await;
        stop(rx, handle).await;
    }
}

#[tokio::test]
async fn run_without_watch_ignores_changes() {
    let dir = TempDir::new();
    let path = dir.write("dynamic.yml", &router_yaml("web", "v1"));
    let cfg = FileProvider {
        watch: false,
        ..file_cfg(&path)
    };
    let (mut rx, handle) = start(cfg, None).await;
    dir.write_atomic("dynamic.yml", &router_yaml("web", "v2"));
    assert_no_update(&mut rx).await;
    stop(rx, handle).await;
}
