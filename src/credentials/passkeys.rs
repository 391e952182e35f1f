//! Passkeys (WebAuthn), verified by `webauthn-rs`: the relying party this service is, and the
//! ceremonies' two halves. What the library keeps between the halves (the challenge and what
//! it expects) is returned as JSON for the store, so any instance can finish a ceremony
//! another began; nothing about a ceremony lives in memory.
//!
//! Registration asks for a discoverable credential (a passkey the browser can offer without
//! being told the account: sign-in with autofill). `webauthn-rs`'s passkey policy requires user
//! verification (PIN or biometric) in both ceremonies.

use serde_json::Value;
use webauthn_rs::prelude::{
    CredentialID, DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
    WebauthnError,
};

use crate::config::WebauthnSettings;

/// Why a ceremony's second half failed. The details go to the log, never to the client.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The credential does not verify (challenge, origin, signature, flags, or a malformed
    /// body).
    #[error("the passkey response does not verify: {0}")]
    Invalid(String),
    /// The signature counter did not go up: a cloned authenticator is likely.
    #[error("the passkey's signature counter went backwards")]
    CounterRegressed,
}

/// A passkey as the store keeps it.
pub struct StoredPasskey {
    /// The raw credential id (unique across every user).
    pub credential_id: Vec<u8>,
    /// The library's record of it (public key, counter, flags), JSON.
    pub record: String,
}

/// A verified sign-in assertion.
pub struct VerifiedAssertion {
    pub credential_id: Vec<u8>,
    pub user_verified: bool,
    /// The record with its counter moved on, when it changed (to be stored).
    pub updated_record: Option<String>,
}

pub struct RelyingParty {
    webauthn: Webauthn,
}

impl RelyingParty {
    pub fn from_settings(settings: &WebauthnSettings) -> anyhow::Result<RelyingParty> {
        let mut origins = settings.origins.iter().map(|o| Url::parse(o));
        let first = origins
            .next()
            .ok_or_else(|| anyhow::anyhow!("webauthn.origins is empty"))??;
        let mut builder = WebauthnBuilder::new(&settings.rp_id, &first)
            .map_err(|e| anyhow::anyhow!("webauthn.rp_id / origins: {e}"))?
            .rp_name(&settings.rp_name);
        for origin in origins {
            builder = builder.append_allowed_origin(&origin?);
        }
        let webauthn = builder
            .build()
            .map_err(|e| anyhow::anyhow!("webauthn settings: {e}"))?;
        Ok(RelyingParty { webauthn })
    }

    /// The options for `navigator.credentials.create()` (WebAuthn L3 JSON, under `publicKey`)
    /// and the state to keep until the response arrives.
    pub fn start_registration(
        &self,
        user_id: &str,
        user_name: &str,
        existing: &[Vec<u8>],
    ) -> anyhow::Result<(Value, String)> {
        // Our user ids are UUIDs: the user handle is the id itself (no lookup table).
        let user_handle = Uuid::parse_str(user_id)?;
        let exclude: Vec<CredentialID> = existing.iter().map(|id| id.clone().into()).collect();
        let (options, state) = self
            .webauthn
            .start_passkey_registration(user_handle, user_name, user_name, Some(exclude))
            .map_err(|e| anyhow::anyhow!("starting a passkey registration: {e}"))?;
        let mut options = serde_json::to_value(options)?;
        // A discoverable credential: what sign-in without a typed account (and autofill) needs.
        let selection = &mut options["publicKey"]["authenticatorSelection"];
        selection["residentKey"] = Value::from("required");
        selection["requireResidentKey"] = Value::from(true);
        Ok((options, serde_json::to_string(&state)?))
    }

    /// Verifies a registration response against its state; the new passkey to store.
    pub fn finish_registration(
        &self,
        credential: Value,
        state: &str,
    ) -> Result<StoredPasskey, PasskeyError> {
        let credential: RegisterPublicKeyCredential =
            serde_json::from_value(credential).map_err(|e| PasskeyError::Invalid(e.to_string()))?;
        let state: PasskeyRegistration =
            serde_json::from_str(state).map_err(|e| PasskeyError::Invalid(e.to_string()))?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| PasskeyError::Invalid(e.to_string()))?;
        Ok(StoredPasskey {
            credential_id: passkey.cred_id().as_ref().to_vec(),
            record: serde_json::to_string(&passkey)
                .map_err(|e| PasskeyError::Invalid(e.to_string()))?,
        })
    }

    /// The options for `navigator.credentials.get()` with no account named (the browser offers
    /// the passkeys it has for this relying party; `mediation: "conditional"` for autofill).
    pub fn start_sign_in(&self) -> anyhow::Result<(Value, String)> {
        let (options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(|e| anyhow::anyhow!("starting a passkey sign-in: {e}"))?;
        Ok((
            serde_json::to_value(options)?,
            serde_json::to_string(&state)?,
        ))
    }

    /// Whose passkey an assertion claims to be (the user handle) and which one, before it is
    /// verified: what to load to verify it.
    pub fn identify(&self, credential: &Value) -> Result<(String, Vec<u8>), PasskeyError> {
        let credential: PublicKeyCredential = serde_json::from_value(credential.clone())
            .map_err(|e| PasskeyError::Invalid(e.to_string()))?;
        let (user, id) = self
            .webauthn
            .identify_discoverable_authentication(&credential)
            .map_err(|e| PasskeyError::Invalid(e.to_string()))?;
        Ok((user.to_string(), id.to_vec()))
    }

    /// Verifies an assertion against its state and the stored record of the passkey it names.
    pub fn finish_sign_in(
        &self,
        credential: Value,
        state: &str,
        record: &str,
    ) -> Result<VerifiedAssertion, PasskeyError> {
        let invalid = |e: &dyn std::fmt::Display| PasskeyError::Invalid(e.to_string());
        let credential: PublicKeyCredential =
            serde_json::from_value(credential).map_err(|e| invalid(&e))?;
        let state: DiscoverableAuthentication =
            serde_json::from_str(state).map_err(|e| invalid(&e))?;
        let mut passkey: Passkey = serde_json::from_str(record).map_err(|e| invalid(&e))?;
        let keys = [DiscoverableKey::from(&passkey)];
        let result = self
            .webauthn
            .finish_discoverable_authentication(&credential, state, &keys)
            .map_err(|e| match e {
                WebauthnError::CredentialPossibleCompromise => PasskeyError::CounterRegressed,
                other => invalid(&other),
            })?;
        let updated_record = match passkey.update_credential(&result) {
            Some(true) => Some(serde_json::to_string(&passkey).map_err(|e| invalid(&e))?),
            _ => None,
        };
        Ok(VerifiedAssertion {
            credential_id: result.cred_id().as_ref().to_vec(),
            user_verified: result.user_verified(),
            updated_record,
        })
    }
}
