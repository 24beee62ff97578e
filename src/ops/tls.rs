//! TLS for the HTTP side, from PEM files: the server's certificate chain
//! and key (`http.tls_cert`, `http.tls_key`), and the CA a member trusts
//! when it asks another over `https://` (`http.tls_ca`).
//!
//! rustls with the `ring` provider; HTTP/1.1 only, as the server speaks.
//! Every failure is a [`ConfigError`] naming the field and the file, so a
//! bad or missing PEM stops start-up.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::config::{ConfigError, Http};

fn error(field: &str, path: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError { field: field.into(), message: format!("{path}: {message}") }
}

/// ring, not aws-lc-rs: no C toolchain beyond `cc` and a short build.
/// rustls 0.23.48 deprecates it for lacking post-quantum key exchange,
/// which members on one network and their operators' browsers do without.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate of a PEM file; none is an error.
fn certificates(field: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    if !Path::new(path).is_file() {
        return Err(error(field, path, "no such file"));
    }
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(field, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(field, path, e))?;
    if certs.is_empty() {
        return Err(error(field, path, "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file"));
    }
    Ok(certs)
}

/// The server's TLS, or `None` when `http.tls_cert` is not set.
pub fn server_config(http: &Http) -> Result<Option<Arc<ServerConfig>>, ConfigError> {
    if !http.tls() {
        return Ok(None);
    }
    let (cert, key) = (http.tls_cert.trim(), http.tls_key.trim());
    let chain = certificates("http.tls_cert", cert)?;
    if !Path::new(key).is_file() {
        return Err(error("http.tls_key", key, "no such file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| error("http.tls_key", key, format!("no PEM private key in the file ({e})")))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| error("http.tls_cert", cert, e))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| error("http.tls_key", key, format!("does not go with http.tls_cert ({e})")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// What a member trusts when it asks another over `https://`: the CAs of
/// `http.tls_ca`; `None` when it is not set (then only `http://` members
/// can be asked).
pub fn client_config(http: &Http) -> Result<Option<Arc<ClientConfig>>, ConfigError> {
    let ca = http.tls_ca.trim();
    if ca.is_empty() {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    for cert in certificates("http.tls_ca", ca)? {
        roots.add(cert).map_err(|e| error("http.tls_ca", ca, e))?;
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| error("http.tls_ca", ca, e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}
