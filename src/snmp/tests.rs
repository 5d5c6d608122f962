//! Codec tests against traffic net-snmp produced, and properties of the codec.
//!
//! The hex constants are datagrams captured with `snmpget -d` /
//! `snmpbulkget -d` (net-snmp 5.9.3) against snmpd 5.9.3 with these users:
//! `createUser authNoPrivUser SHA "authpass123"`,
//! `createUser authPrivUser SHA "authpass123" AES "privpass123"`,
//! `createUser md5des MD5 "authpass123" DES "privpass123"`,
//! `createUser shaaes256c SHA "authpass123" AES-256-C "privpass123"`,
//! `createUser shaaes256 SHA "authpass123" AES-256 "privpass123"`.
//! Each v3 exchange is discovery request, discovery report, request, response
//! for `GET 1.3.6.1.2.1.1.5.0`, whose value was "vm".

use proptest::prelude::*;

use super::ber::Writer;
use super::client::encode_discovery;
use super::oid::Oid;
use super::pdu::{
    self, Message, PduHeader, PduType, ScopedData, Version, decode_message, decode_scoped_pdu,
};
use super::usm::{
    AuthProtocol, Envelope, KeyCache, PrivProtocol, SecurityLevel, UsmError, UsmUser, open_scoped,
    seal_message,
};
use super::value::{Value, VarBind};
use crate::secret::Secret;

