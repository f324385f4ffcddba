//! The simulator as Alibaba Cloud Log Service (`--vendor sls`): one
//! project (`--tenant`) and one Logstore (`--logstore`) of `--shards`
//! shards, routed by the first label of `Host` (`<project>.<endpoint>`),
//! every request's signature (v1) checked as the service checks it, with
//! the service's error codes.
//!
//! Served: `ListShards`, `GetCursor` (`begin`, `end`, a unix time),
//! `GetCursorTime`, `PullLogs` (protobuf `LogGroupList`, LZ4 when asked,
//! at most [`PULL_BYTES`] a pull, so that a short answer is not the end),
//! and `SplitShard` (`?action=split`). Log `i` is a pure function of the
//! seed (27 fields as strings, every seventh with hostile values unless
//! `--plain`, each with a unique `_id`) and lands on a readwrite shard
//! chosen by the seed; a batch of logs is cut into log groups of 1 to 8
//! logs per shard. `--arrive N` adds N logs with each pull (up to
//! `--arrive-max` in all), and
//! `--split-after N` splits the first readwrite shard after N pulls.
//! Cursors are base64 of a decimal number, as the service's are.
//!
//! Faults for pulls (`--faults`): 429 (the quota error), 403 (the shard's
//! read quota), 500, 503, slow, truncate, reset, malformed (not
//! protobuf), corrupt (an LZ4 body that does not decompress),
//! invalid-cursor.

use super::data::{self, Rng, Schedule};
use super::http::{Outcome, Request, Response};
use super::{Fault, World};
use crate::source::sls::wire;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// The most log group bytes (uncompressed) one pull answers.
pub const PULL_BYTES: usize = 512 * 1024;

/// Cursor numbers of shard `id` start here (as the service's, they are
/// large and differ between shards).
fn cursor_base(seed: u64, id: u32) -> u64 {
    1_600_000_000_000_000_000 + (data::mix(seed ^ u64::from(id)) % 1_000_000) * 1_000_000_000
}

struct Group {
    /// Unix second the service received it.
    received: i64,
    /// The group encoded as a `LogGroupList` element.
    bytes: Vec<u8>,
}

struct Shard {
    id: u32,
    readonly: bool,
    created: i64,
    groups: Vec<Group>,
}

/// The Logstore's shards and what was written to them.
pub(crate) struct Store {
    state: Mutex<State>,
    schedule: Schedule,
}

/// A consumer of a group: when it was last heard from, and whether it
/// then held nothing (a consumer that let every shard go counts for no
/// share until it asks again).
struct Consumer {
    last: std::time::Instant,
    idle: bool,
}

/// A consumer group: its consumers, who holds which shard, and the
/// checkpoints.
struct SimGroup {
    timeout: u64,
    order: bool,
    consumers: BTreeMap<String, Consumer>,
    owner: BTreeMap<u32, String>,
    /// Shards asked back from their owner (left out of its heartbeat
    /// answers), free once it stops reporting them.
    releasing: BTreeSet<u32>,
    /// Shard: (checkpoint, update time, consumer).
    checkpoints: BTreeMap<u32, (String, i64, String)>,
}

struct State {
    groups: BTreeMap<String, SimGroup>,
    shards: Vec<Shard>,
    /// Logs written so far.
    made: u64,
    pulls: u64,
    split: bool,
}

