//! The User-based Security Model of SNMPv3: keys, authentication and privacy.
//!
//! * Keys: password to key (RFC 3414 A.2.1, one megabyte hashed), localization
//!   to an engine ID (A.2.2), and the two ways to stretch a localized key for
//!   AES-192/256 when the authentication hash is too short: Blumenthal
//!   (draft-blumenthal-aes-usm-04, net-snmp `AES-192`/`AES-256`) and Reeder
//!   (draft-reeder-snmpv3-usm-3desede, net-snmp and LibreNMS `AES-192-C`/`AES-256-C`).
//! * Authentication: HMAC-MD5-96 and HMAC-SHA-96 (RFC 3414), HMAC-SHA-2
//!   (RFC 7860) over the whole message with the authentication field zeroed.
//! * Privacy: DES-CBC (RFC 3414 8) and AES-CFB128 (RFC 3826).
//!
//! [`KeyCache`] keeps the expensive master keys per password and the localized
//! keys per (engine ID, credentials), so the megabyte hash runs once per
//! password and localization once per engine.
//!
//! No IO here; the client and the simulator both build on it.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cipher::{AsyncStreamCipher, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use digest::Digest;
use hmac::Mac;
use parking_lot::Mutex;

use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl AuthProtocol {
    /// Length of the truncated HMAC carried in msgAuthenticationParameters.
    pub fn mac_len(self) -> usize {
        match self {
            AuthProtocol::Md5 | AuthProtocol::Sha1 => 12,
            AuthProtocol::Sha224 => 16,
            AuthProtocol::Sha256 => 24,
            AuthProtocol::Sha384 => 32,
            AuthProtocol::Sha512 => 48,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AuthProtocol::Md5 => "MD5",
            AuthProtocol::Sha1 => "SHA",
            AuthProtocol::Sha224 => "SHA-224",
            AuthProtocol::Sha256 => "SHA-256",
            AuthProtocol::Sha384 => "SHA-384",
            AuthProtocol::Sha512 => "SHA-512",
        }
    }

    fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            AuthProtocol::Md5 => run::<md5::Md5>(parts),
            AuthProtocol::Sha1 => run::<sha1::Sha1>(parts),
            AuthProtocol::Sha224 => run::<sha2::Sha224>(parts),
            AuthProtocol::Sha256 => run::<sha2::Sha256>(parts),
            AuthProtocol::Sha384 => run::<sha2::Sha384>(parts),
            AuthProtocol::Sha512 => run::<sha2::Sha512>(parts),
        }
    }

    /// HMAC over the concatenation of `parts`, full length.
    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        macro_rules! run {
            ($d:ty) => {{
                // HMAC takes keys of any length, so this cannot fail.
                let mut mac = <hmac::Hmac<$d> as Mac>::new_from_slice(key)
                    .expect("HMAC accepts any key length");
                for p in parts {
                    mac.update(p);
                }
                mac.finalize().into_bytes().to_vec()
            }};
        }
        match self {
            AuthProtocol::Md5 => run!(md5::Md5),
            AuthProtocol::Sha1 => run!(sha1::Sha1),
            AuthProtocol::Sha224 => run!(sha2::Sha224),
            AuthProtocol::Sha256 => run!(sha2::Sha256),
            AuthProtocol::Sha384 => run!(sha2::Sha384),
            AuthProtocol::Sha512 => run!(sha2::Sha512),
        }
    }
}

impl FromStr for AuthProtocol {
    type Err = String;

    /// net-snmp's `-a` spellings and LibreNMS's `authalgo` values.
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "MD5" => AuthProtocol::Md5,
            "SHA" | "SHA1" | "SHA-1" => AuthProtocol::Sha1,
            "SHA-224" | "SHA224" => AuthProtocol::Sha224,
            "SHA-256" | "SHA256" => AuthProtocol::Sha256,
            "SHA-384" | "SHA384" => AuthProtocol::Sha384,
            "SHA-512" | "SHA512" => AuthProtocol::Sha512,
            _ => {
                return Err(format!(
                    "unknown authentication protocol {s:?} (MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512)"
                ));
            }
        })
    }
}

