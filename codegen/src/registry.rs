//! The protocol headers registry (`spec/headers.yaml`).

use anyhow::{bail, Context, Result};
use heck::ToShoutySnakeCase;
use serde::Deserialize;

/// Every header the APIs use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub headers: Vec<Header>,
}

/// Which way a header travels.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Request,
    Response,
    Both,
}

impl Direction {
    pub fn is_request(self) -> bool {
        matches!(self, Direction::Request | Direction::Both)
    }

    pub fn is_response(self) -> bool {
        matches!(self, Direction::Response | Direction::Both)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
            Direction::Both => "both",
        }
    }
}

/// CORS exposure of a header.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Cors {
    Allow,
    Expose,
}

/// One header.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub name: String,
    pub direction: Direction,
    pub codec: String,
    pub pattern: String,
    #[serde(default)]
    pub cors: Vec<Cors>,
    pub always: Option<String>,
    pub description: String,
}

// `CODECS`: the codecs the generated runtime implements, with the grammar each enforces.
include!("../runtime/codec_table.rs");

/// The codec enforcing `pattern`, if any.
pub fn codec_for_pattern(pattern: &str) -> Option<&'static str> {
    CODECS.iter().find(|(_, p)| *p == pattern).map(|(name, _)| *name)
}

/// The Rust type a codec decodes to.
pub fn codec_type(codec: &str) -> &'static str {
    match codec {
        "flag" => "bool",
        "decimal" | "decimal53" => "u64",
        _ => "String",
    }
}

impl Header {
    /// `stream_next_offset`, `etag`: the wire name in snake case.
    pub fn field(&self) -> String {
        self.name.to_ascii_lowercase().replace('-', "_")
    }

    /// `STREAM_NEXT_OFFSET`.
    pub fn constant(&self) -> String {
        self.name.to_shouty_snake_case()
    }

    /// The lowercase wire name (`http::HeaderName::from_static` needs it).
    pub fn lower(&self) -> String {
        self.name.to_ascii_lowercase()
    }

    pub fn rust_type(&self) -> &'static str {
        codec_type(&self.codec)
    }

    pub fn is_flag(&self) -> bool {
        self.codec == "flag"
    }

    pub fn allows(&self) -> bool {
        self.cors.contains(&Cors::Allow)
    }

    pub fn exposes(&self) -> bool {
        self.cors.contains(&Cors::Expose)
    }
}

impl Registry {
    pub fn load(text: &str) -> Result<Registry> {
        let registry: Registry = serde_yaml_ng::from_str(text).context("parsing spec/headers.yaml")?;
        registry.validate()?;
        Ok(registry)
    }

    fn validate(&self) -> Result<()> {
        let mut seen = std::collections::BTreeSet::new();
        for header in &self.headers {
            if !seen.insert(header.lower()) {
                bail!("headers.yaml lists {} twice", header.name);
            }
            let Some((_, pattern)) = CODECS.iter().find(|(name, _)| *name == header.codec) else {
                bail!("header {}: unknown codec `{}`", header.name, header.codec);
            };
            if *pattern != header.pattern {
                bail!(
                    "header {}: pattern {:?} is not the grammar codec `{}` enforces ({:?})",
                    header.name,
                    header.pattern,
                    header.codec,
                    pattern
                );
            }
            if header.allows() && !header.direction.is_request() {
                bail!("header {}: only request headers can be CORS-allowed", header.name);
            }
            if header.exposes() && !header.direction.is_response() {
                bail!("header {}: only response headers can be CORS-exposed", header.name);
            }
            if header.always.is_some() && header.direction != Direction::Response {
                bail!("header {}: `always` only applies to response headers", header.name);
            }
            if header.description.trim().is_empty() {
                bail!("header {}: needs a description", header.name);
            }
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<&Header> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .with_context(|| format!("header {name} is not in spec/headers.yaml"))
    }
}
