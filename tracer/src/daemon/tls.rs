//! rustls configuration for the daemon's TCP listener: the server's
//! certificate, and client certificates that must chain to the client CA.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::DaemonArgs;

pub fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing certificates in {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", path.display());
    Ok(certs)
}

pub fn private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("reading a private key from {}", path.display()))
}

pub fn roots(path: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).with_context(|| format!("adding a CA from {}", path.display()))?;
    }
    Ok(roots)
}

/// The acceptor for tcp://; None when the operator asked for `--insecure`
/// and gave no certificates.
pub fn acceptor(args: &DaemonArgs) -> anyhow::Result<Option<TlsAcceptor>> {
    let (Some(cert), Some(key), Some(ca)) =
        (&args.tls_cert_file, &args.tls_key_file, &args.tls_client_ca_file)
    else {
        anyhow::ensure!(
            args.insecure,
            "tcp:// needs --tls-cert-file, --tls-key-file and --tls-client-ca-file (mutual TLS), or --insecure"
        );
        return Ok(None);
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider.clone())
        .build()
        .context("the client CA")?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certificates(cert)?, private_key(key)?)
        .context("the server certificate and key")?;
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}