impl fmt::Display for AuthProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrivProtocol {
    Des,
    Aes128,
    /// AES-192 with the Blumenthal key extension.
    Aes192,
    /// AES-256 with the Blumenthal key extension.
    Aes256,
    /// AES-192 with the Reeder key extension ("Cisco").
    Aes192C,
    /// AES-256 with the Reeder key extension ("Cisco"); LibreNMS's `AES-256-C`.
    Aes256C,
}

impl PrivProtocol {
    fn key_len(self) -> usize {
        match self {
            PrivProtocol::Des | PrivProtocol::Aes128 => 16,
            PrivProtocol::Aes192 | PrivProtocol::Aes192C => 24,
            PrivProtocol::Aes256 | PrivProtocol::Aes256C => 32,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PrivProtocol::Des => "DES",
            PrivProtocol::Aes128 => "AES",
            PrivProtocol::Aes192 => "AES-192",
            PrivProtocol::Aes256 => "AES-256",
            PrivProtocol::Aes192C => "AES-192-C",
            PrivProtocol::Aes256C => "AES-256-C",
        }
    }
}

impl FromStr for PrivProtocol {
    type Err = String;

    /// net-snmp's `-x` spellings and LibreNMS's `cryptoalgo` values.
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "DES" => PrivProtocol::Des,
            "AES" | "AES128" | "AES-128" => PrivProtocol::Aes128,
            "AES192" | "AES-192" => PrivProtocol::Aes192,
            "AES256" | "AES-256" => PrivProtocol::Aes256,
            "AES192C" | "AES-192-C" => PrivProtocol::Aes192C,
            "AES256C" | "AES-256-C" => PrivProtocol::Aes256C,
            _ => {
                return Err(format!(
                    "unknown privacy protocol {s:?} (DES, AES, AES-192, AES-256, AES-192-C, AES-256-C)"
                ));
            }
        })
    }
}

impl fmt::Display for PrivProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecurityLevel {
    NoAuthNoPriv,
    AuthNoPriv,
    AuthPriv,
}

impl FromStr for SecurityLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "noauthnopriv" | "noauth" | "1" => SecurityLevel::NoAuthNoPriv,
            "authnopriv" | "auth" | "2" => SecurityLevel::AuthNoPriv,
            "authpriv" | "priv" | "3" => SecurityLevel::AuthPriv,
            _ => {
                return Err(format!(
                    "unknown security level {s:?} (noAuthNoPriv, authNoPriv, authPriv)"
                ));
            }
        })
    }
}

impl fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecurityLevel::NoAuthNoPriv => "noAuthNoPriv",
            SecurityLevel::AuthNoPriv => "authNoPriv",
            SecurityLevel::AuthPriv => "authPriv",
        })
    }
}

/// A USM user as a manager or an agent knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsmUser {
    pub name: Vec<u8>,
    pub level: SecurityLevel,
    pub auth: Option<(AuthProtocol, Secret)>,
    pub privacy: Option<(PrivProtocol, Secret)>,
}

/// Why a v3 user definition cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("security level {0} needs an authentication passphrase (-A)")]
    MissingAuthPassphrase(SecurityLevel),
    #[error("security level authPriv needs a privacy passphrase (-X)")]
    MissingPrivPassphrase,
    #[error("{0} passphrase must be at least 8 characters, as USM requires")]
    ShortPassphrase(&'static str),
}

impl UsmUser {
    /// Builds a user, checking that the level has the secrets it needs.
    pub fn new(
        name: impl Into<Vec<u8>>,
        level: SecurityLevel,
        auth: Option<(AuthProtocol, Secret)>,
        privacy: Option<(PrivProtocol, Secret)>,
    ) -> Result<UsmUser, UserError> {
        let (auth, privacy) = match level {
            SecurityLevel::NoAuthNoPriv => (None, None),
            SecurityLevel::AuthNoPriv => (
                Some(auth.ok_or(UserError::MissingAuthPassphrase(level))?),
                None,
            ),
            SecurityLevel::AuthPriv => (
                Some(auth.ok_or(UserError::MissingAuthPassphrase(level))?),
                Some(privacy.ok_or(UserError::MissingPrivPassphrase)?),
            ),
        };
        if let Some((_, pass)) = &auth
            && pass.expose().len() < 8
        {
            return Err(UserError::ShortPassphrase("authentication"));
        }
        if let Some((_, pass)) = &privacy
            && pass.expose().len() < 8
        {
            return Err(UserError::ShortPassphrase("privacy"));
        }
        Ok(UsmUser {
            name: name.into(),
            level,
            auth,
            privacy,
        })
    }
}

