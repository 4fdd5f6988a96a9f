//! Fuzz target: a request body through the apiserver's create pipeline. Byte 0 picks the
//! resource from `api::RESOURCES`, byte 1 the Content-Type (JSON or YAML); the rest is the body.
//! decode_body → the path/type checks of a create → prune_unknown_fields → defaults::apply →
//! validate_create (and validate_update against itself). Nothing may panic.

#![no_main]

use http::{header::CONTENT_TYPE, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

mod common;

use common::check_type;

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/json; charset=utf-8",
    "application/x-yaml",
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let r = &api::RESOURCES[data[0] as usize % api::RESOURCES.len()];
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPES[data[1] as usize % CONTENT_TYPES.len()]),
    );
    let Ok(mut obj) = apiserver::request::decode_body(&headers, &data[2..]) else {
        return;
    };
    if !check_type(r, &mut obj) {
        return;
    }
    let Ok((mut obj, _unknown)) = api::validation::prune_unknown_fields(r, obj) else {
        return;
    };
    api::defaults::apply(r, &mut obj);
    let _ = api::validation::validate_create(r, &obj);
    let _ = api::validation::validate_update(r, &obj, &obj);
});
