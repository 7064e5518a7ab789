//! Custom rustls verifiers that bind a TLS peer to a NodeId.
//!
//! There is no certificate authority: a certificate is acceptable if it is a well-formed,
//! self-signed ed25519 certificate ([`super::cert::peer_key`]), and the peer is who its key says
//! it is, `NodeId = blake3(key)`. The dialling side ([`ServerVerifier`]) knows which NodeId it
//! wants and refuses any other ([`Expect::Id`]); on a first contact with a bootstrap address
//! ([`Expect::Any`]) it accepts any such certificate and the caller learns the NodeId from it.
//! The accepting side ([`ClientVerifier`]) requires a client certificate and accepts any such
//! certificate; the connection's NodeId is then read from it. Handshake signatures are checked
//! with the very key the NodeId was computed from (ed25519 only; TLS 1.3 only).

use std::sync::Arc;

use chat_overlay::NodeId;
use ed25519_dalek::{Signature, VerifyingKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

use super::cert::{CertError, peer_key};
use super::drops::{Drops, Reason};

/// Which peer a dial expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this NodeId.
    Id(NodeId),
    /// Any node (first contact with a bootstrap address).
    Any,
}

/// The NodeId a certificate proves, if it is acceptable at all.
pub fn cert_node_id(cert: &[u8]) -> Result<NodeId, CertError> {
    peer_key(cert).map(|k| crate::identity::node_id(&k))
}

fn bad_cert(drops: &Drops, e: CertError) -> Error {
    drops.count(Reason::BadCertificate);
    tracing::debug!(error = %e, "refused a peer certificate");
    Error::InvalidCertificate(match e {
        CertError::Malformed => CertificateError::BadEncoding,
        CertError::NotEd25519 => CertificateError::Other(rustls::OtherError(Arc::new(e))),
        CertError::BadSelfSignature => CertificateError::BadSignature,
    })
}

fn verify_handshake(
    drops: &Drops,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ));
    }
    let key: VerifyingKey = peer_key(cert).map_err(|e| bad_cert(drops, e))?;
    let sig = Signature::from_slice(dss.signature())
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadSignature))?;
    key.verify_strict(message, &sig)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadSignature))?;
    Ok(HandshakeSignatureValid::assertion())
}

fn no_tls12() -> Error {
    Error::PeerIncompatible(rustls::PeerIncompatible::Tls13RequiredForQuic)
}

/// Verifies the server's certificate on the dialling side.
#[derive(Debug)]
pub struct ServerVerifier {
    pub(super) expect: Expect,
    pub(super) drops: Arc<Drops>,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let id = cert_node_id(end_entity).map_err(|e| bad_cert(&self.drops, e))?;
        match self.expect {
            Expect::Id(want) if want != id => {
                self.drops.count(Reason::PeerIdMismatch);
                tracing::debug!(want = %want.short(), got = %id.short(), "peer presented another key than expected");
                Err(Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(no_tls12())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_handshake(&self.drops, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Verifies the client's certificate on the accepting side (a client certificate is required).
#[derive(Debug)]
pub struct ClientVerifier {
    pub(super) drops: Arc<Drops>,
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        cert_node_id(end_entity).map_err(|e| bad_cert(&self.drops, e))?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(no_tls12())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_handshake(&self.drops, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}
