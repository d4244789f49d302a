//! The auth matrix, run against any host over HTTP: every route kind ×
//! every kind of credential, with the status class each must get (`401`,
//! `403`, or admitted — any other status), CORS on every answer (refusals
//! included), the `Bearer` challenge on `401`s, no secret in any answer, and
//! secret rotation. The host must have project `project` with signing secret
//! `secret` (created by the operator) and `corsOrigins` including
//! [`ALLOWED_ORIGIN`] or not — the matrix sets it through the config API.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use durable_streams_auth::{sign_hs256, Claims, Scope};
use serde_json::json;

pub const ALLOWED_ORIGIN: &str = "https://app.example";
const FOREIGN_ORIGIN: &str = "https://evil.example";

/// One HTTP answer (status, lower-case headers, raw body bytes).
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client (one connection per request).
pub fn send(base: &str, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Result<Answer, String> {
    let authority = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(authority).map_err(|e| format!("connect {authority}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).and_then(|()| s.write_all(body)).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no header end")?;
    let text = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).ok_or("status line")?;
    let headers = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())))
        .collect();
    Ok(Answer { status, headers, body: raw[end + 4..].to_vec() })
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A project token valid for ten minutes.
pub fn token(project: &str, scope: &str, stream_id: Option<&str>, secret: &str) -> String {
    let scope = Scope::parse(scope).unwrap_or(Scope::Read);
    let mut claims = Claims::project(project, scope, now_s() + 600);
    if let Some(id) = stream_id {
        claims = claims.for_stream(id);
    }
    sign_hs256(&claims, secret.as_bytes())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Unauthorized,
    Forbidden,
    Admitted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    None,
    Read,
    Write,
    Manage,
}

/// A credential kind of the matrix.
#[derive(Clone, Debug)]
struct Credential {
    name: &'static str,
    header: Option<String>,
    /// What the credential grants when it is valid for the project.
    grants: Result<Level, Expect>,
    /// The token is limited to this stream (path within the project).
    stream_id: Option<&'static str>,
}

/// A route kind of the matrix.
struct Route {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
    needs: Level,
    /// The stream (within the project) it addresses.
    stream: Option<&'static str>,
    /// Readable without credentials (GET/HEAD of a public stream).
    public_read: bool,
}

fn expected(route: &Route, credential: &Credential) -> Expect {
    if route.needs == Level::None {
        return Expect::Admitted;
    }
    let level = match credential.grants {
        Err(refusal) => return refusal,
        Ok(Level::None) => {
            return if route.public_read { Expect::Admitted } else { Expect::Unauthorized };
        }
        Ok(level) => level,
    };
    if let Some(limit) = credential.stream_id {
        if route.stream != Some(limit) {
            return Expect::Forbidden;
        }
    }
    if level < route.needs {
        Expect::Forbidden
    } else {
        Expect::Admitted
    }
}

fn classify(status: u16) -> Expect {
    match status {
        401 => Expect::Unauthorized,
        403 => Expect::Forbidden,
        _ => Expect::Admitted,
    }
}

