//! Leader election on a coordination.k8s.io/v1 Lease, like client-go's leaderelection: acquire
//! when the lease is free or expired, renew every retry period, give up when renewal fails for
//! the renew deadline.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;

/// Timing of the election (client-go defaults 15s / 10s / 2s).
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderConfig {
    /// Defaults for the lease `name` in kube-system held by `identity`.
    pub fn new(name: &str, identity: &str) -> LeaderConfig {
        LeaderConfig {
            namespace: "kube-system".into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Whether a lease held by someone else can be taken at `now`.
pub fn lease_expired(spec: &LeaseSpec, now: jiff::Timestamp) -> bool {
    let Some(renew) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let dur = spec.lease_duration_seconds.unwrap_or(15) as i64;
    renew.0 + jiff::SignedDuration::from_secs(dur) < now
}

/// Tries once to acquire or renew; Ok(true) when we hold the lease afterwards.
pub async fn try_acquire_or_renew(client: &Client, cfg: &LeaderConfig) -> crate::Result<bool> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
    let now = jiff::Timestamp::now();
    let mine = |transitions: i32, acquire: Option<MicroTime>| LeaseSpec {
        holder_identity: Some(cfg.identity.clone()),
        lease_duration_seconds: Some(cfg.lease_duration.as_secs() as i32),
        acquire_time: acquire.or(Some(MicroTime(now))),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..Default::default()
    };
    match api.get_opt(&cfg.name).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.name.clone()),
                    namespace: Some(cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(mine(0, None)),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
        Some(mut lease) => {
            let spec = lease.spec.clone().unwrap_or_default();
            let held_by_me = spec.holder_identity.as_deref() == Some(cfg.identity.as_str());
            let transitions = spec.lease_transitions.unwrap_or(0);
            let new_spec = if held_by_me {
                mine(transitions, spec.acquire_time.clone())
            } else if spec.holder_identity.as_deref().unwrap_or("").is_empty()
                || lease_expired(&spec, now)
            {
                mine(transitions + 1, None)
            } else {
                return Ok(false);
            };
            lease.spec = Some(new_spec);
            match api.replace(&cfg.name, &PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Blocks until this instance leads.
pub async fn acquire(client: &Client, cfg: &LeaderConfig) {
    loop {
        match try_acquire_or_renew(client, cfg).await {
            Ok(true) => {
                tracing::info!(lease = %cfg.name, identity = %cfg.identity, "acquired leadership");
                crate::serve::set_leader(true);
                return;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "leader election"),
        }
        tokio::time::sleep(cfg.retry_period).await;
    }
}

/// Renews until renewal fails for the renew deadline; returns when leadership is lost.
pub async fn keep_renewing(client: &Client, cfg: &LeaderConfig) {
    let mut last_ok = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(cfg.retry_period).await;
        match tokio::time::timeout(cfg.renew_deadline, try_acquire_or_renew(client, cfg)).await {
            Ok(Ok(true)) => last_ok = tokio::time::Instant::now(),
            Ok(Ok(false)) => {
                tracing::warn!(lease = %cfg.name, "lease taken by another instance");
                crate::serve::set_leader(false);
                return;
            }
            _ => {
                if last_ok.elapsed() > cfg.renew_deadline {
                    tracing::warn!(lease = %cfg.name, "failed to renew lease");
                    crate::serve::set_leader(false);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_uses_renew_time_and_duration() {
        let t = |s| jiff::Timestamp::from_second(s).unwrap();
        let spec = LeaseSpec {
            renew_time: Some(MicroTime(t(100))),
            lease_duration_seconds: Some(15),
            ..Default::default()
        };
        assert!(!lease_expired(&spec, t(110)));
        assert!(lease_expired(&spec, t(116)));
        assert!(lease_expired(&LeaseSpec::default(), t(0)));
    }
}
