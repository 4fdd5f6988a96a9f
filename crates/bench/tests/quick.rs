//! Smoke test of the benchmark code: the quick mode against a real mini-apiserver child process
//! on the embedded store (bounded counts and time; no timed assertions).

use std::time::Duration;

use bench::procs::{find_apiserver, ApiServerProcess, StoreArg};
use bench::{markdown, run_backend, ApiClient, Params};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_bench_on_embedded_store() {
    // Next to this test's target dir (built by `cargo test --workspace`), else built here.
    let binary = find_apiserver(None).expect("mini-apiserver binary");
    let server = ApiServerProcess::start(&binary, &StoreArg::Embedded).expect("apiserver starts");
    let p = Params::quick();
    let client = ApiClient::new(server.base());
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        run_backend("embedded", &client, &p, None),
    )
    .await
    .expect("the quick bench finishes within a minute")
    .expect("the quick bench runs");
    assert_eq!(result.create_seq.ops, p.seq_creates);
    assert_eq!(result.lists.len(), 4);
    assert_eq!(result.watch.delivered, p.watchers * p.watch_events);
    let md = markdown(&[result], &p);
    assert!(md.contains("| measurement | embedded |"), "{md}");
    println!("{md}");
}