impl Store {
    pub fn new(world_args: &super::SimArgs, schedule: Schedule) -> Store {
        let now = super::sim_now().timestamp();
        let shards = (0..world_args.shards.max(1))
            .map(|id| Shard {
                id,
                readonly: false,
                created: now - 86_400,
                groups: Vec::new(),
            })
            .collect();
        let store = Store {
            state: Mutex::new(State {
                groups: BTreeMap::new(),
                shards,
                made: 0,
                pulls: 0,
                split: false,
            }),
            schedule,
        };
        {
            let mut st = store.lock();
            let total = store.schedule.total();
            store.write(&mut st, world_args, total, None);
        }
        store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `n` more logs (received now, or at their own time when
    /// `received` is `None`) to the readwrite shards.
    fn write(&self, st: &mut State, a: &super::SimArgs, n: u64, received: Option<i64>) {
        let writable: Vec<usize> = (0..st.shards.len())
            .filter(|&s| !st.shards[s].readonly)
            .collect();
        let mut per_shard: Vec<Vec<(i64, wire::Log)>> = vec![Vec::new(); st.shards.len()];
        for i in st.made..st.made + n {
            let mut r = Rng::new(a.seed, 41, i);
            let s = writable[r.below(writable.len() as u64) as usize];
            let (time, log) = self.log(a, i);
            per_shard[s].push((received.unwrap_or(time), log));
        }
        st.made += n;
        for (s, logs) in per_shard.into_iter().enumerate() {
            let id = st.shards[s].id;
            let mut at = 0;
            let mut g = st.shards[s].groups.len() as u64;
            while at < logs.len() {
                let mut r = Rng::new(a.seed, 43 + u64::from(id), g);
                let size = (1 + r.below(8) as usize).min(logs.len() - at);
                let chunk = &logs[at..at + size];
                let received = chunk.iter().map(|(t, _)| *t).max().unwrap_or(0);
                let group = wire::LogGroup {
                    logs: chunk.iter().map(|(_, l)| l.clone()).collect(),
                    topic: r.pick(&["", "access", "audit"]).to_string(),
                    source: if r.below(4) == 0 {
                        format!("web-{:02}.example.com", r.below(20))
                    } else {
                        format!("10.0.{}.{}", r.below(4), 1 + r.below(250))
                    },
                    tags: vec![
                        ("__receive_time__".into(), received.to_string()),
                        (
                            "__client_ip__".into(),
                            format!("198.51.100.{}", r.below(250)),
                        ),
                    ],
                };
                let mut bytes = Vec::new();
                wire::encode_group(&group, &mut bytes);
                st.shards[s].groups.push(Group { received, bytes });
                at += size;
                g += 1;
            }
        }
    }

    /// Log `i`: its time and contents (the simulator's Investigate log,
    /// every value a string, with a unique `_id`).
    fn log(&self, a: &super::SimArgs, i: u64) -> (i64, wire::Log) {
        let total = self.schedule.total().max(1);
        let fields = data::investigate_with(a.seed, &self.schedule, i % total, !a.plain);
        let time = if i < total {
            self.schedule.second_of(i)
        } else {
            super::sim_now().timestamp()
        };
        let mut r = Rng::new(a.seed, 47, i);
        let contents = fields
            .into_iter()
            .map(|(k, v)| {
                let v = match (k.as_str(), v) {
                    ("_id", _) => format!("sls-{i:08}"),
                    (_, Value::String(s)) => s,
                    (_, Value::Null) => String::new(),
                    (_, other) => other.to_string(),
                };
                (k, v)
            })
            .collect();
        let log = wire::Log {
            time: u32::try_from(time).unwrap_or(0),
            time_ns: Some(r.below(1_000_000_000) as u32).filter(|_| r.below(2) == 0),
            contents,
        };
        (time, log)
    }
}

fn error(status: u16, code: &str, message: &str) -> Outcome {
    Outcome::Answer(Response {
        status,
        body: json!({"errorCode": code, "errorMessage": message})
            .to_string()
            .into_bytes(),
        headers: vec![("x-log-requestid", request_id())],
    })
}

fn request_id() -> String {
    format!(
        "{:024X}",
        data::mix(super::sim_now().timestamp_nanos_opt().unwrap_or(0) as u64)
    )
}

fn ok_json(v: Value) -> Outcome {
    Outcome::Answer(Response {
        status: 200,
        body: v.to_string().into_bytes(),
        headers: vec![("x-log-requestid", request_id())],
    })
}

pub fn encode_cursor(n: u64) -> String {
    crate::source::http::base64(n.to_string().as_bytes())
}

fn decode_cursor(c: &str) -> Option<u64> {
    let bytes = base64_decode(c)?;
    std::str::from_utf8(&bytes).ok()?.parse().ok()
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Checks the request's signature as the service does; the error answer
/// when it does not hold.
fn authenticate(req: &Request, world: &World) -> Result<(), Outcome> {
    let a = &world.args;
    let Some(auth) = req.header("authorization") else {
        return Err(error(401, "Unauthorized", "no Authorization header"));
    };
    let Some((id, sig)) = auth.strip_prefix("LOG ").and_then(|s| s.split_once(':')) else {
        return Err(error(
            401,
            "Unauthorized",
            "Authorization is not LOG <id>:<signature>",
        ));
    };
    if id != a.key_id {
        return Err(error(
            401,
            "InvalidAccessKeyId.NotFound",
            "the AccessKeyId is not found",
        ));
    }
    let Some(date) = req.header("date") else {
        return Err(error(400, "InvalidRequestTime", "no Date header"));
    };
    let Some(t) = wire::parse_http_date(date) else {
        return Err(error(
            400,
            "InvalidRequestTime",
            "the Date header cannot be read",
        ));
    };
    if (t - super::sim_now()).num_seconds().abs() > 15 * 60 {
        return Err(error(
            400,
            "RequestTimeExpired",
            "the request's time is more than 15 minutes from the server's",
        ));
    }
    let md5 = req.header("content-md5").unwrap_or("");
    if !req.body.is_empty() && md5 != wire::content_md5(&req.body) {
        return Err(error(
            400,
            "InvalidContentMd5",
            "Content-MD5 does not match the body",
        ));
    }
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let query: Vec<(&str, &str)> = req
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let signed = wire::Signed {
        method: &req.method,
        content_md5: md5,
        content_type: req.header("content-type").unwrap_or(""),
        date,
        headers: &headers,
        path: &req.path,
        query: &query,
    };
    if !wire::signature_matches(&signed, &a.key_secret, sig) {
        return Err(error(
            401,
            "SignatureNotMatch",
            "the signature of the request does not match",
        ));
    }
    Ok(())
}

pub(crate) fn handle(req: &Request, world: &World) -> Outcome {
    let a = &world.args;
    let Some(store) = &world.sls else {
        return error(500, "InternalServerError", "no Logstore");
    };
    let host = req.header("host").unwrap_or("");
    let project = host.split('.').next().unwrap_or("");
    if project != a.tenant {
        return error(
            404,
            "ProjectNotExist",
            &format!("project {project} does not exist"),
        );
    }
    if let Err(e) = authenticate(req, world) {
        return e;
    }
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["logstores", ls, rest @ ..] => {
            if *ls != a.logstore {
                return error(
                    404,
                    "LogStoreNotExist",
                    &format!("logstore {ls} does not exist"),
                );
            }
            match rest {
                ["shards"] if req.method == "GET" => list_shards(store),
                ["consumergroups"] => groups(req, world, store),
                ["consumergroups", name] => group_call(req, world, store, name),
                ["shards", id] => {
                    let Ok(id) = id.parse::<u32>() else {
                        return error(400, "ParameterInvalid", "the shard id is not a number");
                    };
                    shard_call(req, world, store, id)
                }
                _ => error(404, "NotFound", "no such resource"),
            }
        }
        _ => error(404, "NotFound", "no such resource"),
    }
}

fn list_shards(store: &Store) -> Outcome {
    let st = store.lock();
    let n = st.shards.len() as u128;
    let list: Vec<Value> = st
        .shards
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // Hash ranges cut evenly (the simulator does not route by key).
            let step = u128::MAX / n;
            json!({
                "shardID": s.id,
                "status": if s.readonly { "readonly" } else { "readwrite" },
                "inclusiveBeginKey": format!("{:032x}", step * i as u128),
                "exclusiveEndKey": format!("{:032x}", step.saturating_mul(i as u128 + 1)),
                "createTime": s.created,
            })
        })
        .collect();
    ok_json(Value::Array(list))
}