const V3_SHA_DISCOVERY_REQUEST: &str = "303e0201033011020455e4af05020300ffe30401040201030410300e0400020100020100040004000400301404000400a00e0204011a23960201000201003000";
const V3_SHA_DISCOVERY_REPORT: &str = "30720201033011020455e4af05020300ffe304010002010304223020041180001f8880ce17c23c5864026b00000000020101020204610400040004003036041180001f8880ce17c23c5864026b000000000400a81f0204011a23960201000201003011300f060a2b060106030f0101040041011a";
const V3_SHA_REQUEST: &str = "3081890201033011020455e4af04020300ffe3040105020103043c303a041180001f8880ce17c23c5864026b0000000002010102020461040e617574684e6f5072697655736572040c1ab853b9c2cc287e1223365704003033041180001f8880ce17c23c5864026b000000000400a01c0204011a2395020100020100300e300c06082b060102010105000500";
const V3_SHA_RESPONSE: &str = "30818b0201033011020455e4af04020300ffe3040101020103043c303a041180001f8880ce17c23c5864026b0000000002010102020461040e617574684e6f5072697655736572040c13ee9899f04c036a71bb45e304003035041180001f8880ce17c23c5864026b000000000400a21e0204011a23950201000201003010300e06082b060102010105000402766d";
const V3_SHA_AES_DISCOVERY_REQUEST: &str = "303e020103301102043f3621f1020300ffe30401040201030410300e0400020100020100040004000400301404000400a00e02044375ebc20201000201003000";
const V3_SHA_AES_DISCOVERY_REPORT: &str = "3072020103301102043f3621f1020300ffe304010002010304223020041180001f8880ce17c23c5864026b00000000020101020204610400040004003036041180001f8880ce17c23c5864026b000000000400a81f02044375ebc20201000201003011300f060a2b060106030f0101040041011b";
const V3_SHA_AES_REQUEST: &str = "308191020103301102043f3621f0020300ffe304010702010304423040041180001f8880ce17c23c5864026b0000000002010102020461040c617574685072697655736572040c68adc2ad1bc17640369eea4904084e0cb8d7962b565704357b0683fcfdaa511d4d501ca0fba2f7db0aae2a7e0bcf4afd875b8539d807df708db47d9d20ea4c702b428d3caffc47a58dfc7c0735";
const V3_SHA_AES_RESPONSE: &str = "308193020103301102043f3621f0020300ffe304010302010304423040041180001f8880ce17c23c5864026b0000000002010102020461040c617574685072697655736572040c2de17a6b969e29297770854604087efd53bfa82f73300437303b705ac5ac0dad2d1ae8dfe5f4a44bb18c6f2ec409a8346ac5f50d8d569cd8dcf240955ee1c080f3488a5a179cb312cc85104c57c7ed";
const V3_MD5_DES_DISCOVERY_REQUEST: &str = "303e02010330110204660d380a020300ffe30401040201030410300e0400020100020100040004000400301404000400a00e020407a46beb0201000201003000";
const V3_MD5_DES_DISCOVERY_REPORT: &str = "307202010330110204660d380a020300ffe304010002010304223020041180001f8880ce17c23c5864026b00000000020101020204610400040004003036041180001f8880ce17c23c5864026b000000000400a81f020407a46beb0201000201003011300f060a2b060106030f0101040041011c";
const V3_MD5_DES_REQUEST: &str = "30818e02010330110204660d3809020300ffe3040107020103043c303a041180001f8880ce17c23c5864026b000000000201010202046104066d6435646573040c4e38e6b04e7206a2c99fe9330408000000015b9a8cee0438fff8d36afa670069cb66bd314c83f47185890b05d3710f01dac0022d370a772a668b6602c9bceaf301726bb7ec02300f3c8056d3ef69f5ab";
const V3_MD5_DES_RESPONSE: &str = "30818e02010330110204660d3809020300ffe3040103020103043c303a041180001f8880ce17c23c5864026b000000000201010202046104066d6435646573040cf6f176076840feb9556cc2f70408000000010c215e8c04380216eea08e9493f0710c7d5edd8cb24261c41bec42d2498b02de0cc24a3d5ae96fe80a17c51fcefa57b50d1e538198ffe707aa54cd767e0c";
const V3_SHA_AES256C_DISCOVERY_REQUEST: &str = "303e020103301102045605798a020300ffe30401040201030410300e0400020100020100040004000400301404000400a00e02047427fb690201000201003000";
const V3_SHA_AES256C_DISCOVERY_REPORT: &str = "3072020103301102045605798a020300ffe304010002010304223020041180001f8880ce17c23c5864026b00000000020101020204610400040004003036041180001f8880ce17c23c5864026b000000000400a81f02047427fb690201000201003011300f060a2b060106030f0101040041011d";
const V3_SHA_AES256C_REQUEST: &str = "30818f0201033011020456057989020300ffe30401070201030440303e041180001f8880ce17c23c5864026b0000000002010102020461040a73686161657332353663040cd05ecc36ffe6928629c4078c0408644e19fb136a285a043556841718b568acde5a39539d92c24f5889a2d4a922f6bb89ec9160174e225f85ec2765d40e88481c74566ac8c00c0d882ed8957e0d";
const V3_SHA_AES256C_RESPONSE: &str = "3081910201033011020456057989020300ffe30401030201030440303e041180001f8880ce17c23c5864026b0000000002010102020461040a73686161657332353663040c96fe4e1de06c9ca1c5b021f804087efd53bfa82f73310437617a267cee711017a4ad4e74878cfa5bc032e5d18849801018806a08ceb400d0f4d0ba2c50a7e76cc15348692cbb27a686ff489ce7d4dd";
const V3_SHA_AES256_DISCOVERY_REQUEST: &str = "303e020103301102045887480b020300ffe30401040201030410300e0400020100020100040004000400301404000400a00e02042cfaff460201000201003000";
const V3_SHA_AES256_DISCOVERY_REPORT: &str = "3072020103301102045887480b020300ffe304010002010304223020041180001f8880ce17c23c5864026b00000000020101020204610400040004003036041180001f8880ce17c23c5864026b000000000400a81f02042cfaff460201000201003011300f060a2b060106030f0101040041011e";
const V3_SHA_AES256_REQUEST: &str = "30818e020103301102045887480a020300ffe3040107020103043f303d041180001f8880ce17c23c5864026b00000000020101020204610409736861616573323536040c86cede8b3a0cdbc0baa2df6e0408655981513ac03b5e0435e53f2ad057ce24042f18a75bbb5bc4dae18eb2e446270168785578252963c6d32db4361a8ad2f144e943564b8261fbc9265333dc87";
const V3_SHA_AES256_RESPONSE: &str = "308190020103301102045887480a020300ffe3040103020103043f303d041180001f8880ce17c23c5864026b00000000020101020204610409736861616573323536040c7e4799d8189922ecaba8e40904087efd53bfa82f73320437755bc7c6c1072e8f079958ff4e392c6926b830e7b842fd7567ba44fe4c25a7452ddf6daf0a21ab90196491ba1b0bc5fe6da4ca177f7ca8";
const V2C_GET_REQUEST: &str = "303902010104067075626c6963a02c0204333c9173020100020100301e300c06082b060102010103000500300e060a2b060102010202010a010500";
const V2C_GET_RESPONSE: &str = "304002010104067075626c6963a2330204333c91730201000201003025300f06082b06010201010300430301b5fa3012060a2b060102010202010a01410402ab98c7";
const V2C_BULK_REQUEST: &str =
    "302b02010104067075626c6963a51e02044c3c26870201000201033010300e060a2b060102011f010101060500";
