//! Strict reading of the user-migration event.
//!
//! # Why it exists
//!
//! Left to `lambda_runtime`, the event would be deserialized with serde straight into
//! `aws_lambda_events`' struct, which is lenient where the trigger must be strict and talkative
//! where it must be silent: serde reads a struct written as a JSON array (`"request":
//! ["<password>"]` is a request whose password is that string), and its errors quote the value
//! they stumbled on (``invalid type: integer `12345` ``), which the runtime then logs and sends
//! back as the answer. Here the event arrives as whatever JSON it is ([`RawEvent`], whose
//! deserialization never fails, so the runtime has no error of its own to log or answer), and
//! [`parse_event`] checks the shape of every member the trigger reads before it builds the typed
//! event. A wrong shape is an [`EventError`], which names the member and the JSON types, never a
//! value; the handler declines it like any other "no".
//!
//! # What is accepted
//!
//! * the event: a JSON object;
//! * `triggerSource` (required): `UserMigration_Authentication` or `UserMigration_ForgotPassword`;
//! * `userName`, `userPoolId` (required): strings;
//! * `request` (required): an object whose `password` is absent, null or a string (the handler
//!   declines an authentication without one), and whose `validationData` and `clientMetadata`
//!   are absent, null or objects of strings;
//! * `version`, `region`: absent, null or strings; `callerContext`: absent, null or an object
//!   whose `awsSdkVersion` and `clientId` are absent, null or strings;
//! * `response`: absent, null or an object (the answer replaces its members).
//!
//! Other members are ignored and not part of the answer.

use std::collections::HashMap;

use aws_lambda_events::event::cognito::{
    CognitoEventUserPoolsMigrateUser, CognitoEventUserPoolsMigrateUserTriggerSource as Source,
};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// The event as the Lambda runtime hands it over: any JSON, or a body that is not JSON.
/// Deserializing it never fails (serde's error about a body that is not JSON is dropped, not
/// shown). No `Debug`: it holds the password.
pub enum RawEvent {
    Json(Value),
    NotJson,
}

impl<'de> Deserialize<'de> for RawEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawEvent, D::Error> {
        Ok(Value::deserialize(d).map_or(RawEvent::NotJson, RawEvent::Json))
    }
}

/// What is wrong with an event. Messages name members and JSON types, never a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event is not JSON")]
    NotJson,
    #[error("{member} is missing")]
    Missing { member: &'static str },
    #[error("{member}: expected {expected}, found {found}")]
    WrongType {
        member: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    #[error("triggerSource is not a user-migration trigger source")]
    UnknownTriggerSource,
}

impl EventError {
    /// A stable code for logs.
    pub fn code(&self) -> &'static str {
        match self {
            EventError::UnknownTriggerSource => "unknown_trigger_source",
            _ => "malformed_event",
        }
    }
}

/// The JSON type of `v`, for messages.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong(member: &'static str, expected: &'static str, found: &Value) -> EventError {
    EventError::WrongType {
        member,
        expected,
        found: json_type(found),
    }
}

/// `obj[key]` unless absent or null.
fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// `obj[key]` as an optional string; `member` is its name in messages.
fn optional_string(
    obj: &Map<String, Value>,
    key: &str,
    member: &'static str,
) -> Result<Option<String>, EventError> {
    match present(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(wrong(member, "a string", v)),
    }
}

fn required_string(obj: &Map<String, Value>, key: &'static str) -> Result<String, EventError> {
    optional_string(obj, key, key)?.ok_or(EventError::Missing { member: key })
}

fn optional_object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    member: &'static str,
) -> Result<Option<&'a Map<String, Value>>, EventError> {
    match present(obj, key) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(v) => Err(wrong(member, "an object", v)),
    }
}

/// `obj[key]` as an optional object of strings (empty when absent). `member` names it, and
/// `values` its values (`request.validationData.*`).
fn string_map(
    obj: &Map<String, Value>,
    key: &str,
    member: &'static str,
    values: &'static str,
) -> Result<HashMap<String, String>, EventError> {
    let Some(map) = optional_object(obj, key, member)? else {
        return Ok(HashMap::new());
    };
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(wrong(values, "a string", other)),
        })
        .collect()
}

/// Checks the shape of a user-migration event (see the [module documentation](self)) and builds
/// the typed event from it.
pub fn parse_event(raw: RawEvent) -> Result<CognitoEventUserPoolsMigrateUser, EventError> {
    let mut top = match raw {
        RawEvent::NotJson => return Err(EventError::NotJson),
        RawEvent::Json(Value::Object(top)) => top,
        RawEvent::Json(other) => return Err(wrong("the event", "an object", &other)),
    };
    let source = match present(&top, "triggerSource") {
        None => {
            return Err(EventError::Missing {
                member: "triggerSource",
            })
        }
        Some(Value::String(s)) => match s.as_str() {
            "UserMigration_Authentication" => Source::Authentication,
            "UserMigration_ForgotPassword" => Source::ForgotPassword,
            _ => return Err(EventError::UnknownTriggerSource),
        },
        Some(v) => return Err(wrong("triggerSource", "a string", v)),
    };
    let mut event = CognitoEventUserPoolsMigrateUser::default();
    let header = &mut event.cognito_event_user_pools_header;
    header.trigger_source = Some(source);
    header.user_name = Some(required_string(&top, "userName")?);
    header.user_pool_id = Some(required_string(&top, "userPoolId")?);
    header.version = optional_string(&top, "version", "version")?;
    header.region = optional_string(&top, "region", "region")?;
    if let Some(caller) = optional_object(&top, "callerContext", "callerContext")? {
        header.caller_context.awssdk_version =
            optional_string(caller, "awsSdkVersion", "callerContext.awsSdkVersion")?;
        header.caller_context.client_id =
            optional_string(caller, "clientId", "callerContext.clientId")?;
    }
    optional_object(&top, "response", "response")?;

    let mut request = match top.remove("request") {
        None | Some(Value::Null) => return Err(EventError::Missing { member: "request" }),
        Some(Value::Object(r)) => r,
        Some(other) => return Err(wrong("request", "an object", &other)),
    };
    let r = &mut event.cognito_event_user_pools_migrate_user_request;
    r.validation_data = string_map(
        &request,
        "validationData",
        "request.validationData",
        "request.validationData.*",
    )?;
    r.client_metadata = string_map(
        &request,
        "clientMetadata",
        "request.clientMetadata",
        "request.clientMetadata.*",
    )?;
    r.password = match request.remove("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p),
        Some(other) => return Err(wrong("request.password", "a string", &other)),
    };
    Ok(event)
}
