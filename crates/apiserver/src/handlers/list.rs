//! LIST: selectors, paging with continue tokens at one revision, and resourceVersion semantics
//! (upstream's staging/src/k8s.io/apiserver/pkg/storage/cacher and etcd3 list).

use std::sync::Arc;
use std::time::Duration;

use api::ResourceInfo;
use axum::response::Response;
use base64::Engine;
use serde_json::{json, Value};
use store::{ListOptions, StoreError};

use super::common::CACHE_WAIT;
use crate::error::ApiError;
use crate::filter::Filter;
use crate::request::{Query, Rendering};
use crate::server::ApiServer;
use crate::{cache, render};

/// LIST with selectors, paging and resourceVersion semantics.
pub(super) async fn list(
    srv: &Arc<ApiServer>,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    query: &Query,
    rendering: Rendering,
) -> Result<Response, ApiError> {
    let filter = Filter::from_query(r, query)?;
    let prefix = match ns {
        Some(ns) if r.namespaced() => r.namespace_prefix(ns),
        _ => r.key_prefix(),
    };
    let limit = query.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let continue_token = query.get("continue").filter(|c| !c.is_empty());
    let rv = query.get("resourceVersion").filter(|v| !v.is_empty());
    let rv_match = query.get("resourceVersionMatch").filter(|v| !v.is_empty());
    if rv_match.is_some() && rv.is_none() {
        return Err(ApiError::invalid_options(
            "ListOptions",
            "resourceVersionMatch",
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    if continue_token.is_some() && rv.is_some_and(|v| v != "0") {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    let (items, revision, next) = if limit.is_some() || continue_token.is_some() {
        // Paged: read the store at one revision for every page.
        let (at, start_after) = match continue_token {
            Some(tok) => {
                let (rev, key) = decode_continue(tok)?;
                (Some(rev), Some(key))
            }
            None => match (rv, rv_match) {
                (Some(v), Some("Exact")) => (Some(parse_rv(v)?), None),
                _ => (None, None),
            },
        };
        page_from_store(srv, &prefix, at, start_after, limit, &filter).await?
    } else {
        match (rv, rv_match) {
            (Some(v), Some("Exact")) => {
                let rev = parse_rv(v)?;
                let listed = srv
                    .store
                    .list(
                        &prefix,
                        ListOptions {
                            revision: Some(rev),
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(list_error)?;
                let items = listed
                    .items
                    .into_iter()
                    .filter_map(|kv| cache::decode(&kv.value, kv.mod_revision).ok())
                    .filter(|o| filter.matches(o))
                    .map(Arc::new)
                    .collect();
                (items, listed.revision, None)
            }
            (Some("0"), _) => {
                let rc = srv.cache.resource(r);
                let snap = rc.snapshot(&prefix, srv.cache.revision()).await;
                let items = snap.objects.into_iter().filter(|o| filter.matches(o)).collect();
                (items, snap.revision, None)
            }
            (Some(v), Some("NotOlderThan")) | (Some(v), None) => {
                let want = parse_rv(v)?;
                if !srv.cache.wait_for(want, Duration::from_secs(3)).await {
                    return Err(ApiError::timeout(format!(
                        "Too large resource version: {want}, current: {}",
                        srv.cache.revision()
                    )));
                }
                from_cache(srv, r, &prefix, &filter).await
            }
            (Some(_), Some(other)) => {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
                )))
            }
            (None, _) => {
                let current = srv.store.current_revision().await?;
                if !srv.cache.wait_for(current, CACHE_WAIT).await {
                    return Err(ApiError::timeout("the watch cache is not ready"));
                }
                from_cache(srv, r, &prefix, &filter).await
            }
        }
    };
    Ok(render::list_response(r, items, revision, next, rendering))
}

pub(super) async fn from_cache(
    srv: &ApiServer,
    r: &'static ResourceInfo,
    prefix: &str,
    filter: &Filter,
) -> (Vec<Arc<Value>>, i64, Option<String>) {
    let rc = srv.cache.resource(r);
    let snap = rc.snapshot(prefix, srv.cache.revision()).await;
    let items = snap
        .objects
        .into_iter()
        .filter(|o| filter.matches(o))
        .collect();
    (items, snap.revision, None)
}

pub(super) fn list_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Compacted { .. } => {
            ApiError::gone("The resourceVersion for the provided list is too old.")
        }
        StoreError::FutureRevision { requested, current } => ApiError::timeout(format!(
            "Too large resource version: {requested}, current: {current}"
        )),
        other => other.into(),
    }
}

pub(super) fn parse_rv(v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {v:?}")))
}

pub(super) fn encode_continue(rev: i64, key: &str) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": key}).to_string();
    base64_encode(raw.as_bytes())
}

pub(super) fn decode_continue(tok: &str) -> Result<(i64, String), ApiError> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let raw = base64_decode(tok).ok_or_else(bad)?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rev = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let key = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .to_string();
    Ok((rev, key))
}

pub(super) fn base64_encode(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

pub(super) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

pub(super) async fn page_from_store(
    srv: &ApiServer,
    prefix: &str,
    at: Option<i64>,
    mut start_after: Option<String>,
    limit: Option<usize>,
    filter: &Filter,
) -> Result<(Vec<Arc<Value>>, i64, Option<String>), ApiError> {
    let want = limit.unwrap_or(usize::MAX);
    let mut items = Vec::new();
    let mut revision = at;
    loop {
        let batch = want.saturating_sub(items.len()).clamp(1, 1000);
        let listed = srv
            .store
            .list(
                prefix,
                ListOptions {
                    revision,
                    limit: Some(batch),
                    start_after: start_after.clone(),
                },
            )
            .await
            .map_err(|e| match e {
                StoreError::Compacted { .. } if start_after.is_some() => ApiError::gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                ),
                other => list_error(other),
            })?;
        revision = Some(listed.revision);
        let mut last_key = None;
        for kv in listed.items {
            last_key = Some(kv.key.clone());
            if let Ok(o) = cache::decode(&kv.value, kv.mod_revision) {
                if filter.matches(&o) {
                    items.push(Arc::new(o));
                }
            }
            if items.len() >= want {
                break;
            }
        }
        let rev = listed.revision;
        if items.len() >= want {
            // More may follow: hand out a continue token when the store has more keys.
            let key = last_key.unwrap_or_default();
            let more = listed.more
                || srv
                    .store
                    .list(
                        prefix,
                        ListOptions {
                            revision: Some(rev),
                            limit: Some(1),
                            start_after: Some(key.clone()),
                        },
                    )
                    .await
                    .map(|l| !l.items.is_empty())
                    .unwrap_or(false);
            let next = more.then(|| encode_continue(rev, &key));
            return Ok((items, rev, next));
        }
        if !listed.more {
            return Ok((items, rev, None));
        }
        start_after = last_key;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let tok = encode_continue(42, "/registry/core/pods/default/web-1");
        let (rev, key) = decode_continue(&tok).unwrap();
        assert_eq!(rev, 42);
        assert_eq!(key, "/registry/core/pods/default/web-1");
        assert!(decode_continue("!!!").is_err());
    }

    #[test]
    fn base64_round_trips_every_length() {
        for n in 0..20u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
    }
}