/// RFC 3414 A.2.1: the master key Ku from a passphrase (a megabyte of hashing).
pub fn password_to_key(proto: AuthProtocol, password: &[u8]) -> Vec<u8> {
    fn run<D: Digest>(password: &[u8]) -> Vec<u8> {
        let mut d = D::new();
        let mut chunk = [0u8; 64];
        let mut idx = 0usize;
        if password.is_empty() {
            return d.finalize().to_vec();
        }
        for _ in 0..(1_048_576 / 64) {
            for b in chunk.iter_mut() {
                *b = password[idx];
                idx += 1;
                if idx == password.len() {
                    idx = 0;
                }
            }
            d.update(chunk);
        }
        d.finalize().to_vec()
    }
    match proto {
        AuthProtocol::Md5 => run::<md5::Md5>(password),
        AuthProtocol::Sha1 => run::<sha1::Sha1>(password),
        AuthProtocol::Sha224 => run::<sha2::Sha224>(password),
        AuthProtocol::Sha256 => run::<sha2::Sha256>(password),
        AuthProtocol::Sha384 => run::<sha2::Sha384>(password),
        AuthProtocol::Sha512 => run::<sha2::Sha512>(password),
    }
}

/// RFC 3414 A.2.2: Kul = H(Ku || engineID || Ku).
pub fn localize_key(proto: AuthProtocol, master: &[u8], engine_id: &[u8]) -> Vec<u8> {
    proto.hash(&[master, engine_id, master])
}

/// Stretches a localized privacy key to `len` bytes.
fn extend_priv_key(
    proto: AuthProtocol,
    privacy: PrivProtocol,
    mut key: Vec<u8>,
    engine_id: &[u8],
) -> Vec<u8> {
    let len = privacy.key_len();
    while key.len() < len {
        let more = match privacy {
            // Blumenthal: append H(everything so far).
            PrivProtocol::Aes192 | PrivProtocol::Aes256 => proto.hash(&[&key]),
            // Reeder: treat the key so far as a passphrase and localize it again.
            _ => localize_key(proto, &password_to_key(proto, &key), engine_id),
        };
        let take = (len - key.len()).min(more.len());
        key.extend_from_slice(&more[..take]);
    }
    key.truncate(len);
    key
}

/// Keys for one user at one engine.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalizedKeys {
    pub auth: Option<(AuthProtocol, Vec<u8>)>,
    pub privacy: Option<(PrivProtocol, Vec<u8>)>,
}

impl fmt::Debug for LocalizedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalizedKeys")
            .field("auth", &self.auth.as_ref().map(|(p, _)| p))
            .field("privacy", &self.privacy.as_ref().map(|(p, _)| p))
            .finish()
    }
}

/// Why an incoming v3 message was refused. Each maps to a usmStats counter
/// (RFC 3414 section 5) an agent reports in a Report-PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsmError {
    #[error("unsupported security level")]
    UnsupportedSecLevel,
    #[error("not in time window")]
    NotInTimeWindow,
    #[error("unknown user name")]
    UnknownUserName,
    #[error("unknown engine ID")]
    UnknownEngineId,
    #[error("authentication failure (wrong digest)")]
    WrongDigest,
    #[error("decryption error")]
    DecryptionError,
}

impl UsmError {
    /// The usmStats counter an agent increments and reports for this error.
    pub fn stats_oid(self) -> &'static [u32] {
        match self {
            UsmError::UnsupportedSecLevel => &[1, 3, 6, 1, 6, 3, 15, 1, 1, 1, 0],
            UsmError::NotInTimeWindow => &[1, 3, 6, 1, 6, 3, 15, 1, 1, 2, 0],
            UsmError::UnknownUserName => &[1, 3, 6, 1, 6, 3, 15, 1, 1, 3, 0],
            UsmError::UnknownEngineId => &[1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0],
            UsmError::WrongDigest => &[1, 3, 6, 1, 6, 3, 15, 1, 1, 5, 0],
            UsmError::DecryptionError => &[1, 3, 6, 1, 6, 3, 15, 1, 1, 6, 0],
        }
    }

    /// Reads a Report-PDU's first varbind OID back into the error it reports.
    pub fn from_report_oid(arcs: &[u32]) -> Option<UsmError> {
        [
            UsmError::UnsupportedSecLevel,
            UsmError::NotInTimeWindow,
            UsmError::UnknownUserName,
            UsmError::UnknownEngineId,
            UsmError::WrongDigest,
            UsmError::DecryptionError,
        ]
        .into_iter()
        .find(|e| e.stats_oid() == arcs)
    }
}

