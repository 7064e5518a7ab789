//! Tests of the frame format: bounds, round trips, validation, and what a node does with
//! services, versions, message types and fields it does not know.

use std::net::{Ipv6Addr, SocketAddr};

use super::*;
use crate::broadcast::{Envelope, HopState, MAX_DEPTH, MAX_DIGEST, MAX_PAYLOAD};
use crate::ring::wire::ErrorCode;

fn peer(i: u8) -> Peer {
    Peer {
        id: NodeId([i; 32]),
        addr: SocketAddr::from((Ipv6Addr::new(0xfd00, 1, 2, 3, 4, 5, 6, u16::from(i)), 65535)),
    }
}

fn round_trip(m: &Message) -> Vec<u8> {
    let bytes = encode(m).expect("encodes");
    assert!(bytes.len() <= MAX_MESSAGE_BYTES, "{} bytes", bytes.len());
    assert_eq!(&decode(&bytes).expect("decodes"), m);
    bytes
}

/// A frame written by hand: `[service, version, call, id, body]`.
fn frame<T: Serialize>(service: u16, version: u16, call: u8, id: u64, body: &T) -> Vec<u8> {
    let mut inner = Vec::new();
    ciborium::into_writer(body, &mut inner).expect("encodes");
    let mut buf = Vec::new();
    let f = FrameRef(service, version, call, id, serde_bytes::Bytes::new(&inner));
    ciborium::into_writer(&f, &mut buf).expect("encodes");
    buf
}

#[test]
fn largest_message_fits_the_bound_and_round_trips() {
    let list: Vec<Peer> = (1..=MAX_PEER_LIST as u8).map(peer).collect();
    round_trip(&Message::Response {
        id: u64::MAX,
        body: Response::Ring(RingResponse::State {
            pred: Some(peer(0xff)),
            succs: list.clone(),
            fingers: list.clone(),
            sample: list[..rwire::MAX_SAMPLE].to_vec(),
        }),
    });
}

#[test]
fn the_largest_records_messages_fit_the_bound_and_round_trip() {
    use crate::records::wire::{MAX_HASHES, RecordsNotice, RecordsResponse, batches};
    use crate::records::{Hash, Kind, MAX_KEY, MAX_VALUE, Record, Value};
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    // Records as large as the policy allows (a 64-byte key, a full value), in the batches the
    // holders send.
    let big: Vec<Record> = (0..40)
        .map(|n| {
            Record::sign(
                Kind::Mailbox,
                vec![n; MAX_KEY],
                Value::Data(vec![n; MAX_VALUE]),
                &key,
                u64::MAX - u64::from(n),
                u64::MAX,
                u64::MAX,
            )
        })
        .collect();
    let batch = batches(big).remove(0);
    let list: Vec<Peer> = (1..=MAX_PEER_LIST as u8).map(peer).collect();
    round_trip(&Message::Response {
        id: u64::MAX,
        body: Response::Records(RecordsResponse::Got {
            records: batch.clone(),
            replicas: list,
            more: Some(Hash([0xff; 32])),
            primary: true,
        }),
    });
    round_trip(&Message::Notice(Notice::Records(RecordsNotice::Store(
        batch,
    ))));
    round_trip(&Message::Response {
        id: u64::MAX,
        body: Response::Records(RecordsResponse::Sync {
            hashes: Some(vec![Hash([0xff; 32]); MAX_HASHES]),
            upto: Some(NodeId([0xff; 32])),
        }),
    });
}

#[test]
fn every_kind_of_message_round_trips() {
    let env = Envelope {
        origin: NodeId([7; 32]),
        seq: 3,
        payload: b"hi".to_vec(),
    };
    for m in [
        Message::Request {
            id: 1,
            body: Request::Ring(RingRequest::FindSuccessor {
                key: NodeId([2; 32]),
            }),
        },
        Message::Request {
            id: 2,
            body: Request::Broadcast(BroadcastRequest::Status {
                id: env.id(),
                origin: env.origin,
                seq: 3,
            }),
        },
        Message::Response {
            id: 2,
            body: Response::Broadcast(BroadcastResponse::Status(HopState::Working)),
        },
        Message::Response {
            id: 3,
            body: Response::Ring(RingResponse::Error(ErrorCode::Busy)),
        },
        Message::Response {
            id: 4,
            body: Response::Unsupported,
        },
        Message::Notice(Notice::Ring(RingNotice::Notify)),
        Message::Notice(Notice::Broadcast(Bcast::Repair { id: env.id(), env })),
        Message::Notice(Notice::Other(Opaque {
            service: TEST_ECHO,
            version: 1,
            body: b"anything".to_vec(),
        })),
    ] {
        round_trip(&m);
    }
}

