//! The API reference (Markdown), rendered with askama from the model.

use anyhow::Result;
use askama::Template;
use openapiv3::{ReferenceOr, SchemaKind, Type};

use crate::model::{Location, ParamKind, RequestBody, ResponseBody, SecurityKind};
use crate::{Spec, PREAMBLE};

#[derive(Template)]
#[template(path = "api.md", escape = "none")]
struct ApiDoc {
    preamble: &'static str,
    title: String,
    version: String,
    description: String,
    tags: Vec<TagDoc>,
    headers: Vec<HeaderDoc>,
    always: String,
    cors_allow: String,
    cors_expose: String,
    schemas: Vec<SchemaDoc>,
}

struct TagDoc {
    name: String,
    anchor: String,
    trait_name: String,
    description: String,
    operations: Vec<OpDoc>,
}

struct OpDoc {
    id: String,
    method: String,
    path: String,
    summary: String,
    description: String,
    deprecated: bool,
    security: String,
    params: Vec<ParamDoc>,
    headers: Vec<HeaderRefDoc>,
    body: String,
    responses: Vec<ResponseDoc>,
}

struct ParamDoc {
    name: String,
    location: &'static str,
    required: &'static str,
    grammar: String,
    description: String,
}

struct HeaderRefDoc {
    name: String,
    grammar: String,
    description: String,
}

struct ResponseDoc {
    status: u16,
    description: String,
    headers: String,
    body: String,
}

struct HeaderDoc {
    name: String,
    direction: &'static str,
    codec: String,
    grammar: String,
    cors: String,
    description: String,
}

struct SchemaDoc {
    name: String,
    description: String,
    fields: Vec<FieldDoc>,
}

struct FieldDoc {
    name: String,
    ty: String,
    required: &'static str,
    description: String,
}

/// Makes text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ").trim().to_owned()
}

fn code(text: &str) -> String {
    format!("`{}`", cell(text))
}

fn schema_type(schema: &ReferenceOr<Box<openapiv3::Schema>>) -> String {
    match schema {
        ReferenceOr::Reference { reference } => {
            format!("[`{0}`](#{1})", reference.rsplit('/').next().unwrap_or_default(), reference.rsplit('/').next().unwrap_or_default().to_lowercase())
        }
        ReferenceOr::Item(schema) => match &schema.schema_kind {
            SchemaKind::Type(Type::String(s)) if !s.enumeration.is_empty() => s
                .enumeration
                .iter()
                .flatten()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(" \\| "),
            SchemaKind::Type(Type::String(_)) => "string".to_owned(),
            SchemaKind::Type(Type::Integer(_)) => "integer".to_owned(),
            SchemaKind::Type(Type::Number(_)) => "number".to_owned(),
            SchemaKind::Type(Type::Boolean(_)) => "boolean".to_owned(),
            SchemaKind::Type(Type::Array(a)) => match &a.items {
                Some(items) => format!("array of {}", schema_type(items)),
                None => "array".to_owned(),
            },
            SchemaKind::Type(Type::Object(_)) => "object".to_owned(),
            _ => "any".to_owned(),
        },
    }
}

