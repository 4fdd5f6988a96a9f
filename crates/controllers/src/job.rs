//! The Job controller: keeps min(parallelism, remaining completions) pods active, counts
//! succeeded and failed pods, marks the Job Complete when completions succeeded and Failed with
//! BackoffLimitExceeded once more pods failed than backoffLimit allows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

use crate::events::{EventType, Recorder};
use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::util::{self, controller_ref, key_of, split_key};
use crate::Result;

/// The Job controller.
pub struct JobController {
    client: Client,
    jobs: Arc<Informer<Job>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<WorkQueue>,
    expectations: Arc<crate::replicaset::Expectations>,
    recorder: Recorder,
}

/// How many pods should be active: min(parallelism, completions - succeeded), or, without
/// completions, parallelism until the first success.
pub fn wanted_active(parallelism: i32, completions: Option<i32>, succeeded: i32) -> i32 {
    match completions {
        Some(c) => parallelism.min((c - succeeded).max(0)),
        None if succeeded > 0 => 0,
        None => parallelism,
    }
    .max(0)
}

fn finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
}

fn condition(type_: &str, reason: &str, msg: &str) -> JobCondition {
    let now = Time(jiff::Timestamp::now());
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(msg.into()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

impl JobController {
    /// Wires the controller to the shared informers.
    pub fn new(client: Client, jobs: Arc<Informer<Job>>, pods: Arc<Informer<Pod>>) -> Arc<Self> {
        let queue = WorkQueue::new("job");
        let expectations = Arc::new(crate::replicaset::Expectations::default());
        {
            let q = queue.clone();
            jobs.on_change(move |old, new| {
                if let Some(j) = new.or(old) {
                    q.add(key_of(j));
                }
            });
        }
        {
            let q = queue.clone();
            let exp = expectations.clone();
            pods.on_change(move |old, new| {
                if let (None, Some(p)) = (old, new) {
                    if let Some(r) = controller_ref(&p.metadata).filter(|r| r.kind == "Job") {
                        exp.creation_observed(&format!(
                            "{}/{}",
                            p.namespace().unwrap_or_default(),
                            r.name
                        ));
                    }
                }
                for p in [old, new].into_iter().flatten() {
                    if let Some(r) = controller_ref(&p.metadata) {
                        if r.kind == "Job" {
                            q.add(format!("{}/{}", p.namespace().unwrap_or_default(), r.name));
                        }
                    }
                }
            });
        }
        Arc::new(JobController {
            recorder: Recorder::new(client.clone(), "job-controller"),
            client,
            jobs,
            pods,
            queue,
            expectations,
        })
    }

    /// Runs `workers` workers.
    pub async fn run(self: Arc<Self>, workers: usize) {
        self.jobs.wait_synced().await;
        self.pods.wait_synced().await;
        let c = self.clone();
        crate::queue::run_workers(self.queue.clone(), workers, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    /// One sync of the Job `key`.
    pub async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (ns, name) = split_key(key);
        let ns = ns.unwrap_or("default");
        let Some(job) = self
            .jobs
            .store()
            .find(|j| j.name_any() == name && j.namespace().as_deref() == Some(ns))
        else {
            return Ok(None);
        };
        let job: Job = (*job).clone();
        if job.metadata.deletion_timestamp.is_some() || finished(&job) {
            return Ok(None);
        }
        let spec = job.spec.clone().unwrap_or_default();
        let uid = job.uid().unwrap_or_default();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .store()
            .state()
            .into_iter()
            .filter(|p| {
                p.namespace().as_deref() == Some(ns)
                    && controller_ref(&p.metadata).is_some_and(|r| r.uid == uid)
            })
            .collect();
        let active: Vec<&Arc<Pod>> = pods.iter().filter(|p| util::pod_is_active(p)).collect();
        let old = job.status.clone().unwrap_or_default();
        let succeeded = (pods
            .iter()
            .filter(|p| util::pod_phase(p) == "Succeeded")
            .count() as i32)
            .max(old.succeeded.unwrap_or(0));
        let failed = (pods
            .iter()
            .filter(|p| util::pod_phase(p) == "Failed")
            .count() as i32)
            .max(old.failed.unwrap_or(0));
        let parallelism = spec.parallelism.unwrap_or(1);
        let backoff_limit = spec.backoff_limit.unwrap_or(6);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let now = Time(jiff::Timestamp::now());
        let mut st = JobStatus {
            active: Some(active.len() as i32),
            succeeded: Some(succeeded),
            failed: Some(failed),
            ready: Some(active.iter().filter(|p| util::pod_is_ready(p)).count() as i32),
            start_time: old.start_time.clone().or(Some(now.clone())),
            conditions: old.conditions.clone(),
            ..old.clone()
        };
        let complete = match spec.completions {
            Some(c) => succeeded >= c,
            None => succeeded > 0 && active.is_empty(),
        };
        if failed > backoff_limit {
            for p in &active {
                let _ = api.delete(&p.name_any(), &DeleteParams::default()).await;
            }
            st.active = Some(0);
            st.conditions.get_or_insert_with(Vec::new).push(condition(
                "FailureTarget",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ));
            st.conditions.get_or_insert_with(Vec::new).push(condition(
                "Failed",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ));
            self.recorder.event(
                &job,
                EventType::Warning,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            );
        } else if complete {
            st.completion_time = Some(now.clone());
            st.conditions.get_or_insert_with(Vec::new).push(condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ));
            st.conditions.get_or_insert_with(Vec::new).push(condition(
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ));
            self.recorder
                .event(&job, EventType::Normal, "Completed", "Job completed");
        } else if self.expectations.satisfied(key) {
            let want = wanted_active(parallelism, spec.completions, succeeded) as usize;
            if active.len() < want {
                let tmpl = spec.template.clone();
                let tm = tmpl.metadata.clone().unwrap_or_default();
                let mut labels: BTreeMap<String, String> = tm.labels.clone().unwrap_or_default();
                labels.insert("batch.kubernetes.io/job-name".into(), name.to_string());
                labels.insert("job-name".into(), name.to_string());
                labels.insert("batch.kubernetes.io/controller-uid".into(), uid.clone());
                labels.insert("controller-uid".into(), uid.clone());
                let pod = Pod {
                    metadata: ObjectMeta {
                        generate_name: Some(format!("{name}-")),
                        namespace: Some(ns.to_string()),
                        labels: Some(labels),
                        annotations: tm.annotations,
                        owner_references: Some(vec![util::new_controller_ref(&job)]),
                        ..Default::default()
                    },
                    spec: tmpl.spec,
                    status: None,
                };
                self.expectations
                    .expect(key, (want - active.len()) as i64, Default::default());
                for _ in active.len()..want {
                    let p = match api.create(&PostParams::default(), &pod).await {
                        Ok(p) => p,
                        Err(e) => {
                            self.expectations.delete(key);
                            return Err(e.into());
                        }
                    };
                    self.recorder.event(
                        &job,
                        EventType::Normal,
                        "SuccessfulCreate",
                        &format!("Created pod: {}", p.name_any()),
                    );
                }
            } else if active.len() > want {
                for p in util::pods_to_delete(
                    &active.iter().map(|p| p.as_ref()).collect::<Vec<_>>(),
                    &[],
                    active.len() - want,
                ) {
                    let _ = api.delete(&p.name_any(), &DeleteParams::default()).await;
                }
            }
        }
        if job.status.as_ref() != Some(&st) {
            let japi: Api<Job> = Api::namespaced(self.client.clone(), ns);
            let patch = serde_json::json!({"status": st});
            japi.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_pods_wanted() {
        assert_eq!(wanted_active(2, Some(3), 0), 2);
        assert_eq!(wanted_active(2, Some(3), 2), 1);
        assert_eq!(wanted_active(2, Some(3), 3), 0);
        assert_eq!(wanted_active(3, None, 0), 3);
        assert_eq!(wanted_active(3, None, 1), 0);
    }
}
