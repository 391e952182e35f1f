//! Passkeys: registration (a guest becomes a permanent user by registering one, in place, with
//! no email), the user's list, deletion (never of the last way to sign in), sign-in with a
//! discoverable passkey (browser autofill), and the assertion check a re-authentication uses.
//! Every assertion goes through the credential-check step (throttled, audited when it fails);
//! a signature counter that goes backwards is refused and audited on its own.

use std::sync::Arc;

use serde_json::{Value, json};

use super::accounts::subject;
use super::credentials::CredentialChecks;
use super::freshness::Freshness;
use super::sessions::{Issued, Sessions};
use crate::clock::Clock;
use crate::credentials::passkeys::{PasskeyError, RelyingParty};
use crate::credentials::tokens::AccessClaims;
use crate::domain::assurance::{PASSKEY, USER_VERIFIED};
use crate::domain::{ClientInfo, SessionKind, User, UserId};
use crate::error::{Error, Result};
use crate::liveness::gate::SessionGate;
use crate::observability::audit::{AuditLog, Event};
use crate::store::{GuestToPasskey, NewCeremony, NewPasskey, PasskeyAdded, Precondition, Store};

/// A passkey as its owner sees it listed.
pub use crate::store::PasskeyEntry;

/// A ceremony's first half lives this long.
pub const CEREMONY_TTL_SECS: i64 = 300;
const REGISTER: &str = "register";
const SIGN_IN: &str = "sign_in";
const MAX_NAME_CHARS: usize = 64;

/// A ceremony's first half: its id and the options for the browser.
pub struct Started {
    pub challenge_id: String,
    pub options: Value,
}

/// A verified assertion: whose passkey, and whether the user was verified.
pub struct Asserted {
    pub user: User,
    pub user_verified: bool,
}

impl Asserted {
    /// The `amr` methods it proves.
    pub fn methods(&self) -> Vec<&'static str> {
        match self.user_verified {
            true => vec![PASSKEY, USER_VERIFIED],
            false => vec![PASSKEY],
        }
    }
}

pub struct Passkeys {
    store: Store,
    clock: Clock,
    checks: Arc<CredentialChecks>,
    sessions: Arc<Sessions>,
    gate: Arc<SessionGate>,
    audit: AuditLog,
    freshness: Freshness,
    relying_party: Arc<RelyingParty>,
}

/// What [`Passkeys`] is built from.
pub struct PasskeysParts {
    pub store: Store,
    pub clock: Clock,
    pub checks: Arc<CredentialChecks>,
    pub sessions: Arc<Sessions>,
    pub gate: Arc<SessionGate>,
    pub audit: AuditLog,
    pub freshness: Freshness,
    pub relying_party: Arc<RelyingParty>,
}

impl Passkeys {
    pub fn new(parts: PasskeysParts) -> Passkeys {
        let PasskeysParts {
            store,
            clock,
            checks,
            sessions,
            gate,
            audit,
            freshness,
            relying_party,
        } = parts;
        Passkeys {
            store,
            clock,
            checks,
            sessions,
            gate,
            audit,
            freshness,
            relying_party,
        }
    }

    async fn start(
        &self,
        purpose: &str,
        user_id: Option<&str>,
        name: Option<&str>,
        options: Value,
        state: String,
    ) -> Result<Started> {
        let now = self.clock.now();
        let challenge_id = uuid::Uuid::now_v7().to_string();
        self.store
            .put_ceremony(&NewCeremony {
                id: &challenge_id,
                purpose,
                user_id,
                name,
                state: &state,
                now,
                expires_at: now + CEREMONY_TTL_SECS,
            })
            .await?;
        Ok(Started {
            challenge_id,
            options,
        })
    }