const V2C_BULK_RESPONSE: &str = "305402010104067075626c6963a24702044c3c268702010002010030393013060b2b060102011f0101010601460402ab98c73010060b2b060102011f01010106024601003010060b2b060102011f0101010603460100";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn sys_name() -> Oid {
    super::oid::oid("1.3.6.1.2.1.1.5.0")
}

#[test]
fn v2c_get_is_encoded_as_net_snmp_encodes_it() {
    let request = hex(V2C_GET_REQUEST);
    let Message::Community {
        version,
        community,
        pdu,
    } = decode_message(&request).unwrap()
    else {
        panic!("not v2c");
    };
    assert_eq!((version, community), (Version::V2c, &b"public"[..]));
    let oids: Vec<Oid> = pdu.varbinds.iter().map(|vb| vb.oid.clone()).collect();
    assert_eq!(
        oids,
        vec![
            super::oid::oid("1.3.6.1.2.1.1.3.0"),
            super::oid::oid("1.3.6.1.2.1.2.2.1.10.1")
        ]
    );
    let mut w = Writer::default();
    pdu::encode_community_message(&mut w, Version::V2c, b"public", &pdu.header, |w| {
        pdu::write_request_varbinds(w, &oids)
    });
    assert_eq!(w.as_slice(), &request[..]);

    let response = hex(V2C_GET_RESPONSE);
    let Message::Community { pdu: resp, .. } = decode_message(&response).unwrap() else {
        panic!("not v2c");
    };
    assert_eq!(resp.header.pdu_type, PduType::Response);
    assert_eq!(resp.header.request_id, pdu.header.request_id);
    assert!(matches!(resp.varbinds[0].value, Value::TimeTicks(_)));
    assert!(matches!(resp.varbinds[1].value, Value::Counter32(_)));
    // Re-encoding what we decoded gives the agent's bytes back.
    let mut w = Writer::default();
    pdu::encode_community_message(&mut w, Version::V2c, b"public", &resp.header, |w| {
        for vb in resp.varbinds.iter().rev() {
            vb.encode(w);
        }
    });
    assert_eq!(w.as_slice(), &response[..]);
}

#[test]
fn v2c_getbulk_is_encoded_as_net_snmp_encodes_it() {
    let request = hex(V2C_BULK_REQUEST);
    let Message::Community { pdu, .. } = decode_message(&request).unwrap() else {
        panic!("not v2c");
    };
    assert_eq!(pdu.header, PduHeader::get_bulk(pdu.header.request_id, 0, 3));
    let mut w = Writer::default();
    pdu::encode_community_message(&mut w, Version::V2c, b"public", &pdu.header, |w| {
        pdu::write_request_varbinds(w, &[super::oid::oid("1.3.6.1.2.1.31.1.1.1.6")])
    });
    assert_eq!(w.as_slice(), &request[..]);
    let Message::Community { pdu: resp, .. } = decode_message(&hex(V2C_BULK_RESPONSE)).unwrap()
    else {
        panic!("not v2c");
    };
    assert_eq!(resp.varbinds.len(), 3);
    assert!(
        resp.varbinds
            .iter()
            .all(|vb| matches!(vb.value, Value::Counter64(_)))
    );
}

fn user(name: &str, auth: AuthProtocol, privacy: Option<PrivProtocol>) -> UsmUser {
    UsmUser::new(
        name,
        if privacy.is_some() {
            SecurityLevel::AuthPriv
        } else {
            SecurityLevel::AuthNoPriv
        },
        Some((auth, Secret::from("authpass123"))),
        privacy.map(|p| (p, Secret::from("privpass123"))),
    )
    .unwrap()
}

