//! The simulator as REST log APIs of the shapes a declared source reads
//! (`--vendor rest`), one endpoint per way of naming the next page, all
//! over the same records (Okta System Log-like, `--events N` of them):
//!
//! - `GET /api/v1/logs?since=RFC3339&limit=N[&after=T]`, `Authorization:
//!   SSWS <--token>`: an array, and a `Link: <...>; rel="next"` header on
//!   every answer (as Okta does: an empty page ends a backfill);
//! - `GET /body/events?since=RFC3339[&cursor=N]`, `Authorization: Bearer
//!   <--token>`: `{"data": {"items": [...]}, "links": {"next": URL|null}}`,
//!   50 a page;
//! - `GET /token/events?from=EPOCH_S[&page_token=T]`, HTTP Basic
//!   (`--key-id`, `--key-secret`): `{"records": [...], "meta": {"next_token":
//!   T|null}}`, 40 a page, each record's time in `meta.created` (epoch ms);
//! - `GET /offset/events?since_ms=EPOCH_MS&offset=N&limit=N`, `X-Api-Key:
//!   <--key-secret>`: `{"results": [...]}`, records with a numeric `id`
//!   and `time` in epoch ms.
//!
//! Each also takes a `Bearer` access token of the simulator's token
//! endpoint (`POST /oauth2/token`, OAuth 2.0 client credentials).
//!
//! Every seventh record holds hostile values unless `--plain`; the same
//! faults as CloudSOC's.

use super::World;
use super::data;
use super::http::{Outcome, Request, Response, injected, json_response, shaped};
use serde_json::{Value, json};

pub(crate) fn handle(req: &Request, world: &World) -> Outcome {
    let a = &world.args;
    let (want, shape) = match req.path.as_str() {
        "/api/v1/logs" => (format!("SSWS {}", a.token), Shape::Link),
        "/body/events" => (format!("Bearer {}", a.token), Shape::Body),
        "/token/events" => (
            format!(
                "Basic {}",
                crate::source::http::base64(format!("{}:{}", a.key_id, a.key_secret).as_bytes())
            ),
            Shape::Token,
        ),
        "/offset/events" => (a.key_secret.clone(), Shape::Offset),
        _ => return Outcome::Answer(json_response(404, json!({"errorSummary": "Not found"}))),
    };
    let given = match shape {
        Shape::Offset => req.header("x-api-key"),
        _ => req.header("authorization"),
    };
    // An access token of the simulator's token endpoint is good for any
    // shape (OAuth 2.0 client credentials).
    match super::oauth::bearer(world, req.header("authorization")) {
        Some(Ok(())) => {}
        Some(Err(refused)) => return Outcome::Answer(refused),
        None if given != Some(want.as_str()) => {
            return Outcome::Answer(json_response(
                401,
                json!({"errorSummary": "Invalid token provided"}),
            ));
        }
        None => {}
    }
    let fault = match injected(world, b"[{\"uuid\": ") {
        Ok(f) => f,
        Err(outcome) => return outcome,
    };
    let page = match page(req, world, shape) {
        Ok(p) => p,
        Err(msg) => return Outcome::Answer(json_response(400, json!({"errorSummary": msg}))),
    };
    shaped(fault, page)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Link,
    Body,
    Token,
    Offset,
}

