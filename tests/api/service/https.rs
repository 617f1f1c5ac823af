//! HTTPS as a user runs it: `tls: self_signed` prints a fingerprint, and a client that
//! pins it is served; certificate files are read again on reload, without touching the
//! cameras.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Accepts exactly the certificate whose SHA-256 fingerprint (`AB:CD:...`) it was given,
/// as a user who checked the printed fingerprint would.
#[derive(Debug)]
struct Pinned(String, Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if camfleet::tls::fingerprint(end_entity) == self.0 {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the pinned certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.1.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.1.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.1.signature_verification_algorithms.supported_schemes()
    }
}

/// `GET path` over HTTPS, trusting only the certificate with `fingerprint`; the status
/// and body, or the handshake's error.
async fn get_pinned(
    addr: SocketAddr,
    fingerprint: &str,
    path: &str,
) -> Result<(u16, String), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned(fingerprint.to_string(), provider)))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
        addr.port()
    );
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    let _ = tls.read_to_end(&mut reply).await;
    let text = String::from_utf8_lossy(&reply).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, text))
}

fn fingerprint_in(line: &str) -> String {
    line.split("(SHA-256): ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no fingerprint in {line}"))
        .trim()
        .to_string()
}

/// camfleet with `tls: self_signed` and one camera `a`, and the fingerprint it logged.
fn self_signed_server(dir: &Path) -> (Process, String) {
    write_config(
        dir,
        &format!(
            "server:\n  tls: self_signed\ncameras:\n{}",
            synthetic("a", 10)
        ),
    );
    let process = Process::start(dir, None);
    let fingerprint = fingerprint_in(&process.log_line("HTTPS certificate fingerprint"));
    (process, fingerprint)
}

#[actix_rt::test]
async fn a_self_signed_certificate_is_served_to_a_client_that_pins_its_fingerprint() {
    let dir = scratch_dir("https-self-signed");
    let (process, fingerprint) = self_signed_server(&dir);
    process.log_line("serving on https://");
    let (status, body) = get_pinned(process.addr, &fingerprint, "/api/cameras")
        .await
        .unwrap();
    assert!(
        status == 200 && body.contains("\"camera_id\":\"a\""),
        "{body}"
    );
    // Any other certificate is refused by the client: the pin is what it trusts.
    let wrong = fingerprint.replace(
        &fingerprint[..2],
        if &fingerprint[..2] == "00" {
            "11"
        } else {
            "00"
        },
    );
    assert!(get_pinned(process.addr, &wrong, "/api/cameras")
        .await
        .is_err());
    // The key is kept for the service alone, and the same certificate serves after a restart.
    let key = dir.join("state/tls/key.pem");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let addr = process.addr;
    drop(process);
    let process = Process::start(&dir, Some(addr));
    assert_eq!(
        fingerprint_in(&process.log_line("HTTPS certificate fingerprint")),
        fingerprint
    );
}

#[actix_rt::test]
async fn a_renewed_certificate_is_picked_up_on_reload_and_the_cameras_run_on() {
    let dir = scratch_dir("https-reload");
    let write_certificate = |name: &str| {
        let made =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string(), name.to_string()])
                .unwrap();
        std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    };
    write_certificate("first.example");
    let yaml = format!(
        "server:\n  tls: {{cert: {}, key: {}}}\ncameras:\n{}",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display(),
        synthetic("a", 10)
    );
    write_config(&dir, &yaml);
    let process = Process::start(&dir, None);
    let first = fingerprint_in(&process.log_line("HTTPS certificate fingerprint"));
    let frames = |body: &str| -> u64 {
        let cams: serde_json::Value =
            serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        cams[0]["frames_captured"].as_u64().unwrap()
    };
    let (_, body) = get_pinned(process.addr, &first, "/api/cameras")
        .await
        .unwrap();
    let before = frames(&body);

    write_certificate("second.example");
    write_config(&dir, &yaml);
    let second = fingerprint_in(&process.log_line("HTTPS certificate fingerprint"));
    let reloaded = process.log_line("configuration reloaded");
    assert!(
        reloaded.contains("restarted=[]") && reloaded.contains("unchanged=1"),
        "{reloaded}"
    );
    assert_ne!(first, second);
    let (status, body) = get_pinned(process.addr, &second, "/api/cameras")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("\"state\":\"Streaming\""), "{body}");
    assert!(frames(&body) >= before, "camera a restarted: {body}");
    assert!(get_pinned(process.addr, &first, "/api/cameras")
        .await
        .is_err());
}

#[actix_rt::test]
async fn plain_http_on_the_https_port_is_redirected_or_refused_with_the_fix() {
    let dir = scratch_dir("https-plain");
    let (process, fingerprint) = self_signed_server(&dir);
    let addr = process.addr;
    // A browser given http:// is sent to the same URL over HTTPS.
    let (status, reply) = http_request(addr, None, "GET", "/cameras/a/snapshot.jpg", &[], "").await;
    assert_eq!(status, 308, "{reply}");
    assert!(
        reply.contains(&format!(
            "Location: https://{addr}/cameras/a/snapshot.jpg\r\n"
        )),
        "{reply}"
    );
    // A name the server does not answer to gets no redirect, only what to do.
    let (status, reply) =
        http_request(addr, None, "GET", "/", &[("Host", "evil.example")], "").await;
    assert_eq!(status, 400, "{reply}");
    assert!(!reply.contains("Location"), "{reply}");
    assert!(
        reply.contains("use https://") || reply.contains("with https://"),
        "{reply}"
    );
    // HTTPS on the same port is served as before.
    let (status, body) = get_pinned(addr, &fingerprint, "/api/cameras")
        .await
        .unwrap();
    assert!(
        status == 200 && body.contains("\"camera_id\":\"a\""),
        "{body}"
    );
}
