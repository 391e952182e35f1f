//! A software passkey authenticator for the API tests: it answers the server's WebAuthn
//! options as a browser with a platform authenticator would (attestation "none", an ES256
//! key, a discoverable credential holding the user handle), so passkey ceremonies run on both
//! backends without a browser. Keys and signatures come from aws-lc-rs; the CBOR it writes is
//! the few shapes WebAuthn needs, written out here. The browser tests drive Chromium's own
//! virtual authenticator instead.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const ORIGIN: &str = "http://localhost:3000";
const RP_ID: &str = "localhost";

/// Flags of authenticator data: user present, user verified, attested credential data.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

pub struct Credential {
    pub id: Vec<u8>,
    key: EcdsaKeyPair,
    user_handle: Vec<u8>,
    pub counter: u32,
}

#[derive(Default)]
pub struct Authenticator {
    pub credentials: Vec<Credential>,
    /// The page origin the browser reports (a test of a foreign page changes it).
    pub origin: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .expect("base64url in the options")
}

/// The `publicKey` member of the options (the server wraps them as the JS API takes them).
fn public_key(options: &Value) -> &Value {
    options.get("publicKey").unwrap_or(options)
}

impl Authenticator {
    pub fn new() -> Authenticator {
        Authenticator::default()
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        let origin = self.origin.as_deref().unwrap_or(ORIGIN);
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": origin,
            "crossOrigin": false,
        }))
        .unwrap()
    }

    /// `navigator.credentials.create()`: a new discoverable credential for the options' user.
    pub fn register(&mut self, options: &Value) -> Value {
        let options = public_key(options);
        let challenge = options["challenge"].as_str().expect("a challenge");
        let user_handle = unb64(options["user"]["id"].as_str().expect("a user handle"));
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let mut id = [0u8; 16];
        aws_lc_rs::rand::SecureRandom::fill(&rng, &mut id).unwrap();
        let point = key.public_key().as_ref().to_vec();
        let (x, y) = (&point[1..33], &point[33..65]);
        // COSE_Key: {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}
        let mut cose = Vec::new();
        cbor_map_header(&mut cose, 5);
        cbor_int(&mut cose, 1);
        cbor_int(&mut cose, 2);
        cbor_int(&mut cose, 3);
        cbor_int(&mut cose, -7);
        cbor_int(&mut cose, -1);
        cbor_int(&mut cose, 1);
        cbor_int(&mut cose, -2);
        cbor_bytes(&mut cose, x);
        cbor_int(&mut cose, -3);
        cbor_bytes(&mut cose, y);
        let mut auth_data = Sha256::digest(RP_ID.as_bytes()).to_vec();
        auth_data.push(UP | UV | AT);
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        auth_data.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&id);
        auth_data.extend_from_slice(&cose);
        let mut attestation = Vec::new();
        cbor_map_header(&mut attestation, 3);
        cbor_text(&mut attestation, "fmt");
        cbor_text(&mut attestation, "none");
        cbor_text(&mut attestation, "attStmt");
        cbor_map_header(&mut attestation, 0);
        cbor_text(&mut attestation, "authData");
        cbor_bytes(&mut attestation, &auth_data);
        let client_data = self.client_data("webauthn.create", challenge);
        self.credentials.push(Credential {
            id: id.to_vec(),
            key,
            user_handle,
            counter: 0,
        });
        json!({
            "id": b64(&id),
            "rawId": b64(&id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })
    }

    /// `navigator.credentials.get()` with credential `index`: an assertion of the options'
    /// challenge, its counter one higher than the last.
    pub fn assert(&mut self, options: &Value, index: usize) -> Value {
        let credential = &mut self.credentials[index];
        credential.counter += 1;
        let counter = credential.counter;
        self.assert_with_counter(options, index, counter)
    }

    /// An assertion with a chosen counter (a cloned authenticator's would repeat one).
    pub fn assert_with_counter(&self, options: &Value, index: usize, counter: u32) -> Value {
        let options = public_key(options);
        let challenge = options["challenge"].as_str().expect("a challenge");
        let credential = &self.credentials[index];
        let mut auth_data = Sha256::digest(RP_ID.as_bytes()).to_vec();
        auth_data.push(UP | UV);
        auth_data.extend_from_slice(&counter.to_be_bytes());
        let client_data = self.client_data("webauthn.get", challenge);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature = credential.key.sign(&SystemRandom::new(), &signed).unwrap();
        json!({
            "id": b64(&credential.id),
            "rawId": b64(&credential.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(signature.as_ref()),
                "userHandle": b64(&credential.user_handle),
            },
            "clientExtensionResults": {},
        })
    }
}

fn cbor_head(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    match value {
        0..=23 => out.push(major | value as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, value as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        }
        _ => {
            out.push(major | 26);
            out.extend_from_slice(&(value as u32).to_be_bytes());
        }
    }
}

fn cbor_int(out: &mut Vec<u8>, value: i64) {
    if value >= 0 {
        cbor_head(out, 0, value as u64);
    } else {
        cbor_head(out, 1, (-1 - value) as u64);
    }
}

fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    cbor_head(out, 2, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    cbor_head(out, 3, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

fn cbor_map_header(out: &mut Vec<u8>, entries: u64) {
    cbor_head(out, 5, entries);
}