impl LocalizedKeys {
    /// HMAC of a whole message whose authentication field is at
    /// `auth_offset..auth_offset+mac_len`; the field is taken as zeros.
    fn mac(&self, msg: &[u8], auth_offset: usize) -> Option<Vec<u8>> {
        let (proto, key) = self.auth.as_ref()?;
        let n = proto.mac_len();
        if auth_offset + n > msg.len() {
            return None;
        }
        let zeros = [0u8; 48];
        let full = proto.hmac(
            key,
            &[&msg[..auth_offset], &zeros[..n], &msg[auth_offset + n..]],
        );
        Some(full[..n].to_vec())
    }

    /// Writes the HMAC into a message built with a zeroed authentication field.
    pub fn sign(&self, msg: &mut [u8], auth_offset: usize) {
        if let Some(mac) = self.mac(msg, auth_offset) {
            msg[auth_offset..auth_offset + mac.len()].copy_from_slice(&mac);
        }
    }

    /// Checks a received message's HMAC (`auth_params` is the received field).
    pub fn verify(&self, msg: &[u8], auth_offset: usize, auth_params: &[u8]) -> bool {
        let Some((proto, _)) = &self.auth else {
            return false;
        };
        if auth_params.len() != proto.mac_len() {
            return false;
        }
        match self.mac(msg, auth_offset) {
            Some(mac) => constant_time_eq(&mac, auth_params),
            None => false,
        }
    }

    /// Encrypts a ScopedPDU. Returns the ciphertext and msgPrivacyParameters.
    pub fn encrypt(
        &self,
        plaintext: &[u8],
        engine_boots: u32,
        engine_time: u32,
        salt: u64,
    ) -> Option<(Vec<u8>, [u8; 8])> {
        let (proto, key) = self.privacy.as_ref()?;
        match proto {
            PrivProtocol::Des => {
                let mut priv_params = [0u8; 8];
                priv_params[..4].copy_from_slice(&engine_boots.to_be_bytes());
                priv_params[4..].copy_from_slice(&(salt as u32).to_be_bytes());
                let mut iv = [0u8; 8];
                for i in 0..8 {
                    iv[i] = key[8 + i] ^ priv_params[i];
                }
                // Pad to the block size with bytes holding the pad length,
                // as net-snmp does (the receiver ignores them either way).
                let padded_len = plaintext.len().div_ceil(8) * 8;
                let pad = (padded_len - plaintext.len()) as u8;
                let mut buf = vec![pad; padded_len];
                buf[..plaintext.len()].copy_from_slice(plaintext);
                let enc = cbc::Encryptor::<des::Des>::new_from_slices(&key[..8], &iv).ok()?;
                enc.encrypt_padded_mut::<cipher::block_padding::NoPadding>(&mut buf, padded_len)
                    .ok()?;
                Some((buf, priv_params))
            }
            _ => {
                let priv_params = salt.to_be_bytes();
                let iv = aes_iv(engine_boots, engine_time, &priv_params);
                let mut buf = plaintext.to_vec();
                aes_cfb(*proto, key, &iv, &mut buf, true)?;
                Some((buf, priv_params))
            }
        }
    }