/// Record `i` in the endpoint's shape.
fn record(world: &World, shape: Shape, i: u64) -> Value {
    let mut r = data::Rng::new(world.args.seed, 6, i);
    let second = world.schedule.second_of(i);
    let ms = second * 1000 + r.below(1000) as i64;
    let published = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    let user = format!("user{}@acme.com", r.below(60));
    let (kind, message) = *r.pick(&[
        ("user.session.start", "User login to Okta"),
        ("user.authentication.sso", "User single sign on to app"),
        ("policy.evaluate_sign_on", "Evaluation of sign-on policy"),
        ("user.account.lock", "Max sign in attempts exceeded"),
    ]);
    let mut v = json!({
        "uuid": format!("{:08x}-{:04x}-4{:03x}-a000-{i:012x}", r.next_u64() as u32, r.below(0x10000), r.below(0x1000)),
        "published": published,
        "eventType": kind,
        "severity": *r.pick(&["INFO", "WARN"]),
        "displayMessage": message,
        "actor": {"alternateId": user, "type": "User"},
        "client": {"ipAddress": format!("198.51.100.{}", r.below(255))},
        "outcome": {"result": *r.pick(&["SUCCESS", "FAILURE"])},
    });
    let obj = v.as_object_mut().expect("object");
    match shape {
        Shape::Token => {
            obj.insert("meta".into(), json!({"created": ms}));
        }
        Shape::Offset => {
            obj.insert("id".into(), json!(i + 1));
            obj.insert("time".into(), json!(ms));
        }
        _ => {}
    }
    if !world.args.plain && i % 7 == 3 {
        data::hostile_in(
            obj,
            &mut r,
            &["displayMessage", "eventType", "severity"],
            i / 7,
        );
    }
    v
}

fn page(req: &Request, world: &World, shape: Shape) -> Result<Response, String> {
    let total = world.schedule.total();
    let number = |name: &str| -> Result<Option<u64>, String> {
        req.param(name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("{name} must be a number"))
            })
            .transpose()
    };
    let rfc3339 = |name: &str| -> Result<Option<i64>, String> {
        req.param(name)
            .map(|v| {
                chrono::DateTime::parse_from_rfc3339(v)
                    .map(|t| t.timestamp())
                    .map_err(|_| format!("{name} must be RFC 3339"))
            })
            .transpose()
    };
    // The first record at or after the `since` of each shape.
    let since_index =
        |second: Option<i64>| second.map_or(0, |s| world.schedule.first_at_or_after(s));
    let host = req.header("host").unwrap_or("127.0.0.1").to_string();
    let records = |from: u64, n: u64| -> (Vec<Value>, u64) {
        let to = from.saturating_add(n).min(total);
        ((from..to).map(|i| record(world, shape, i)).collect(), to)
    };
    let mut resp = match shape {
        Shape::Link => {
            let limit = number("limit")?.unwrap_or(100).clamp(1, 1000);
            let from = match req.param("after") {
                Some(t) => t
                    .parse()
                    .map_err(|_| "after is not a cursor this API gave")?,
                None => since_index(rfc3339("since")?),
            };
            let (items, to) = records(from, limit);
            let mut r = json_response(200, Value::Array(items));
            r.headers.push((
                "Link",
                format!("<http://{host}/api/v1/logs?limit={limit}&after={to}>; rel=\"next\""),
            ));
            r
        }
        Shape::Body => {
            let from = match number("cursor")? {
                Some(c) => c,
                None => since_index(rfc3339("since")?),
            };
            let (items, to) = records(from, 50);
            let next = (to < total).then(|| format!("/body/events?cursor={to}"));
            json_response(
                200,
                json!({"data": {"items": items}, "links": {"next": next}}),
            )
        }
        Shape::Token => {
            let from = match req.param("page_token") {
                Some(t) => t
                    .strip_prefix("tok-")
                    .and_then(|n| n.parse().ok())
                    .ok_or("page_token is not a token this API gave")?,
                None => since_index(number("from")?.map(|s| s as i64)),
            };
            let (items, to) = records(from, 40);
            let next = (to < total).then(|| format!("tok-{to}"));
            json_response(200, json!({"records": items, "meta": {"next_token": next}}))
        }
        Shape::Offset => {
            let since = number("since_ms")?.map(|ms| (ms / 1000) as i64);
            let offset = number("offset")?.unwrap_or(0);
            let limit = number("limit")?.unwrap_or(30).clamp(1, 500);
            let (items, _) = records(since_index(since).saturating_add(offset), limit);
            json_response(200, json!({"results": items}))
        }
    };
    resp.status = 200;
    Ok(resp)
}