    /// `POST /v1/passkeys/register/start`. Fresh, except for a guest: a guest has nothing
    /// else to re-authenticate with, and registering is how it becomes permanent.
    pub async fn start_registration(
        &self,
        claims: &AccessClaims,
        user: &User,
        name: Option<&str>,
    ) -> Result<Started> {
        if !user.is_guest {
            self.freshness.require(claims)?;
        }
        let name = passkey_name(name)?;
        let existing = self.store.passkey_credential_ids(&user.id).await?;
        let account = user.email.as_deref().unwrap_or("guest");
        let (options, state) = self
            .relying_party
            .start_registration(&user.id, account, &existing)?;
        self.start(REGISTER, Some(&user.id), Some(&name), options, state)
            .await
    }

    /// `POST /v1/passkeys/register/finish`: the passkey is the user's; a guest is now a
    /// permanent user, and this session a permanent passkey session.
    pub async fn finish_registration(
        &self,
        claims: &AccessClaims,
        challenge_id: &str,
        credential: Value,
        client: &ClientInfo,
    ) -> Result<PasskeyEntry> {
        let now = self.clock.now();
        let ceremony = self
            .store
            .take_ceremony(challenge_id, now)
            .await?
            .filter(|c| c.purpose == REGISTER && c.user_id.as_deref() == Some(claims.sub.as_str()))
            .ok_or(Error::InvalidGrant)?;
        let stored = match self
            .relying_party
            .finish_registration(credential, &ceremony.state)
        {
            Ok(stored) => stored,
            Err(error) => {
                tracing::info!(%error, "passkey registration refused");
                return Err(Error::InvalidGrant);
            }
        };
        let user = self
            .store
            .find_user(&claims.sub)
            .await?
            .ok_or(Error::InvalidToken("the session is no longer live"))?;
        let amr: Vec<String> = vec![PASSKEY.into(), USER_VERIFIED.into()];
        let guest = user.is_guest.then(|| GuestToPasskey {
            session_id: claims.sid.as_str(),
            amr: &amr,
            expires_at: now + self.sessions.lifetimes().permanent_ttl_secs,
        });
        let id = uuid::Uuid::now_v7().to_string();
        let name = ceremony.name.unwrap_or_else(|| "Passkey".into());
        let added = self
            .store
            .add_passkey(
                &NewPasskey {
                    id: &id,
                    user_id: &user.id,
                    credential_id: &stored.credential_id,
                    name: &name,
                    credential: &stored.record,
                    now,
                },
                guest,
            )
            .await?;
        if added == PasskeyAdded::Duplicate {
            return Err(Error::AlreadyEnabled("this passkey is already registered"));
        }
        if user.is_guest {
            // Its snapshot still says guest; every instance re-reads it.
            self.gate.changed(&claims.sid);
        }
        let subject = subject(Some(&user.id), Some(&claims.sid), client);
        let detail = json!({ "passkey": id, "name": name, "guest_upgraded": user.is_guest });
        self.audit
            .record(Event::PasskeyRegistered, subject, detail)
            .await;
        Ok(PasskeyEntry {
            id,
            name,
            created_at: now,
            last_used_at: None,
        })
    }

    /// `GET /v1/passkeys`.
    pub async fn list(&self, user_id: &UserId) -> Result<Vec<PasskeyEntry>> {
        Ok(self.store.list_passkeys(user_id).await?)
    }

    /// `DELETE /v1/passkeys/{id}` (fresh): `404` if not the caller's, `409 last_credential` if
    /// it is the only way left to sign in.
    pub async fn delete(&self, claims: &AccessClaims, id: &str, client: &ClientInfo) -> Result<()> {
        self.freshness.require(claims)?;
        match self.store.delete_passkey(&claims.sub, id).await? {
            None => Err(Error::NotFound("no such passkey")),
            Some(false) => Err(Error::LastCredential),
            Some(true) => {
                let subject = subject(Some(&claims.sub), Some(&claims.sid), client);
                self.audit
                    .record(Event::PasskeyDeleted, subject, json!({ "passkey": id }))
                    .await;
                Ok(())
            }
        }
    }

    /// `POST /v1/login/passkey/start` (also the challenge a passkey re-authentication signs).
    pub async fn start_sign_in(&self, client: &ClientInfo) -> Result<Started> {
        self.checks.attempt(client)?;
        let (options, state) = self.relying_party.start_sign_in()?;
        self.start(SIGN_IN, None, None, options, state).await
    }

