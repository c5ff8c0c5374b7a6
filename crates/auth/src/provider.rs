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
    /// RFC 7009 revocation endpoint, if offered.
    pub revocation_endpoint: Option<Url>,
    /// RP-initiated logout endpoint, if offered.
    pub end_session_endpoint: Option<Url>,
    /// RFC 9207: the callback must carry `iss`.
    pub iss_parameter_supported: bool,
    /// Whether the provider lists `S256` (we send it regardless and never fall back to `plain`).
    pub s256_advertised: bool,
}
