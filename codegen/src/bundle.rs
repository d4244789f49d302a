//! The bundled OpenAPI document: `spec/openapi.yaml` with the registry's
//! headers expanded into standard parameters and response headers, so any
//! OpenAPI tool (progenitor, schemathesis, viewers) reads it as is.

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use crate::{Spec, PREAMBLE};

fn header_schema(pattern: &str) -> Value {
    json!({ "type": "string", "pattern": pattern })
}

fn parameter_key(name: &str) -> String {
    format!("Header-{name}")
}

fn expand_response(response: &mut Value) -> Result<()> {
    let Some(object) = response.as_object_mut() else { return Ok(()) };
    let Some(names) = object.remove("x-ds-headers") else { return Ok(()) };
    let names: Vec<String> = serde_json::from_value(names)?;
    let mut headers = Map::new();
    for name in names {
        headers.insert(name.clone(), json!({ "$ref": format!("#/components/headers/{name}") }));
    }
    object.insert("headers".to_owned(), Value::Object(headers));
    Ok(())
}

/// The bundled document as JSON.
pub fn bundled(spec: &Spec) -> Result<Value> {
    let mut doc = spec.raw.clone();
    let components = doc
        .get_mut("components")
        .and_then(Value::as_object_mut)
        .context("spec has no components")?;
    let mut headers = Map::new();
    let mut parameters = Map::new();
    for header in &spec.registry.headers {
        if header.direction.is_response() {
            headers.insert(
                header.name.clone(),
                json!({ "description": header.description, "schema": header_schema(&header.pattern) }),
            );
        }
        if header.direction.is_request() {
            parameters.insert(
                parameter_key(&header.name),
                json!({
                    "name": header.name,
                    "in": "header",
                    "required": false,
                    "description": header.description,
                    "schema": header_schema(&header.pattern),
                }),
            );
        }
    }
    components.insert("headers".to_owned(), Value::Object(headers));
    let existing = components.entry("parameters").or_insert_with(|| json!({}));
    if let Some(existing) = existing.as_object_mut() {
        existing.extend(parameters);
    }
    if let Some(responses) = components.get_mut("responses").and_then(Value::as_object_mut) {
        for response in responses.values_mut() {
            expand_response(response)?;
        }
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for (method, operation) in item.iter_mut() {
                if !["get", "head", "put", "post", "delete"].contains(&method.as_str()) {
                    continue;
                }
                let Some(operation) = operation.as_object_mut() else { continue };
                if let Some(names) = operation.remove("x-ds-request-headers") {
                    let names: Vec<String> = serde_json::from_value(names)?;
                    let list = operation.entry("parameters").or_insert_with(|| json!([]));
                    if let Some(list) = list.as_array_mut() {
                        for name in names {
                            list.push(json!({ "$ref": format!("#/components/parameters/{}", parameter_key(&name)) }));
                        }
                    }
                }
                if let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) {
                    for response in responses.values_mut() {
                        expand_response(response)?;
                    }
                }
            }
        }
    }
    Ok(doc)
}

/// The bundled document as YAML, with the preamble.
pub fn bundle_yaml(spec: &Spec) -> Result<String> {
    let doc = bundled(spec)?;
    let yaml = serde_yaml_ng::to_string(&doc)?;
    Ok(format!("# {PREAMBLE}\n# Source: spec/openapi.yaml + spec/headers.yaml.\n{yaml}"))
}
