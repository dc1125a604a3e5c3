//! The FTC download service's SOAP 1.1 envelopes (`docs/ftc-download.md`), built and read with `quick-xml`'s serde
//! support: requests are serialized from typed operations, answers deserialized by their elements' local names (a
//! server may bind the SOAP namespace to any prefix). Nothing here formats XML by hand.

use serde::{Deserialize, Serialize};

use super::{FtcError, ResultCode};

/// The service's namespace, and the prefix of every `SOAPAction` (prefix + operation name).
pub const NAMESPACE: &str = "https://telemarketing.donotcall.gov/DownloadSvc/";

/// The SOAP 1.1 envelope namespace.
pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// One operation of the service with its arguments, in the element order of the public clients.
#[derive(Debug, Clone, Serialize)]
pub enum Operation {
    /// `Login(strCoID, strCoPwd, userType, enumCertify)`.
    Login {
        /// Namespace of the operation element.
        #[serde(rename = "@xmlns")]
        xmlns: &'static str,
        /// Company (organization) id.
        #[serde(rename = "strCoID")]
        company_id: String,
        /// Password (a secret: the envelope is never logged).
        #[serde(rename = "strCoPwd")]
        password: String,
        /// `Unknown`, `Representative` or `Downloader`.
        #[serde(rename = "userType")]
        user_type: String,
        /// `Agree`: the certification the service requires before every session.
        #[serde(rename = "enumCertify")]
        certify: &'static str,
    },
    /// `SubmitDeltaFileRequest(strCoID, fileFormat, strSessionToken)`.
    SubmitDeltaFileRequest {
        /// [`NAMESPACE`], on the operation element.
        #[serde(rename = "@xmlns")]
        xmlns: &'static str,
        /// The organization's company id, as in the credentials.
        #[serde(rename = "strCoID")]
        company_id: String,
        /// Always `Flat`: the text layout the reader parses.
        #[serde(rename = "fileFormat")]
        file_format: &'static str,
        /// The token `Login` answered (a secret: the envelope is never logged).
        #[serde(rename = "strSessionToken")]
        session: String,
    },
    /// `GetDeltaFileRequestStatus(strCoID, strRequestedFileToken, strSessionToken)`.
    GetDeltaFileRequestStatus {
        /// [`NAMESPACE`], on the operation element.
        #[serde(rename = "@xmlns")]
        xmlns: &'static str,
        /// The organization's company id, as in the credentials.
        #[serde(rename = "strCoID")]
        company_id: String,
        /// The file token `SubmitOK` answered.
        #[serde(rename = "strRequestedFileToken")]
        file_token: String,
        /// The token `Login` answered (a secret: the envelope is never logged).
        #[serde(rename = "strSessionToken")]
        session: String,
    },
    /// `GetDeltaFileUrl(strCoID, strRequestedFileToken, strSessionToken)`.
    GetDeltaFileUrl {
        /// [`NAMESPACE`], on the operation element.
        #[serde(rename = "@xmlns")]
        xmlns: &'static str,
        /// The organization's company id, as in the credentials.
        #[serde(rename = "strCoID")]
        company_id: String,
        /// The file token `SubmitOK` answered.
        #[serde(rename = "strRequestedFileToken")]
        file_token: String,
        /// The token `Login` answered (a secret: the envelope is never logged).
        #[serde(rename = "strSessionToken")]
        session: String,
    },
    /// `GetURLS(fileFormat, strSessionToken, strCoID)`: the full list's file URLs, one per area code.
    #[serde(rename = "GetURLS")]
    GetUrls {
        /// [`NAMESPACE`], on the operation element.
        #[serde(rename = "@xmlns")]
        xmlns: &'static str,
        /// Always `Flat`: the text layout the reader parses.
        #[serde(rename = "fileFormat")]
        file_format: &'static str,
        /// The token `Login` answered (a secret: the envelope is never logged).
        #[serde(rename = "strSessionToken")]
        session: String,
        /// The organization's company id, as in the credentials.
        #[serde(rename = "strCoID")]
        company_id: String,
    },
    /// `GetDNCFileByUrl(fileUrl, strSessionToken, strCoID)`: the file, base64 inside the answer.
    #[serde(rename = "GetDNCFileByUrl")]
    GetDncFileByUrl {
        /// [`NAMESPACE`], on the operation element.
        #[serde(rename = "@xmlns")]
        xmlns: &'static str,
        /// A URL of `GetURLS` or `GetDeltaFileUrl`.
        #[serde(rename = "fileUrl")]
        file_url: String,
        /// The token `Login` answered (a secret: the envelope is never logged).
        #[serde(rename = "strSessionToken")]
        session: String,
        /// The organization's company id, as in the credentials.
        #[serde(rename = "strCoID")]
        company_id: String,
    },
}

