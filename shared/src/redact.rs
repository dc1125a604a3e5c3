//! Error text that is safe to log: what went wrong and where, never the data it went wrong on.

/// Describe a JSON decoding error without quoting the document. serde_json's own message can carry the offending
/// value (`invalid type: string "+12025550198", expected u64`), and the documents read here hold phone numbers,
/// ledgers and CXone answers. Messages about fields (`missing field `line``) name only the schema and are kept.
pub fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let message = e.to_string();
    let what = match e.classify() {
        Category::Data
            if ["missing field", "unknown field", "duplicate field"]
                .iter()
                .any(|p| message.starts_with(p)) =>
        {
            message
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_string()
        }
        Category::Data => "a value of the wrong type or out of range".to_string(),
        Category::Syntax => "malformed JSON".to_string(),
        Category::Eof => "truncated JSON".to_string(),
        Category::Io => "read error".to_string(),
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Entry {
        line: u64,
    }

    #[test]
    fn never_quotes_the_value_but_keeps_schema_and_position() {
        let err = serde_json::from_str::<Entry>(r#"{"line":"+12025550198"}"#).unwrap_err();
        assert!(
            err.to_string().contains("12025550198"),
            "serde's own text quotes it"
        );
        let safe = json_error(&err);
        assert!(!safe.contains("2025550198"), "{safe}");
        assert_eq!(
            safe,
            "a value of the wrong type or out of range at line 1 column 22"
        );

        let err = serde_json::from_str::<Entry>(r#"{"other":"+12025550198"}"#).unwrap_err();
        assert_eq!(json_error(&err), "missing field `line` at line 1 column 24");

        let err = serde_json::from_str::<Entry>(r#"{"line":12025550198x"#).unwrap_err();
        assert!(!json_error(&err).contains("2025550198"));
        assert!(json_error(&err).starts_with("malformed JSON"));

        let err = serde_json::from_str::<Entry>(r#"{"line":"#).unwrap_err();
        assert!(json_error(&err).starts_with("truncated JSON"));
    }
}