fn shard_call(req: &Request, world: &World, store: &Store, id: u32) -> Outcome {
    let a = &world.args;
    if req.method == "POST" && req.param("action") == Some("split") {
        let mut st = store.lock();
        return match split(&mut st, a, id) {
            Ok(v) => ok_json(v),
            Err(e) => e,
        };
    }
    let kind = req.param("type").unwrap_or("");
    if kind == "log" || kind == "logs" {
        return pull(req, world, store, id);
    }
    let st = store.lock();
    let Some(shard) = st.shards.iter().find(|s| s.id == id) else {
        return error(404, "ShardNotExist", &format!("shard {id} does not exist"));
    };
    let base = cursor_base(a.seed, id);
    match kind {
        "cursor" => {
            let from = req.param("from").unwrap_or("");
            let index = match from {
                "begin" => 0,
                "end" => shard.groups.len(),
                t => match t.parse::<i64>() {
                    Ok(t) => shard.groups.partition_point(|g| g.received < t),
                    Err(_) => {
                        return error(
                            400,
                            "ParameterInvalid",
                            "from must be begin, end or a unix time",
                        );
                    }
                },
            };
            ok_json(json!({"cursor": encode_cursor(base + index as u64)}))
        }
        "cursor_time" => {
            let Some(i) = req
                .param("cursor")
                .and_then(decode_cursor)
                .and_then(|c| c.checked_sub(base))
                .filter(|&i| i <= shard.groups.len() as u64)
            else {
                return error(400, "InvalidCursor", "the cursor is not valid");
            };
            let t = shard
                .groups
                .get(i as usize)
                .or(shard.groups.last())
                .map_or(shard.created, |g| g.received);
            ok_json(json!({"cursor_time": t}))
        }
        _ => error(400, "ParameterInvalid", "unknown type"),
    }
}