/// Replays one captured v3 exchange through our codec and USM.
fn check_v3_exchange(vectors: [&str; 4], user: UsmUser) {
    let [discovery, report, request, response] = vectors.map(hex);
    let cache = KeyCache::new();

    // The discovery request is byte for byte what we send.
    let Message::V3(d) = decode_message(&discovery).unwrap() else {
        panic!("not v3")
    };
    let ScopedData::Plain(scoped) = d.data else {
        panic!("discovery is not plain")
    };
    let request_id = decode_scoped_pdu(scoped).unwrap().pdu.header.request_id;
    assert_eq!(encode_discovery(d.msg_id, request_id), discovery);

    // The report names the engine and counts usmStatsUnknownEngineIDs.
    let Message::V3(r) = decode_message(&report).unwrap() else {
        panic!("not v3")
    };
    let ScopedData::Plain(scoped) = r.data else {
        panic!("report is not plain")
    };
    let report_pdu = decode_scoped_pdu(scoped).unwrap().pdu;
    assert_eq!(report_pdu.header.pdu_type, PduType::Report);
    assert_eq!(
        UsmError::from_report_oid(report_pdu.varbinds[0].oid.arcs()),
        Some(UsmError::UnknownEngineId)
    );
    let engine_id = r.usm.engine_id;

    // net-snmp's request authenticates and decrypts with our keys, and we
    // build the very same message from the same inputs.
    let Message::V3(q) = decode_message(&request).unwrap() else {
        panic!("not v3")
    };
    let keys = cache.localized(&user, engine_id);
    assert!(
        keys.verify(&request, q.auth_params_offset, q.usm.auth_params),
        "request HMAC"
    );
    let plain = open_scoped(&q, Some(&keys)).unwrap();
    let scoped = decode_scoped_pdu(&plain).unwrap();
    assert_eq!(
        scoped.pdu.varbinds,
        vec![VarBind::new(sys_name(), Value::Null)]
    );
    let mut w = Writer::default();
    pdu::encode_scoped_pdu(
        &mut w,
        scoped.context_engine_id,
        scoped.context_name,
        &scoped.pdu.header,
        |w| pdu::write_request_varbinds(w, &[sys_name()]),
    );
    assert_eq!(w.as_slice(), &plain[..w.len()]);
    let salt = match user.privacy.as_ref().map(|(p, _)| *p) {
        Some(PrivProtocol::Des) => {
            u32::from_be_bytes(q.usm.priv_params[4..8].try_into().unwrap()) as u64
        }
        Some(_) => u64::from_be_bytes(q.usm.priv_params.try_into().unwrap()),
        None => 0,
    };
    let ours = seal_message(
        w.as_slice(),
        &Envelope {
            msg_id: q.msg_id,
            max_size: q.max_size,
            reportable: true,
            engine_id,
            engine_boots: q.usm.engine_boots,
            engine_time: q.usm.engine_time,
            user_name: &user.name,
            keys: Some(&keys),
            encrypt: user.privacy.is_some(),
            salt,
        },
    );
    assert_eq!(ours, request, "sealed request differs from net-snmp's");

    // snmpd's response authenticates, decrypts and carries "vm".
    let Message::V3(a) = decode_message(&response).unwrap() else {
        panic!("not v3")
    };
    assert!(
        keys.verify(&response, a.auth_params_offset, a.usm.auth_params),
        "response HMAC"
    );
    let plain = open_scoped(&a, Some(&keys)).unwrap();
    let got = decode_scoped_pdu(&plain).unwrap().pdu;
    assert_eq!(
        got.varbinds,
        vec![VarBind::new(sys_name(), Value::OctetString(b"vm".to_vec()))]
    );
    // A flipped bit anywhere fails authentication.
    let mut tampered = response.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    assert!(!keys.verify(&tampered, a.auth_params_offset, a.usm.auth_params));
}

#[test]
fn v3_sha_auth_no_priv_matches_net_snmp() {
    check_v3_exchange(
        [
            V3_SHA_DISCOVERY_REQUEST,
            V3_SHA_DISCOVERY_REPORT,
            V3_SHA_REQUEST,
            V3_SHA_RESPONSE,
        ],
        user("authNoPrivUser", AuthProtocol::Sha1, None),
    );
}

