//! SigV4 signing of Bedrock requests with the maintained `aws-sigv4` crate, at a time the caller
//! chooses so that signatures are reproducible in tests.
//!
//! The URI is signed as sent: model ids are already percent-encoded in the path, and SigV4 for
//! every service but S3 encodes the path once more in the canonical request, as the AWS SDKs do.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request};

use crate::error::ProviderError;

/// Adds `x-amz-date`, `authorization` and, with temporary credentials, `x-amz-security-token`.
pub(crate) fn sign_request(
    request: &mut Request<Bytes>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), ProviderError> {
    let failed = |e: &dyn std::fmt::Display| {
        ProviderError::internal(format!("cannot sign the Bedrock request: {e}"))
    };
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| Ok((name.as_str(), value.to_str()?)))
        .collect::<Result<Vec<_>, http::header::ToStrError>>()
        .map_err(|e| failed(&e))?;
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    let (new_headers, _query) = instructions.into_parts();
    for header in new_headers {
        let name = HeaderName::from_static(header.name());
        let mut value = HeaderValue::try_from(header.value()).map_err(|e| failed(&e))?;
        value.set_sensitive(header.sensitive());
        request.headers_mut().insert(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// 2015-08-30T12:36:00Z, the time of AWS's published SigV4 test suite.
    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn suite_credentials() -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        )
    }

    #[test]
    fn matches_the_aws_test_suite_post_vanilla_vector() {
        let mut request = Request::post("https://example.amazonaws.com/")
            .body(Bytes::new())
            .unwrap();
        sign_request(
            &mut request,
            &suite_credentials(),
            "us-east-1",
            "service",
            suite_time(),
        )
        .unwrap();
        assert_eq!(request.headers()["x-amz-date"], "20150830T123600Z");
        assert_eq!(
            request.headers()["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }

    /// A Converse call whose model id holds `:` (sent as `%3A`, signed double-encoded). The
    /// expected signature was computed with an independent SigV4 implementation (Python's
    /// hashlib and hmac, following AWS's documented steps).
    #[test]
    fn matches_an_independent_vector_for_a_converse_call() {
        let mut request = Request::post(
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
        )
        .header("content-type", "application/json")
        .body(Bytes::from_static(br#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}"#))
        .unwrap();
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session-token-example".into()),
            None,
            "test",
        );
        sign_request(
            &mut request,
            &credentials,
            "us-east-1",
            "bedrock",
            suite_time(),
        )
        .unwrap();
        assert_eq!(
            request.headers()["x-amz-security-token"],
            "session-token-example"
        );
        assert_eq!(
            request.headers()["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, \
             Signature=0e2ec01589fa27cb5650e17f873da62ad6254b036ff8ce8cb0936edc118f1d5f"
        );
    }
}
