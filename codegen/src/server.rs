//! Emits the server-side API crate: schema types (typify), the headers
//! registry and its codecs, per-operation requests and responses, handler
//! traits and the router.

use anyhow::{Context, Result};
use heck::{ToPascalCase, ToSnakeCase};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::model::{Location, Model, Operation, ParamKind, RequestBody, Resp, ResponseBody, SecurityKind};
use crate::registry::Registry;

fn ident(name: &str) -> proc_macro2::Ident {
    let snake = name.to_snake_case();
    match snake.as_str() {
        "type" | "use" | "match" | "ref" | "self" | "crate" | "mod" | "fn" | "struct" | "enum" => {
            format_ident!("{}_", snake)
        }
        _ => format_ident!("{}", snake),
    }
}

/// Rust types for every schema in `components.schemas`, via typify.
pub fn types(spec: &openapiv3::OpenAPI) -> Result<TokenStream> {
    let mut settings = typify::TypeSpaceSettings::default();
    settings.with_derive("PartialEq".to_owned());
    let mut space = typify::TypeSpace::new(&settings);
    let schemas = spec.components.as_ref().map(|c| &c.schemas).context("no components.schemas")?;
    let mut converted = Vec::new();
    for (name, schema) in schemas {
        let json = serde_json::to_value(schema)?;
        let json = rewrite_refs(json);
        let schema: schemars::schema::Schema =
            serde_json::from_value(json).with_context(|| format!("schema {name} is not JSON Schema"))?;
        converted.push((name.clone(), schema));
    }
    space.add_ref_types(converted).context("typify")?;
    Ok(space.to_stream())
}

/// OpenAPI `#/components/schemas/X` references → JSON Schema `#/definitions/X`.
fn rewrite_refs(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    if key == "$ref" {
                        if let serde_json::Value::String(reference) = &value {
                            let name = reference.rsplit('/').next().unwrap_or_default();
                            return (key, serde_json::Value::String(format!("#/definitions/{name}")));
                        }
                    }
                    (key, rewrite_refs(value))
                })
                .collect(),
        ),
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(rewrite_refs).collect()),
        other => other,
    }
}

