//! Validates messages against the published JSON Schemas in `schemas/v1/`.
//!
//! `validate("event", &value)` checks one message against `schemas/v1/event.schema.json` and
//! returns every error with the path of the offending part of the message. Validators are
//! compiled once per test binary and cached. References between the schemas
//! (`common.schema.json#/$defs/…`) resolve from the local folder: nothing is fetched from the
//! network, and a reference to anything outside `schemas/v1/` is an error.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use serde_json::Value;

/// The `$id` prefix of every v1 schema.
pub const BASE_URI: &str = "https://croupier.example/schemas/v1/";

/// Every message schema (not `common`, which only holds shared definitions).
pub const MESSAGES: &[&str] = &[
    "event",
    "state",
    "status",
    "telemetry",
    "command",
    "command-reply",
];

/// Every schema file of v1, `common` included.
pub const ALL: &[&str] = &[
    "common",
    "event",
    "state",
    "status",
    "telemetry",
    "command",
    "command-reply",
];

/// `schemas/v1/` of this checkout.
pub fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/v1")
}

/// The path of one schema: `path("event")` is `…/schemas/v1/event.schema.json`.
pub fn path(name: &str) -> PathBuf {
    schema_dir().join(format!("{name}.schema.json"))
}

/// Reads and parses one schema file.
pub fn load(name: &str) -> Result<Value, String> {
    let path = path(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

/// Resolves `https://croupier.example/schemas/v1/<file>` to `schemas/v1/<file>`, and nothing else.
struct LocalSchemas;

impl jsonschema::Retrieve for LocalSchemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let uri = uri.as_str();
        let file = uri
            .strip_prefix(BASE_URI)
            .filter(|f| !f.contains('/') && f.ends_with(".schema.json"))
            .ok_or_else(|| {
                format!(
                    "{uri} is not a Croupier v1 schema; the tests fetch nothing from the network"
                )
            })?;
        let path = schema_dir().join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{uri}: cannot read {}: {e}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }
}

type Compiled = Arc<jsonschema::Validator>;

static CACHE: LazyLock<Mutex<HashMap<String, Compiled>>> = LazyLock::new(Mutex::default);

/// The compiled validator of one schema (formats asserted, references resolved locally).
pub fn validator(name: &str) -> Result<Compiled, String> {
    if let Some(v) = CACHE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(name)
    {
        return Ok(Arc::clone(v));
    }
    let schema = load(name)?;
    let compiled = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .with_retriever(LocalSchemas)
        .build(&schema)
        .map_err(|e| format!("schema {name} does not compile: {e}"))?;
    let compiled = Arc::new(compiled);
    CACHE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(name.to_owned(), Arc::clone(&compiled));
    Ok(compiled)
}

/// Validates `instance` against `schemas/v1/<schema>.schema.json` (`"event"`, `"state"`,
/// `"status"`, `"telemetry"`, `"command"`, `"command-reply"`). The error lists every violation,
/// one a line, as `<instance path>: <message> (<schema file>#<the rule that failed>)`.
pub fn validate(schema: &str, instance: &Value) -> Result<(), String> {
    let validator = validator(schema)?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| {
            let at = e.instance_path().as_str();
            let rule = e.absolute_keyword_location().map_or_else(
                || format!("{schema}.schema.json#{}", e.schema_path().as_str()),
                |uri| uri.as_str().trim_start_matches(BASE_URI).to_owned(),
            );
            format!("{}: {e} ({rule})", if at.is_empty() { "/" } else { at })
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Like [`validate`], panicking with the errors and the message itself.
#[track_caller]
pub fn assert_valid(schema: &str, instance: &Value) {
    if let Err(errors) = validate(schema, instance) {
        panic!(
            "not a valid {schema} message:\n{errors}\nmessage: {}",
            serde_json::to_string_pretty(instance).unwrap_or_default()
        );
    }
}

/// Validates one schema document itself against the draft 2020-12 meta-schema.
pub fn meta_validate(name: &str) -> Result<(), String> {
    let schema = load(name)?;
    let meta = jsonschema::draft202012::meta::validator();
    let errors: Vec<String> = meta
        .iter_errors(&schema)
        .map(|e| format!("{}: {e}", e.instance_path().as_str()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}
