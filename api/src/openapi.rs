//! The OpenAPI document: its frame, and the rules completed over every operation once the routes
//! are in, so the document states what the handlers enforce (a generated client, the web client
//! and schemathesis all trust it):
//! - the refusals any operation can meet before its handler ([`CommonResponses`]);
//! - the text rules of every request string ([`input_rules`]): no control characters anywhere, and
//!   the exact shape of the values that have one (cursors, emails, enumerations).
//!
//! Ranges and lengths sit on the request types themselves (`#[schema(...)]`, `#[param(...)]`).

use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gonggu",
        description = "Geospatial group buying: find parties near you, book a seat, split a bulk item.\n\n\
            Errors are RFC 9457 `application/problem+json` with a stable `code` and, for validation, the `field`.\n\
            Times are RFC 3339 with an offset, shown in Asia/Seoul. State-changing POSTs accept an `Idempotency-Key` header."
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem, crate::chat::frames::ClientFrame, crate::chat::frames::ServerFrame)),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "markets", description = "Markets where parties meet"),
        (name = "items", description = "The public item list"),
        (name = "parties", description = "Group buys"),
        (name = "bookings", description = "Seats in parties"),
        (name = "queue", description = "Waiting rooms in front of hot parties"),
        (name = "chat", description = "Party chat: a WebSocket per member, history, read cursors"),
        (name = "ingest", description = "Runs of the nightly public-data import"),
        (name = "admin", description = "Operators: background jobs"),
        (name = "notifications", description = "Wishlists, the inbox and its live stream"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The refusals every operation can meet before its handler runs, added to each operation's
/// responses where it does not list them: 400 (an unparsable parameter or body), 422 (a value out
/// of range, a control character), and for operations with a body 413 (over 1 MiB), 415 (not
/// JSON) and 408 (sent too slowly). Written once here instead of on thirty operations, so the
/// document cannot leave one out.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let has_body = operation.request_body.is_some();
                let has_input =
                    has_body || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let mut add = |code: &str, description: &str| {
                    operation
                        .responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(|| problem(description).into());
                };
                if has_input {
                    add(
                        "400",
                        "`malformed_request`: an unparsable parameter or body, naming it",
                    );
                    add("422", "`validation_failed`: a value out of range or holding control characters, naming it");
                }
                if has_body {
                    add("408", "`request_timeout`: the body did not arrive in time");
                    add("413", "`payload_too_large`: the body is over 1 MiB");
                    add("415", "`unsupported_media_type`: the body is not JSON");
                }
            }
        }
    }
}

/// Characters the API refuses in any text ([`crate::extract`]): the C0 and C1 controls and DEL,
/// except tab, line feed and carriage return. As a regex class body (ECMA and Python alike).
const CONTROLS: &str = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F";

/// Characters with no visible form ([`store::rules::is_invisible`], its Basic Multilingual Plane
/// part: the regex dialect of JSON Schema cannot name the rest), refused in nicknames and emails.
const INVISIBLE: &str = r"\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF0-\uFFF8";

/// Any text without control characters.
fn plain_text() -> String {
    format!("^[^{CONTROLS}]*$")
}

/// Text with at least one character that is not a space (it is trimmed, then must not be empty).
fn non_blank(also_refused: &str) -> String {
    let c = format!("{CONTROLS}{also_refused}");
    format!(r"^[^{c}]*[^\s{c}][^{c}]*$")
}

/// An id-ordered page cursor ([`store::cursor`]): `c` and a positive id in lower-case hex.
const ID_CURSOR: &str = "^(c[1-9a-f][0-9a-f]{0,14}|c[1-7][0-9a-f]{15})?$";

/// A nearby page cursor: `g`, the distance's bits (a finite, non-negative double) and the id, in
/// lower-case hex.
const NEARBY_CURSOR: &str = r"^(g(0|[1-9a-f][0-9a-f]{0,14}|[1-6][0-9a-f]{15}|7[0-9a-e][0-9a-f]{14}|7f[0-9a-e][0-9a-f]{13})\.(0|[1-9a-f][0-9a-f]{0,14}|[1-7][0-9a-f]{15}))?$";

/// A job id: a ULID (empty for the first page).
const JOB_ID: &str = "^([0-9A-HJKMNP-TV-Z]{26})?$";

/// An email as [`store::rules::Email`] takes it: ASCII without spaces, 1 to 64 characters before
/// the `@`, a domain holding a dot that neither starts nor ends with one.
const EMAIL: &str = r"^[\x21-\x3F\x41-\x7E]{1,64}@(?=[^@]*\.)[\x21-\x2D\x2F-\x3F\x41-\x7E]([\x21-\x3F\x41-\x7E]*[\x21-\x2D\x2F-\x3F\x41-\x7E])?$";

