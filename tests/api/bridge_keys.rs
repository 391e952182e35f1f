//! Test fixtures for the session bridge: third-party signing keys (HS256 secrets, RSA and
//! P-256 key pairs with their public JWKs), the claims a provider issues, and a JWKS server on
//! 127.0.0.1 whose behaviour a test switches at run time (serve keys, fail, send too much,
//! hang) while it counts the requests it receives.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde_json::{Value, json};
use sessiond::config::ProviderSettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A key an issuer signs with: its private half, and the public JWK it would publish.
#[derive(Clone)]
pub struct IssuerKey {
    pub alg: Algorithm,
    pub kid: String,
    encoding: EncodingKey,
    /// The public JWK (with `kid`, `alg` and `use`), as a JWKS would carry it.
    pub jwk: Value,
}

impl IssuerKey {
    /// A fresh P-256 key for ES256.
    pub fn es256(kid: &str) -> IssuerKey {
        let row = sessiond::credentials::tokens::keys::generate_key(0).expect("a P-256 key");
        let mut jwk: Value = serde_json::from_str(&row.public_jwk).unwrap();
        jwk["kid"] = json!(kid);
        IssuerKey {
            alg: Algorithm::ES256,
            kid: kid.into(),
            encoding: EncodingKey::from_ec_der(&row.private_der),
            jwk,
        }
    }

    /// An RSA-2048 key for RS256: `index` picks one of a few keys generated once per test
    /// binary (generation is slow), so index 0 and 1 are different keys.
    pub fn rs256(index: usize, kid: &str) -> IssuerKey {
        let rsa = rsa_material(index);
        IssuerKey {
            alg: Algorithm::RS256,
            kid: kid.into(),
            encoding: EncodingKey::from_rsa_der(&rsa.pkcs1_der),
            jwk: json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(&rsa.n),
                "e": URL_SAFE_NO_PAD.encode(&rsa.e),
                "kid": kid,
                "alg": "RS256",
                "use": "sig",
            }),
        }
    }

    /// The same key material published under another `kid`.
    pub fn with_kid(&self, kid: &str) -> IssuerKey {
        let mut key = self.clone();
        key.kid = kid.into();
        key.jwk["kid"] = json!(kid);
        key
    }

    /// The header this key signs with: its algorithm and `kid`.
    pub fn header(&self) -> Header {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(self.header(), claims)
    }

    pub fn sign_with_header(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("the token signs")
    }
}

/// An HS256 token signed with `secret` (Supabase's legacy JWT secret).
pub fn sign_hs256(secret: &str, claims: &Value) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).expect("the token signs")
}

/// An unsigned token: `{"alg":"none"}` header, the payload, an empty signature.
pub fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// The token with its payload replaced by `claims` and its signature kept.
pub fn with_payload(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS compact token");
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{}.{}", parts[0], payload, parts[2])
}