    /// Decrypts an encryptedPDU with the boots/time of the message carrying it.
    pub fn decrypt(
        &self,
        ciphertext: &[u8],
        priv_params: &[u8],
        engine_boots: u32,
        engine_time: u32,
    ) -> Result<Vec<u8>, UsmError> {
        let (proto, key) = self.privacy.as_ref().ok_or(UsmError::DecryptionError)?;
        if priv_params.len() != 8 {
            return Err(UsmError::DecryptionError);
        }
        match proto {
            PrivProtocol::Des => {
                if !ciphertext.len().is_multiple_of(8) || ciphertext.is_empty() {
                    return Err(UsmError::DecryptionError);
                }
                let mut iv = [0u8; 8];
                for i in 0..8 {
                    iv[i] = key[8 + i] ^ priv_params[i];
                }
                let mut buf = ciphertext.to_vec();
                let dec = cbc::Decryptor::<des::Des>::new_from_slices(&key[..8], &iv)
                    .map_err(|_| UsmError::DecryptionError)?;
                dec.decrypt_padded_mut::<cipher::block_padding::NoPadding>(&mut buf)
                    .map_err(|_| UsmError::DecryptionError)?;
                Ok(buf)
            }
            _ => {
                let iv = aes_iv(engine_boots, engine_time, priv_params);
                let mut buf = ciphertext.to_vec();
                aes_cfb(*proto, key, &iv, &mut buf, false).ok_or(UsmError::DecryptionError)?;
                Ok(buf)
            }
        }
    }
}

fn aes_iv(engine_boots: u32, engine_time: u32, salt: &[u8]) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..4].copy_from_slice(&engine_boots.to_be_bytes());
    iv[4..8].copy_from_slice(&engine_time.to_be_bytes());
    iv[8..].copy_from_slice(&salt[..8]);
    iv
}

fn aes_cfb(
    proto: PrivProtocol,
    key: &[u8],
    iv: &[u8; 16],
    buf: &mut [u8],
    encrypt: bool,
) -> Option<()> {
    macro_rules! run {
        ($aes:ty, $n:expr) => {{
            if encrypt {
                cfb_mode::Encryptor::<$aes>::new_from_slices(&key[..$n], iv)
                    .ok()?
                    .encrypt(buf);
            } else {
                cfb_mode::Decryptor::<$aes>::new_from_slices(&key[..$n], iv)
                    .ok()?
                    .decrypt(buf);
            }
        }};
    }
    match proto {
        PrivProtocol::Aes128 => run!(aes::Aes128, 16),
        PrivProtocol::Aes192 | PrivProtocol::Aes192C => run!(aes::Aes192, 24),
        PrivProtocol::Aes256 | PrivProtocol::Aes256C => run!(aes::Aes256, 32),
        PrivProtocol::Des => return None,
    }
    Some(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What goes around a ScopedPDU to make an SNMPv3 message.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub msg_id: i32,
    /// msgMaxSize: the largest message the sender can take.
    pub max_size: i32,
    pub reportable: bool,
    pub engine_id: &'a [u8],
    pub engine_boots: u32,
    pub engine_time: u32,
    pub user_name: &'a [u8],
    /// Signs the message when the keys have authentication.
    pub keys: Option<&'a LocalizedKeys>,
    /// Encrypts the ScopedPDU (needs keys with privacy).
    pub encrypt: bool,
    /// Salt for msgPrivacyParameters (see [`KeyCache::next_salt`]).
    pub salt: u64,
}

/// Wraps an encoded ScopedPDU into a v3 message, encrypting and signing it
/// as the envelope says. Shared by the manager and the simulated agents.
pub fn seal_message(scoped: &[u8], env: &Envelope<'_>) -> Vec<u8> {
    use super::ber::Writer;
    use super::pdu::{UsmParams, encode_v3_message, flags};
    let zeros = [0u8; 48];
    let mut msg_flags = if env.reportable { flags::REPORTABLE } else { 0 };
    let auth_params: &[u8] = match env.keys.and_then(|k| k.auth.as_ref()) {
        Some((proto, _)) => {
            msg_flags |= flags::AUTH;
            &zeros[..proto.mac_len()]
        }
        None => &[],
    };
    let encrypted = match env.keys {
        Some(k) if env.encrypt => {
            msg_flags |= flags::PRIV;
            k.encrypt(scoped, env.engine_boots, env.engine_time, env.salt)
        }
        _ => None,
    };
    let (data, priv_params): (&[u8], &[u8]) = match &encrypted {
        Some((ct, pp)) => (ct, pp),
        None => (scoped, &[]),
    };
    let usm = UsmParams {
        engine_id: env.engine_id,
        engine_boots: env.engine_boots,
        engine_time: env.engine_time,
        user_name: env.user_name,
        auth_params,
        priv_params,
    };
    let mut w = Writer::with_capacity(data.len() + 96 + env.user_name.len() + env.engine_id.len());
    let auth_offset = encode_v3_message(
        &mut w,
        env.msg_id,
        env.max_size,
        msg_flags,
        &usm,
        data,
        encrypted.is_some(),
    );
    if let Some(k) = env.keys {
        k.sign(w.as_mut_slice(), auth_offset);
    }
    w.into_vec()
}

/// The ScopedPDU of a v3 message as bytes: the plain element as received,
/// or the encryptedPDU decrypted with `keys`. Checking that the message's
/// flags allow what it carries is the caller's policy.
pub fn open_scoped<'a>(
    m: &super::pdu::V3Message<'a>,
    keys: Option<&LocalizedKeys>,
) -> Result<std::borrow::Cow<'a, [u8]>, UsmError> {
    use std::borrow::Cow;
    match m.data {
        super::pdu::ScopedData::Plain(b) => Ok(Cow::Borrowed(b)),
        super::pdu::ScopedData::Encrypted(ct) => keys
            .ok_or(UsmError::DecryptionError)?
            .decrypt(ct, m.usm.priv_params, m.usm.engine_boots, m.usm.engine_time)
            .map(Cow::Owned),
    }
}

