//! TLS for the IRC front door: `irc.tls_cert` (a PEM certificate chain) and `irc.tls_key` (its
//! PEM private key) make the listener speak TLS only (1.2 and 1.3, rustls with ring), which
//! is what lets it listen off loopback. The files are read once at start.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::IrcError;

/// A TLS acceptor for the certificate chain in `cert` and the key in `key`.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, IrcError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| IrcError::Tls(format!("cannot read {}: {e}", p.display())))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            IrcError::Tls(format!(
                "{}: not a PEM certificate chain: {e}",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(IrcError::Tls(format!(
            "{}: no certificate in it",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| IrcError::Tls(format!("{}: not a PEM private key: {e}", key.display())))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| IrcError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| {
        IrcError::Tls(format!(
            "the certificate and key do not make a TLS identity: {e}"
        ))
    })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PEM text of `der` under `label` (rcgen is built here without its `pem` feature).
    fn pem(label: &str, der: &[u8]) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    }

    #[test]
    fn a_pem_pair_makes_an_acceptor_and_junk_is_refused_with_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
        let (cert, key, junk) = (
            dir.path().join("c.pem"),
            dir.path().join("k.pem"),
            dir.path().join("j.pem"),
        );
        std::fs::write(&cert, pem("CERTIFICATE", ck.cert.der())).expect("write");
        std::fs::write(&key, pem("PRIVATE KEY", &ck.signing_key.serialize_der())).expect("write");
        std::fs::write(&junk, "not pem").expect("write");
        assert!(acceptor(&cert, &key).is_ok());
        let e = acceptor(&junk, &key).err().expect("refused").to_string();
        assert!(e.contains("j.pem"), "{e}");
        let e = acceptor(&cert, &junk).err().expect("refused").to_string();
        assert!(e.contains("j.pem"), "{e}");
        let e = acceptor(&cert, &dir.path().join("missing"))
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("cannot read"), "{e}");
    }
}
