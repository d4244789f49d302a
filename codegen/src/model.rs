//! The API model the generators share: operations with their parameters,
//! headers, bodies and responses, resolved from `spec/openapi.yaml` and the
//! headers registry.

use anyhow::{bail, Context, Result};
use heck::{ToPascalCase, ToSnakeCase};
use openapiv3::{OpenAPI, Parameter, ParameterSchemaOrContent, ReferenceOr, Response, SchemaKind, Type};

use crate::registry::{codec_for_pattern, Registry};

#[derive(Debug)]
pub struct Model {
    pub title: String,
    pub version: String,
    pub description: String,
    pub tags: Vec<Tag>,
    pub operations: Vec<Operation>,
}

#[derive(Debug)]
pub struct Tag {
    pub name: String,
    pub description: String,
    /// `StreamsApi`.
    pub trait_name: String,
}

#[derive(Debug)]
pub struct Operation {
    /// `createStream`.
    pub id: String,
    pub method: String,
    /// `/v1/stream/{stream}`.
    pub path: String,
    pub segments: Vec<Segment>,
    pub tag: String,
    pub summary: String,
    pub description: String,
    pub deprecated: bool,
    /// Minimum scopes, empty when no credentials are needed.
    pub scopes: Vec<String>,
    pub security: SecurityKind,
    pub params: Vec<Param>,
    /// Request headers, by registry name.
    pub headers: Vec<String>,
    pub body: RequestBody,
    pub responses: Vec<Resp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityKind {
    None,
    Bearer,
    CallbackToken,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param(String),
    Rest(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
}

#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub location: Location,
    pub required: bool,
    pub strict: bool,
    pub description: String,
    pub kind: ParamKind,
}

#[derive(Clone, Debug)]
pub enum ParamKind {
    /// A stream path (`x-ds-rest`, named `stream` under `/v1/stream/`).
    StreamPath,
    /// Any other string; `codec` enforces its pattern when it has one.
    Str { codec: Option<String>, pattern: Option<String> },
    Bool,
    /// A string enum (`LiveMode`).
    Enum { type_name: String, values: Vec<String> },
}

#[derive(Clone, Debug)]
pub enum RequestBody {
    None,
    /// Raw bytes of any content type.
    Bytes { description: String },
    /// A JSON document of a schema.
    Json { schema: String, required: bool },
}

#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub description: String,
    /// Response headers, by registry name.
    pub headers: Vec<String>,
    pub body: ResponseBody,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseBody {
    None,
    /// A JSON body of a schema, with its media type (`Problem` is one of them).
    Json { schema: String, media_type: String },
    /// Raw bytes (stream data or SSE); the content type is a header field.
    Bytes { media_types: Vec<String> },
}

impl Operation {
    /// `create_stream`.
    pub fn fn_name(&self) -> String {
        self.id.to_snake_case()
    }

    /// `CreateStream`.
    pub fn type_name(&self) -> String {
        self.id.to_pascal_case()
    }

    pub fn request_type(&self) -> String {
        format!("{}Request", self.type_name())
    }

    pub fn response_type(&self) -> String {
        format!("{}Response", self.type_name())
    }

    pub fn has_stream_path(&self) -> bool {
        self.params.iter().any(|p| matches!(p.kind, ParamKind::StreamPath))
    }
}

impl Resp {
    /// The response enum's variant for this status.
    pub fn variant(&self) -> String {
        status_variant(self.status).to_owned()
    }

    pub fn is_problem(&self) -> bool {
        matches!(&self.body, ResponseBody::Json { schema, .. } if schema == "Problem")
    }
}

pub fn status_variant(status: u16) -> &'static str {
    match status {
        200 => "Ok",
        201 => "Created",
        202 => "Accepted",
        204 => "NoContent",
        304 => "NotModified",
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "PayloadTooLarge",
        429 => "TooManyRequests",
        501 => "NotImplemented",
        503 => "ServiceUnavailable",
        _ => "Other",
    }
}

fn ref_name(reference: &str) -> Result<String> {
    reference
        .rsplit('/')
        .next()
        .map(str::to_owned)
        .with_context(|| format!("bad $ref {reference}"))
}

fn string_list(value: Option<&serde_json::Value>, what: &str) -> Result<Vec<String>> {
    match value {
        None => Ok(Vec::new()),
        Some(value) => serde_json::from_value(value.clone()).with_context(|| format!("{what} must be a list of strings")),
    }
}

