//! Discovery: provider metadata with the fields `openidconnect` does not model itself.

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, EndSessionUrl, ProviderMetadata, RevocationUrl};
use serde::{Deserialize, Serialize};
use url::Url;

/// Discovery fields beyond OIDC Discovery core: RFC 7009 revocation, RP-initiated logout and
/// RFC 9207 `iss` in authorization responses.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraProviderMetadata {
    /// RFC 7009 revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<RevocationUrl>,
    /// RFC 7662 introspection endpoint (recorded, not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<Url>,
    /// OIDC RP-Initiated Logout endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<EndSessionUrl>,
    /// RFC 9207: the provider puts `iss` into every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 8414 PKCE methods; when listed, `S256` must be among them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}
impl AdditionalProviderMetadata for ExtraProviderMetadata {}

/// Provider metadata as discovered.
pub(crate) type DiscoveredMetadata = ProviderMetadata<
    ExtraProviderMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The provider's endpoints and capabilities (non-secret; fine to show or log).
#[derive(Clone, Debug, Serialize)]
pub struct ProviderInfo {
    /// The issuer, exactly as discovered and compared.
    pub issuer: Url,
    /// Authorization endpoint (opened in the system browser).
    pub authorization_endpoint: Url,
    /// Token endpoint.
    pub token_endpoint: Url,
    /// JWKS location.
    pub jwks_uri: Url,
    /// RFC 7009 revocation endpoint, if offered (from OIDC discovery, or else from the RFC 8414
    /// authorization server metadata).
    pub revocation_endpoint: Option<Url>,
    /// RFC 7662 introspection endpoint, if offered (same sources as `revocation_endpoint`).
    pub introspection_endpoint: Option<Url>,
    /// RP-initiated logout endpoint, if offered.
    pub end_session_endpoint: Option<Url>,
    /// RFC 9207: the callback must carry `iss`.
    pub iss_parameter_supported: bool,
    /// Whether the provider lists `S256` (we send it regardless and never fall back to `plain`).
    pub s256_advertised: bool,
}

/// The fields of RFC 8414 authorization server metadata read when OIDC discovery lacks a
/// revocation endpoint (some providers publish it only there).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Rfc8414Metadata {
    /// Must equal the configured issuer, or the document is ignored.
    pub issuer: String,
    /// RFC 7009 revocation endpoint.
    #[serde(default)]
    pub revocation_endpoint: Option<Url>,
    /// RFC 7662 introspection endpoint.
    #[serde(default)]
    pub introspection_endpoint: Option<Url>,
}

/// Where RFC 8414 metadata lives for `issuer` (§3.1): `/.well-known/oauth-authorization-server`
/// inserted between the host and the issuer's path, e.g. `https://id.example/realms/x` →
/// `https://id.example/.well-known/oauth-authorization-server/realms/x`.
pub(crate) fn rfc8414_metadata_url(issuer: &Url) -> Url {
    let path = issuer.path().trim_end_matches('/');
    let mut url = issuer.clone();
    url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    url.set_query(None);
    url.set_fragment(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_location_inserts_the_well_known_part_before_the_issuer_path() {
        let at = |issuer: &str| {
            rfc8414_metadata_url(&Url::parse(issuer).unwrap())
                .as_str()
                .to_owned()
        };
        assert_eq!(
            at("https://id.example.com"),
            "https://id.example.com/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            at("http://127.0.0.1:8400/"),
            "http://127.0.0.1:8400/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            at("https://id.example.com/realms/confab"),
            "https://id.example.com/.well-known/oauth-authorization-server/realms/confab",
            "RFC 8414 §3.1: inserted between host and path, not appended"
        );
        assert_eq!(
            at("https://id.example.com/tenant/"),
            "https://id.example.com/.well-known/oauth-authorization-server/tenant"
        );
    }
}