impl Operation {
    /// The operation's name: its element, and the end of its `SOAPAction`.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Login { .. } => "Login",
            Operation::SubmitDeltaFileRequest { .. } => "SubmitDeltaFileRequest",
            Operation::GetDeltaFileRequestStatus { .. } => "GetDeltaFileRequestStatus",
            Operation::GetDeltaFileUrl { .. } => "GetDeltaFileUrl",
            Operation::GetUrls { .. } => "GetURLS",
            Operation::GetDncFileByUrl { .. } => "GetDNCFileByUrl",
        }
    }

    /// The `SOAPAction` header's value.
    pub fn action(&self) -> String {
        format!("{NAMESPACE}{}", self.name())
    }
}

#[derive(Serialize)]
#[serde(rename = "soap:Envelope")]
struct RequestEnvelope<'a> {
    #[serde(rename = "@xmlns:soap")]
    soap: &'static str,
    #[serde(rename = "soap:Body")]
    body: RequestBody<'a>,
}

#[derive(Serialize)]
struct RequestBody<'a> {
    #[serde(rename = "$value")]
    operation: &'a Operation,
}

/// The request envelope of `operation` (UTF-8, with its XML declaration).
pub fn request(operation: &Operation) -> Result<String, FtcError> {
    let envelope = RequestEnvelope {
        soap: SOAP_ENV,
        body: RequestBody { operation },
    };
    let xml = quick_xml::se::to_string(&envelope).map_err(|e| FtcError::Protocol {
        op: operation.name(),
        reason: format!("cannot build the envelope: {e}"),
    })?;
    Ok(format!(r#"<?xml version="1.0" encoding="utf-8"?>{xml}"#))
}

/// `{code, value}`: what every operation but `GetURLS` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CodeValue {
    /// The result code (`LoginOK`, `RequestPending`, …).
    #[serde(default)]
    pub code: String,
    /// The token, URL or base64 file the code goes with (empty for most failures).
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Deserialize)]
struct CodeResponse {
    #[serde(
        alias = "LoginResult",
        alias = "SubmitDeltaFileRequestResult",
        alias = "GetDeltaFileRequestStatusResult",
        alias = "GetDeltaFileUrlResult",
        alias = "GetDNCFileByUrlResult"
    )]
    result: Option<CodeValue>,
}

#[derive(Debug, Deserialize)]
struct UrlsResponse {
    #[serde(rename = "GetURLSResult", default)]
    result: Option<StringArray>,
}

#[derive(Debug, Default, Deserialize)]
struct StringArray {
    #[serde(rename = "string", default)]
    items: Vec<String>,
}

/// A SOAP 1.1 fault.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Fault {
    /// `soap:Client`, `soap:Server`, …
    #[serde(rename = "faultcode", default)]
    pub code: String,
    /// What the server says.
    #[serde(rename = "faultstring", default)]
    pub message: String,
}

impl Fault {
    /// A `Server` fault may pass; a `Client` fault (the request itself) will not.
    pub fn is_server(&self) -> bool {
        self.code
            .rsplit(':')
            .next()
            .is_some_and(|c| c.starts_with("Server"))
    }
}

#[derive(Debug, Deserialize)]
enum ResponseContent {
    Fault(Fault),
    LoginResponse(CodeResponse),
    SubmitDeltaFileRequestResponse(CodeResponse),
    GetDeltaFileRequestStatusResponse(CodeResponse),
    GetDeltaFileUrlResponse(CodeResponse),
    #[serde(rename = "GetDNCFileByUrlResponse")]
    GetDncFileByUrlResponse(CodeResponse),
    #[serde(rename = "GetURLSResponse")]
    GetUrlsResponse(UrlsResponse),
}

#[derive(Debug, Deserialize)]
struct ResponseBody {
    #[serde(rename = "$value")]
    content: ResponseContent,
}

#[derive(Debug, Deserialize)]
struct ResponseEnvelope {
    #[serde(rename = "Body")]
    body: ResponseBody,
}

/// What an answer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A code and its value.
    Code(ResultCode, String),
    /// `GetURLS`: URLs and messages.
    Strings(Vec<String>),
    /// The service answered a SOAP fault instead of a result.
    Fault(Fault),
}

