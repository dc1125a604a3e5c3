//! Metrics as CloudWatch Embedded Metric Format log lines: CloudWatch turns such a JSON line on stdout into metrics
//! (namespace `dncflow`, dimension `Function`) without an API call.

/// One EMF line: `metrics` are `(name, unit, value)`; units as CloudWatch names them (`Count`, `Milliseconds`,
/// `None`, …).
pub fn emf(function: &str, metrics: &[(&str, &str, f64)], timestamp_ms: i64) -> String {
    let mut doc = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "dncflow",
                "Dimensions": [["Function"]],
                "Metrics": metrics.iter().map(|(n, u, _)| serde_json::json!({"Name": n, "Unit": u})).collect::<Vec<_>>(),
            }],
        },
        "Function": function,
    });
    if let Some(o) = doc.as_object_mut() {
        for (n, _, v) in metrics {
            o.insert((*n).to_string(), serde_json::json!(v));
        }
    }
    doc.to_string()
}