#[test]
fn largest_broadcast_messages_fit_the_bound() {
    let env = Envelope {
        origin: NodeId([0xff; 32]),
        seq: u64::MAX,
        payload: vec![0xff; MAX_PAYLOAD],
    };
    let data = Bcast::Data {
        hop: u64::MAX,
        limit: NodeId([0xff; 32]),
        depth: MAX_DEPTH,
        id: env.id(),
        env,
    };
    let digest = Bcast::Digest {
        heads: (0..MAX_DIGEST)
            .map(|_| (NodeId([0xff; 32]), u64::MAX))
            .collect(),
        complete: true,
        reply: true,
    };
    for b in [data, digest] {
        assert_eq!(b.validate(), Ok(()));
        round_trip(&Message::Notice(Notice::Broadcast(b)));
    }
}

#[test]
fn broadcast_validation_rejects_bad_ids_and_sizes() {
    let env = Envelope {
        origin: NodeId([3; 32]),
        seq: 1,
        payload: b"hi".to_vec(),
    };
    let mut wrong = env.id();
    wrong.0[0] ^= 1;
    let bad_id = Bcast::Repair { id: wrong, env };
    assert_eq!(bad_id.validate(), Err(InvalidMessage::BadId));
    let big = Envelope {
        origin: NodeId([3; 32]),
        seq: 1,
        payload: vec![0; MAX_PAYLOAD + 1],
    };
    let oversized = Bcast::Data {
        hop: 1,
        limit: NodeId([9; 32]),
        depth: 1,
        id: big.id(),
        env: big,
    };
    assert_eq!(oversized.validate(), Err(InvalidMessage::Oversized));
}

#[test]
fn validation_rejects_bad_lists() {
    let sender = NodeId([0; 32]);
    let too_long = RingNotice::Leaving {
        pred: None,
        succs: (0..=MAX_PEER_LIST as u8).map(|i| peer(i + 1)).collect(),
    };
    assert!(matches!(
        too_long.validate(&sender),
        Err(InvalidMessage::ListTooLong(_))
    ));
    let backwards = RingResponse::State {
        pred: None,
        succs: vec![peer(9), peer(3)],
        fingers: vec![],
        sample: vec![],
    };
    assert_eq!(
        backwards.validate(&sender),
        Err(InvalidMessage::NotInRingOrder)
    );
    let me_as_pred = RingNotice::Leaving {
        pred: Some(peer(0)),
        succs: vec![],
    };
    assert_eq!(
        me_as_pred.validate(&sender),
        Err(InvalidMessage::SelfReference)
    );
    let empty_found = RingResponse::Found { succs: vec![] };
    assert_eq!(
        empty_found.validate(&sender),
        Err(InvalidMessage::OutOfRange)
    );
    let good = RingResponse::State {
        pred: Some(peer(7)),
        succs: vec![peer(3), peer(9)],
        fingers: vec![],
        sample: vec![peer(5)],
    };
    assert_eq!(good.validate(&sender), Ok(()));
}

#[test]
fn garbage_does_not_decode() {
    for junk in [&[0xffu8, 0x00, 0x13][..], &[], &[0x82, 0x01]] {
        assert!(decode(junk).is_err());
    }
    // A header with a call kind that does not exist is garbage too.
    assert!(decode(&frame(RING, 1, 9, 0, &RingNotice::Notify)).is_err());
}