/// Runs the matrix; returns the number of checked cells.
pub fn run(base: &str, project: &str, secret: &str, prefix: &str) -> Result<usize, String> {
    let manage = format!("Bearer {}", token(project, "manage", None, secret));
    let auth = |value: &str| vec![("Authorization", value.to_owned())];
    let config = |secrets: &[&str]| {
        json!({"signingSecrets": secrets, "corsOrigins": [ALLOWED_ORIGIN]}).to_string().into_bytes()
    };
    // Setup with the manage token: CORS origins, the streams.
    let put = send(base, "PUT", &format!("/v1/config/{project}"), &auth(&manage), &config(&[secret]))?;
    if put.status != 200 {
        return Err(format!("PUT config with a manage token: {} {}", put.status, String::from_utf8_lossy(&put.body)));
    }
    let private = format!("/v1/stream/{project}/{prefix}priv");
    let public = format!("/v1/stream/{project}/{prefix}pub");
    let victim = format!("/v1/stream/{project}/{prefix}victim");
    for (path, query) in [(&private, ""), (&public, "?public=true"), (&victim, "")] {
        let mut headers = auth(&manage);
        headers.push(("Content-Type", "text/plain".to_owned()));
        let created = send(base, "PUT", &format!("{path}{query}"), &headers, b"seed")?;
        if created.status != 201 && created.status != 200 {
            return Err(format!("creating {path}: {}", created.status));
        }
    }

    let wrong_secret = "an-unknown-signing-secret-of-32-bytes!!";
    let exp_past = sign_hs256(&Claims::project(project, Scope::Manage, now_s() - 10), secret.as_bytes());
    let valid_write = token(project, "write", None, secret);
    let tampered = {
        let mut parts: Vec<String> = valid_write.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(json!({"sub": project, "scope": "manage", "exp": now_s() + 600}).to_string());
        parts.join(".")
    };
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(json!({"sub": project, "scope": "manage", "exp": now_s() + 600}).to_string())
    );
    let bearer = |t: &str| Some(format!("Bearer {t}"));
    let s = |x: &str| x.to_owned();
    let mut credentials = vec![
        Credential { name: "no token", header: None, grants: Ok(Level::None), stream_id: None },
        Credential { name: "malformed", header: bearer("not-a-jwt"), grants: Err(Expect::Unauthorized), stream_id: None },
        Credential { name: "not bearer", header: Some(s("Basic dXNlcjpwYXNz")), grants: Err(Expect::Unauthorized), stream_id: None },
        Credential { name: "expired", header: bearer(&exp_past), grants: Err(Expect::Unauthorized), stream_id: None },
        Credential { name: "tampered", header: bearer(&tampered), grants: Err(Expect::Unauthorized), stream_id: None },
        Credential { name: "alg none", header: bearer(&alg_none), grants: Err(Expect::Unauthorized), stream_id: None },
        Credential {
            name: "unknown key",
            header: bearer(&token(project, "manage", None, wrong_secret)),
            grants: Err(Expect::Unauthorized),
            stream_id: None,
        },
        Credential {
            name: "foreign sub",
            header: bearer(&token("someone-else", "manage", None, secret)),
            grants: Err(Expect::Forbidden),
            stream_id: None,
        },
        Credential {
            name: "other stream_id",
            header: bearer(&token(project, "manage", Some("elsewhere"), secret)),
            grants: Ok(Level::Manage),
            stream_id: Some("elsewhere"),
        },
        Credential { name: "read", header: bearer(&token(project, "read", None, secret)), grants: Ok(Level::Read), stream_id: None },
        Credential { name: "write", header: bearer(&valid_write), grants: Ok(Level::Write), stream_id: None },
        Credential { name: "manage", header: Some(manage.clone()), grants: Ok(Level::Manage), stream_id: None },
    ];
    let own_stream = format!("{prefix}priv");
    let own: &'static str = Box::leak(own_stream.into_boxed_str());
    credentials.push(Credential {
        name: "stream_id of the private stream",
        header: bearer(&token(project, "write", Some(own), secret)),
        grants: Ok(Level::Write),
        stream_id: Some(own),
    });

    let text = vec![("Content-Type", s("text/plain"))];
    let json_body = |v: serde_json::Value| v.to_string().into_bytes();
    let json_headers = vec![("Content-Type", s("application/json"))];
    let routes = vec![
        Route { name: "GET /health", method: "GET", path: s("/health"), body: vec![], headers: vec![], needs: Level::None, stream: None, public_read: false },
        Route { name: "GET private", method: "GET", path: format!("{private}?offset=-1"), body: vec![], headers: vec![], needs: Level::Read, stream: Some(own), public_read: false },
        Route { name: "HEAD private", method: "HEAD", path: private.clone(), body: vec![], headers: vec![], needs: Level::Read, stream: Some(own), public_read: false },
        Route { name: "GET public", method: "GET", path: format!("{public}?offset=-1"), body: vec![], headers: vec![], needs: Level::Read, stream: None, public_read: true },
        Route { name: "HEAD public", method: "HEAD", path: public.clone(), body: vec![], headers: vec![], needs: Level::Read, stream: None, public_read: true },
        Route { name: "POST public (append)", method: "POST", path: public.clone(), body: b"x".to_vec(), headers: text.clone(), needs: Level::Write, stream: None, public_read: false },
        Route { name: "POST private (append)", method: "POST", path: private.clone(), body: b"x".to_vec(), headers: text.clone(), needs: Level::Write, stream: Some(own), public_read: false },
        Route { name: "PUT private (create)", method: "PUT", path: private.clone(), body: vec![], headers: text.clone(), needs: Level::Write, stream: Some(own), public_read: false },
        Route { name: "DELETE stream", method: "DELETE", path: victim.clone(), body: vec![], headers: vec![], needs: Level::Manage, stream: None, public_read: false },
        Route { name: "GET config", method: "GET", path: format!("/v1/config/{project}"), body: vec![], headers: vec![], needs: Level::Manage, stream: None, public_read: false },
        Route { name: "PUT config", method: "PUT", path: format!("/v1/config/{project}"), body: config(&[secret]), headers: json_headers.clone(), needs: Level::Manage, stream: None, public_read: false },
        Route { name: "POST estuary subscribe", method: "POST", path: format!("/v1/estuary/subscribe/{project}/{prefix}priv"), body: json_body(json!({"estuaryId": "e1"})), headers: json_headers.clone(), needs: Level::Read, stream: Some(own), public_read: false },
        Route { name: "DELETE estuary subscribe", method: "DELETE", path: format!("/v1/estuary/subscribe/{project}/{prefix}priv"), body: json_body(json!({"estuaryId": "e1"})), headers: json_headers.clone(), needs: Level::Write, stream: Some(own), public_read: false },
        Route { name: "GET estuary", method: "GET", path: format!("/v1/estuary/{project}/e1"), body: vec![], headers: vec![], needs: Level::Read, stream: None, public_read: false },
        Route { name: "DELETE estuary", method: "DELETE", path: format!("/v1/estuary/{project}/e1"), body: vec![], headers: vec![], needs: Level::Write, stream: None, public_read: false },
    ];

    let mut failures = Vec::new();
    let mut cells = 0;
    for route in &routes {
        for credential in &credentials {
            let mut headers = route.headers.clone();
            headers.push(("Origin", s(ALLOWED_ORIGIN)));
            if let Some(value) = &credential.header {
                headers.push(("Authorization", value.clone()));
            }
            let answer = send(base, route.method, &route.path, &headers, &route.body)?;
            cells += 1;
            let want = expected(route, credential);
            let got = classify(answer.status);
            let cell = format!("{} × {}", route.name, credential.name);
            if got != want {
                failures.push(format!("{cell}: expected {want:?}, got {} {}", answer.status, String::from_utf8_lossy(&answer.body)));
            }
            // Project origins apply to the project's routes (health has no project).
            if route.needs != Level::None && answer.header("access-control-allow-origin") != Some(ALLOWED_ORIGIN) {
                failures.push(format!("{cell}: no CORS for the allowed origin ({})", answer.status));
            }
            if answer.status == 401 && !answer.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")) {
                failures.push(format!("{cell}: 401 without a Bearer challenge"));
            }
            let leaked = |needle: &str| answer.body.windows(needle.len()).any(|w| w == needle.as_bytes());
            // Only a manage caller's config answer may carry the secrets.
            let config_answer = route.path.starts_with("/v1/config/") && answer.status == 200;
            if !config_answer && (leaked(secret) || answer.headers.iter().any(|(_, v)| v.contains(secret))) {
                failures.push(format!("{cell}: the answer contains the signing secret"));
            }
        }
    }

    // A foreign origin gets no CORS headers, even on success.
    let foreign = send(base, "GET", "/health", &[("Origin", s(FOREIGN_ORIGIN))], b"")?;
    if foreign.header("access-control-allow-origin").is_some() {
        failures.push("a foreign origin got CORS headers".to_owned());
    }
    // Preflights need no token and list the methods.
    let preflight = send(base, "OPTIONS", &private, &[("Origin", s(ALLOWED_ORIGIN)), ("Access-Control-Request-Method", s("POST"))], b"")?;
    if !(preflight.status == 204 || preflight.status == 200)
        || preflight.header("access-control-allow-origin") != Some(ALLOWED_ORIGIN)
        || !preflight.header("access-control-allow-methods").is_some_and(|m| m.contains("POST"))
    {
        failures.push(format!("preflight: {} {:?}", preflight.status, preflight.headers));
    }

    // Rotation: a new secret first, the old one still listed → old tokens work;
    // once it is removed → they are refused.
    let new_secret = "the-rotated-in-signing-secret-0123456789";
    let old_token = format!("Bearer {}", token(project, "read", None, secret));
    let rotate = send(base, "PUT", &format!("/v1/config/{project}"), &auth(&manage), &config(&[new_secret, secret]))?;
    if rotate.status != 200 {
        failures.push(format!("rotation PUT: {}", rotate.status));
    }
    let new_token = format!("Bearer {}", token(project, "read", None, new_secret));
    // Hosts whose project store is eventually consistent (KV) may take a moment.
    let settle = |check: &dyn Fn() -> Result<bool, String>| -> Result<bool, String> {
        for _ in 0..40 {
            if check()? {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(false)
    };
    let read_with = |value: &str| send(base, "HEAD", &private, &auth(value), b"").map(|a| a.status);
    if !settle(&|| Ok(read_with(&new_token)? == 200 && read_with(&old_token)? == 200))? {
        failures.push("after rotation both the new and the old secret's tokens must be accepted".to_owned());
    }
    let new_manage = format!("Bearer {}", token(project, "manage", None, new_secret));
    let retire = send(base, "PUT", &format!("/v1/config/{project}"), &auth(&new_manage), &config(&[new_secret]))?;
    if retire.status != 200 {
        failures.push(format!("retiring the old secret: {}", retire.status));
    }
    if !settle(&|| Ok(read_with(&old_token)? == 401 && read_with(&new_token)? == 200))? {
        failures.push("a token of a removed secret must be refused (401)".to_owned());
    }
    // Leave the project as it was.
    let restore = send(base, "PUT", &format!("/v1/config/{project}"), &auth(&new_manage), &config(&[secret]))?;
    if restore.status != 200 {
        failures.push(format!("restoring the secret: {}", restore.status));
    }

    if failures.is_empty() {
        Ok(cells)
    } else {
        Err(format!("{} auth-matrix failures:\n  {}", failures.len(), failures.join("\n  ")))
    }
}
