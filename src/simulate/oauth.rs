//! The simulator's OAuth 2.0 token endpoint (client credentials), served
//! whatever the vendor: `POST /oauth2/token` (a declared REST API's) and
//! `POST /<--tenant>/oauth2/v2.0/token` (Microsoft Entra ID's, for
//! Defender for Cloud Apps, which also requires its scope).
//!
//! The client is `--client-id` with `--client-secret`, in the body or by
//! HTTP Basic. Tokens live `--token-lifetime` seconds (what `expires_in`
//! says) and, with `--token-uses N`, are refused after N API requests
//! however young (a token revoked early): the API then answers 401.

use super::World;
use super::http::{Request, Response, json_response};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A token issued.
pub(crate) struct Issued {
    expires: Instant,
    uses: u64,
}

/// Whether `req` is for a token endpoint.
pub(crate) fn is_token_path(req: &Request, world: &World) -> bool {
    req.path == "/oauth2/token" || req.path == format!("/{}/oauth2/v2.0/token", world.args.tenant)
}

/// Answers a token request.
pub(crate) fn token(req: &Request, world: &World) -> Response {
    let a = &world.args;
    if req.method != "POST" {
        return json_response(405, json!({"error": "invalid_request"}));
    }
    let form = decode_form(&req.body);
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if field("grant_type") != Some("client_credentials") {
        return json_response(
            400,
            json!({"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"}),
        );
    }
    let enc = crate::source::oauth::form_encode;
    let basic = format!(
        "Basic {}",
        crate::source::http::base64(
            format!("{}:{}", enc(&a.client_id), enc(&a.client_secret)).as_bytes()
        )
    );
    let by_basic = req.header("authorization") == Some(basic.as_str());
    let by_body = field("client_id") == Some(a.client_id.as_str())
        && field("client_secret") == Some(a.client_secret.as_str());
    if !by_basic && !by_body {
        return json_response(
            401,
            json!({"error": "invalid_client", "error_description": format!(
                "AADSTS7000215: Invalid client secret provided for app '{}'.", a.client_id)}),
        );
    }
    let entra = req.path != "/oauth2/token";
    if entra && field("scope") != Some(crate::source::oauth::MCAS_SCOPE) {
        return json_response(
            400,
            json!({"error": "invalid_scope", "error_description": "AADSTS70011: The provided value for the input parameter 'scope' is not valid."}),
        );
    }
    let n = world.stats.tokens.fetch_add(1, Ordering::Relaxed) + 1;
    let mut r = super::data::Rng::new(a.seed, 77, n);
    let value = format!("sim-at-{n}-{:016x}{:016x}", r.next_u64(), r.next_u64());
    let life = a.token_lifetime.max(1);
    world
        .tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            value.clone(),
            Issued {
                expires: Instant::now() + Duration::from_secs(life),
                uses: 0,
            },
        );
    json_response(
        200,
        json!({"token_type": "Bearer", "expires_in": life, "ext_expires_in": life, "access_token": value}),
    )
}

/// Whether `authorization` carries a live token issued here (counting the
/// use); the 401 answer when it names one that is not.
pub(crate) fn bearer(world: &World, authorization: Option<&str>) -> Option<Result<(), Response>> {
    let token = authorization?.strip_prefix("Bearer ")?;
    if !token.starts_with("sim-at-") {
        return None;
    }
    let mut tokens = world.tokens.lock().unwrap_or_else(|e| e.into_inner());
    let refused = |why: &str| {
        Some(Err(json_response(
            401,
            json!({"error": {"code": "InvalidAuthenticationToken", "message": why}}),
        )))
    };
    let Some(t) = tokens.get_mut(token) else {
        return refused("Access token validation failure.");
    };
    let uses = world.args.token_uses;
    if Instant::now() >= t.expires || (uses > 0 && t.uses >= uses) {
        return refused("Lifetime validation failed, the token is expired.");
    }
    t.uses += 1;
    Some(Ok(()))
}

/// `application/x-www-form-urlencoded` pairs.
fn decode_form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (super::http::decode(k), super::http::decode(v))
        })
        .collect()
}
