//! Test certificates made at test time (rcgen): a CA and a server certificate it signed, and a
//! TLS acceptor serving them. Shared by the transport's unit tests (`src/transport.rs`) and
//! the integration tests.

use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A test CA and a server certificate it signed, with the server's key.
pub struct TestPki {
    /// The CA's certificate: what a client must trust.
    pub ca: CertificateDer<'static>,
    server: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl TestPki {
    /// A new CA, and a server certificate for `names` (DNS names or IP addresses).
    pub fn new(names: &[&str]) -> Self {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Confab test CA");
        let ca = ca.self_signed(&ca_key).expect("CA certificate");
        let key = rcgen::KeyPair::generate().expect("server key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let server = rcgen::CertificateParams::new(names)
            .expect("server params")
            .signed_by(&key, &ca, &ca_key)
            .expect("server certificate");
        Self {
            ca: ca.der().clone(),
            server: server.der().clone(),
            key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        }
    }

    /// A TLS server side presenting the server certificate.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![self.server.clone()], self.key.clone_key())
        .expect("server certificate");
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}
