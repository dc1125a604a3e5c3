//! Trigger events of the normalize function: an EventBridge "Object Created" event, an S3 notification record, or a
//! plain `{bucket, key, versionId?, list?}` input (a re-run from the Step Functions console).

use serde_json::Value;
use thiserror::Error;

/// The source object a run is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceObject {
    /// The bucket that holds the object.
    pub bucket: String,
    /// The object key within the bucket.
    pub key: String,
    /// Version id, when known.
    pub version_id: Option<String>,
    /// The list: given explicitly, or `<list>` of an `incoming/<list>/<file>` key.
    pub list: String,
}

/// An event that names no usable source object.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("unusable trigger event: {0}")]
pub struct EventError(pub String);

/// Read the source object from any of the three trigger shapes.
pub fn parse_source_event(event: &Value) -> Result<SourceObject, EventError> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let (bucket, key, version_id, explicit_list, encoded) = if let Some(detail) = event
        .get("detail")
        .filter(|_| event.get("source").and_then(Value::as_str) == Some("aws.s3"))
    {
        (
            detail.pointer("/bucket/name").and_then(text),
            detail.pointer("/object/key").and_then(text),
            detail.pointer("/object/version-id").and_then(text),
            None,
            false,
        )
    } else if let Some(record) = event.get("Records").and_then(|r| r.get(0)) {
        (
            record.pointer("/s3/bucket/name").and_then(text),
            record.pointer("/s3/object/key").and_then(text),
            record.pointer("/s3/object/versionId").and_then(text),
            None,
            true, // S3 notifications URL-encode keys
        )
    } else {
        (
            event.get("bucket").and_then(text),
            event.get("key").and_then(text),
            event.get("versionId").and_then(text),
            event.get("list").and_then(text),
            false,
        )
    };
    let bucket = bucket
        .filter(|b| !b.is_empty())
        .ok_or_else(|| EventError("no bucket".into()))?;
    let mut key = key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| EventError("no key".into()))?;
    if encoded {
        key = url_decode_key(&key)
            .ok_or_else(|| EventError(format!("key is not valid URL encoding: {key}")))?;
    }
    let list = match explicit_list.filter(|l| !l.trim().is_empty()) {
        Some(l) => l,
        None => list_from_key(&key).ok_or_else(|| {
            EventError(format!(
                "key {key} is not under incoming/<list>/ and the input names no list"
            ))
        })?,
    };
    Ok(SourceObject {
        bucket,
        key,
        version_id: version_id.filter(|v| !v.is_empty() && v != "null"),
        list,
    })
}

/// The state machine's input for a run of `source`: `{"bucket", "key", "list", "versionId"?}`, the plain shape
/// [`parse_source_event`] reads. The one builder of it: `dncctl rerun` starts executions with it, and the nightly
/// schedule's `Input` in `template.yaml` is checked against it (`the_schedules_input_is_the_rerun_input`), so a
/// re-run, the schedule and a drop all name the same object the same way.
pub fn run_input(source: &SourceObject) -> Value {
    let mut input = serde_json::json!({
        "bucket": source.bucket,
        "key": source.key,
        "list": source.list,
    });
    if let Some(v) = &source.version_id {
        input["versionId"] = Value::String(v.clone());
    }
    input
}

/// The list a dropped object is for: `<list>` of `incoming/<list>/<file>` (None for a key outside `incoming/`).
pub fn list_from_key(key: &str) -> Option<String> {
    let rest = key.strip_prefix("incoming/")?;
    let (list, file) = rest.split_once('/')?;
    (!list.is_empty() && !file.is_empty()).then(|| list.to_string())
}

/// An S3 notification's key: form-encoded (`+` is a space, `%2B` a plus), UTF-8 once decoded.
fn url_decode_key(s: &str) -> Option<String> {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|k| k.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn eventbridge_s3_notification_and_plain_inputs() {
        let eb = json!({"source": "aws.s3", "detail-type": "Object Created",
            "detail": {"bucket": {"name": "dnc"}, "object": {"key": "incoming/national/fcc 2026.zip", "version-id": "v1"}}});
        assert_eq!(
            parse_source_event(&eb).unwrap(),
            SourceObject {
                bucket: "dnc".into(),
                key: "incoming/national/fcc 2026.zip".into(),
                version_id: Some("v1".into()),
                list: "national".into()
            }
        );
        let s3 = json!({"Records": [{"s3": {"bucket": {"name": "dnc"}, "object": {"key": "incoming/state-tx/tx+list%281%29.csv"}}}]});
        let parsed = parse_source_event(&s3).unwrap();
        assert_eq!(
            (parsed.key.as_str(), parsed.list.as_str(), parsed.version_id),
            ("incoming/state-tx/tx list(1).csv", "state-tx", None)
        );
        let plain = json!({"bucket": "dnc", "key": "manual/opt-outs.csv", "list": "internal"});
        assert_eq!(parse_source_event(&plain).unwrap().list, "internal");
    }

    #[test]
    fn the_run_input_reads_back_as_the_same_source() {
        for version_id in [None, Some("3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY".to_string())] {
            let source = SourceObject {
                bucket: "dnc".into(),
                key: "incoming/national/current.zip".into(),
                version_id,
                list: "national".into(),
            };
            assert_eq!(parse_source_event(&run_input(&source)).unwrap(), source);
        }
        // A list other than the key's folder is kept (the input names it).
        let other = SourceObject {
            bucket: "dnc".into(),
            key: "manual/opt-outs.csv".into(),
            version_id: None,
            list: "internal".into(),
        };
        assert_eq!(parse_source_event(&run_input(&other)).unwrap(), other);
    }

    /// The nightly schedule's `Input` in `template.yaml` has exactly the shape [`run_input`] builds: a change to one
    /// without the other fails here.
    #[test]
    fn the_schedules_input_is_the_rerun_input() {
        let template = include_str!("../../../template.yaml");
        let line = template
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("Input: !Sub") && l.contains("ScheduledSourceKey"))
            .expect("the nightly schedule's Input in template.yaml");
        let json = line
            .trim_start_matches("Input: !Sub")
            .trim()
            .trim_matches('\'')
            .replace("${DncBucket}", "dnc")
            .replace("${ScheduledSourceKey}", "incoming/national/current.zip")
            .replace("${ScheduledList}", "national");
        let scheduled: Value = serde_json::from_str(&json).expect("the schedule's Input is JSON");
        let source = parse_source_event(&scheduled).unwrap();
        assert_eq!(scheduled, run_input(&source), "{line}");
    }

    #[test]
    fn unusable_events_say_why() {
        assert!(
            parse_source_event(&json!({"bucket": "dnc", "key": "manual/x.csv"}))
                .unwrap_err()
                .0
                .contains("names no list")
        );
        assert!(parse_source_event(&json!({"key": "incoming/a/b"}))
            .unwrap_err()
            .0
            .contains("no bucket"));
        assert!(parse_source_event(&json!({})).is_err());
    }

    #[test]
    fn notification_keys_are_form_decoded_and_must_be_utf8() {
        let key_of = |k: &str| {
            parse_source_event(
                &json!({"Records": [{"s3": {"bucket": {"name": "dnc"}, "object": {"key": k}}}]}),
            )
            .map(|o| o.key)
        };
        assert_eq!(
            key_of("incoming/a/C%2B%2B+%E2%82%AC.csv").unwrap(),
            "incoming/a/C++ \u{20ac}.csv"
        );
        assert!(key_of("incoming/a/%FF.csv")
            .unwrap_err()
            .0
            .contains("not valid URL encoding"));
    }
}