/// Splits shard `id`: it becomes readonly (its end fixed), two new
/// readwrite shards take the logs written after.
fn split(st: &mut State, _a: &super::SimArgs, id: u32) -> Result<Value, Outcome> {
    let Some(s) = st.shards.iter_mut().find(|s| s.id == id) else {
        return Err(error(
            404,
            "ShardNotExist",
            &format!("shard {id} does not exist"),
        ));
    };
    if s.readonly {
        return Err(error(
            400,
            "ShardNotExist",
            &format!("shard {id} is readonly"),
        ));
    }
    s.readonly = true;
    let next = st.shards.iter().map(|s| s.id).max().unwrap_or(0) + 1;
    let now = super::sim_now().timestamp();
    for n in [next, next + 1] {
        st.shards.push(Shard {
            id: n,
            readonly: false,
            created: now,
            groups: Vec::new(),
        });
    }
    Ok(json!([
        {"shardID": id, "status": "readonly"},
        {"shardID": next, "status": "readwrite"},
        {"shardID": next + 1, "status": "readwrite"},
    ]))
}

fn pull(req: &Request, world: &World, store: &Store, id: u32) -> Outcome {
    let a = &world.args;
    let fault = super::http::next_fault(world);
    match fault {
        Fault::TooMany(_) => {
            return error(429, "ReadQuotaExceed", "Read quota exceed");
        }
        Fault::Status(403) => {
            return error(403, "ShardReadQuotaExceed", "shard read quota exceed");
        }
        Fault::Status(503) => {
            return error(
                503,
                "ServerBusy",
                "The server is busy, please try again later",
            );
        }
        Fault::Status(s) => return error(s, "InternalServerError", "Internal server error"),
        Fault::Reset => return Outcome::Reset,
        Fault::InvalidCursor => return error(400, "InvalidCursor", "the cursor is invalid"),
        _ => {}
    }
    let mut st = store.lock();
    st.pulls += 1;
    let arrived = st.made - store.schedule.total();
    let room = if a.arrive_max == 0 {
        a.arrive
    } else {
        a.arrive.min(a.arrive_max.saturating_sub(arrived))
    };
    if room > 0 {
        let now = super::sim_now().timestamp();
        store.write(&mut st, a, room, Some(now));
    }
    if a.split_after > 0 && st.pulls >= a.split_after && !st.split {
        st.split = true;
        if let Some(first) = st.shards.iter().find(|s| !s.readonly).map(|s| s.id) {
            let _ = split(&mut st, a, first);
        }
    }
    let Some(shard) = st.shards.iter().find(|s| s.id == id) else {
        return error(404, "ShardNotExist", &format!("shard {id} does not exist"));
    };
    let base = cursor_base(a.seed, id);
    let len = shard.groups.len() as u64;
    let index = |name: &str| -> Result<Option<u64>, Outcome> {
        match req.param(name) {
            None => Ok(None),
            Some(c) => decode_cursor(c)
                .and_then(|c| c.checked_sub(base))
                .filter(|&i| i <= len)
                .map(Some)
                .ok_or_else(|| error(400, "InvalidCursor", "the cursor is invalid")),
        }
    };
    let start = match index("cursor") {
        Ok(Some(i)) => i,
        Ok(None) => return error(400, "ParameterInvalid", "cursor is required"),
        Err(e) => return e,
    };
    let end = match index("end_cursor").and_then(|e| match e {
        None => index("endCursor"),
        some => Ok(some),
    }) {
        Ok(e) => e.unwrap_or(len).min(len),
        Err(e) => return e,
    };
    let count: u64 = match req.param("count").map(str::parse) {
        Some(Ok(c)) if (1..=1000).contains(&c) => c,
        _ => return error(400, "ParameterInvalid", "count must be 1 to 1000"),
    };
    let mut body = Vec::new();
    let mut i = start;
    while i < end && i - start < count {
        let g = &shard.groups[i as usize].bytes;
        if !body.is_empty() && body.len() + g.len() > PULL_BYTES {
            break;
        }
        body.extend_from_slice(g);
        i += 1;
    }
    drop(st);
    let raw_size = body.len();
    let mut headers = vec![
        ("x-log-cursor", encode_cursor(base + i)),
        ("x-log-count", (i - start).to_string()),
        ("x-log-bodyrawsize", raw_size.to_string()),
        ("x-log-requestid", request_id()),
        ("Content-Type", "application/x-protobuf".to_string()),
    ];
    if fault == Fault::Malformed {
        body = b"\x0a\xff\xff\xff\xff\x0fnot protobuf".to_vec();
        headers[2].1 = body.len().to_string();
    }
    let lz4 = req
        .header("accept-encoding")
        .is_some_and(|e| e.split(',').any(|x| x.trim().eq_ignore_ascii_case("lz4")));
    if lz4 && raw_size > 0 {
        body = wire::lz4_compress(&body);
        if fault == Fault::Corrupt {
            let n = body.len();
            for b in &mut body[n / 3..] {
                *b ^= 0x5a;
            }
        }
        headers.push(("x-log-compresstype", "lz4".to_string()));
    }
    let resp = Response {
        status: 200,
        body,
        headers,
    };
    super::http::shaped(fault, resp)
}