impl Model {
    pub fn build(spec: &OpenAPI, registry: &Registry) -> Result<Model> {
        let tags = spec
            .tags
            .iter()
            .map(|tag| Tag {
                trait_name: format!("{}Api", tag.name.to_pascal_case()),
                name: tag.name.clone(),
                description: tag.description.clone().unwrap_or_default(),
            })
            .collect::<Vec<_>>();
        let mut operations = Vec::new();
        for (path, item) in &spec.paths.paths {
            let ReferenceOr::Item(item) = item else {
                bail!("path {path}: $ref path items are not supported");
            };
            let by_method = [
                ("GET", &item.get),
                ("HEAD", &item.head),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
            ];
            for (method, operation) in by_method {
                let Some(operation) = operation else { continue };
                let op = build_operation(spec, registry, path, method, &item.parameters, operation)
                    .with_context(|| format!("{method} {path}"))?;
                if !tags.iter().any(|t| t.name == op.tag) {
                    bail!("{method} {path}: tag {} is not declared", op.tag);
                }
                operations.push(op);
            }
            if item.options.is_some() || item.patch.is_some() || item.trace.is_some() {
                bail!("path {path}: only GET, HEAD, PUT, POST and DELETE are routed");
            }
        }
        Ok(Model {
            title: spec.info.title.clone(),
            version: spec.info.version.clone(),
            description: spec.info.description.clone().unwrap_or_default(),
            tags,
            operations,
        })
    }
}

fn resolve_parameter<'a>(spec: &'a OpenAPI, parameter: &'a ReferenceOr<Parameter>) -> Result<&'a Parameter> {
    match parameter {
        ReferenceOr::Item(item) => Ok(item),
        ReferenceOr::Reference { reference } => {
            let name = ref_name(reference)?;
            match spec.components.as_ref().and_then(|c| c.parameters.get(&name)) {
                Some(ReferenceOr::Item(item)) => Ok(item),
                _ => bail!("unresolved parameter {reference}"),
            }
        }
    }
}

fn build_param(spec: &OpenAPI, path: &str, parameter: &Parameter) -> Result<Param> {
    let (data, location) = match parameter {
        Parameter::Path { parameter_data, .. } => (parameter_data, Location::Path),
        Parameter::Query { parameter_data, .. } => (parameter_data, Location::Query),
        _ => bail!("parameter {}: headers belong in x-ds-request-headers", parameter.parameter_data_ref().name),
    };
    let rest = data.extensions.get("x-ds-rest").and_then(|v| v.as_bool()).unwrap_or(false);
    let strict = data.extensions.get("x-ds-strict").and_then(|v| v.as_bool()).unwrap_or(false);
    let ParameterSchemaOrContent::Schema(schema) = &data.format else {
        bail!("parameter {}: needs a schema", data.name);
    };
    let schema = match schema {
        ReferenceOr::Item(schema) => schema,
        ReferenceOr::Reference { reference } => {
            let name = ref_name(reference)?;
            match spec.components.as_ref().and_then(|c| c.schemas.get(&name)) {
                Some(ReferenceOr::Item(schema)) => schema,
                _ => bail!("unresolved schema {reference}"),
            }
        }
    };
    let kind = if rest && data.name == "stream" && path.starts_with("/v1/stream/") {
        ParamKind::StreamPath
    } else {
        match &schema.schema_kind {
            SchemaKind::Type(Type::Boolean(_)) => ParamKind::Bool,
            SchemaKind::Type(Type::String(string)) if !string.enumeration.is_empty() => ParamKind::Enum {
                type_name: format!("{}Mode", data.name.to_pascal_case()),
                values: string.enumeration.iter().flatten().cloned().collect(),
            },
            SchemaKind::Type(Type::String(string)) => {
                let codec = match &string.pattern {
                    Some(pattern) => Some(
                        codec_for_pattern(pattern)
                            .with_context(|| format!("parameter {}: no codec enforces pattern {pattern:?}", data.name))?
                            .to_owned(),
                    ),
                    None => None,
                };
                ParamKind::Str { codec, pattern: string.pattern.clone() }
            }
            _ => bail!("parameter {}: only string, enum and boolean parameters are supported", data.name),
        }
    };
    if data.description.as_deref().unwrap_or("").trim().is_empty() {
        bail!("parameter {}: needs a description", data.name);
    }
    Ok(Param {
        name: data.name.clone(),
        location,
        required: data.required,
        strict,
        description: data.description.clone().unwrap_or_default(),
        kind,
    })
}