/// The headers registry as Rust: name constants, the registry table, CORS lists.
pub fn headers(registry: &Registry) -> TokenStream {
    let constants = registry.headers.iter().map(|h| {
        let constant = format_ident!("{}", h.constant());
        let lower = h.lower();
        let doc = format!("`{}`: {}", h.name, h.description);
        quote! {
            #[doc = #doc]
            pub const #constant: &str = #lower;
        }
    });
    let entries = registry.headers.iter().map(|h| {
        let name = &h.name;
        let direction = h.direction.as_str();
        let codec = &h.codec;
        let pattern = &h.pattern;
        let description = &h.description;
        let allow = h.allows();
        let expose = h.exposes();
        let always = match &h.always {
            Some(value) => quote!(Some(#value)),
            None => quote!(None),
        };
        quote! {
            HeaderSpec {
                name: #name,
                direction: #direction,
                codec: #codec,
                pattern: #pattern,
                cors_allow: #allow,
                cors_expose: #expose,
                always: #always,
                description: #description,
            }
        }
    });
    let allow_list = registry
        .headers
        .iter()
        .filter(|h| h.allows())
        .map(|h| h.lower())
        .collect::<Vec<_>>()
        .join(", ");
    let expose_list = registry
        .headers
        .iter()
        .filter(|h| h.exposes())
        .map(|h| h.lower())
        .collect::<Vec<_>>()
        .join(", ");
    let always = registry.headers.iter().filter_map(|h| {
        let value = h.always.as_ref()?;
        let constant = format_ident!("{}", h.constant());
        Some(quote! {
            headers.insert(http::HeaderName::from_static(names::#constant), http::HeaderValue::from_static(#value));
        })
    });
    quote! {
        //! The protocol headers registry (`spec/headers.yaml`): wire names,
        //! grammars, CORS lists and the headers every response carries.

        /// Lowercase wire names of every registered header.
        pub mod names {
            #(#constants)*
        }

        /// One registered header.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct HeaderSpec {
            /// Wire name.
            pub name: &'static str,
            /// `request`, `response` or `both`.
            pub direction: &'static str,
            /// The codec that parses and formats it (`crate::codec`).
            pub codec: &'static str,
            /// The grammar the codec enforces.
            pub pattern: &'static str,
            /// Browsers may send it.
            pub cors_allow: bool,
            /// Browsers may read it.
            pub cors_expose: bool,
            /// A value sent on every response.
            pub always: Option<&'static str>,
            /// Meaning.
            pub description: &'static str,
        }

        /// Every registered header.
        pub const REGISTRY: &[HeaderSpec] = &[#(#entries),*];

        /// `Access-Control-Allow-Headers`: every request header browsers may send.
        pub const CORS_ALLOW_HEADERS: &str = #allow_list;

        /// `Access-Control-Expose-Headers`: every response header browsers may read.
        pub const CORS_EXPOSE_HEADERS: &str = #expose_list;

        /// Adds the headers every response carries, errors included.
        pub fn apply_always(headers: &mut http::HeaderMap) {
            #(#always)*
        }
    }
}

/// The Rust type of a header field in a request or response struct.
fn header_field_type(registry: &Registry, name: &str) -> Result<TokenStream> {
    let header = registry.get(name)?;
    Ok(match header.rust_type() {
        "bool" => quote!(bool),
        "u64" => quote!(Option<u64>),
        _ => quote!(Option<String>),
    })
}

fn codec_fn(codec: &str) -> TokenStream {
    let f = format_ident!("{}", codec.replace('-', "_"));
    quote!(crate::codec::#f)
}

fn enum_types(model: &Model) -> TokenStream {
    let mut seen = std::collections::BTreeMap::new();
    for op in &model.operations {
        for param in &op.params {
            if let ParamKind::Enum { type_name, values } = &param.kind {
                seen.insert(type_name.clone(), (values.clone(), param.description.clone()));
            }
        }
    }
    let items = seen.iter().map(|(name, (values, description))| {
        let ty = format_ident!("{}", name);
        let variants = values.iter().map(|v| format_ident!("{}", v.to_pascal_case())).collect::<Vec<_>>();
        let docs = values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>();
        let message = format!("must be one of {}", values.join(", "));
        quote! {
            #[doc = #description]
            #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
            pub enum #ty {
                #(#[doc = #docs] #variants,)*
            }

            impl #ty {
                /// Parses the wire value.
                pub fn parse(value: &str) -> Result<Self, crate::codec::Invalid> {
                    match value {
                        #(#values => Ok(Self::#variants),)*
                        _ => Err(#message),
                    }
                }

                /// The wire value.
                pub fn as_str(self) -> &'static str {
                    match self {
                        #(Self::#variants => #values,)*
                    }
                }
            }
        }
    });
    quote!(#(#items)*)
}

fn request(op: &Operation, registry: &Registry) -> Result<TokenStream> {
    let ty = format_ident!("{}", op.request_type());
    let mut fields = Vec::new();
    let mut decoders = Vec::new();
    let mut path_builders = Vec::new();
    let mut query_builders = Vec::new();
    let mut header_builders = Vec::new();
    for param in &op.params {
        let field = ident(&param.name);
        let name = param.name.as_str();
        let doc = &param.description;
        let (field_ty, decode) = match (&param.kind, param.location) {
            (ParamKind::StreamPath, _) => (
                quote!(crate::stream_path::StreamPath),
                quote!(crate::stream_path::StreamPath::parse(params.get(#name).unwrap_or_default())?),
            ),
            (ParamKind::Str { codec, .. }, Location::Path) => {
                let decode = match codec {
                    Some(codec) => {
                        let f = codec_fn(codec);
                        quote!(crate::routing::path_value(params, #name, #f)?)
                    }
                    None => quote!(crate::routing::path_value(params, #name, crate::codec::any)?),
                };
                (quote!(String), decode)
            }
            (kind, Location::Query) => {
                let (inner, f) = match kind {
                    ParamKind::Bool => (quote!(bool), quote!(crate::codec::boolean)),
                    ParamKind::Enum { type_name, .. } => {
                        let t = format_ident!("{}", type_name);
                        (quote!(#t), quote!(#t::parse))
                    }
                    ParamKind::Str { codec: Some(codec), .. } => (quote!(String), codec_fn(codec)),
                    _ => (quote!(String), quote!(crate::codec::any)),
                };
                let raw = if param.strict { quote!(query.strict(#name)?) } else { quote!(query.first(#name)) };
                (quote!(Option<#inner>), quote!(crate::routing::query_value(#raw, #name, #f)?))
            }
            (kind, Location::Path) => anyhow::bail!("{}: unsupported path parameter kind {kind:?}", op.id),
        };
        fields.push(quote!(#[doc = #doc] pub #field: #field_ty,));
        decoders.push(quote!(#field: #decode,));
        match param.location {
            Location::Path => {
                let placeholder = format!("{{{}}}", param.name);
                let value = match &param.kind {
                    ParamKind::StreamPath => quote!(self.#field.to_url_path()),
                    _ => quote!(percent_encoding::utf8_percent_encode(&self.#field, crate::routing::URL_COMPONENT).to_string()),
                };
                path_builders.push(quote!(let path = path.replace(#placeholder, &#value);));
            }
            Location::Query => {
                let value = match &param.kind {
                    ParamKind::Bool => quote!(if *value { "true" } else { "false" }),
                    ParamKind::Enum { .. } => quote!(value.as_str()),
                    _ => quote!(value.as_str()),
                };
                query_builders.push(quote! {
                    if let Some(value) = &self.#field {
                        query.append_pair(#name, #value);
                    }
                });
            }
        }
    }
    for name in &op.headers {
        let header = registry.get(name)?;
        let field = ident(&header.field());
        let field_ty = header_field_type(registry, name)?;
        let lower = header.lower();
        let doc = format!("`{}`: {}", header.name, header.description);
        fields.push(quote!(#[doc = #doc] pub #field: #field_ty,));
        if header.is_flag() {
            decoders.push(quote!(#field: crate::routing::header_flag(headers, #lower),));
            header_builders.push(quote! {
                if self.#field {
                    builder = builder.header(#lower, "true");
                }
            });
        } else {
            let f = codec_fn(&header.codec);
            let wire = &header.name;
            decoders.push(quote!(#field: crate::routing::header_value(headers, #wire, #f)?,));
            let value = if header.rust_type() == "u64" { quote!(value.to_string()) } else { quote!(value.as_str()) };
            header_builders.push(quote! {
                if let Some(value) = &self.#field {
                    builder = builder.header(#lower, #value);
                }
            });
        }
    }
    let (body_field, body_decode, body_encode) = match &op.body {
        RequestBody::None => (quote!(), quote!(let _ = body;), quote!(let body = bytes::Bytes::new();)),
        RequestBody::Bytes { description } => (
            quote!(#[doc = #description] pub body: bytes::Bytes,),
            quote!(),
            quote!(let body = self.body;),
        ),
        RequestBody::Json { schema, required } => {
            let t = format_ident!("{}", schema);
            if *required {
                (
                    quote!(#[doc = "The JSON body."] pub body: crate::types::#t,),
                    quote!(let body = crate::routing::json_body(&body)?;),
                    quote! {
                        let body = bytes::Bytes::from(serde_json::to_vec(&self.body).unwrap_or_default());
                        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
                    },
                )
            } else {
                (
                    quote!(#[doc = "The JSON body, if any."] pub body: Option<crate::types::#t>,),
                    quote!(let body = if body.is_empty() { None } else { Some(crate::routing::json_body(&body)?) };),
                    quote! {
                        let body = match &self.body {
                            Some(body) => {
                                builder = builder.header(http::header::CONTENT_TYPE, "application/json");
                                bytes::Bytes::from(serde_json::to_vec(body).unwrap_or_default())
                            }
                            None => bytes::Bytes::new(),
                        };
                    },
                )
            }
        }
    };
    let body_init = match &op.body {
        RequestBody::None => quote!(),
        _ => quote!(body,),
    };
    let path_template = &op.path;
    let method = format_ident!("{}", op.method);
    let doc = format!("The `{}` request (`{} {}`).", op.id, op.method, op.path);
    let unused_query = if op.params.iter().any(|p| p.location == Location::Query) { quote!() } else { quote!(let _ = query;) };
    let unused_headers = if op.headers.is_empty() { quote!(let _ = headers;) } else { quote!() };
    let unused_params = if op.params.iter().any(|p| p.location == Location::Path) { quote!() } else { quote!(let _ = params;) };
    Ok(quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, PartialEq)]
        pub struct #ty {
            #(#fields)*
            #body_field
        }

        impl #ty {
            /// Decodes the request from its parts, applying the spec's
            /// grammar to every parameter and header.
            pub fn from_parts(
                params: &crate::routing::PathParams,
                query: &crate::routing::Query,
                headers: &http::HeaderMap,
                body: bytes::Bytes,
            ) -> Result<Self, crate::types::Problem> {
                #unused_query
                #unused_headers
                #unused_params
                #body_decode
                Ok(Self {
                    #(#decoders)*
                    #body_init
                })
            }

            /// Encodes the request for a server at `base_url` (client side).
            pub fn into_http(self, base_url: &str) -> Result<http::Request<bytes::Bytes>, http::Error> {
                let path = #path_template.to_owned();
                #(#path_builders)*
                let mut query = form_urlencoded::Serializer::new(String::new());
                #(#query_builders)*
                let query = query.finish();
                let uri = if query.is_empty() {
                    format!("{}{}", base_url.trim_end_matches('/'), path)
                } else {
                    format!("{}{}?{}", base_url.trim_end_matches('/'), path, query)
                };
                let mut builder = http::Request::builder().method(http::Method::#method).uri(uri);
                #(#header_builders)*
                #body_encode
                builder.body(body)
            }
        }
    })
}

struct VariantParts {
    definition: TokenStream,
    payload_struct: Option<TokenStream>,
    encode: TokenStream,
    decode: TokenStream,
}

fn response_variant(op: &Operation, resp: &Resp, registry: &Registry) -> Result<VariantParts> {
    let variant = format_ident!("{}", resp.variant());
    let status = resp.status;
    let doc = format!("`{}`: {}", resp.status, resp.description);
    let struct_name = format_ident!("{}{}", op.type_name(), resp.variant());
    let has_struct = !resp.headers.is_empty() || matches!(resp.body, ResponseBody::Bytes { .. });
    let mut fields = Vec::new();
    let mut header_encoders = Vec::new();
    let mut header_decoders = Vec::new();
    for name in &resp.headers {
        let header = registry.get(name)?;
        let field = ident(&header.field());
        let field_ty = header_field_type(registry, name)?;
        let lower = header.lower();
        let hdoc = format!("`{}`: {}", header.name, header.description);
        fields.push(quote!(#[doc = #hdoc] pub #field: #field_ty,));
        if header.is_flag() {
            header_encoders.push(quote! {
                if payload.#field {
                    headers.insert(http::HeaderName::from_static(#lower), http::HeaderValue::from_static("true"));
                }
            });
            header_decoders.push(quote!(#field: crate::routing::header_flag(response.headers(), #lower),));
        } else if header.rust_type() == "u64" {
            header_encoders.push(quote! {
                if let Some(value) = payload.#field {
                    headers.insert(http::HeaderName::from_static(#lower), http::HeaderValue::from(value));
                }
            });
            let f = codec_fn(&header.codec);
            header_decoders.push(quote!(#field: crate::codec::response_header(response.headers(), #lower, #f)?,));
        } else {
            header_encoders.push(quote! {
                if let Some(value) = &payload.#field {
                    crate::routing::set_header(headers, #lower, value);
                }
            });
            let f = codec_fn(&header.codec);
            header_decoders.push(quote!(#field: crate::codec::response_header(response.headers(), #lower, #f)?,));
        }
    }
    let (body_ty, body_encode, body_decode) = match &resp.body {
        ResponseBody::None => (None, quote!(crate::body::Body::Empty), quote!()),
        ResponseBody::Bytes { .. } => (
            Some(quote!(crate::body::Body)),
            quote!(body),
            quote!(crate::body::Body::Full(response.body().clone())),
        ),
        ResponseBody::Json { schema, media_type } => {
            let t = format_ident!("{}", schema);
            let problem_fix = if schema == "Problem" {
                quote!(body.status = #status;)
            } else {
                quote!()
            };
            (
                Some(quote!(crate::types::#t)),
                quote! {{
                    #problem_fix
                    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(#media_type));
                    crate::body::Body::Full(bytes::Bytes::from(serde_json::to_vec(&body).unwrap_or_default()))
                }},
                quote!(serde_json::from_slice(response.body()).map_err(|e| crate::codec::DecodeError(format!("{} body: {e}", #status)))?),
            )
        }
    };
    let body_field_name = if resp.is_problem() { format_ident!("problem") } else { format_ident!("body") };
    let (definition, payload_struct, encode, decode) = if has_struct {
        let body_field = match &body_ty {
            Some(t) => {
                let bdoc = if resp.is_problem() { "The problem body." } else { "The body." };
                quote!(#[doc = #bdoc] pub #body_field_name: #t,)
            }
            None => quote!(),
        };
        let derive = if matches!(resp.body, ResponseBody::Bytes { .. }) {
            quote!(#[derive(Debug, Default)])
        } else if resp.is_problem() {
            quote!(#[derive(Debug, Clone, Default, PartialEq)])
        } else if body_ty.is_some() {
            quote!(#[derive(Debug, Clone, PartialEq)])
        } else {
            quote!(#[derive(Debug, Clone, Default, PartialEq)])
        };
        let sdoc = format!("Headers and body of the `{}` answer to `{}`.", resp.status, op.id);
        let payload_struct = quote! {
            #[doc = #sdoc]
            #derive
            pub struct #struct_name {
                #(#fields)*
                #body_field
            }
        };
        let take_body = if body_ty.is_some() {
            if resp.is_problem() || matches!(resp.body, ResponseBody::Json { .. }) {
                quote!(let mut body = payload.#body_field_name;)
            } else {
                quote!(let body = std::mem::take(&mut payload.#body_field_name);)
            }
        } else {
            quote!()
        };
        let body_decode_field = if body_ty.is_some() { quote!(#body_field_name: #body_decode,) } else { quote!() };
        let mutability = if header_encoders.is_empty() && body_ty.is_none() { quote!() } else { quote!(mut) };
        let encode = quote! {
            Self::#variant(#mutability payload) => {
                let mut response = http::Response::new(crate::body::Body::Empty);
                *response.status_mut() = http::StatusCode::from_u16(#status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
                let headers = response.headers_mut();
                #(#header_encoders)*
                #take_body
                let body = #body_encode;
                *response.body_mut() = body;
                response
            }
        };
        let decode = quote! {
            #status => Ok(Self::#variant(#struct_name {
                #(#header_decoders)*
                #body_decode_field
            })),
        };
        (quote!(#[doc = #doc] #variant(#struct_name),), Some(payload_struct), encode, decode)
    } else if let Some(t) = body_ty {
        let encode = quote! {
            Self::#variant(mut body) => {
                let mut response = http::Response::new(crate::body::Body::Empty);
                *response.status_mut() = http::StatusCode::from_u16(#status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
                let headers = response.headers_mut();
                let body = #body_encode;
                *response.body_mut() = body;
                response
            }
        };
        let decode = quote!(#status => Ok(Self::#variant(#body_decode)),);
        (quote!(#[doc = #doc] #variant(#t),), None, encode, decode)
    } else {
        let encode = quote! {
            Self::#variant => {
                let mut response = http::Response::new(crate::body::Body::Empty);
                *response.status_mut() = http::StatusCode::from_u16(#status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
                response
            }
        };
        let decode = quote!(#status => Ok(Self::#variant),);
        (quote!(#[doc = #doc] #variant,), None, encode, decode)
    };
    Ok(VariantParts { definition, payload_struct, encode, decode })
}

fn response(op: &Operation, registry: &Registry) -> Result<TokenStream> {
    let ty = format_ident!("{}", op.response_type());
    let mut definitions = Vec::new();
    let mut structs = Vec::new();
    let mut encoders = Vec::new();
    let mut decoders = Vec::new();
    for resp in &op.responses {
        let parts = response_variant(op, resp, registry)?;
        definitions.push(parts.definition);
        structs.extend(parts.payload_struct);
        encoders.push(parts.encode);
        decoders.push(parts.decode);
    }
    let status_arms = op.responses.iter().map(|resp| {
        let variant = format_ident!("{}", resp.variant());
        let status = resp.status;
        let has_payload = !resp.headers.is_empty() || !matches!(resp.body, ResponseBody::None);
        if has_payload {
            quote!(Self::#variant(..) => #status,)
        } else {
            quote!(Self::#variant => #status,)
        }
    });
    let doc = format!("Every documented answer to `{}`.", op.id);
    Ok(quote! {
        #(#structs)*

        #[doc = #doc]
        #[derive(Debug)]
        pub enum #ty {
            #(#definitions)*
        }

        impl #ty {
            /// The status code of this answer.
            pub fn status(&self) -> u16 {
                match self {
                    #(#status_arms)*
                }
            }

            /// Encodes the answer as an HTTP response.
            pub fn into_http(self) -> http::Response<crate::body::Body> {
                match self {
                    #(#encoders)*
                }
            }

            /// Decodes an HTTP response (client side). Statuses the spec does
            /// not document are returned as a problem.
            pub fn from_http(response: http::Response<bytes::Bytes>) -> Result<Self, crate::codec::DecodeError> {
                match response.status().as_u16() {
                    #(#decoders)*
                    other => Err(crate::codec::DecodeError(format!(
                        "undocumented status {other}: {}",
                        String::from_utf8_lossy(response.body())
                    ))),
                }
            }
        }
    })
}

/// Request structs, response enums and their HTTP conversions.
pub fn operations(model: &Model, registry: &Registry) -> Result<TokenStream> {
    let enums = enum_types(model);
    let mut items = Vec::new();
    for op in &model.operations {
        items.push(request(op, registry).with_context(|| op.id.clone())?);
        items.push(response(op, registry).with_context(|| op.id.clone())?);
    }
    Ok(quote! {
        //! Typed requests and responses of every operation, with their
        //! conversions from and to `http` types.
        #![allow(clippy::redundant_closure, clippy::needless_update, unused_mut, unused_variables)]

        #enums
        #(#items)*
    })
}

/// One handler trait per tag.
pub fn traits(model: &Model) -> TokenStream {
    let traits = model.tags.iter().map(|tag| {
        let trait_name = format_ident!("{}", tag.trait_name);
        let doc = format!("Handlers of the `{}` operations: {}", tag.name, tag.description);
        let methods = model.operations.iter().filter(|op| op.tag == tag.name).map(|op| {
            let f = format_ident!("{}", op.fn_name());
            let req = format_ident!("{}", op.request_type());
            let resp = format_ident!("{}", op.response_type());
            let mut doc = format!("`{} {}` — {}", op.method, op.path, op.summary);
            if op.deprecated {
                doc.push_str("\n\nDeprecated.");
            }
            let message = format!("{} is not implemented by this host", op.id);
            quote! {
                #[doc = #doc]
                async fn #f(&self, ctx: &crate::context::RequestContext, request: crate::operations::#req)
                    -> Result<crate::operations::#resp, crate::problem::ApiError>
                {
                    let _ = (ctx, request);
                    Err(crate::types::Problem::not_implemented(#message).into())
                }
            }
        });
        quote! {
            #[doc = #doc]
            #[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
            #[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
            pub trait #trait_name: crate::context::MaybeSendSync {
                #(#methods)*
            }
        }
    });
    let bounds = model.tags.iter().map(|tag| format_ident!("{}", tag.trait_name)).collect::<Vec<_>>();
    quote! {
        //! Handler traits, one per API. Every method has a default answer of
        //! `501 Not Implemented`, so a host implements what it serves.

        #(#traits)*

        /// Everything the router dispatches to.
        pub trait Api: #(#bounds)+* {}

        impl<T: #(#bounds)+* + ?Sized> Api for T {}
    }
}

/// Routes sorted so that the most specific templates match first: more
/// literal segments first, rest parameters last; `__ds` precedes streams.
pub fn router(model: &Model) -> TokenStream {
    let mut ops: Vec<&Operation> = model.operations.iter().collect();
    let specificity = |op: &Operation| {
        let literals = op.segments.iter().filter(|s| matches!(s, crate::model::Segment::Literal(_))).count();
        let rest = op.segments.iter().any(|s| matches!(s, crate::model::Segment::Rest(_)));
        (rest, std::cmp::Reverse(literals), std::cmp::Reverse(op.segments.len()), op.path.clone())
    };
    ops.sort_by_key(|op| specificity(op));
    let variants = model.operations.iter().map(|op| format_ident!("{}", op.type_name())).collect::<Vec<_>>();
    let ids = model.operations.iter().map(|op| op.id.clone()).collect::<Vec<_>>();
    let op_tags = model.operations.iter().map(|op| op.tag.clone()).collect::<Vec<_>>();
    let op_scopes = model.operations.iter().map(|op| {
        let scope = op.scopes.first().map(|s| s.as_str());
        match (op.security, scope) {
            (SecurityKind::Bearer, Some("read")) => quote!(Security::Bearer(crate::context::Scope::Read)),
            (SecurityKind::Bearer, Some("write")) => quote!(Security::Bearer(crate::context::Scope::Write)),
            (SecurityKind::Bearer, Some("manage")) => quote!(Security::Bearer(crate::context::Scope::Manage)),
            (SecurityKind::Bearer, _) => quote!(Security::Bearer(crate::context::Scope::Read)),
            (SecurityKind::CallbackToken, _) => quote!(Security::CallbackToken),
            (SecurityKind::None, _) => quote!(Security::None),
        }
    });
    let routes = ops.iter().map(|op| {
        let variant = format_ident!("{}", op.type_name());
        let method = format_ident!("{}", op.method);
        let segments = op.segments.iter().map(|s| match s {
            crate::model::Segment::Literal(l) => quote!(Segment::Literal(#l)),
            crate::model::Segment::Param(p) => quote!(Segment::Param(#p)),
            crate::model::Segment::Rest(p) => quote!(Segment::Rest(#p)),
        });
        let path = &op.path;
        quote! {
            RouteDef { operation: OperationId::#variant, method: http::Method::#method, path: #path, segments: &[#(#segments),*] }
        }
    });
    let dispatch = model.operations.iter().map(|op| {
        let variant = format_ident!("{}", op.type_name());
        let req = format_ident!("{}", op.request_type());
        let f = format_ident!("{}", op.fn_name());
        let trait_name = format_ident!("{}", model.tags.iter().find(|t| t.name == op.tag).map(|t| t.trait_name.clone()).unwrap_or_default());
        let project = if op.has_stream_path() {
            quote!(ctx.project = Some(request.stream.project().to_owned());)
        } else if op.params.iter().any(|p| p.name == "project" && p.location == Location::Path) {
            quote!(ctx.project = Some(request.project.clone());)
        } else if op.tag == "legacy" {
            quote!(ctx.project = Some(crate::stream_path::DEFAULT_PROJECT.to_owned());)
        } else {
            quote!()
        };
        quote! {
            OperationId::#variant => {
                let request = crate::operations::#req::from_parts(&params, &query, &parts.headers, body)?;
                #project
                Ok(<A as crate::traits::#trait_name>::#f(api, ctx, request).await?.into_http())
            }
        }
    });
    quote! {
        //! Matches method and path to an operation, decodes the request with
        //! the spec's rules, calls the handler trait and encodes the answer.

        use crate::routing::{PathParams, Segment};

        /// Every operation of the spec.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum OperationId {
            #(#[doc = #ids] #variants,)*
        }

        /// What credentials an operation needs.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Security {
            /// None (health, JWKS).
            None,
            /// A project JWT with at least this scope.
            Bearer(crate::context::Scope),
            /// A callback or claim token of a subscription wake.
            CallbackToken,
        }

        impl OperationId {
            /// The spec's `operationId`.
            pub fn as_str(self) -> &'static str {
                match self {
                    #(Self::#variants => #ids,)*
                }
            }

            /// The spec tag (API) the operation belongs to.
            pub fn tag(self) -> &'static str {
                match self {
                    #(Self::#variants => #op_tags,)*
                }
            }

            /// The credentials the operation needs.
            pub fn security(self) -> Security {
                match self {
                    #(Self::#variants => #op_scopes,)*
                }
            }
        }

        /// One route: a method on a path template.
        #[derive(Clone, Debug)]
        pub struct RouteDef {
            /// The operation served.
            pub operation: OperationId,
            /// Its method.
            pub method: http::Method,
            /// The spec's path template.
            pub path: &'static str,
            /// The template's segments.
            pub segments: &'static [Segment],
        }

        /// Every route, most specific template first.
        pub static ROUTES: &[RouteDef] = &[#(#routes),*];

        /// The outcome of matching a request line.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum RouteMatch {
            /// An operation serves this method and path.
            Found {
                /// The operation.
                operation: OperationId,
                /// Its decoded path parameters.
                params: PathParams,
            },
            /// The path exists but not with this method.
            MethodNotAllowed {
                /// The methods the path supports.
                allow: Vec<http::Method>,
            },
            /// No route has this path.
            NotFound,
        }

        /// Matches a method and path. The first template that matches the
        /// path decides: either it has the method, or the answer is `405`.
        pub fn match_route(method: &http::Method, path: &str) -> Result<RouteMatch, crate::types::Problem> {
            let mut matched: Option<(&'static str, PathParams)> = None;
            let mut allow = Vec::new();
            for route in ROUTES {
                if let Some((template, _)) = &matched {
                    if route.path != *template {
                        continue;
                    }
                    allow.push(route.method.clone());
                    continue;
                }
                if let Some(params) = crate::routing::match_path(route.segments, path)? {
                    allow.push(route.method.clone());
                    matched = Some((route.path, params));
                }
            }
            let Some((template, params)) = matched else {
                return Ok(RouteMatch::NotFound);
            };
            match ROUTES.iter().find(|r| r.path == template && r.method == *method) {
                Some(route) => Ok(RouteMatch::Found { operation: route.operation, params }),
                None => Ok(RouteMatch::MethodNotAllowed { allow }),
            }
        }

        /// Decodes the request for a matched operation, calls the handler
        /// and encodes its answer. Sets `ctx.project` from the route.
        pub async fn dispatch<A: crate::traits::Api + ?Sized>(
            api: &A,
            ctx: &mut crate::context::RequestContext,
            operation: OperationId,
            params: PathParams,
            parts: &http::request::Parts,
            body: bytes::Bytes,
        ) -> Result<http::Response<crate::body::Body>, crate::problem::ApiError> {
            let query = crate::routing::Query::parse(parts.uri.query());
            let ctx = &mut *ctx;
            match operation {
                #(#dispatch)*
            }
        }
    }
}
