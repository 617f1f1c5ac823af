//! HTTPS: the certificate (PEM files, or one camfleet makes once for this host and keeps
//! in its state directory), and a rustls configuration whose certificate can be swapped
//! while the server runs, so a reload picks up a renewed certificate without a restart.
//!
//! Uses rustls with the `ring` provider, so the build needs no system packages.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::config::TlsSettings;

/// The directory under the state directory that keeps a self-made certificate.
pub const SELF_SIGNED_DIR: &str = "tls";

/// A certificate ready to serve, and its SHA-256 fingerprint for users to check.
pub struct Certificate {
    /// The chain and key as rustls serves them.
    pub key: Arc<CertifiedKey>,
    /// `AB:CD:...`, the SHA-256 of the leaf certificate, as browsers show it.
    pub fingerprint: String,
}

/// Reads the certificate `settings` name, making a self-signed one first if needed.
///
/// # Errors
/// What is wrong with the files and how to fix it.
pub fn load(
    settings: &TlsSettings,
    state_dir: Option<&Path>,
    listen: SocketAddr,
) -> Result<Certificate, String> {
    let (cert, key) = match settings {
        TlsSettings::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSettings::SelfSigned => {
            let dir = state_dir
                .ok_or("tls: self_signed keeps its certificate in the state directory; pass --state-dir")?
                .join(SELF_SIGNED_DIR);
            make_self_signed(&dir, listen)?
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .and_then(Iterator::collect)
        .map_err(|e| {
            format!(
                "cannot read the certificate {}: {e}; give a PEM file",
                cert.display()
            )
        })?;
    let Some(leaf) = chain.first() else {
        return Err(format!(
            "{} holds no certificate; give a PEM file with one",
            cert.display()
        ));
    };
    let fingerprint = fingerprint(leaf);
    let private = PrivateKeyDer::from_pem_file(&key).map_err(|e| {
        format!(
            "cannot read the key {}: {e}; give its PEM file",
            key.display()
        )
    })?;
    let signing = any_supported_type(&private)
        .map_err(|e| format!("the key {} cannot be used: {e}", key.display()))?;
    Ok(Certificate {
        key: Arc::new(CertifiedKey::new(chain, signing)),
        fingerprint,
    })
}

/// `AB:CD:...`, the SHA-256 of a certificate, as browsers show it.
#[must_use]
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Makes a certificate for this host's name, `localhost` and the listen address, once,
/// keeping it in `dir` (the key readable by camfleet alone); later starts reuse it.
fn make_self_signed(dir: &Path, listen: SocketAddr) -> Result<(PathBuf, PathBuf), String> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Some(host) = crate::config::this_host_name() {
        names.push(host);
    }
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    names.dedup();
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("cannot make a self-signed certificate: {e}"))?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes())?;
    fs::write(&cert, made.cert.pem())
        .map_err(|e| format!("cannot write {}: {e}", cert.display()))?;
    Ok((cert, key))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Serves whichever certificate was handed to it last.
#[derive(Debug)]
struct Current(watch::Receiver<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.borrow().clone())
    }
}

/// A rustls configuration for `first`, and where to hand the certificates that replace it.
///
/// # Errors
/// When rustls refuses its own defaults (it does not).
pub fn server_config(
    first: &Certificate,
) -> Result<(rustls::ServerConfig, watch::Sender<Arc<CertifiedKey>>), String> {
    let (swap, current) = watch::channel(Arc::clone(&first.key));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS cannot start: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Current(current)));
    // HTTP/1.1 only: see crate::http::listener.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((config, swap))
}
