//! Consumer groups: several hosts running the same cron line share a
//! Logstore's shards, the service deciding who reads which (SLS is the
//! distributed engine; sls.md section 8).
//!
//! A run joins the group (created if absent), heartbeats as this host's
//! consumer (a stable name: the host and the config file, so that a
//! restart is the same consumer, not a new one holding shards until it
//! times out), reads the shards the group gives it, starting at the
//! group's checkpoints, and saves a shard's checkpoint only once every
//! destination confirmed the logs before it. Heartbeats go on in the
//! background while the run reads, so that a long backfill keeps its
//! shards. A shard the group takes away is read no further; its
//! checkpoint is saved with `forceSuccess=false`, so a host never
//! overwrites the checkpoint of a shard another one holds. At the end the
//! last checkpoints are saved and the shards released (an empty
//! heartbeat).

use super::{Shard, Sls};
use crate::source::SourceError;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;
use tracing::{debug, info, warn};

/// The group's timeout when the agent creates it: a consumer not heard
/// from for this long loses its shards.
pub const TIMEOUT_SECONDS: u64 = 60;

/// How often a run heartbeats (a third of the timeout).
pub const HEARTBEAT: Duration = Duration::from_secs(TIMEOUT_SECONDS / 3);

/// How often confirmed positions are saved as checkpoints, at most.
const CHECKPOINT_SPACING: Duration = Duration::from_secs(1);

/// One run's membership of a consumer group.
pub(super) struct Group {
    pub name: String,
    /// This host's consumer name.
    pub consumer: String,
    /// The shards the group gave this run.
    held: Mutex<BTreeSet<u32>>,
    /// Shards the group took back during the run.
    lost: Mutex<BTreeSet<u32>>,
    /// Checkpoints to save: the latest confirmed position per shard.
    pending: Mutex<BTreeMap<u32, String>>,
    /// The last checkpoint saved per shard.
    saved: Mutex<BTreeMap<u32, String>>,
    wake: tokio::sync::Notify,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// FNV-1a: a hash that stays the same across builds (the consumer name
/// must not change with the compiler).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// This host's consumer name for the config at `path`: the host name and
/// a hash of the config's absolute path.
pub fn consumer_name(path: &std::path::Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "host".into());
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    format!(
        "siem-agent-{host}-{:08x}",
        fnv(abs.as_os_str().as_encoded_bytes()) as u32
    )
}

impl Group {
    pub fn new(name: &str, path: &std::path::Path) -> Group {
        Group {
            name: name.to_string(),
            consumer: consumer_name(path),
            held: Mutex::default(),
            lost: Mutex::default(),
            pending: Mutex::default(),
            saved: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            tasks: Mutex::default(),
        }
    }

    pub fn lost(&self, shard: u32) -> bool {
        lock(&self.lost).contains(&shard)
    }

    /// A confirmed position of `shard`, to be saved as its checkpoint
    /// (also for a shard being given away: the group takes it while this
    /// consumer still holds it, and refuses it after).
    pub fn note_checkpoint(&self, shard: u32, cursor: &str) {
        if !lock(&self.held).contains(&shard) {
            return;
        }
        if lock(&self.saved).get(&shard).map(String::as_str) == Some(cursor) {
            return;
        }
        lock(&self.pending).insert(shard, cursor.to_string());
        self.wake.notify_one();
    }

    /// The shards to report in a heartbeat: those held, less those lost
    /// whose checkpoint is saved.
    fn reported(&self) -> Vec<u32> {
        let lost = lock(&self.lost).clone();
        let pending = lock(&self.pending);
        lock(&self.held)
            .iter()
            .copied()
            .filter(|s| !lost.contains(s) || pending.contains_key(s))
            .collect()
    }
}

/// The service's error code in an error, if it names one.
fn code(e: &SourceError) -> String {
    let detail = match e {
        SourceError::Status { detail, .. } | SourceError::Rejected { detail, .. } => detail,
        SourceError::GaveUp { last, .. } => return code(last),
        _ => return String::new(),
    };
    super::error_body(detail).code
}

