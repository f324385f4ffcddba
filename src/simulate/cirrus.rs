//! The simulator as Cirrus Identity's Log API (`--vendor cirrus`): `POST
//! /logs/v1?orgUrl=..&limit=..&since=..&until=..&after=..` with HTTP Basic
//! (`--key-id`, `--key-secret`), answered with a JSON array of entries and
//! a `Link` header whose `rel="next"` URL (`--link-form angle|bare`) is the
//! position after the last entry, also on the last page. Query keys
//! (`service`, `user`, ...) filter by exact match. Every seventh entry
//! holds hostile values unless `--plain`; the same faults as CloudSOC's.

use super::World;
use super::data;
use super::http::{Outcome, Request, Response, encode, injected, json_response, shaped};
use serde_json::{Value, json};

const PATH: &str = "/logs/v1";
const LIMIT_MAX: u64 = 1000;

pub(crate) fn handle(req: &Request, world: &World) -> Outcome {
    let a = &world.args;
    if req.path != PATH && req.path != "/logs/v1/" {
        return Outcome::Answer(json_response(404, json!({"message": "Not Found"})));
    }
    let want = format!(
        "Basic {}",
        crate::source::http::base64(format!("{}:{}", a.key_id, a.key_secret).as_bytes())
    );
    if req.header("authorization") != Some(want.as_str()) {
        return Outcome::Answer(json_response(403, json!({"message": "Forbidden"})));
    }
    if req.method != "POST" {
        return Outcome::Answer(json_response(405, json!({"message": "Method Not Allowed"})));
    }
    let fault = match injected(world, b"[{\"timestamp\": ") {
        Ok(f) => f,
        Err(outcome) => return outcome,
    };
    let page = match page(req, world) {
        Ok(p) => p,
        Err(msg) => return Outcome::Answer(json_response(400, json!({"message": msg}))),
    };
    shaped(fault, page)
}

/// The first entry at or after Unix second `t`.
fn first_at(world: &World, t: i64) -> u64 {
    world.schedule.first_at_or_after(t)
}

fn page(req: &Request, world: &World) -> Result<Response, String> {
    // A key that serves one organization sends none.
    let org = req.param("orgUrl");
    let limit: u64 = match req.param("limit") {
        None => LIMIT_MAX,
        Some(l) => l.parse().map_err(|_| "limit must be a number")?,
    };
    if limit == 0 || limit > LIMIT_MAX {
        return Err(format!("limit must be 1 to {LIMIT_MAX}"));
    }
    let time = |name: &str| -> Result<Option<i64>, String> {
        match req.param(name) {
            None => Ok(None),
            Some(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| Some(t.timestamp()))
                .map_err(|_| format!("{name} must be RFC 3339 (e.g. 2026-01-01T00:00:00Z)")),
        }
    };
    let total = world.schedule.total();
    let start = match (req.param("after"), time("since")?) {
        (Some(token), _) => token
            .strip_prefix('p')
            .and_then(|t| u64::from_str_radix(t, 16).ok())
            .ok_or("after is not a position this API gave")?,
        (None, Some(since)) => first_at(world, since),
        (None, None) => return Err("since or after is required".into()),
    };
    let end = match time("until")? {
        Some(until) => first_at(world, until + 1).min(total),
        None => total,
    };
    let filters: Vec<(&str, &str)> = crate::source::cirrus::QUERY_KEYS
        .iter()
        .filter_map(|k| req.param(k).map(|v| (*k, v)))
        .collect();
    let hostile = !world.args.plain;
    let mut entries = Vec::new();
    let mut i = start;
    while i < end && (entries.len() as u64) < limit {
        let e = data::cirrus(world.args.seed, &world.schedule, i, hostile);
        i += 1;
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        if filters.iter().all(|(k, v)| text(e.get(*k)) == *v) {
            entries.push(Value::Object(e));
        }
    }
    // The position after the last entry looked at: the next page, or,
    // on the last, where a later run goes on.
    let mut next = format!(
        "http://{}{PATH}?{}limit={limit}&after=p{i:x}",
        req.header("host").unwrap_or("127.0.0.1"),
        org.map(|o| format!("orgUrl={}&", encode(o)))
            .unwrap_or_default()
    );
    if let Some(u) = req.param("until") {
        next.push_str(&format!("&until={}", encode(u)));
    }
    for (k, v) in &filters {
        next.push_str(&format!("&{k}={}", encode(v)));
    }
    let link = match world.args.link_form {
        super::LinkForm::Angle => format!("<{next}>; rel=\"next\""),
        super::LinkForm::Bare => format!("{next}; rel=\"next\""),
    };
    let mut resp = json_response(200, Value::Array(entries));
    resp.headers.push(("Link", link));
    Ok(resp)
}
