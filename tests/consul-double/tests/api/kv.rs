//! KV endpoint cases: entry shape, raw, 404, cas, recurse, keys/separator, deletes, limits.

use http::StatusCode;
use serde_json::json;

use crate::common::{decode, start, Api};

#[tokio::test]
async fn put_then_get_returns_the_documented_entry_and_read_headers() {
    let double = start().await;
    let api = Api::new(&double);
    assert!(api.put_ok("/v1/kv/web/config?flags=42", "hello").await);
    let reply = api.get("/v1/kv/web/config").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.headers["x-consul-knownleader"], "true");
    assert_eq!(reply.headers["x-consul-lastcontact"], "0");
    let entries = reply.json();
    let entry = &entries[0];
    let modify = entry["ModifyIndex"].as_u64().unwrap();
    assert_eq!(reply.index(), modify, "a key's index is its ModifyIndex");
    assert_eq!(
        entries,
        json!([{
            "LockIndex": 0, "Key": "web/config", "Flags": 42, "Value": "aGVsbG8=",
            "CreateIndex": modify, "ModifyIndex": modify
        }])
    );
    assert!(
        entry.get("Session").is_none(),
        "no Session field when unlocked"
    );
}

#[tokio::test]
async fn empty_value_is_null_and_raw_returns_the_bare_bytes() {
    let double = start().await;
    let api = Api::new(&double);
    assert!(api.put_ok("/v1/kv/empty", "").await);
    assert_eq!(api.entry("empty").await["Value"], serde_json::Value::Null);
    let binary = vec![0u8, 1, 2, 255];
    assert!(api.put_ok("/v1/kv/bin", binary.clone()).await);
    let raw = api.get("/v1/kv/bin?raw").await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.body.as_ref(), binary.as_slice());
    assert!(raw.headers.contains_key("x-consul-index"));
    assert_eq!(decode(&api.entry("bin").await["Value"]), binary);
}

#[tokio::test]
async fn missing_key_is_404_with_an_index_of_at_least_one() {
    let double = start().await;
    let api = Api::new(&double);
    let reply = api.get("/v1/kv/nothing").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.body.is_empty());
    assert_eq!(reply.index(), 1, "an empty store reports index 1, never 0");
    assert!(api.put_ok("/v1/kv/other", "x").await);
    let reply = api.get("/v1/kv/nothing").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.index(),
        api.entry("other").await["ModifyIndex"].as_u64().unwrap(),
        "a missing key reports the KV table's index"
    );
}

