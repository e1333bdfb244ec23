//! rustls configuration for the daemon's TCP listener: the server's
//! certificate, and client certificates that must chain to the client CA.

use std::sync::Arc;

use anyhow::Context as _;
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use super::DaemonArgs;
use crate::pem::{certificates, private_key, roots};

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
