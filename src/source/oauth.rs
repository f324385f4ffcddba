//! OAuth 2.0 client credentials (RFC 6749 §4.4), for any HTTP source: a
//! declared REST API's `"auth": {"type": "oauth2", ...}` and Defender for
//! Cloud Apps through Microsoft Entra ID.
//!
//! - The token is fetched when first needed, then reused by every stream
//!   of the run; it is renewed ahead of its `expires_in` (a quarter of its
//!   life, at most a minute, before it ends) and once when the API answers
//!   401 to it (a token revoked or expired early). A second 401 with the
//!   fresh token is the API's answer.
//! - The client secret, the Basic credentials made of it and every access
//!   token received are registered secrets before anything can print them;
//!   an answer of the token endpoint is never shown but for its `error`
//!   fields, redacted.
//! - The token endpoint gets no header of the API's (an API key header
//!   stays with the API); it is held to the same rules as the API's URL
//!   (plain http only on this machine, no redirects, the proxy).

use super::SourceError;
use super::http::{Client, HttpOptions, Origin, Proxy, basic_credentials};
use crate::secret::{Secret, register};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::debug;

/// The scope of Defender for Cloud Apps' API in Microsoft Entra ID's v2.0
/// token endpoint: the application ID of "Microsoft Cloud App Security"
/// and `/.default` (the application permissions granted to the app, such
/// as `Investigation.Read`).
pub const MCAS_SCOPE: &str = "05a65629-4c1b-48c1-a78b-804c4abdd4af/.default";

/// Microsoft Entra ID's sign-in server (the global cloud).
pub const ENTRA_LOGIN: &str = "https://login.microsoftonline.com/";

/// How the client authenticates to the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body.
    Body,
    /// HTTP Basic (`client_secret_basic`, RFC 6749 §2.3.1).
    Basic,
}

/// A client credentials grant, checked.
#[derive(Clone, Debug)]
pub struct OAuth2 {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub client_auth: ClientAuth,
    /// Extra form parameters of the token request.
    pub params: Vec<(String, String)>,
}

/// The keys of a declared `"auth": {"type": "oauth2", ...}`.
pub const KEYS: [&str; 9] = [
    "type",
    "token_url",
    "client_id",
    "client_secret",
    "scopes",
    "audience",
    "resource",
    "client_auth",
    "params",
];

impl OAuth2 {
    /// Registers the secrets of an `auth` object before it is checked.
    pub fn register_secrets(obj: &Map<String, Value>) {
        if let Some(Value::String(s)) = obj.get("client_secret") {
            register_client_secret(obj.get("client_id").and_then(Value::as_str), s);
        }
        if let Some(Value::Object(p)) = obj.get("params") {
            for (k, v) in p {
                if let Value::String(v) = v {
                    crate::secret::register_param(k, v);
                }
            }
        }
    }