pub fn render(spec: &Spec) -> Result<String> {
    let model = &spec.model;
    let registry = &spec.registry;
    let mut tags = Vec::new();
    for tag in &model.tags {
        let mut operations = Vec::new();
        for op in model.operations.iter().filter(|op| op.tag == tag.name) {
            let params = op
                .params
                .iter()
                .map(|p| ParamDoc {
                    name: p.name.clone(),
                    location: match p.location {
                        Location::Path => "path",
                        Location::Query => "query",
                    },
                    required: if p.required { "yes" } else { "no" },
                    grammar: match &p.kind {
                        ParamKind::StreamPath => "stream path (`{project}/{name...}`)".to_owned(),
                        ParamKind::Bool => "`true` \\| `false`".to_owned(),
                        ParamKind::Enum { values, .. } => {
                            values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(" \\| ")
                        }
                        ParamKind::Str { pattern: Some(pattern), .. } => code(pattern),
                        ParamKind::Str { pattern: None, .. } => "string".to_owned(),
                    } + if p.strict { " (at most once, not empty)" } else { "" },
                    description: cell(&p.description),
                })
                .collect();
            let headers = op
                .headers
                .iter()
                .filter_map(|name| registry.get(name).ok())
                .map(|h| HeaderRefDoc { name: h.name.clone(), grammar: code(&h.pattern), description: cell(&h.description) })
                .collect();
            let body = match &op.body {
                RequestBody::None => "none".to_owned(),
                RequestBody::Bytes { description } => format!("bytes of any content type. {}", cell(description)),
                RequestBody::Json { schema, required } => format!(
                    "JSON [`{schema}`](#{}){}",
                    schema.to_lowercase(),
                    if *required { "" } else { " (optional)" }
                ),
            };
            let responses = op
                .responses
                .iter()
                .map(|r| ResponseDoc {
                    status: r.status,
                    description: cell(&r.description),
                    headers: r.headers.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", "),
                    body: match &r.body {
                        ResponseBody::None => String::new(),
                        ResponseBody::Json { schema, media_type } => {
                            format!("`{media_type}` [`{schema}`](#{})", schema.to_lowercase())
                        }
                        ResponseBody::Bytes { media_types } => {
                            media_types.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
                        }
                    },
                })
                .collect();
            operations.push(OpDoc {
                id: op.id.clone(),
                method: op.method.clone(),
                path: op.path.clone(),
                summary: op.summary.clone(),
                description: op.description.trim().to_owned(),
                deprecated: op.deprecated,
                security: match op.security {
                    SecurityKind::None => "none".to_owned(),
                    SecurityKind::CallbackToken => "bearer callback or claim token".to_owned(),
                    SecurityKind::Bearer => format!(
                        "bearer JWT with scope `{}` or higher",
                        op.scopes.first().map(String::as_str).unwrap_or("read")
                    ),
                },
                params,
                headers,
                body,
                responses,
            });
        }
        tags.push(TagDoc {
            anchor: tag.name.to_lowercase(),
            name: tag.name.clone(),
            trait_name: tag.trait_name.clone(),
            description: tag.description.clone(),
            operations,
        });
    }
    let headers = registry
        .headers
        .iter()
        .map(|h| HeaderDoc {
            name: h.name.clone(),
            direction: h.direction.as_str(),
            codec: h.codec.clone(),
            grammar: code(&h.pattern),
            cors: [h.allows().then_some("allow"), h.exposes().then_some("expose")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", "),
            description: cell(&h.description),
        })
        .collect();
    let always = registry
        .headers
        .iter()
        .filter_map(|h| h.always.as_ref().map(|v| format!("`{}: {}`", h.name, v)))
        .collect::<Vec<_>>()
        .join(" and ");
    let mut schemas = Vec::new();
    if let Some(components) = &spec.openapi.components {
        for (name, schema) in &components.schemas {
            let ReferenceOr::Item(schema) = schema else { continue };
            let mut fields = Vec::new();
            let description = schema.schema_data.description.clone().unwrap_or_default();
            let description = match &schema.schema_kind {
                SchemaKind::Type(Type::Object(object)) => {
                    for (field, field_schema) in &object.properties {
                        let field_description = match field_schema {
                            ReferenceOr::Item(s) => s.schema_data.description.clone().unwrap_or_default(),
                            ReferenceOr::Reference { .. } => String::new(),
                        };
                        fields.push(FieldDoc {
                            name: field.clone(),
                            ty: schema_type(field_schema),
                            required: if object.required.contains(field) { "yes" } else { "no" },
                            description: cell(&field_description),
                        });
                    }
                    description
                }
                _ => format!("{description} Type: {}.", schema_type(&ReferenceOr::Item(Box::new(schema.clone())))),
            };
            schemas.push(SchemaDoc { name: name.clone(), description, fields });
        }
    }
    let doc = ApiDoc {
        preamble: PREAMBLE,
        title: model.title.clone(),
        version: model.version.clone(),
        description: model.description.trim().to_owned(),
        tags,
        headers,
        always,
        cors_allow: registry.headers.iter().filter(|h| h.allows()).map(|h| h.lower()).collect::<Vec<_>>().join(", "),
        cors_expose: registry.headers.iter().filter(|h| h.exposes()).map(|h| h.lower()).collect::<Vec<_>>().join(", "),
        schemas,
    };
    let mut text = doc.render()?;
    // Collapse runs of blank lines left by template control flow.
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    Ok(text)
}