#[test]
fn v3_sha_aes128_matches_net_snmp() {
    check_v3_exchange(
        [
            V3_SHA_AES_DISCOVERY_REQUEST,
            V3_SHA_AES_DISCOVERY_REPORT,
            V3_SHA_AES_REQUEST,
            V3_SHA_AES_RESPONSE,
        ],
        user(
            "authPrivUser",
            AuthProtocol::Sha1,
            Some(PrivProtocol::Aes128),
        ),
    );
}

#[test]
fn v3_md5_des_matches_net_snmp() {
    check_v3_exchange(
        [
            V3_MD5_DES_DISCOVERY_REQUEST,
            V3_MD5_DES_DISCOVERY_REPORT,
            V3_MD5_DES_REQUEST,
            V3_MD5_DES_RESPONSE,
        ],
        user("md5des", AuthProtocol::Md5, Some(PrivProtocol::Des)),
    );
}

#[test]
fn v3_aes256_reeder_extension_matches_net_snmp_aes_256_c() {
    check_v3_exchange(
        [
            V3_SHA_AES256C_DISCOVERY_REQUEST,
            V3_SHA_AES256C_DISCOVERY_REPORT,
            V3_SHA_AES256C_REQUEST,
            V3_SHA_AES256C_RESPONSE,
        ],
        user(
            "shaaes256c",
            AuthProtocol::Sha1,
            Some(PrivProtocol::Aes256C),
        ),
    );
}

#[test]
fn v3_aes256_blumenthal_extension_matches_net_snmp_aes_256() {
    check_v3_exchange(
        [
            V3_SHA_AES256_DISCOVERY_REQUEST,
            V3_SHA_AES256_DISCOVERY_REPORT,
            V3_SHA_AES256_REQUEST,
            V3_SHA_AES256_RESPONSE,
        ],
        user("shaaes256", AuthProtocol::Sha1, Some(PrivProtocol::Aes256)),
    );
}

fn arb_oid() -> impl Strategy<Value = Oid> {
    (
        0u32..3,
        0u32..40,
        prop::collection::vec(any::<u32>(), 0..20),
    )
        .prop_map(|(a, b, rest)| {
            let mut arcs = vec![a, b];
            arcs.extend(rest);
            Oid::from_slice(&arcs)
        })
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i32>().prop_map(|v| Value::Integer(v as i64)),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Value::OctetString),
        Just(Value::Null),
        arb_oid().prop_map(Value::ObjectId),
        any::<[u8; 4]>().prop_map(Value::IpAddress),
        any::<u32>().prop_map(Value::Counter32),
        any::<u32>().prop_map(Value::Gauge32),
        any::<u32>().prop_map(Value::TimeTicks),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(Value::Opaque),
        any::<u64>().prop_map(Value::Counter64),
        Just(Value::NoSuchObject),
        Just(Value::NoSuchInstance),
        Just(Value::EndOfMibView),
    ]
}

fn arb_varbinds() -> impl Strategy<Value = Vec<VarBind>> {
    prop::collection::vec(
        (arb_oid(), arb_value()).prop_map(|(o, v)| VarBind::new(o, v)),
        0..40,
    )
}

fn encode_response(request_id: i32, community: &[u8], varbinds: &[VarBind]) -> Vec<u8> {
    let mut w = Writer::with_capacity(16);
    let header = PduHeader {
        pdu_type: PduType::Response,
        request_id,
        error_status: 0,
        error_index: 0,
    };
    pdu::encode_community_message(&mut w, Version::V2c, community, &header, |w| {
        for vb in varbinds.iter().rev() {
            vb.encode(w);
        }
    });
    w.into_vec()
}