#[tokio::test]
async fn cas_zero_creates_only_if_absent_and_cas_n_updates_only_at_modify_index_n() {
    let double = start().await;
    let api = Api::new(&double);
    assert!(api.put_ok("/v1/kv/c?cas=0", "one").await);
    assert!(!api.put_ok("/v1/kv/c?cas=0", "two").await, "exists already");
    let modify = api.entry("c").await["ModifyIndex"].as_u64().unwrap();
    assert!(
        !api.put_ok(&format!("/v1/kv/c?cas={}", modify + 100), "three")
            .await
    );
    assert!(api.put_ok(&format!("/v1/kv/c?cas={modify}"), "four").await);
    let entry = api.entry("c").await;
    assert_eq!(decode(&entry["Value"]), b"four");
    assert!(entry["ModifyIndex"].as_u64().unwrap() > modify);
    assert_eq!(
        entry["CreateIndex"].as_u64().unwrap(),
        modify,
        "CreateIndex kept"
    );
    assert!(
        !api.put_ok(&format!("/v1/kv/c?cas={modify}"), "five").await,
        "the old index is stale now"
    );
    assert!(!api.put_ok("/v1/kv/absent?cas=5", "x").await);
    assert_eq!(api.get("/v1/kv/absent").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rewriting_the_same_value_is_not_a_modification() {
    let double = start().await;
    let api = Api::new(&double);
    assert!(api.put_ok("/v1/kv/same", "v").await);
    let before = api.entry("same").await["ModifyIndex"].as_u64().unwrap();
    assert!(api.put_ok("/v1/kv/same", "v").await);
    assert_eq!(
        api.entry("same").await["ModifyIndex"].as_u64().unwrap(),
        before
    );
    assert!(api.put_ok("/v1/kv/same?flags=1", "v").await);
    assert!(api.entry("same").await["ModifyIndex"].as_u64().unwrap() > before);
}

#[tokio::test]
async fn recurse_lists_the_prefix_in_key_order_and_404s_when_empty() {
    let double = start().await;
    let api = Api::new(&double);
    for key in ["app/b", "app/a", "app/a/x", "apple", "other"] {
        assert!(api.put_ok(&format!("/v1/kv/{key}"), key.to_owned()).await);
    }
    let reply = api.get("/v1/kv/app/?recurse").await;
    assert_eq!(reply.status, StatusCode::OK);
    let keys: Vec<String> = reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["app/a", "app/a/x", "app/b"]);
    let reply = api.get("/v1/kv/app?recurse=true").await;
    assert_eq!(
        reply.json().as_array().unwrap().len(),
        4,
        "prefix, not folder"
    );
    let reply = api.get("/v1/kv/?recurse").await;
    assert_eq!(reply.json().as_array().unwrap().len(), 5);
    let reply = api.get("/v1/kv/none/?recurse").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn keys_with_a_separator_stop_at_the_first_separator_after_the_prefix() {
    let double = start().await;
    let api = Api::new(&double);
    for key in ["a/b/c", "a/b/d", "a/e", "a/f/", "b"] {
        assert!(api.put_ok(&format!("/v1/kv/{key}"), "x").await);
    }
    let all = api.get("/v1/kv/?keys").await;
    assert_eq!(all.json(), json!(["a/b/c", "a/b/d", "a/e", "a/f/", "b"]));
    let top = api.get("/v1/kv/?keys&separator=/").await;
    assert_eq!(top.json(), json!(["a/", "b"]));
    let under_a = api.get("/v1/kv/a/?keys&separator=/").await;
    assert_eq!(under_a.json(), json!(["a/b/", "a/e", "a/f/"]));
    let missing = api.get("/v1/kv/zzz/?keys").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let empty_double = start().await;
    let root = Api::new(&empty_double).get("/v1/kv/?keys").await;
    assert_eq!(
        root.status,
        StatusCode::OK,
        "the root answers [] instead of 404"
    );
    assert_eq!(root.json(), json!([]));
}

#[tokio::test]
async fn delete_single_recurse_and_cas() {
    let double = start().await;
    let api = Api::new(&double);
    for key in ["d/1", "d/2", "d/3/x", "dx"] {
        assert!(api.put_ok(&format!("/v1/kv/{key}"), "x").await);
    }
    let reply = api.delete("/v1/kv/d/1").await;
    assert_eq!(reply.json(), json!(true));
    assert_eq!(api.get("/v1/kv/d/1").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.delete("/v1/kv/d/1").await.json(),
        json!(true),
        "idempotent"
    );

    let modify = api.entry("d/2").await["ModifyIndex"].as_u64().unwrap();
    let stale = api.delete(&format!("/v1/kv/d/2?cas={}", modify + 1)).await;
    assert_eq!(stale.json(), json!(false));
    let fresh = api.delete(&format!("/v1/kv/d/2?cas={modify}")).await;
    assert_eq!(fresh.json(), json!(true));
    assert_eq!(api.get("/v1/kv/d/2").await.status, StatusCode::NOT_FOUND);

    assert_eq!(api.delete("/v1/kv/d/?recurse").await.json(), json!(true));
    assert_eq!(api.get("/v1/kv/d/3/x").await.status, StatusCode::NOT_FOUND);
    assert_eq!(api.get("/v1/kv/dx").await.status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_requests_get_consuls_errors() {
    let double = start().await;
    let api = Api::new(&double);
    let reply = api.put("/v1/kv/", "x").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.text(), "Missing key name");
    let reply = api.get("/v1/kv/").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = api.put("/v1/kv/k?cas=0&acquire=s", "x").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.text(), "Conflicting flags: acquire=s&cas=0");
    let reply = api.delete("/v1/kv/k?recurse&cas=1").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = api.put("/v1/kv/k?flags=abc", "x").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        reply.text(),
        "strconv.ParseUint: parsing \"abc\": invalid syntax"
    );
    let reply = api.get("/v1/kv/k?index=abc").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.text(), "Invalid index");
    let reply = api.get("/v1/kv/k?stale&consistent").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = api
        .try_send(http::Method::POST, "/v1/kv/k", bytes::Bytes::new())
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "GET,PUT,DELETE");
    assert_eq!(api.get("/v1/nope").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn values_up_to_512_kib_are_stored_and_larger_ones_get_413() {
    let double = start().await;
    let api = Api::new(&double);
    let limit = 512 * 1024;
    assert!(api.put_ok("/v1/kv/big", vec![b'a'; limit]).await);
    assert_eq!(decode(&api.entry("big").await["Value"]).len(), limit);
    let reply = api.put("/v1/kv/big", vec![b'b'; limit + 1]).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        reply.text().starts_with(
            "Request body(524289 bytes) too large, max size: 524288 bytes. See https://"
        ),
        "{}",
        reply.text()
    );
    assert_eq!(
        decode(&api.entry("big").await["Value"])[0],
        b'a',
        "the old value is kept"
    );
}

#[tokio::test]
async fn keys_are_percent_decoded_and_dc_and_ns_parameters_are_accepted() {
    let double = start().await;
    let api = Api::new(&double);
    assert!(api.put_ok("/v1/kv/a%20b?dc=dc1&ns=default", "x").await);
    assert_eq!(api.entry("a%20b").await["Key"], "a b");
    let reply = api.get("/v1/kv/a%20b?dc=elsewhere").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.text(), "No path to datacenter");
}