    /// Reads a declared `auth` object: the problem, for the `auth` key's
    /// message, when it does not fit.
    pub fn parse(obj: &Map<String, Value>) -> Result<OAuth2, String> {
        if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "has the unknown key {k:?} (oauth2 takes {})",
                KEYS.join(", ")
            ));
        }
        let text = |key: &str| -> Result<Option<String>, String> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Err(format!("{key:?} is empty")),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(_) => Err(format!("{key:?} must be a string")),
            }
        };
        let required =
            |key: &str| text(key)?.ok_or_else(|| format!("needs {key:?} for the oauth2 type"));
        let url_text = required("token_url")?;
        let token_url = Url::parse(&url_text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.username().is_empty())
            .ok_or_else(|| {
                format!("\"token_url\" {url_text:?} is not an http:// or https:// URL without credentials")
            })?;
        let scopes = match obj.get("scopes") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s.split_whitespace().map(String::from).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty() && !s.contains(' '))
                        .ok_or_else(|| format!("\"scopes\" holds {v}: each must be a word"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("\"scopes\" must be a list of strings".into()),
        };
        let client_auth = match text("client_auth")?.as_deref() {
            None | Some("body") => ClientAuth::Body,
            Some("basic") => ClientAuth::Basic,
            Some(other) => return Err(format!("\"client_auth\" is {other:?}: body or basic")),
        };
        let mut params = Vec::new();
        match obj.get("params") {
            None | Some(Value::Null) => {}
            Some(Value::Object(p)) => {
                for (k, v) in p {
                    let v = v
                        .as_str()
                        .ok_or_else(|| format!("\"params\" {k:?} must be a string"))?;
                    params.push((k.clone(), v.to_string()));
                }
            }
            Some(_) => return Err("\"params\" must be an object of strings".into()),
        }
        Ok(OAuth2 {
            token_url,
            client_id: required("client_id")?,
            client_secret: Secret::new(required("client_secret")?),
            scopes,
            audience: text("audience")?,
            resource: text("resource")?,
            client_auth,
            params,
        })
    }

    /// Defender for Cloud Apps' grant: Entra ID's v2.0 token endpoint of
    /// `tenant_id` on `login` (a sovereign cloud's sign-in server, or a
    /// simulator), with Defender for Cloud Apps' scope.
    pub fn entra(
        login: &Url,
        tenant_id: &str,
        client_id: &str,
        client_secret: Secret,
    ) -> Result<OAuth2, String> {
        let token_url = login
            .join(&format!("{tenant_id}/oauth2/v2.0/token"))
            .map_err(|e| format!("cannot make the token URL ({e})"))?;
        register_client_secret(Some(client_id), client_secret.expose());
        Ok(OAuth2 {
            token_url,
            client_id: client_id.to_string(),
            client_secret,
            scopes: vec![MCAS_SCOPE.to_string()],
            audience: None,
            resource: None,
            client_auth: ClientAuth::Body,
            params: Vec::new(),
        })
    }

    /// The token request's form body.
    fn form(&self) -> String {
        let mut pairs: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        let scope = self.scopes.join(" ");
        if !scope.is_empty() {
            pairs.push(("scope", &scope));
        }
        if let Some(a) = &self.audience {
            pairs.push(("audience", a));
        }
        if let Some(r) = &self.resource {
            pairs.push(("resource", r));
        }
        for (k, v) in &self.params {
            pairs.push((k, v));
        }
        if self.client_auth == ClientAuth::Body {
            pairs.push(("client_id", &self.client_id));
            pairs.push(("client_secret", self.client_secret.expose()));
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// The client secret and the forms a server may echo it in.
fn register_client_secret(client_id: Option<&str>, secret: &str) {
    register(secret);
    register(&form_encode(secret));
    if let Some(id) = client_id {
        let basic = basic_credentials(&form_encode(id), &Secret::new(form_encode(secret)));
        register(&basic);
        register(&basic_credentials(id, &Secret::new(secret.to_string())));
    }
}

/// `application/x-www-form-urlencoded` (the WHATWG rules: alphanumerics
/// and `*-._` as they are, a space as `+`, every other byte `%XX`).
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A token held, and when to renew it.
struct Held {
    header: HeaderValue,
    renew_at: Instant,
}

/// When a token received at `now` that lives `life` is renewed: a quarter
/// of its life before its end, at most a minute.
pub fn renew_at(now: Instant, life: Duration) -> Instant {
    now + life.saturating_sub((life / 4).min(Duration::from_secs(60)))
}

/// The access tokens of one grant, shared by every stream of a run.
pub struct Tokens {
    grant: OAuth2,
    /// The token endpoint's client: no header of the API's.
    http: Client,
    /// config.json, for messages.
    config: Arc<Path>,
    held: tokio::sync::Mutex<Option<Held>>,
    /// What to check when the endpoint refuses the client.
    check: String,
}

impl Tokens {
    /// `check` names the keys to check when the client is refused
    /// (`client_id and client_secret`), `field` the key holding the token
    /// URL, for messages.
    pub fn new(
        grant: OAuth2,
        config: &Path,
        field: &'static str,
        check: String,
        http: &HttpOptions,
        proxy: Option<&Proxy>,
    ) -> Result<Tokens, SourceError> {
        let client = Client::new(
            grant.token_url.clone(),
            HeaderMap::new(),
            http,
            proxy,
            Origin {
                config,
                field,
                credentials: "client_id and client_secret",
                location: field,
            },
        )?;
        Ok(Tokens {
            grant,
            http: client,
            config: config.into(),
            held: tokio::sync::Mutex::new(None),
            check,
        })
    }

    /// The `Authorization` header to send: the token held, or a new one.
    pub async fn header(&self) -> Result<HeaderValue, SourceError> {
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_ref().filter(|h| Instant::now() < h.renew_at) {
            return Ok(h.header.clone());
        }
        let fresh = self.fetch().await?;
        let header = fresh.header.clone();
        *held = Some(fresh);
        Ok(header)
    }

    /// After the API answered 401 to `refused`: a new token, unless another
    /// stream got one meanwhile.
    pub async fn renew(&self, refused: &HeaderValue) -> Result<HeaderValue, SourceError> {
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_ref().filter(|h| h.header != *refused) {
            return Ok(h.header.clone());
        }
        debug!("the API refused the access token (HTTP 401): getting a new one");
        let fresh = self.fetch().await?;
        let header = fresh.header.clone();
        *held = Some(fresh);
        Ok(header)
    }

    async fn fetch(&self) -> Result<Held, SourceError> {
        let url = self.grant.token_url.clone();
        let answer = self
            .http
            .retrying(|| {
                let mut req = self
                    .http
                    .request(Method::POST, url.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(reqwest::header::ACCEPT, "application/json")
                    .body(self.grant.form());
                if self.grant.client_auth == ClientAuth::Basic {
                    let c = basic_credentials(
                        &form_encode(&self.grant.client_id),
                        &Secret::new(form_encode(self.grant.client_secret.expose())),
                    );
                    let mut v = HeaderValue::from_str(&format!("Basic {c}"))
                        .unwrap_or_else(|_| HeaderValue::from_static(""));
                    v.set_sensitive(true);
                    req = req.header(AUTHORIZATION, v);
                }
                self.http.send(req)
            })
            .await
            .map_err(|e| self.refused(e))?;
        let received = Instant::now();
        let shown = crate::secret::strip_userinfo(url.as_str());
        let bad = |what: &str| {
            SourceError::Setup(format!(
                "{}: the token endpoint {shown} answered {what}",
                self.config.display()
            ))
        };
        let value: Value = serde_json::from_slice(&answer.body)
            .map_err(|_| bad("something that is not JSON (no access token)"))?;
        let token = match value.get("access_token") {
            Some(Value::String(t)) if !t.trim().is_empty() => t.trim().to_string(),
            _ => return Err(bad("no \"access_token\"")),
        };
        register(&token);
        match value.get("token_type").and_then(Value::as_str) {
            None => {}
            Some(t) if t.eq_ignore_ascii_case("bearer") => {}
            Some(other) => {
                return Err(bad(&format!(
                    "a token of type {:?}: only Bearer tokens can be sent",
                    crate::secret::redact(other)
                )));
            }
        }
        // Seconds, as a number or (some servers) a string; none said: an
        // hour, and the API's 401 renews it sooner.
        let life = match value.get("expires_in") {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::from_secs(3600), |s| {
            Duration::from_secs_f64(s.min(86_400.0 * 365.0))
        });
        let mut header = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| bad("an access token that cannot be sent in a header"))?;
        header.set_sensitive(true);
        debug!(
            "got an access token from {shown} (expires in {}s)",
            life.as_secs()
        );
        Ok(Held {
            header,
            renew_at: renew_at(received, life),
        })
    }

    /// A refusal of the token endpoint, naming the keys to check.
    fn refused(&self, e: SourceError) -> SourceError {
        let inner = match &e {
            SourceError::GaveUp { last, .. } => last.as_ref(),
            other => other,
        };
        let (status, detail) = match inner {
            SourceError::Rejected { status, detail, .. } => (*status, detail),
            SourceError::Status { status, detail, .. }
                if *status == 400
                    && (detail.contains("invalid_client")
                        || detail.contains("unauthorized_client")
                        || detail.contains("invalid_grant")) =>
            {
                (*status, detail)
            }
            SourceError::Status { status, detail, .. } if *status == 400 => {
                return SourceError::TokenRejected {
                    url: crate::secret::strip_userinfo(self.grant.token_url.as_str()),
                    status: *status,
                    detail: detail.clone(),
                    check: "scopes, audience and resource (the token request)".into(),
                };
            }
            _ => return e,
        };
        SourceError::TokenRejected {
            url: crate::secret::strip_userinfo(self.grant.token_url.as_str()),
            status,
            detail: detail.clone(),
            check: self.check.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<OAuth2, String> {
        OAuth2::parse(v.as_object().unwrap())
    }

    #[test]
    fn a_grant_is_read_with_its_defaults_and_its_form() {
        let g = parse(
            json!({"type": "oauth2", "token_url": "https://id.example/oauth2/v1/token",
            "client_id": "app 1", "client_secret": "s3cr+t/x", "scopes": ["okta.logs.read", "b"],
            "audience": "api://x", "params": {"tenant": "t1"}}),
        )
        .unwrap();
        assert_eq!(g.client_auth, ClientAuth::Body);
        assert_eq!(
            g.form(),
            "grant_type=client_credentials&scope=okta.logs.read+b&audience=api%3A%2F%2Fx&tenant=t1&client_id=app+1&client_secret=s3cr%2Bt%2Fx"
        );
        let g = parse(
            json!({"type": "oauth2", "token_url": "https://id.example/t",
            "client_id": "c", "client_secret": "xyz", "scopes": "a b", "client_auth": "basic"}),
        )
        .unwrap();
        assert_eq!(g.scopes, ["a", "b"]);
        assert_eq!(g.form(), "grant_type=client_credentials&scope=a+b");
    }

    #[test]
    fn a_grant_missing_or_wrong_keys_names_them() {
        let e = |v: Value| parse(v).unwrap_err();
        assert!(
            e(json!({"type": "oauth2", "client_id": "c", "client_secret": "s"}))
                .contains("\"token_url\"")
        );
        assert!(
            e(json!({"type": "oauth2", "token_url": "https://x/t", "client_id": "c"}))
                .contains("\"client_secret\"")
        );
        assert!(e(json!({"type": "oauth2", "token_url": "ftp://x/t", "client_id": "c", "client_secret": "s"})).contains("token_url"));
        assert!(e(json!({"type": "oauth2", "token_url": "https://x/t", "client_id": "c", "client_secret": "s", "scope": "a"})).contains("\"scope\""));
        assert!(e(json!({"type": "oauth2", "token_url": "https://x/t", "client_id": "c", "client_secret": "s", "client_auth": "jwt"})).contains("client_auth"));
    }

    #[test]
    fn the_client_secret_and_its_encodings_are_registered() {
        let obj = json!({"client_id": "cid-oauth-test", "client_secret": "Zq~8Q.s3cr+t-for-oauth"});
        OAuth2::register_secrets(obj.as_object().unwrap());
        let text = "a Zq~8Q.s3cr+t-for-oauth b Zq%7E8Q.s3cr%2Bt-for-oauth";
        assert_eq!(crate::secret::redact(text), "a *** b ***");
    }

    #[test]
    fn a_token_is_renewed_ahead_of_its_end() {
        let t0 = Instant::now();
        assert_eq!(
            renew_at(t0, Duration::from_secs(3600)),
            t0 + Duration::from_secs(3540)
        );
        assert_eq!(
            renew_at(t0, Duration::from_secs(8)),
            t0 + Duration::from_secs(6)
        );
    }

    #[test]
    fn entra_asks_defender_for_cloud_apps_scope_from_the_tenant() {
        let g = OAuth2::entra(
            &Url::parse(ENTRA_LOGIN).unwrap(),
            "8c3f0e6a-1111-2222-3333-444455556666",
            "app",
            Secret::new("entra-secret-value"),
        )
        .unwrap();
        assert_eq!(
            g.token_url.as_str(),
            "https://login.microsoftonline.com/8c3f0e6a-1111-2222-3333-444455556666/oauth2/v2.0/token"
        );
        assert!(
            g.form()
                .contains("scope=05a65629-4c1b-48c1-a78b-804c4abdd4af%2F.default")
        );
    }
}