/// snmp2's view of one of our values, as text, so the two codecs can be compared.
fn snmp2_text(v: &snmp2::Value<'_>) -> String {
    match v {
        snmp2::Value::Integer(i) => format!("int {i}"),
        snmp2::Value::OctetString(b) => format!("str {b:?}"),
        snmp2::Value::Null => "null".into(),
        snmp2::Value::ObjectIdentifier(o) => format!("oid {o}"),
        snmp2::Value::IpAddress(a) => format!("ip {a:?}"),
        snmp2::Value::Counter32(c) => format!("c32 {c}"),
        snmp2::Value::Unsigned32(c) => format!("g32 {c}"),
        snmp2::Value::Timeticks(c) => format!("tt {c}"),
        snmp2::Value::Opaque(b) => format!("opaque {b:?}"),
        snmp2::Value::Counter64(c) => format!("c64 {c}"),
        snmp2::Value::NoSuchObject => "nso".into(),
        snmp2::Value::NoSuchInstance => "nsi".into(),
        snmp2::Value::EndOfMibView => "eom".into(),
        other => format!("other {other:?}"),
    }
}

fn our_text(v: &Value) -> String {
    match v {
        Value::Integer(i) => format!("int {i}"),
        Value::OctetString(b) => format!("str {:?}", &b[..]),
        Value::Null => "null".into(),
        Value::ObjectId(o) => format!("oid {o}"),
        Value::IpAddress(a) => format!("ip {a:?}"),
        Value::Counter32(c) => format!("c32 {c}"),
        Value::Gauge32(c) => format!("g32 {c}"),
        Value::TimeTicks(c) => format!("tt {c}"),
        Value::Opaque(b) => format!("opaque {:?}", &b[..]),
        Value::Counter64(c) => format!("c64 {c}"),
        Value::NoSuchObject => "nso".into(),
        Value::NoSuchInstance => "nsi".into(),
        Value::EndOfMibView => "eom".into(),
        Value::Other { tag, .. } => format!("other {tag}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn messages_round_trip(request_id in any::<i32>(), community in prop::collection::vec(any::<u8>(), 0..40), varbinds in arb_varbinds()) {
        let bytes = encode_response(request_id, &community, &varbinds);
        let Message::Community { version, community: c, pdu } = decode_message(&bytes).unwrap() else {
            panic!("not a community message");
        };
        prop_assert_eq!(version, Version::V2c);
        prop_assert_eq!(c, &community[..]);
        prop_assert_eq!(pdu.header.request_id, request_id);
        prop_assert_eq!(pdu.varbinds, varbinds);
        prop_assert_eq!(pdu::peek_request_id(&bytes), Some(request_id));
    }

    #[test]
    fn snmp2_decodes_what_we_encode(request_id in any::<i32>(), varbinds in arb_varbinds()) {
        // asn1-rs prints OIDs under 0 and 1 below their second arc differently;
        // agents' OIDs live under 1.3, so compare there.
        let varbinds: Vec<VarBind> = varbinds
            .into_iter()
            .map(|vb| {
                let oid = Oid::from_slice(&[&[1, 3][..], vb.oid.arcs()].concat());
                let value = match vb.value {
                    Value::ObjectId(o) => Value::ObjectId(Oid::from_slice(&[&[1, 3][..], o.arcs()].concat())),
                    v => v,
                };
                VarBind::new(oid, value)
            })
            .collect();
        let bytes = encode_response(request_id, b"public", &varbinds);
        let theirs = snmp2::Pdu::from_bytes(&bytes).unwrap();
        prop_assert_eq!(theirs.req_id, request_id);
        let theirs: Vec<(String, String)> = theirs
            .varbinds
            .map(|(o, v)| (o.to_string(), snmp2_text(&v)))
            .collect();
        let ours: Vec<(String, String)> = varbinds
            .iter()
            .map(|vb| (vb.oid.to_string(), our_text(&vb.value)))
            .collect();
        prop_assert_eq!(theirs, ours);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_message(&bytes);
        let _ = decode_scoped_pdu(&bytes);
        let _ = pdu::peek_request_id(&bytes);
    }

    #[test]
    fn every_truncation_and_corruption_of_a_message_is_handled(varbinds in arb_varbinds(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
        let bytes = encode_response(7, b"public", &varbinds);
        let n = cut.index(bytes.len());
        prop_assert!(decode_message(&bytes[..n]).is_err());
        let mut corrupt = bytes.clone();
        let i = flip.0.index(corrupt.len());
        corrupt[i] ^= flip.1 | 1;
        let _ = decode_message(&corrupt);
    }
}
