//! Test support shared by the backend test files: the fixture type and the conformance suite.

#![allow(dead_code)]

pub mod conformance;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use store::Store;

/// Longest any one conformance case may run.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// A store under test and whatever must live as long as it (a temp dir, an etcd process).
pub struct Fixture {
    pub store: Arc<dyn Store>,
    pub guard: Box<dyn Any + Send>,
}

/// Expands to one `#[tokio::test]` per conformance case, each getting a fresh store from
/// `$setup` (an async fn returning `Option<Fixture>`; `None` skips the case).
#[macro_export]
macro_rules! conformance_tests {
    ($setup:path) => {
        $crate::conformance_tests!(@cases $setup;
            create_get_already_exists,
            update_compare_and_swap,
            delete_with_and_without_precondition,
            list_prefix_is_exact,
            list_pages_with_limit_and_start_after,
            list_at_an_older_revision,
            list_and_watch_at_a_compacted_revision,
            watch_from_zero_sees_only_new_events,
            watch_replays_then_continues_live,
            watch_delete_carries_last_value,
            watch_update_carries_prev,
            revisions_strictly_increase_across_keys,
            concurrent_creates_one_wins,
            concurrent_compare_and_swap_loses_nothing,
        );
    };
    (@cases $setup:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(fixture) = $setup().await else {
                    return;
                };
                let run = common::conformance::$case(fixture.store.clone());
                let outcome = tokio::time::timeout(common::CASE_TIMEOUT, run).await;
                assert!(outcome.is_ok(), "{} timed out", stringify!($case));
                drop(fixture);
            }
        )*
    };
}