#[test]
fn an_unknown_service_is_kept_opaque() {
    let bytes = frame(0x4242, 3, REQUEST, 77, &"a future request");
    match decode(&bytes).expect("decodes") {
        Message::Request {
            id: 77,
            body: Request::Other(o),
        } => {
            assert_eq!((o.service, o.version), (0x4242, 3));
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// What a later version of the ring service might send: a message type and a field this
/// build does not have.
#[derive(Serialize)]
enum FutureRingNotice {
    Notify,
    Leaving {
        pred: Option<Peer>,
        succs: Vec<Peer>,
        reason: String,
    },
    Gossip {
        rumour: u64,
    },
}

#[test]
fn an_unknown_message_type_of_a_known_service_is_kept_opaque() {
    let bytes = frame(
        RING,
        rwire::VERSION,
        NOTICE,
        0,
        &FutureRingNotice::Gossip { rumour: 1 },
    );
    assert!(matches!(
        decode(&bytes),
        Ok(Message::Notice(Notice::Other(Opaque { service: RING, .. })))
    ));
    // The same type under another version of the service is not read either.
    let bytes = frame(
        RING,
        rwire::VERSION + 1,
        NOTICE,
        0,
        &FutureRingNotice::Notify,
    );
    assert!(matches!(
        decode(&bytes),
        Ok(Message::Notice(Notice::Other(_)))
    ));
    assert!(matches!(
        decode(&frame(
            RING,
            rwire::VERSION,
            NOTICE,
            0,
            &FutureRingNotice::Notify
        )),
        Ok(Message::Notice(Notice::Ring(RingNotice::Notify)))
    ));
}

#[test]
fn an_unknown_field_is_ignored() {
    let future = FutureRingNotice::Leaving {
        pred: Some(peer(4)),
        succs: vec![peer(5)],
        reason: "maintenance".into(),
    };
    let bytes = frame(RING, rwire::VERSION, NOTICE, 0, &future);
    assert_eq!(
        decode(&bytes).expect("decodes"),
        Message::Notice(Notice::Ring(RingNotice::Leaving {
            pred: Some(peer(4)),
            succs: vec![peer(5)],
        }))
    );
}

/// The ring messages as v0.1.0 declared them, before the sample (issue 37).
mod v010 {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    pub enum RingRequest {
        Ping,
        GetState { fingers: bool },
        FindSuccessor { key: NodeId },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    pub enum RingResponse {
        Pong,
        State {
            pred: Option<Peer>,
            succs: Vec<Peer>,
            fingers: Vec<Peer>,
        },
    }
}

fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
    let mut b = Vec::new();
    ciborium::into_writer(v, &mut b).expect("encodes");
    b
}

fn uncbor<T: serde::de::DeserializeOwned>(b: &[u8]) -> T {
    ciborium::from_reader(b).expect("decodes")
}

#[test]
fn the_sample_is_invisible_to_v010_nodes_and_absent_in_their_frames() {
    // A v0.1.0 node reads a new node's sample request and answer, the sample ignored.
    let ask = RingRequest::GetState {
        fingers: false,
        sample: 4,
    };
    assert_eq!(
        uncbor::<v010::RingRequest>(&cbor(&ask)),
        v010::RingRequest::GetState { fingers: false }
    );
    let answer = RingResponse::State {
        pred: Some(peer(1)),
        succs: vec![peer(2)],
        fingers: vec![],
        sample: vec![peer(7), peer(9)],
    };
    assert_eq!(
        uncbor::<v010::RingResponse>(&cbor(&answer)),
        v010::RingResponse::State {
            pred: Some(peer(1)),
            succs: vec![peer(2)],
            fingers: vec![],
        }
    );
    // Without a sample the encoding is v0.1.0's byte for byte; v0.1.0 frames read as "no
    // sample asked / none given".
    let old_ask = v010::RingRequest::GetState { fingers: true };
    let new_ask = RingRequest::GetState {
        fingers: true,
        sample: 0,
    };
    assert_eq!(cbor(&new_ask), cbor(&old_ask));
    assert_eq!(uncbor::<RingRequest>(&cbor(&old_ask)), new_ask);
    let old_answer = v010::RingResponse::State {
        pred: None,
        succs: vec![peer(3)],
        fingers: vec![peer(4)],
    };
    let new_answer = RingResponse::State {
        pred: None,
        succs: vec![peer(3)],
        fingers: vec![peer(4)],
        sample: vec![],
    };
    assert_eq!(cbor(&new_answer), cbor(&old_answer));
    assert_eq!(uncbor::<RingResponse>(&cbor(&old_answer)), new_answer);
}

#[test]
fn a_sample_over_its_bound_is_invalid() {
    let sender = NodeId([0; 32]);
    let long = RingResponse::State {
        pred: None,
        succs: vec![],
        fingers: vec![],
        sample: (1..=rwire::MAX_SAMPLE as u8 + 1).map(peer).collect(),
    };
    assert_eq!(
        long.validate(&sender),
        Err(InvalidMessage::ListTooLong(rwire::MAX_SAMPLE + 1))
    );
}