/// Master keys by hash algorithm and passphrase.
type MasterKeys = HashMap<(AuthProtocol, Secret), Arc<Vec<u8>>>;
/// Localized keys by engine ID and user.
type EngineKeys = HashMap<(Vec<u8>, UsmUser), Arc<LocalizedKeys>>;

/// Caches master keys per passphrase and localized keys per engine.
#[derive(Default)]
pub struct KeyCache {
    master: Mutex<MasterKeys>,
    localized: Mutex<EngineKeys>,
    salt: AtomicU64,
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache")
            .field("master_keys", &self.master.lock().len())
            .field("localized_keys", &self.localized.lock().len())
            .finish()
    }
}

impl KeyCache {
    pub fn new() -> KeyCache {
        KeyCache {
            salt: AtomicU64::new(rand::random()),
            ..KeyCache::default()
        }
    }

    fn master_key(&self, proto: AuthProtocol, password: &Secret) -> Arc<Vec<u8>> {
        let key = (proto, password.clone());
        if let Some(k) = self.master.lock().get(&key) {
            return k.clone();
        }
        // Computed outside the lock: it takes milliseconds.
        let k = Arc::new(password_to_key(proto, password.expose()));
        self.master.lock().entry(key).or_insert(k).clone()
    }

    /// The user's keys localized to `engine_id`.
    pub fn localized(&self, user: &UsmUser, engine_id: &[u8]) -> Arc<LocalizedKeys> {
        let cache_key = (engine_id.to_vec(), user.clone());
        if let Some(k) = self.localized.lock().get(&cache_key) {
            return k.clone();
        }
        let auth = user.auth.as_ref().map(|(proto, pass)| {
            let ku = self.master_key(*proto, pass);
            (*proto, localize_key(*proto, &ku, engine_id))
        });
        let privacy = match (&user.auth, &user.privacy) {
            (Some((auth_proto, _)), Some((priv_proto, pass))) => {
                let ku = self.master_key(*auth_proto, pass);
                let kul = localize_key(*auth_proto, &ku, engine_id);
                Some((
                    *priv_proto,
                    extend_priv_key(*auth_proto, *priv_proto, kul, engine_id),
                ))
            }
            _ => None,
        };
        let keys = Arc::new(LocalizedKeys { auth, privacy });
        self.localized
            .lock()
            .entry(cache_key)
            .or_insert(keys)
            .clone()
    }

