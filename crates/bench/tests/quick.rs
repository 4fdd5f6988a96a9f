//! Smoke test of the benchmark code: the quick mode against a real mini-apiserver child process
//! on the embedded store, plain and secured (TLS, x509 authentication, RBAC as user `bench`),
//! with bounded counts and time and no timed assertions.

use std::time::Duration;

use bench::procs::{find_apiserver, ApiServerProcess, Security, StoreArg};
use bench::{markdown, run_backend, secure, BackendResult, Params};

async fn quick(security: Security) -> BackendResult {
    // Next to this test's target dir (built by `cargo test --workspace`), else built here.
    let binary = find_apiserver(None).expect("mini-apiserver binary");
    let server = ApiServerProcess::start_with(&binary, &StoreArg::Embedded, security)
        .expect("apiserver starts");
    let p = Params::quick();
    let client = secure::prepare(&server)
        .await
        .expect("namespaces and grants");
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        run_backend(security.name(), &client, &p, None),
    )
    .await
    .expect("the quick bench finishes within a minute")
    .expect("the quick bench runs");
    assert_eq!(result.create_seq.ops, p.seq_creates);
    assert_eq!(result.lists.len(), 4);
    assert_eq!(result.watch.delivered, p.watchers * p.watch_events);
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_bench_on_embedded_store_plain_and_secured() {
    let plain = quick(Security::Plain).await;
    let secured = quick(Security::Tls).await;
    let p = Params::quick();
    let md = markdown(&[plain.clone(), secured.clone()], &p);
    assert!(md.contains("| measurement | plain | tls+rbac |"), "{md}");
    let cmp = secure::comparison("embedded", &plain, &secured);
    assert_eq!(
        cmp.lines().filter(|l| l.starts_with("aim ")).count(),
        6,
        "{cmp}"
    );
    println!("{md}\n{cmp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_user_is_not_an_admin() {
    let binary = find_apiserver(None).expect("mini-apiserver binary");
    let server = ApiServerProcess::start_with(&binary, &StoreArg::Embedded, Security::Tls)
        .expect("apiserver starts");
    let client = secure::prepare(&server)
        .await
        .expect("namespaces and grants");
    // Granted in the bench namespaces only: RBAC is evaluated, not short-circuited.
    client
        .get_ok("/api/v1/namespaces/bench-small/pods")
        .await
        .expect("pods in a bench namespace");
    let (status, _) = client
        .call(http::Method::GET, "/api/v1/namespaces/default/pods", None)
        .await
        .expect("request");
    assert_eq!(status, http::StatusCode::FORBIDDEN);
}
