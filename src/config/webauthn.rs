//! Passkeys (`[webauthn]`): the relying party a passkey is bound to and the pages that may use
//! it.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct WebauthnSettings {
    /// The relying party id: the registrable domain passkeys are bound to (`example.com`
    /// serves `app.example.com` too). Changing it orphans every registered passkey.
    pub rp_id: String,
    /// The name authenticators show beside the account.
    pub rp_name: String,
    /// The exact origins (scheme, host, port) of the pages that run the ceremonies, each on
    /// `rp_id` or a subdomain of it. Production refuses non-https origins except localhost.
    pub origins: Vec<String>,
}