impl Sls {
    fn group_path(&self, g: &Group) -> String {
        format!("/logstores/{}/consumergroups/{}", self.logstore, g.name)
    }

    /// Joins the group: creates it if absent, heartbeats for shards, and
    /// reads the group's checkpoints of those it was given; marks the
    /// others of `shards` as not this run's. Starts the heartbeats and the
    /// checkpoint saver.
    pub(super) async fn join(
        &self,
        g: &std::sync::Arc<Group>,
        shards: &mut [Shard],
    ) -> Result<(), SourceError> {
        let body = json!({
            "consumerGroup": g.name,
            "timeout": TIMEOUT_SECONDS,
            "order": true,
        });
        let path = format!("/logstores/{}/consumergroups", self.logstore);
        match self
            .call(
                Method::POST,
                &path,
                &[],
                Some(body.to_string().into_bytes()),
                &[],
            )
            .await
        {
            Ok(_) => info!(
                "consumer group {}: created (timeout {TIMEOUT_SECONDS} s)",
                g.name
            ),
            Err(e) if code(&e) == "ConsumerGroupAlreadyExist" => {}
            Err(e) => return Err(e),
        }
        // The service may hand shards out a heartbeat or two after a
        // consumer first appears.
        let mut given = Vec::new();
        for attempt in 0..3 {
            given = self.heartbeat(g, &[]).await?;
            if !given.is_empty() || shards.is_empty() {
                break;
            }
            if attempt < 2 {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        *lock(&g.held) = given.iter().copied().collect();
        let checkpoints = self.checkpoints(g).await?;
        for s in shards.iter_mut() {
            s.assigned = given.contains(&s.id);
            s.checkpoint = checkpoints.get(&s.id).cloned();
            if let (true, Some(cp)) = (s.assigned, &s.checkpoint) {
                // For the lag only: a service that cannot tell is no
                // reason to stop.
                s.checkpoint_time = self.cursor_time(s.id, cp).await.ok();
            }
        }
        info!(
            "consumer group {} as {}: this run reads shards {:?} of {}",
            g.name,
            g.consumer,
            given,
            shards.len()
        );
        let me = self.clone();
        let g2 = g.clone();
        let beat = tokio::spawn(async move { me.beat_loop(&g2).await });
        let me = self.clone();
        let g2 = g.clone();
        let save = tokio::spawn(async move { me.checkpoint_loop(&g2).await });
        lock(&g.tasks).extend([beat, save]);
        Ok(())
    }

    /// One heartbeat reporting `held`: the shards the group gives.
    async fn heartbeat(&self, g: &Group, held: &[u32]) -> Result<Vec<u32>, SourceError> {
        let body = serde_json::to_vec(held).unwrap_or_else(|_| b"[]".to_vec());
        let query = [("type", "heartbeat"), ("consumer", g.consumer.as_str())];
        let v = self
            .call_json(
                Method::POST,
                &self.group_path(g),
                &query,
                Some(body),
                "a heartbeat's answer",
            )
            .await?;
        let Value::Array(items) = v else {
            return Err(SourceError::BadPage(
                "a heartbeat's answer is not a list of shards".into(),
            ));
        };
        Ok(items
            .iter()
            .filter_map(Value::as_u64)
            .filter_map(|n| u32::try_from(n).ok())
            .collect())
    }

    /// The group's checkpoints, by shard (those it has).
    async fn checkpoints(&self, g: &Group) -> Result<BTreeMap<u32, String>, SourceError> {
        let v = self
            .call_json(
                Method::GET,
                &self.group_path(g),
                &[],
                None,
                "the group's checkpoints",
            )
            .await?;
        let mut out = BTreeMap::new();
        for item in v.as_array().into_iter().flatten() {
            let shard = item
                .get("shard")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok());
            let cp = item.get("checkpoint").and_then(Value::as_str);
            if let (Some(shard), Some(cp)) = (shard, cp)
                && super::valid_cursor(cp)
            {
                out.insert(shard, cp.to_string());
            }
        }
        Ok(out)
    }

    /// Saves `cursor` as `shard`'s checkpoint, only while this consumer
    /// holds it (`forceSuccess=false`).
    async fn save_checkpoint(
        &self,
        g: &Group,
        shard: u32,
        cursor: &str,
    ) -> Result<(), SourceError> {
        let body = json!({"shard": shard, "checkpoint": cursor}).to_string();
        self.call(
            Method::POST,
            &self.group_path(g),
            &[
                ("type", "checkpoint"),
                ("consumer", &g.consumer),
                ("forceSuccess", "false"),
            ],
            Some(body.into_bytes()),
            &[],
        )
        .await
        .map(drop)
    }

    /// Saves what is pending; a shard the group took back is marked lost.
    async fn flush(&self, g: &Group) {
        let pending = std::mem::take(&mut *lock(&g.pending));
        for (shard, cursor) in pending {
            match self.save_checkpoint(g, shard, &cursor).await {
                Ok(()) => {
                    debug!(
                        "shard-{shard}: checkpoint {cursor} saved in consumer group {}",
                        g.name
                    );
                    lock(&g.saved).insert(shard, cursor);
                }
                Err(e)
                    if matches!(
                        code(&e).as_str(),
                        "ConsumerNotMatch" | "ConsumerNotExsit" | "ConsumerNotExist"
                    ) =>
                {
                    if lock(&g.lost).insert(shard) {
                        warn!(
                            "shard-{shard}: the consumer group gave it to another consumer; its checkpoint stays where that one saves it (the logs since were delivered here and may be again there)"
                        );
                    }
                }
                Err(e) => {
                    warn!(
                        "shard-{shard}: the checkpoint could not be saved in consumer group {} ({}); it is tried again",
                        g.name,
                        crate::secret::redact(&e.to_string())
                    );
                    lock(&g.pending).entry(shard).or_insert(cursor);
                }
            }
        }
    }

    async fn checkpoint_loop(&self, g: &Group) {
        loop {
            let _ = tokio::time::timeout(HEARTBEAT, g.wake.notified()).await;
            self.flush(g).await;
            tokio::time::sleep(CHECKPOINT_SPACING).await;
        }
    }

    async fn beat_loop(&self, g: &Group) {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let reported = g.reported();
            match self.heartbeat(g, &reported).await {
                Ok(given) => {
                    for s in reported {
                        if !given.contains(&s) && lock(&g.lost).insert(s) {
                            warn!(
                                "shard-{s}: the consumer group gives it to another consumer; this run stops reading it"
                            );
                            g.wake.notify_one();
                        }
                    }
                }
                Err(e) => warn!(
                    "consumer group {}: a heartbeat failed ({}); the shards are kept while the group's timeout allows",
                    g.name,
                    crate::secret::redact(&e.to_string())
                ),
            }
        }
    }

    /// The run's end: the background tasks stopped, the last checkpoints
    /// saved, the shards released.
    pub(super) async fn leave(&self, g: &Group) {
        for t in lock(&g.tasks).drain(..) {
            t.abort();
        }
        self.flush(g).await;
        let left = lock(&g.pending).len();
        if left > 0 {
            warn!(
                "consumer group {}: {left} checkpoints could not be saved; the next run resumes from this host's state file where the group allows",
                g.name
            );
        }
        match self.heartbeat(g, &[]).await {
            Ok(_) => debug!("consumer group {}: shards released", g.name),
            Err(e) => warn!(
                "consumer group {}: the shards could not be released ({}); the group gives them to others after its timeout",
                g.name,
                crate::secret::redact(&e.to_string())
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumer_name_is_stable_and_tells_configs_apart() {
        let a = consumer_name(std::path::Path::new("/etc/siem-agent/a.json"));
        let b = consumer_name(std::path::Path::new("/etc/siem-agent/b.json"));
        assert_eq!(
            a,
            consumer_name(std::path::Path::new("/etc/siem-agent/a.json"))
        );
        assert_ne!(a, b);
        assert!(a.starts_with("siem-agent-"));
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