/// Read the answer to `op` from `bytes`. An answer to another operation, or no result element, is a protocol error.
pub fn response(op: &'static str, bytes: &[u8]) -> Result<Answer, FtcError> {
    let protocol = |reason: String| FtcError::Protocol { op, reason };
    let text = std::str::from_utf8(bytes)
        .map_err(|e| protocol(format!("the answer is not UTF-8: {e}")))?;
    let envelope: ResponseEnvelope = quick_xml::de::from_str(text)
        .map_err(|e| protocol(format!("not a SOAP answer to {op}: {e}")))?;
    let (answered, code) = match envelope.body.content {
        ResponseContent::Fault(f) => return Ok(Answer::Fault(f)),
        ResponseContent::GetUrlsResponse(r) => {
            return if op == "GetURLS" {
                Ok(Answer::Strings(r.result.unwrap_or_default().items))
            } else {
                Err(protocol("an answer to GetURLS".into()))
            };
        }
        ResponseContent::LoginResponse(r) => ("Login", r),
        ResponseContent::SubmitDeltaFileRequestResponse(r) => ("SubmitDeltaFileRequest", r),
        ResponseContent::GetDeltaFileRequestStatusResponse(r) => ("GetDeltaFileRequestStatus", r),
        ResponseContent::GetDeltaFileUrlResponse(r) => ("GetDeltaFileUrl", r),
        ResponseContent::GetDncFileByUrlResponse(r) => ("GetDNCFileByUrl", r),
    };
    if answered != op {
        return Err(protocol(format!("an answer to {answered}")));
    }
    let result = code
        .result
        .ok_or_else(|| protocol(format!("no {op}Result element")))?;
    Ok(Answer::Code(ResultCode::parse(&result.code), result.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_namespaced_soap_envelopes() {
        let op = Operation::Login {
            xmlns: NAMESPACE,
            company_id: "12345-678".into(),
            password: "p<&>w".into(),
            user_type: "Downloader".into(),
            certify: "Agree",
        };
        let xml = request(&op).unwrap();
        assert!(xml.starts_with(r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><Login xmlns="https://telemarketing.donotcall.gov/DownloadSvc/"><strCoID>12345-678</strCoID>"#), "{xml}");
        // Escaped by the library, not by hand.
        assert!(
            xml.contains("<strCoPwd>p&lt;&amp;&gt;w</strCoPwd>"),
            "{xml}"
        );
        assert!(
            xml.ends_with("<enumCertify>Agree</enumCertify></Login></soap:Body></soap:Envelope>")
        );
        assert_eq!(
            op.action(),
            "https://telemarketing.donotcall.gov/DownloadSvc/Login"
        );
        let urls = Operation::GetUrls {
            xmlns: NAMESPACE,
            file_format: "Flat",
            session: "s".into(),
            company_id: "c".into(),
        };
        assert!(request(&urls).unwrap().contains("<GetURLS xmlns="));
    }

    #[test]
    fn answers_are_read_by_local_name_whatever_the_prefix() {
        let login = br#"<?xml version="1.0" encoding="utf-8"?>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <env:Body><LoginResponse xmlns="https://telemarketing.donotcall.gov/DownloadSvc/">
    <LoginResult><code>LoginOK</code><value>9b2f-guid</value></LoginResult>
  </LoginResponse></env:Body></env:Envelope>"#;
        assert_eq!(
            response("Login", login).unwrap(),
            Answer::Code(ResultCode::LoginOk, "9b2f-guid".into())
        );
        // The answer to another operation is not taken for this one's.
        assert!(matches!(
            response("SubmitDeltaFileRequest", login),
            Err(FtcError::Protocol { .. })
        ));
        let urls = br#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetURLSResponse xmlns="https://telemarketing.donotcall.gov/DownloadSvc/"><GetURLSResult><string>https://x/2026-8-5_818_a.txt.zip</string><string>714:File was already downloaded Today.Only one download allowed per day per file</string></GetURLSResult></GetURLSResponse></soap:Body></soap:Envelope>"#;
        let Answer::Strings(s) = response("GetURLS", urls).unwrap() else {
            panic!()
        };
        assert_eq!(s.len(), 2);
        let fault = br#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>Server was unable to process request.</faultstring></soap:Fault></soap:Body></soap:Envelope>"#;
        let Answer::Fault(f) = response("Login", fault).unwrap() else {
            panic!()
        };
        assert!(f.is_server());
        // An unknown code is kept by name, never guessed.
        let odd = br#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetDeltaFileRequestStatusResponse xmlns="https://telemarketing.donotcall.gov/DownloadSvc/"><GetDeltaFileRequestStatusResult><code>Maintenance</code></GetDeltaFileRequestStatusResult></GetDeltaFileRequestStatusResponse></soap:Body></soap:Envelope>"#;
        assert_eq!(
            response("GetDeltaFileRequestStatus", odd).unwrap(),
            Answer::Code(ResultCode::Other("Maintenance".into()), String::new())
        );
        // Not XML at all (an HTML error page, a truncated body).
        assert!(response("Login", b"<html><body>503").is_err());
        assert!(response("Login", b"\xff\xfe").is_err());
    }
}