    /// `POST /v1/login/passkey/finish`: a new session, `amr: ["hwk", "user"]`.
    #[tracing::instrument(name = "login_passkey", skip_all)]
    pub async fn sign_in(
        &self,
        challenge_id: &str,
        credential: Value,
        client: &ClientInfo,
    ) -> Result<Issued> {
        self.checks.attempt(client)?;
        let asserted = self
            .assert(challenge_id, credential, "login", client)
            .await?;
        let amr = asserted.methods().iter().map(|m| m.to_string()).collect();
        let user = &asserted.user;
        let issued = self
            .sessions
            .open_session_proven(
                Precondition::EnabledUser,
                user,
                SessionKind::Passkey,
                amr,
                client,
            )
            .await?
            // A disabled user: told exactly what a wrong passkey is told.
            .ok_or(Error::InvalidGrant)?;
        let subject = subject(Some(&user.id), Some(&issued.session_id), client);
        self.audit
            .record(
                Event::LoginSucceeded,
                subject,
                json!({ "method": "passkey" }),
            )
            .await;
        Ok(issued)
    }

    /// Verifies an assertion for a sign-in ceremony: single use, the passkey registered, its
    /// user handle its owner's, its signature and counter right. Wrong: `invalid_grant`.
    pub async fn assert(
        &self,
        challenge_id: &str,
        credential: Value,
        purpose: &str,
        client: &ClientInfo,
    ) -> Result<Asserted> {
        let now = self.clock.now();
        let refused = |why: &str| {
            tracing::info!(why, purpose, "passkey assertion refused");
            Error::InvalidGrant
        };
        let ceremony = self
            .store
            .take_ceremony(challenge_id, now)
            .await?
            .filter(|c| c.purpose == SIGN_IN)
            .ok_or_else(|| refused("unknown, spent or expired challenge"))?;
        let (handle, credential_id) = self
            .relying_party
            .identify(&credential)
            .map_err(|_| refused("no user handle"))?;
        let record = self
            .store
            .find_passkey(&credential_id)
            .await?
            .filter(|r| r.user_id == handle)
            .ok_or_else(|| refused("unknown passkey"))?;
        let user = self
            .store
            .find_user(&record.user_id)
            .await?
            .ok_or_else(|| refused("no such user"))?;
        let account = user.email.clone().unwrap_or_else(|| user.id.to_string());
        let admission = self.checks.admit_check(&account, client).await?;
        let verified =
            self.relying_party
                .finish_sign_in(credential, &ceremony.state, &record.credential);
        let verified = match verified {
            Ok(verified) => verified,
            Err(error) => {
                let (event, detail) = match error {
                    PasskeyError::CounterRegressed => (
                        Event::PasskeyCounterRegressed,
                        json!({ "passkey": record.id, "purpose": purpose }),
                    ),
                    PasskeyError::Invalid(why) => {
                        tracing::info!(%why, "passkey assertion does not verify");
                        (
                            Event::CredentialCheckFailed,
                            json!({ "credential": "passkey", "purpose": purpose }),
                        )
                    }
                };
                let subject = subject(Some(&user.id), None, client);
                return Err(self
                    .checks
                    .check_failed(
                        admission.ticket,
                        event,
                        subject,
                        detail,
                        Error::InvalidGrant,
                    )
                    .await);
            }
        };
        self.checks.check_passed(admission.ticket).await?;
        self.store
            .passkey_used(&record.id, verified.updated_record.as_deref(), now)
            .await?;
        Ok(Asserted {
            user,
            user_verified: verified.user_verified,
        })
    }
}

/// A passkey's name: trimmed, 1 to 64 characters, "Passkey" when none is given.
fn passkey_name(name: Option<&str>) -> Result<String> {
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    match name {
        None => Ok("Passkey".into()),
        Some(name)
            if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) =>
        {
            Err(Error::InvalidInput(
                "a passkey name is 1 to 64 printable characters",
            ))
        }
        Some(name) => Ok(name.to_string()),
    }
}
