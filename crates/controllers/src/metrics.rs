//! The controller-manager's own metrics, registered in the daemon's process-wide registry.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    controller: String,
    result: String,
}

fn syncs() -> &'static Family<SyncLabels, Counter> {
    static SYNCS: OnceLock<Family<SyncLabels, Counter>> = OnceLock::new();
    SYNCS.get_or_init(|| {
        let family = Family::<SyncLabels, Counter>::default();
        daemon::serve::register(
            "controller_syncs",
            "Syncs per controller and result",
            family.clone(),
        );
        family
    })
}

/// Counts one sync of `controller`.
pub fn count_sync(controller: &str, ok: bool) {
    syncs()
        .get_or_create(&SyncLabels {
            controller: controller.to_string(),
            result: if ok { "success" } else { "error" }.to_string(),
        })
        .inc();
}
