//! What every handler receives besides its typed request: who is calling,
//! for which project, when, and how to name the request in logs. Hosts fill
//! it before routing; the router adds the project of the matched route.

/// The access level a credential grants; each level includes the ones below.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// GET and HEAD.
    Read,
    /// PUT and POST, plus everything `Read` allows.
    Write,
    /// DELETE and configuration, plus everything `Write` allows.
    Manage,
}

impl Scope {
    /// Parses a scope claim (`read`, `write`, `manage`).
    pub fn parse(value: &str) -> Option<Scope> {
        match value {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "manage" => Some(Scope::Manage),
            _ => None,
        }
    }

    /// The claim's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Manage => "manage",
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's subject (a project id for project tokens).
    pub subject: String,
    /// The granted scope.
    pub scope: Scope,
    /// When set, the token is limited to this one stream.
    pub stream_id: Option<String>,
}

/// Per-request context handed to every handler.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// Correlates the request with logs (`X-Request-Id`).
    pub request_id: String,
    /// When the request arrived, in Unix milliseconds (the host's clock).
    pub now_ms: u64,
    /// The scheme and authority clients used to reach the server, e.g.
    /// `http://127.0.0.1:4437`; absolute URLs (`Location`) are built from it.
    pub base_url: String,
    /// The authenticated caller, if any.
    pub principal: Option<Principal>,
    /// The project the matched route addresses (set by the router).
    pub project: Option<String>,
    /// Whether the caller asked for `Server-Timing` (`X-Debug-Timing`).
    pub debug_timing: bool,
    /// Browser origins the addressed project allows (set by the gate), on
    /// top of the host-wide list.
    pub cors_origins: Vec<String>,
    /// The caller sent no credentials to a project that requires them; the
    /// gate admitted the request only as a read of a public stream, which the
    /// stream handler confirms (`401` otherwise).
    pub anonymous: bool,
    /// The project's default for the public flag of new streams.
    pub public_default: bool,
}

impl RequestContext {
    /// A context with no principal and no project.
    pub fn new(request_id: impl Into<String>, now_ms: u64, base_url: impl Into<String>) -> Self {
        RequestContext {
            request_id: request_id.into(),
            now_ms,
            base_url: base_url.into(),
            principal: None,
            project: None,
            debug_timing: false,
            cors_origins: Vec::new(),
            anonymous: false,
            public_default: false,
        }
    }
}

/// `Send + Sync` on native hosts, nothing on single-threaded wasm hosts: the
/// bound every handler trait carries so one trait serves both.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}

/// `Send + Sync` on native hosts, nothing on single-threaded wasm hosts: the
/// bound every handler trait carries so one trait serves both.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSendSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSendSync for T {}
