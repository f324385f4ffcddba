//! The simulator as Microsoft Defender for Cloud Apps (`--vendor mcas`):
//! `POST /api/v1/alerts/` and `/api/v1/activities/` with `Authorization:
//! Token <--token>` (or `Bearer` and a token of Entra ID's endpoint, see
//! `oauth.rs`), a JSON body `{"filters": {"date": {"gte", "lte"}},
//! "skip", "limit" (at most 100), "sortField": "date", "sortDirection":
//! "asc"}`, answered `{"data": [...], "hasNext", "total"}`. Every alert of
//! a second shares one millisecond (ties across pages); every seventh
//! holds hostile values unless `--plain`. The same faults as CloudSOC's.

use super::World;
use super::data;
use super::http::{Outcome, Request, Response, injected, json_response, shaped};
use serde_json::{Value, json};

/// The most logs one request may ask for.
const LIMIT_MAX: u64 = 100;

pub(crate) fn handle(req: &Request, world: &World) -> Outcome {
    let a = &world.args;
    let activity = match req.path.as_str() {
        "/api/v1/alerts/" | "/api/v1/alerts" => false,
        "/api/v1/activities/" | "/api/v1/activities" => true,
        _ => {
            return Outcome::Answer(json_response(404, json!({"detail": "Not found."})));
        }
    };
    let want = format!("Token {}", a.token);
    match super::oauth::bearer(world, req.header("authorization")) {
        Some(Ok(())) => {}
        Some(Err(refused)) => return Outcome::Answer(refused),
        None if req.header("authorization") != Some(want.as_str()) => {
            return Outcome::Answer(json_response(401, json!({"detail": "Invalid token."})));
        }
        None => {}
    }
    if req.method != "POST" && req.method != "GET" {
        return Outcome::Answer(json_response(405, json!({"detail": "Method not allowed."})));
    }
    let fault = match injected(world, b"{\"data\": [{\"_id\": ") {
        Ok(f) => f,
        Err(outcome) => return outcome,
    };
    let page = match page(req, world, activity) {
        Ok(p) => p,
        Err(msg) => return Outcome::Answer(json_response(400, json!({"detail": msg}))),
    };
    shaped(fault, page)
}

/// The number of logs of a stream, and log `i` of it at its millisecond.
fn count(world: &World, activity: bool) -> u64 {
    if activity {
        world.detect_count.min(world.schedule.total())
    } else {
        world.schedule.total()
    }
}

/// Activity `i` is log `i * total / count` of the schedule's times.
fn index(world: &World, activity: bool, i: u64) -> u64 {
    if activity {
        let n = count(world, true).max(1);
        (u128::from(i) * u128::from(world.schedule.total()) / u128::from(n)) as u64
    } else {
        i
    }
}

fn ms_of(world: &World, activity: bool, i: u64) -> i64 {
    data::mcas_ms(world.args.seed, &world.schedule, index(world, activity, i))
}

/// The first log (of `n`) at or after `ms`: the times never decrease.
fn first_at_or_after(world: &World, activity: bool, n: u64, ms: i64) -> u64 {
    let (mut lo, mut hi) = (0u64, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if ms_of(world, activity, mid) < ms {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

fn page(req: &Request, world: &World, activity: bool) -> Result<Response, String> {
    let body: Value = if req.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&req.body).map_err(|e| format!("the body is not JSON: {e}"))?
    };
    let date = &body["filters"]["date"];
    let number = |v: &Value, what: &str| -> Result<Option<i64>, String> {
        match v {
            Value::Null => Ok(None),
            v => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| format!("{what} must be a number of epoch milliseconds")),
        }
    };
    let gte = number(&date["gte"], "filters.date.gte")?;
    let lte = number(&date["lte"], "filters.date.lte")?;
    let skip = body["skip"].as_u64().unwrap_or(0);
    let limit = body["limit"].as_u64().unwrap_or(LIMIT_MAX);
    if limit == 0 || limit > LIMIT_MAX {
        return Err(format!("limit must be 1 to {LIMIT_MAX}"));
    }
    if body["sortDirection"].as_str().is_some_and(|d| d != "asc") {
        return Err("the simulator sorts by date ascending only".into());
    }
    let mut n = count(world, activity);
    if world.args.arrive > 0 {
        let requests = world
            .stats
            .log_requests
            .load(std::sync::atomic::Ordering::Relaxed);
        n = n.min(n / 2 + requests * world.args.arrive);
    }
    let start = gte.map_or(0, |ms| first_at_or_after(world, activity, n, ms));
    let end = lte.map_or(n, |ms| first_at_or_after(world, activity, n, ms + 1));
    let total = end.saturating_sub(start);
    let from = start.saturating_add(skip).min(end);
    let to = from.saturating_add(limit).min(end);
    let hostile = !world.args.plain;
    let data: Vec<Value> = (from..to)
        .map(|i| {
            let mut log = data::mcas(
                world.args.seed,
                &world.schedule,
                index(world, activity, i),
                activity,
                hostile,
            );
            if activity {
                // Its own id, whatever alert it shares a time with.
                log.insert("_id".into(), json!(format!("act-{i:021}")));
            }
            Value::Object(log)
        })
        .collect();
    Ok(json_response(
        200,
        json!({"data": data, "hasNext": to < end, "total": total}),
    ))
}