/// The patterns of request values that have a shape of their own: `(where, pattern)`, where is
/// `Schema.property` for a body field or `name` / `path-part name` for a parameter. The test below
/// checks that each one still names something in the document.
fn shaped() -> Vec<(&'static str, String)> {
    vec![
        ("SignupRequest.email", EMAIL.to_owned()),
        ("LoginRequest.email", EMAIL.to_owned()),
        ("SignupRequest.nickname", non_blank(INVISIBLE)),
        ("SignupRequest.password", non_blank("")),
        ("CreatePartyRequest.title", non_blank("")),
        ("UpdatePartyRequest.title", non_blank("")),
        ("CancelPartyRequest.reason", non_blank("")),
        ("Idempotency-Key", r"^[\x21-\x7E]{1,255}$".to_owned()),
        ("/nearby cursor", NEARBY_CURSOR.to_owned()),
        ("/admin/jobs cursor", JOB_ID.to_owned()),
        (
            "/admin/jobs state",
            "^(|pending|scheduled|running|done|failed|dead)$".to_owned(),
        ),
        ("/admin/jobs/{id}/retry id", JOB_ID.to_owned()),
        ("cursor", ID_CURSOR.to_owned()),
        (
            "/parties status",
            format!(
                "^({})$",
                store::parties::PartyStatus::names().replace(", ", "|")
            ),
        ),
        (
            "/ingest/runs status",
            "^(|running|succeeded|partial|failed)$".to_owned(),
        ),
        ("/ingest/runs kind", "^(|items|markets)$".to_owned()),
        ("role", "^(leader|member|any)$".to_owned()),
        ("category", "^[0-9]{0,9}$".to_owned()),
    ]
}

/// The whole document: the routes' operations with the rules of this module completed over them.
pub fn complete(mut openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    CommonResponses.modify(&mut openapi);
    let Ok(mut doc) = serde_json::to_value(&openapi) else {
        return openapi;
    };
    input_rules(&mut doc);
    // A patch must change something; utoipa 5.5 writes `min_properties` as `maxProperties`, so
    // the bound is set here.
    if let Some(patch) = doc.pointer_mut("/components/schemas/UpdatePartyRequest") {
        patch["minProperties"] = 1.into();
    }
    // The kinds a user may mute are the kinds written, whatever writes them.
    if let Some(items) =
        doc.pointer_mut("/components/schemas/NotificationPreferences/properties/muted_kinds/items")
    {
        *items = serde_json::json!({"type": "string", "enum": store::notifications::kind::ALL});
    }
    serde_json::from_value(doc).unwrap_or(openapi)
}

/// Puts a pattern on every string a request carries: the shaped ones from [`shaped`], and no
/// control characters on the rest. Responses are left as they are.
pub fn input_rules(doc: &mut Value) {
    let shaped = shaped();
    let pattern_for = |key: &str| {
        shaped
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, p)| p.clone())
    };
    let mut request_schemas = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut() {
                for param in operation
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    let name = param["name"].as_str().unwrap_or_default().to_owned();
                    let scoped = shaped
                        .iter()
                        .filter_map(|(k, p)| k.split_once(' ').map(|(part, n)| (part, n, p)))
                        .find(|(part, n, _)| *n == name && path.contains(part))
                        .map(|(_, _, p)| p.clone());
                    let pattern = scoped.or_else(|| pattern_for(&name));
                    if let Some(schema) = param.get_mut("schema") {
                        constrain(schema, pattern);
                    }
                }
                let body = operation.pointer("/requestBody/content/application~1json/schema");
                collect_refs(body, &mut request_schemas);
            }
        }
    }
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for name in request_schemas {
        let Some(properties) = schemas
            .get_mut(&name)
            .and_then(|s| s.get_mut("properties"))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for (field, schema) in properties.iter_mut() {
            constrain(schema, pattern_for(&format!("{name}.{field}")));
        }
    }
}

/// The component names a request body refers to.
fn collect_refs(schema: Option<&Value>, out: &mut Vec<String>) {
    match schema {
        Some(Value::Object(map)) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                out.push(name.to_owned());
            }
            for value in map.values() {
                collect_refs(Some(value), out);
            }
        }
        Some(Value::Array(items)) => items.iter().for_each(|v| collect_refs(Some(v), out)),
        _ => {}
    }
}

/// Sets `pattern` (or the plain-text one) on a string schema that has no format, enum or pattern
/// of its own; other schemas are left alone.
fn constrain(schema: &mut Value, pattern: Option<String>) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    let is_string = match map.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
        _ => false,
    };
    if !is_string
        || ["format", "enum", "pattern"]
            .iter()
            .any(|k| map.contains_key(*k))
    {
        return;
    }
    map.insert(
        "pattern".to_owned(),
        Value::String(pattern.unwrap_or_else(plain_text)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Value {
        serde_json::to_value(crate::http::api().1).unwrap()
    }

    #[test]
    fn every_shaped_value_names_a_request_value_of_the_document() {
        let doc = document().to_string();
        for (key, pattern) in shaped() {
            let escaped = serde_json::to_string(&pattern).unwrap();
            assert!(
                doc.contains(&escaped),
                "{key}: its pattern is not in the document"
            );
        }
    }

    #[test]
    fn every_request_string_refuses_control_characters_or_has_a_shape() {
        let doc = document();
        let param_schemas = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .flat_map(|op| op["parameters"].as_array().cloned().unwrap_or_default())
            .map(|p| p["schema"].clone());
        for schema in param_schemas {
            if schema["type"] == "string" {
                assert!(schema.get("pattern").is_some(), "{schema}");
            }
        }
        let signup = &doc["components"]["schemas"]["SignupRequest"]["properties"];
        assert_eq!(signup["email"]["pattern"], EMAIL);
        assert_eq!(
            doc["components"]["schemas"]["CreatePartyRequest"]["properties"]["description"]
                ["pattern"],
            plain_text()
        );
    }
}
