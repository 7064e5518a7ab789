//! TLS and QUIC configuration: TLS 1.3 only, ALPN `chatd/1`, ring as the crypto provider, the
//! node's self-signed certificate on both sides, the identity-binding verifiers, no session
//! resumption (every connection is authenticated by a full handshake), and the QUIC limits.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{IdleTimeout, VarInt};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::drops::Drops;
use super::verify::{ClientVerifier, Expect, ServerVerifier};

/// The application protocol both sides must speak.
pub const ALPN: &[u8] = b"chatd/1";
/// The server name sent when dialling (ignored by the verifiers: the NodeId is the identity).
pub const SERVER_NAME: &str = "chatd";
/// Incoming streams a peer may have open at once on one connection.
pub const MAX_STREAMS: u32 = 64;
/// Packets a peer may receive before it must acknowledge at once (QUIC ACK frequency
/// extension); below this it waits up to its `max_ack_delay` (25 ms). The overlay's own
/// answers (held up to 20 ms, `chord/replies.rs`) then carry the acknowledgements, instead of
/// a packet of their own every second message.
const ACK_ELICITING_THRESHOLD: u32 = 16;
/// Receive window of every stream (frames' and bulk), bytes: what one stream may have in flight
/// unread. It bounds a bulk stream's throughput at window / RTT (2 MiB at 20 ms: 100 MiB/s).
pub const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
/// Bidirectional (bulk) streams a peer may open at once on one connection, beyond the
/// transport's own per-peer bound: the excess reaches the accept loop and is refused with a
/// reset code, rather than waiting unseen in the peer's QUIC stream credit.
pub const BULK_STREAMS_SLACK: u32 = 4;
/// Send buffer kept for the frames beside the bulk streams' full windows, in stream windows.
const FRAME_HEADROOM_WINDOWS: u64 = 4;

/// The bidirectional stream limit per connection for `per_peer` bulk streams, and the send
/// window: every bulk stream a peer lets us open may fill its whole stream window (its unread
/// bytes count against our send buffer until acknowledged), and the frames still find
/// [`FRAME_HEADROOM_WINDOWS`] windows of room, so a saturating transfer never blocks a frame's
/// write. (The connection-level receive window stays unlimited, quinn's default: each stream's
/// window bounds what a peer may send.)
pub fn windows(per_peer: usize) -> (u32, u64) {
    let bidi = u32::try_from(per_peer)
        .unwrap_or(u32::MAX)
        .saturating_add(BULK_STREAMS_SLACK);
    let send = (u64::from(bidi) + FRAME_HEADROOM_WINDOWS) * u64::from(STREAM_WINDOW);
    (bidi, send)
}

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen could not make the certificate.
    #[error("cannot make the node certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// quinn refused the TLS configuration.
    #[error("QUIC TLS configuration: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}

/// Everything needed to make server and client configurations.
#[derive(Debug)]
pub struct Tls {
    provider: Arc<CryptoProvider>,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    transport: Arc<quinn::TransportConfig>,
    drops: Arc<Drops>,
}

impl Tls {
    /// TLS material for the node `key`, with the QUIC limits of `cfg`.
    pub fn new(key: &SigningKey, cfg: &super::Config, drops: Arc<Drops>) -> Result<Tls, TlsError> {
        let (cert, key) = super::cert::own_certificate(key)?;
        let mut t = quinn::TransportConfig::default();
        let (bidi, send_window) = windows(cfg.bulk.per_peer);
        t.max_idle_timeout(IdleTimeout::try_from(cfg.idle_timeout).ok())
            .keep_alive_interval(Some(cfg.keepalive))
            .max_concurrent_bidi_streams(VarInt::from_u32(bidi))
            .max_concurrent_uni_streams(VarInt::from_u32(MAX_STREAMS))
            .stream_receive_window(VarInt::from_u32(STREAM_WINDOW))
            .send_window(send_window)
            .send_fairness(true)
            .datagram_receive_buffer_size(None)
            .ack_frequency_config(Some({
                let mut a = quinn::AckFrequencyConfig::default();
                a.ack_eliciting_threshold(VarInt::from_u32(ACK_ELICITING_THRESHOLD));
                a
            }));
        Ok(Tls {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            cert,
            key,
            transport: Arc::new(t),
            drops,
        })
    }

    /// The accepting side: requires a client certificate, verified by [`ClientVerifier`].
    pub fn server_config(&self) -> Result<quinn::ServerConfig, TlsError> {
        let verifier = Arc::new(ClientVerifier {
            drops: self.drops.clone(),
        });
        let mut tls = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        tls.send_tls13_tickets = 0;
        tls.max_early_data_size = 0;
        let quic = QuicServerConfig::try_from(tls)?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
        config.transport_config(self.transport.clone());
        Ok(config)
    }

    /// The dialling side, for one dial that expects `expect`.
    pub fn client_config(&self, expect: Expect) -> Result<quinn::ClientConfig, TlsError> {
        let verifier = Arc::new(ServerVerifier {
            expect,
            drops: self.drops.clone(),
        });
        let mut tls = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(vec![self.cert.clone()], self.key.clone_key())?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        tls.resumption = rustls::client::Resumption::disabled();
        tls.enable_early_data = false;
        let quic = QuicClientConfig::try_from(tls)?;
        let mut config = quinn::ClientConfig::new(Arc::new(quic));
        config.transport_config(self.transport.clone());
        Ok(config)
    }
}