    /// A fresh salt for msgPrivacyParameters; never repeats within a process.
    pub fn next_salt(&self) -> u64 {
        self.salt.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 3414 A.3.1 and A.3.2: "maplesyrup" at engine 000000000000000000000002.
    #[test]
    fn rfc3414_key_localization_vectors() {
        let engine = hex("000000000000000000000002");
        let md5 = password_to_key(AuthProtocol::Md5, b"maplesyrup");
        assert_eq!(md5, hex("9faf3283884e92834ebc9847d8edd963"));
        assert_eq!(
            localize_key(AuthProtocol::Md5, &md5, &engine),
            hex("526f5eed9fcce26f8964c2930787d82b")
        );
        let sha = password_to_key(AuthProtocol::Sha1, b"maplesyrup");
        assert_eq!(sha, hex("9fb5cc0381497b3793528939ff788d5d79145211"));
        assert_eq!(
            localize_key(AuthProtocol::Sha1, &sha, &engine),
            hex("6695febc9288e36282235fc7151f128497b38f3f")
        );
    }

    fn user(auth: AuthProtocol, privacy: PrivProtocol) -> UsmUser {
        UsmUser::new(
            "u",
            SecurityLevel::AuthPriv,
            Some((auth, Secret::from("authpass123"))),
            Some((privacy, Secret::from("privpass123"))),
        )
        .unwrap()
    }

    #[test]
    fn every_cipher_round_trips_and_fails_with_the_wrong_key() {
        let cache = KeyCache::new();
        let plain = b"0\x1a\x04\x00\x04\x00\xa0\x14 scoped pdu bytes";
        for privacy in [
            PrivProtocol::Des,
            PrivProtocol::Aes128,
            PrivProtocol::Aes192,
            PrivProtocol::Aes256,
            PrivProtocol::Aes192C,
            PrivProtocol::Aes256C,
        ] {
            let keys = cache.localized(&user(AuthProtocol::Sha1, privacy), b"engine-a");
            assert_eq!(keys.privacy.as_ref().unwrap().1.len(), privacy.key_len());
            let (ct, pp) = keys.encrypt(plain, 3, 1000, cache.next_salt()).unwrap();
            assert_ne!(&ct[..plain.len()], &plain[..]);
            let back = keys.decrypt(&ct, &pp, 3, 1000).unwrap();
            assert_eq!(&back[..plain.len()], &plain[..], "{privacy}");
            let other = cache.localized(&user(AuthProtocol::Sha1, privacy), b"engine-b");
            let wrong = other.decrypt(&ct, &pp, 3, 1000).unwrap();
            assert_ne!(&wrong[..plain.len()], &plain[..]);
        }
    }

    #[test]
    fn key_extensions_differ_and_keep_the_localized_prefix() {
        let cache = KeyCache::new();
        let b = cache.localized(&user(AuthProtocol::Sha1, PrivProtocol::Aes256), b"e");
        let r = cache.localized(&user(AuthProtocol::Sha1, PrivProtocol::Aes256C), b"e");
        let (_, kb) = b.privacy.as_ref().unwrap();
        let (_, kr) = r.privacy.as_ref().unwrap();
        assert_eq!(kb[..20], kr[..20]);
        assert_ne!(kb[20..], kr[20..]);
    }

    #[test]
    fn sign_then_verify_and_detect_tampering() {
        let cache = KeyCache::new();
        for auth in [
            AuthProtocol::Md5,
            AuthProtocol::Sha1,
            AuthProtocol::Sha224,
            AuthProtocol::Sha256,
            AuthProtocol::Sha384,
            AuthProtocol::Sha512,
        ] {
            let keys = cache.localized(&user(auth, PrivProtocol::Aes128), b"engine");
            let n = auth.mac_len();
            let mut msg = vec![7u8; 100];
            msg[40..40 + n].fill(0);
            keys.sign(&mut msg, 40);
            let mac = msg[40..40 + n].to_vec();
            assert!(keys.verify(&msg, 40, &mac), "{auth}");
            msg[90] ^= 1;
            assert!(!keys.verify(&msg, 40, &mac), "{auth} tampered");
        }
    }

    #[test]
    fn users_need_the_secrets_their_level_uses() {
        assert!(matches!(
            UsmUser::new("u", SecurityLevel::AuthPriv, None, None),
            Err(UserError::MissingAuthPassphrase(_))
        ));
        assert!(matches!(
            UsmUser::new(
                "u",
                SecurityLevel::AuthNoPriv,
                Some((AuthProtocol::Md5, Secret::from("short"))),
                None
            ),
            Err(UserError::ShortPassphrase(_))
        ));
    }
}