/// `POST .../consumergroups` (create) and `GET` (list).
fn groups(req: &Request, _world: &World, store: &Store) -> Outcome {
    let mut st = store.lock();
    match req.method.as_str() {
        "GET" => ok_json(Value::Array(
            st.groups
                .iter()
                .map(|(n, g)| json!({"name": n, "timeout": g.timeout, "order": g.order}))
                .collect(),
        )),
        "POST" => {
            let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                return error(400, "PostBodyInvalid", "the body is not JSON");
            };
            let Some(name) = body.get("consumerGroup").and_then(Value::as_str) else {
                return error(400, "PostBodyInvalid", "consumerGroup is missing");
            };
            if st.groups.contains_key(name) {
                return error(
                    400,
                    "ConsumerGroupAlreadyExist",
                    &format!("consumer group {name} already exists"),
                );
            }
            let timeout = body.get("timeout").and_then(Value::as_u64).unwrap_or(60);
            if timeout == 0 || timeout > 86_400 {
                return error(400, "ParameterInvalid", "timeout must be 1 to 86400");
            }
            st.groups.insert(
                name.to_string(),
                SimGroup {
                    timeout,
                    order: body.get("order").and_then(Value::as_bool).unwrap_or(false),
                    consumers: BTreeMap::new(),
                    owner: BTreeMap::new(),
                    releasing: BTreeSet::new(),
                    checkpoints: BTreeMap::new(),
                },
            );
            ok_json(Value::Null)
        }
        _ => error(405, "MethodNotAllowed", "method not allowed"),
    }
}