fn build_operation(
    spec: &OpenAPI,
    registry: &Registry,
    path: &str,
    method: &str,
    path_params: &[ReferenceOr<Parameter>],
    operation: &openapiv3::Operation,
) -> Result<Operation> {
    let id = operation.operation_id.clone().context("missing operationId")?;
    let tag = match operation.tags.as_slice() {
        [tag] => tag.clone(),
        _ => bail!("{id}: needs exactly one tag"),
    };
    let mut params = Vec::new();
    for parameter in path_params.iter().chain(&operation.parameters) {
        let parameter = resolve_parameter(spec, parameter)?;
        params.push(build_param(spec, path, parameter).with_context(|| id.clone())?);
    }
    let mut segments = Vec::new();
    let mut raw_segments = path.trim_start_matches('/').split('/').peekable();
    while let Some(segment) = raw_segments.next() {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let param = params
                .iter()
                .find(|p| p.name == name && p.location == Location::Path)
                .with_context(|| format!("{id}: path parameter {name} is not declared"))?;
            let rest = matches!(param.kind, ParamKind::StreamPath)
                || (path_params.iter().chain(&operation.parameters).any(|p| {
                    resolve_parameter(spec, p).is_ok_and(|p| {
                        let d = p.parameter_data_ref();
                        d.name == name && d.extensions.get("x-ds-rest").and_then(|v| v.as_bool()) == Some(true)
                    })
                }));
            if rest {
                if raw_segments.peek().is_some() {
                    bail!("{id}: a rest parameter must be the last segment");
                }
                segments.push(Segment::Rest(name.to_owned()));
            } else {
                segments.push(Segment::Param(name.to_owned()));
            }
        } else {
            segments.push(Segment::Literal(segment.to_owned()));
        }
    }
    let headers = string_list(operation.extensions.get("x-ds-request-headers"), "x-ds-request-headers")?;
    for name in &headers {
        let header = registry.get(name)?;
        if !header.direction.is_request() {
            bail!("{id}: {name} is not a request header");
        }
        if header.name != *name {
            bail!("{id}: write {name} as {}", header.name);
        }
    }
    let body = match &operation.request_body {
        None => RequestBody::None,
        Some(body) => {
            let body = match body {
                ReferenceOr::Item(body) => body,
                ReferenceOr::Reference { reference } => {
                    let name = ref_name(reference)?;
                    match spec.components.as_ref().and_then(|c| c.request_bodies.get(&name)) {
                        Some(ReferenceOr::Item(body)) => body,
                        _ => bail!("unresolved request body {reference}"),
                    }
                }
            };
            if let Some(media) = body.content.get("application/json") {
                match &media.schema {
                    Some(ReferenceOr::Reference { reference }) => {
                        RequestBody::Json { schema: ref_name(reference)?, required: body.required }
                    }
                    _ => bail!("{id}: JSON request bodies must $ref a schema"),
                }
            } else if body.content.contains_key("*/*") {
                RequestBody::Bytes { description: body.description.clone().unwrap_or_default() }
            } else {
                bail!("{id}: request bodies are application/json or */*");
            }
        }
    };
    let mut responses = Vec::new();
    for (status, response) in &operation.responses.responses {
        let openapiv3::StatusCode::Code(status) = status else {
            bail!("{id}: status ranges are not supported");
        };
        let response = resolve_response(spec, response)?;
        if response.description.trim().is_empty() {
            bail!("{id} {status}: needs a description");
        }
        let headers = string_list(response.extensions.get("x-ds-headers"), "x-ds-headers")?;
        for name in &headers {
            let header = registry.get(name)?;
            if !header.direction.is_response() {
                bail!("{id} {status}: {name} is not a response header");
            }
            if header.name != *name {
                bail!("{id} {status}: write {name} as {}", header.name);
            }
        }
        if !response.headers.is_empty() {
            bail!("{id} {status}: name response headers in x-ds-headers, not `headers`");
        }
        let body = if response.content.is_empty() {
            ResponseBody::None
        } else if response.content.contains_key("*/*") {
            ResponseBody::Bytes { media_types: response.content.keys().cloned().collect() }
        } else {
            let (media_type, media) = match response.content.iter().next() {
                Some(entry) if response.content.len() == 1 => entry,
                _ => bail!("{id} {status}: one JSON media type per response"),
            };
            match &media.schema {
                Some(ReferenceOr::Reference { reference }) => {
                    ResponseBody::Json { schema: ref_name(reference)?, media_type: media_type.clone() }
                }
                _ => bail!("{id} {status}: JSON response bodies must $ref a schema"),
            }
        };
        if status_variant(*status) == "Other" {
            bail!("{id}: status {status} has no variant name");
        }
        responses.push(Resp { status: *status, description: response.description.clone(), headers, body });
    }
    let (security, scopes) = match operation.security.as_ref().or(spec.security.as_ref()) {
        None => (SecurityKind::None, Vec::new()),
        Some(requirements) if requirements.is_empty() => (SecurityKind::None, Vec::new()),
        Some(requirements) => {
            let requirement = &requirements[0];
            match requirement.iter().next() {
                Some((scheme, scopes)) if scheme == "bearerJwt" => (SecurityKind::Bearer, scopes.clone()),
                Some((scheme, _)) if scheme == "callbackToken" => (SecurityKind::CallbackToken, Vec::new()),
                Some((scheme, _)) => bail!("{id}: unknown security scheme {scheme}"),
                None => (SecurityKind::None, Vec::new()),
            }
        }
    };
    Ok(Operation {
        id,
        method: method.to_owned(),
        path: path.to_owned(),
        segments,
        tag,
        summary: operation.summary.clone().unwrap_or_default(),
        description: operation.description.clone().unwrap_or_default(),
        deprecated: operation.deprecated,
        scopes,
        security,
        params,
        headers,
        body,
        responses,
    })
}

fn resolve_response<'a>(spec: &'a OpenAPI, response: &'a ReferenceOr<Response>) -> Result<&'a Response> {
    match response {
        ReferenceOr::Item(item) => Ok(item),
        ReferenceOr::Reference { reference } => {
            let name = ref_name(reference)?;
            match spec.components.as_ref().and_then(|c| c.responses.get(&name)) {
                Some(ReferenceOr::Item(item)) => Ok(item),
                _ => bail!("unresolved response {reference}"),
            }
        }
    }
}