/// A JWKS document holding `keys`.
pub fn jwks_of(keys: &[&IssuerKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

/// Claims as an issuer would put them in a fresh token: `iss`, `aud`, `sub`, `iat`, `exp`
/// (an hour from now) and `email` with `email_verified: true`.
pub fn claims(issuer: &str, audience: &str, sub: &str, email: Option<&str>) -> Value {
    let now = crate::helpers::system_now();
    let mut claims = json!({
        "iss": issuer,
        "aud": audience,
        "sub": sub,
        "iat": now,
        "exp": now + 3600,
        "role": "authenticated",
    });
    if let Some(email) = email {
        claims["email"] = json!(email);
        claims["email_verified"] = json!(true);
    }
    claims
}

/// The Supabase project the bridge tests configure: its provider name, issuer, audience and
/// HS256 secret.
pub const SUPABASE: &str = "supabase";
pub const SUPABASE_ISS: &str = "https://proj.supabase.co/auth/v1";
pub const SUPABASE_AUD: &str = "authenticated";
pub const SUPABASE_SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";

/// The provider settings of the [`SUPABASE`] project.
pub fn supabase_provider() -> ProviderSettings {
    secret_provider(SUPABASE, SUPABASE_ISS, SUPABASE_AUD, SUPABASE_SECRET)
}

/// Fresh claims from the [`SUPABASE`] project for `sub`, with `email` if given.
pub fn supabase_claims(sub: &str, email: Option<&str>) -> Value {
    claims(SUPABASE_ISS, SUPABASE_AUD, sub, email)
}

/// A fresh token from the [`SUPABASE`] project for `sub`, with `email` if given.
pub fn supabase_token(sub: &str, email: Option<&str>) -> String {
    sign_hs256(SUPABASE_SECRET, &supabase_claims(sub, email))
}

/// A provider verified with an HS256 shared secret.
pub fn secret_provider(name: &str, issuer: &str, audience: &str, secret: &str) -> ProviderSettings {
    ProviderSettings {
        name: name.into(),
        issuer: issuer.into(),
        audience: vec![audience.into()],
        algorithms: vec![Algorithm::HS256],
        secret: Some(SecretString::from(secret.to_string())),
        jwks_url: None,
        leeway_secs: 30,
        trust_email: false,
    }
}

/// A provider verified with the keys published at `jwks_url`.
pub fn jwks_provider(
    name: &str,
    issuer: &str,
    audience: &str,
    alg: Algorithm,
    jwks_url: &str,
) -> ProviderSettings {
    ProviderSettings {
        name: name.into(),
        issuer: issuer.into(),
        audience: vec![audience.into()],
        algorithms: vec![alg],
        secret: None,
        jwks_url: Some(jwks_url.into()),
        leeway_secs: 30,
        trust_email: false,
    }
}

struct RsaMaterial {
    /// `RSAPrivateKey` (PKCS#1) DER: what jsonwebtoken's aws-lc-rs backend signs with.
    pkcs1_der: Vec<u8>,
    /// Modulus and public exponent, big-endian without leading zeros.
    n: Vec<u8>,
    e: Vec<u8>,
}

fn rsa_material(index: usize) -> &'static RsaMaterial {
    static KEYS: [OnceLock<RsaMaterial>; 2] = [OnceLock::new(), OnceLock::new()];
    KEYS[index].get_or_init(generate_rsa)
}

fn generate_rsa() -> RsaMaterial {
    let pair =
        aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("an RSA key");
    // aws-lc-rs exports PKCS#8 only; jsonwebtoken's RSA signer parses the PKCS#1
    // `RSAPrivateKey` that PKCS#8 wraps in its `privateKey` OCTET STRING.
    let pkcs8 = pair.as_der().expect("PKCS#8 export");
    let (tag, info, _) = der_element(pkcs8.as_ref());
    assert_eq!(tag, 0x30, "PrivateKeyInfo is a SEQUENCE");
    let (_version, rest) = der_expect(info, 0x02);
    let (_algorithm, rest) = der_expect(rest, 0x30);
    let (pkcs1, _) = der_expect(rest, 0x04);
    // RSAPrivateKey ::= SEQUENCE { version, modulus, publicExponent, ... }
    let (fields, _) = der_expect(pkcs1, 0x30);
    let (_version, rest) = der_expect(fields, 0x02);
    let (n, rest) = der_expect(rest, 0x02);
    let (e, _) = der_expect(rest, 0x02);
    let unsigned = |int: &[u8]| {
        let start = int.iter().position(|b| *b != 0).unwrap_or(int.len());
        int[start..].to_vec()
    };
    RsaMaterial {
        pkcs1_der: pkcs1.to_vec(),
        n: unsigned(n),
        e: unsigned(e),
    }
}

/// One DER element: (tag, contents, what follows).
fn der_element(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = input[0];
    let first = input[1] as usize;
    let (len, start) = if first < 0x80 {
        (first, 2)
    } else {
        let count = first & 0x7f;
        let len = input[2..2 + count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + count)
    };
    (tag, &input[start..start + len], &input[start + len..])
}

fn der_expect(input: &[u8], tag: u8) -> (&[u8], &[u8]) {
    let (found, contents, rest) = der_element(input);
    assert_eq!(found, tag, "unexpected DER tag");
    (contents, rest)
}

/// What the JWKS server does with the next request.
#[derive(Clone)]
pub enum Behaviour {
    /// 200 with this JWKS, and `Cache-Control` when given.
    Serve {
        jwks: String,
        cache_control: Option<String>,
    },
    /// 500 with a small body.
    Fail,
    /// 200 with this (large) body and its `Content-Length`.
    Large(String),
    /// 200 with this (large) body in chunks and no `Content-Length`.
    LargeChunked(String),
    /// Reads the request and never answers.
    Hang,
}

struct ServerState {
    behaviour: Mutex<Behaviour>,
    requests: AtomicUsize,
}

/// An HTTP/1.1 JWKS endpoint on 127.0.0.1, one request per connection.
pub struct JwksServer {
    pub url: String,
    state: Arc<ServerState>,
    accept: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub async fn start(behaviour: Behaviour) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let state = Arc::new(ServerState {
            behaviour: Mutex::new(behaviour),
            requests: AtomicUsize::new(0),
        });
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, shared.clone()));
            }
        });
        JwksServer { url, state, accept }
    }

    /// Serves `keys` without `Cache-Control`.
    pub async fn serving(keys: &[&IssuerKey]) -> JwksServer {
        JwksServer::start(Behaviour::Serve {
            jwks: jwks_of(keys),
            cache_control: None,
        })
        .await
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn answer(mut stream: TcpStream, state: Arc<ServerState>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
        if request.len() > 64 * 1024 {
            return;
        }
    }
    state.requests.fetch_add(1, Ordering::SeqCst);
    let behaviour = state.behaviour.lock().unwrap().clone();
    let head = |status: &str, extra: &str, length: Option<usize>| {
        let length = length.map_or(String::new(), |n| format!("Content-Length: {n}\r\n"));
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n\
             {extra}{length}\r\n"
        )
    };
    let response = match behaviour {
        Behaviour::Serve {
            jwks,
            cache_control,
        } => {
            let extra = cache_control.map_or(String::new(), |v| format!("Cache-Control: {v}\r\n"));
            head("200 OK", &extra, Some(jwks.len())) + &jwks
        }
        Behaviour::Fail => {
            let body = r#"{"error":"boom"}"#;
            head("500 Internal Server Error", "", Some(body.len())) + body
        }
        Behaviour::Large(body) => head("200 OK", "", Some(body.len())) + &body,
        Behaviour::LargeChunked(body) => {
            let mut out = head("200 OK", "Transfer-Encoding: chunked\r\n", None);
            for chunk in body.as_bytes().chunks(4096) {
                out += &format!("{:x}\r\n", chunk.len());
                out += std::str::from_utf8(chunk).expect("ASCII body");
                out += "\r\n";
            }
            out + "0\r\n\r\n"
        }
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