/// The calls on one consumer group: heartbeat, checkpoints, update,
/// delete.
fn group_call(req: &Request, world: &World, store: &Store, name: &str) -> Outcome {
    let _ = world;
    let mut guard = store.lock();
    let st = &mut *guard;
    if req.method == "DELETE" {
        return match st.groups.remove(name) {
            Some(_) => ok_json(Value::Null),
            None => error(
                404,
                "ConsumerGroupNotExist",
                "consumer group does not exist",
            ),
        };
    }
    let shard_ids: Vec<u32> = st.shards.iter().map(|s| s.id).collect();
    let Some(g) = st.groups.get_mut(name) else {
        return error(
            404,
            "ConsumerGroupNotExist",
            &format!("consumer group {name} does not exist"),
        );
    };
    let body: Value = if req.body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(_) => return error(400, "PostBodyInvalid", "the body is not JSON"),
        }
    };
    match (req.method.as_str(), req.param("type")) {
        ("PUT", _) => {
            if let Some(t) = body.get("timeout").and_then(Value::as_u64) {
                g.timeout = t;
            }
            if let Some(o) = body.get("order").and_then(Value::as_bool) {
                g.order = o;
            }
            ok_json(Value::Null)
        }
        ("POST", Some("heartbeat")) => {
            let Some(consumer) = req.param("consumer").filter(|c| !c.is_empty()) else {
                return error(400, "ParameterInvalid", "consumer is required");
            };
            let Some(held) = body.as_array() else {
                return error(400, "PostBodyInvalid", "the body is not a list of shards");
            };
            let held: BTreeSet<u32> = held
                .iter()
                .filter_map(Value::as_u64)
                .filter_map(|n| u32::try_from(n).ok())
                .collect();
            ok_json(json!(heartbeat(g, &shard_ids, consumer, held)))
        }
        ("POST", Some("checkpoint")) => {
            let consumer = req.param("consumer").unwrap_or("");
            let force = req
                .param("forceSuccess")
                .is_none_or(|f| f.eq_ignore_ascii_case("true"));
            let (Some(shard), Some(cp)) = (
                body.get("shard")
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok()),
                body.get("checkpoint").and_then(Value::as_str),
            ) else {
                return error(400, "PostBodyInvalid", "shard and checkpoint are required");
            };
            if !shard_ids.contains(&shard) {
                return error(
                    404,
                    "ShardNotExist",
                    &format!("shard {shard} does not exist"),
                );
            }
            if !force {
                if !g.consumers.contains_key(consumer) {
                    return error(400, "ConsumerNotExsit", "the consumer does not exist");
                }
                if g.owner.get(&shard).map(String::as_str) != Some(consumer) {
                    return error(
                        400,
                        "ConsumerNotMatch",
                        "the shard is held by another consumer",
                    );
                }
            }
            g.checkpoints.insert(
                shard,
                (
                    cp.to_string(),
                    super::sim_now().timestamp(),
                    consumer.to_string(),
                ),
            );
            ok_json(Value::Null)
        }
        ("GET", None) => {
            let only: Option<u32> = req.param("shard").and_then(|s| s.parse().ok());
            let list: Vec<Value> = shard_ids
                .iter()
                .filter(|id| only.is_none_or(|o| o == **id))
                .map(|id| {
                    let (cp, t, c) = g.checkpoints.get(id).cloned().unwrap_or_default();
                    json!({"shard": id, "checkpoint": cp, "updateTime": t, "consumer": c})
                })
                .collect();
            ok_json(Value::Array(list))
        }
        _ => error(400, "ParameterInvalid", "unknown consumer group call"),
    }
}

/// One heartbeat of `consumer` reporting `held`: consumers not heard from
/// within the timeout lose their shards; a shard its owner stopped
/// reporting is free; shards are shared out so that counts differ by at
/// most one, a shard asked back from its owner only once the owner lets
/// it go. Returns the shards the consumer is to hold.
fn heartbeat(g: &mut SimGroup, shards: &[u32], consumer: &str, held: BTreeSet<u32>) -> Vec<u32> {
    let now = std::time::Instant::now();
    let timeout = std::time::Duration::from_secs(g.timeout);
    g.consumers
        .retain(|_, c| now.duration_since(c.last) <= timeout);
    g.consumers.insert(
        consumer.to_string(),
        Consumer {
            last: now,
            idle: held.is_empty(),
        },
    );
    let live = &g.consumers;
    let releasing = &mut g.releasing;
    // Shards this consumer lets go now are not given back to it by this
    // very heartbeat (an empty heartbeat releases them).
    let mut let_go = BTreeSet::new();
    g.owner.retain(|shard, owner| {
        // An owner gone silent, or one that no longer reports the shard,
        // has let it go.
        let mine = owner == consumer;
        let keep = live.contains_key(owner.as_str())
            && shards.contains(shard)
            && (!mine || held.contains(shard));
        if !keep {
            releasing.remove(shard);
            if mine {
                let_go.insert(*shard);
            }
        }
        keep
    });
    let n = shards.len();
    let l = g
        .consumers
        .iter()
        .filter(|(name, c)| !c.idle || name.as_str() == consumer)
        .count()
        .max(1);
    let fair = n.div_ceil(l);
    let mine: Vec<u32> = g
        .owner
        .iter()
        .filter(|(_, o)| o.as_str() == consumer)
        .map(|(s, _)| *s)
        .collect();
    // Too many: the extra are asked back.
    let keep = mine.len().min(fair);
    for s in &mine[keep..] {
        g.releasing.insert(*s);
    }
    let mut count = keep;
    for s in shards {
        if count >= fair {
            break;
        }
        if !g.owner.contains_key(s) && !let_go.contains(s) {
            g.owner.insert(*s, consumer.to_string());
            count += 1;
        }
    }
    g.owner
        .iter()
        .filter(|(s, o)| o.as_str() == consumer && !g.releasing.contains(s))
        .map(|(s, _)| *s)
        .collect()
}
