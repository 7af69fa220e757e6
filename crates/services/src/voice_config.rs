//! The voice configuration of a MID by its customer (PROTOCOL §3.4): the URL where the
//! agent takes its calls, and the secret that signs their set-up.
//!
//! The URL passes the webhook SSRF guard, name resolution included, before the transaction
//! starts, exactly as a webhook URL does. The secret is made like a webhook secret, shown in
//! the response that made it and never again; the audit log records that it changed, never
//! any part of it.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use ami_store::sealed::VOICE_SIGNING_SECRET;
use ami_store::voice_configs::{self, NewSecret, VoiceConfig};
use ami_webhooks::WebhookHost;

use crate::auth::CustomerCaller;
use crate::mids::{mid_subject, not_active};
use crate::{Error, Result, Services};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoiceConfigInput {
    /// `https://` or `wss://`, at most 2048 characters, no credentials, no fragment; refused
    /// when it names or resolves to a private, loopback, link-local or otherwise non-public
    /// address. Plain `http://` and `ws://` only for addresses the operator's allowlist
    /// admits (private deployments, tests). null or "" clears it.
    #[schema(value_type = Option<String>)]
    pub voice_url: Option<Value>,
}

/// A MID's voice configuration. `signing_secret` appears only in the response that created
/// it (the first voice URL, or a rotation); every later read shows `signing_secret_hint`.
#[derive(Serialize, ToSchema)]
pub struct VoiceConfigView {
    pub mid: String,
    /// Where the agent takes the MID's inbound calls; null when none is set.
    pub voice_url: Option<String>,
    /// `whsec_` + base64 of 32 random bytes: shown once, store it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    /// Prefix and last four characters of the signing secret; null before the first one.
    pub signing_secret_hint: Option<String>,
    /// When the voice configuration last changed; null if it never did.
    pub updated_at: Option<String>,
}

/// Never prints the secret.
impl std::fmt::Debug for VoiceConfigView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceConfigView")
            .field("mid", &self.mid)
            .field("voice_url", &self.voice_url)
            .field("signing_secret_hint", &self.signing_secret_hint)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

impl VoiceConfigView {
    fn new(mid: &str, stored: Option<VoiceConfig>, shown_once: Option<String>) -> Self {
        let (voice_url, hint, updated_at) = match stored {
            Some(c) => (
                c.voice_url,
                c.signing_secret.as_deref().map(ami_core::secret::hint),
                Some(ami_core::time::rfc3339(c.updated_at)),
            ),
            None => (None, None, None),
        };
        VoiceConfigView {
            mid: mid.to_owned(),
            voice_url,
            signing_secret: shown_once,
            signing_secret_hint: hint,
            updated_at,
        }
    }
}

fn invalid_voice_url(detail: &str) -> Error {
    Error::invalid("voice_url", format!("the voice URL is refused: {detail}"))
        .with("detail", detail)
}

/// A voice URL the guard accepted: the normalised URL and its host (for the audit log).
struct CheckedVoiceUrl {
    url: String,
    host: String,
}

impl Services {
    /// The stored configuration with its signing secret opened (it is sealed at rest,
    /// `ami_store::sealed`).
    pub(crate) fn opened_voice_config(
        &self,
        stored: Option<VoiceConfig>,
    ) -> Result<Option<VoiceConfig>> {
        let Some(mut c) = stored else {
            return Ok(None);
        };
        if let Some(value) = c.signing_secret.take() {
            let key = self.store.secrets()?;
            c.signing_secret = Some(key.open(VOICE_SIGNING_SECRET, &c.mid_id, &value)?);
        }
        Ok(Some(c))
    }
}

impl Services {
    /// Checks a voice URL with the webhook guard. `wss`/`ws` are judged as `https`/`http`
    /// (same host rules, same default ports) and keep their own scheme; a plaintext scheme
    /// is accepted only when every address of the host is in the operator's allowlist.
    async fn check_voice_url(&self, raw: &str) -> Result<CheckedVoiceUrl> {
        let guard = &self.settings.webhooks.guard;
        let (scheme, rest) = raw
            .split_once(':')
            .ok_or_else(|| invalid_voice_url("unparsable"))?;
        let (judged_as, scheme, plaintext) = match scheme.to_ascii_lowercase().as_str() {
            "https" => ("https", "https", false),
            "wss" => ("https", "wss", false),
            "http" => ("http", "http", true),
            "ws" => ("http", "ws", true),
            _ => return Err(invalid_voice_url("scheme_not_allowed")),
        };
        let checked = guard
            .check_url_resolving(&format!("{judged_as}:{rest}"))
            .await
            .map_err(|refusal| invalid_voice_url(&refusal.reason()))?;
        if plaintext {
            let addresses = match checked.host() {
                WebhookHost::Ip(ip) => vec![*ip],
                WebhookHost::Domain(name) => guard
                    .resolve(name)
                    .await
                    .map_err(|refusal| invalid_voice_url(&refusal.reason()))?,
            };
            let allow = guard.allow_subnets();
            if allow.is_empty() || !addresses.iter().all(|ip| allow.contains(*ip)) {
                return Err(invalid_voice_url("plaintext_scheme_not_allowed"));
            }
        }
        let mut url = checked.as_url().clone();
        if url.scheme() != scheme {
            url.set_scheme(scheme)
                .map_err(|()| invalid_voice_url("unparsable"))?;
        }
        Ok(CheckedVoiceUrl {
            url: url.to_string(),
            host: checked.host().to_string(),
        })
    }

    pub async fn get_voice_config(
        &self,
        caller: &CustomerCaller,
        id: &str,
    ) -> Result<VoiceConfigView> {
        let mut conn = self.store.reader().await?;
        self.owned_mid(&mut conn, caller, id).await?;
        let stored = voice_configs::get(&mut conn, &caller.account_id, id).await?;
        Ok(VoiceConfigView::new(
            id,
            self.opened_voice_config(stored)?,
            None,
        ))
    }

    /// Sets or clears the voice URL. The first URL of a MID without a secret makes one,
    /// returned in this response only; an existing secret is kept.
    pub async fn set_voice_config(
        &self,
        caller: &CustomerCaller,
        id: &str,
        input: VoiceConfigInput,
    ) -> Result<VoiceConfigView> {
        {
            let mut conn = self.store.reader().await?;
            let mid = self.owned_mid(&mut conn, caller, id).await?;
            if mid.status == "released" {
                return Err(not_active(&mid.status));
            }
        }
        let checked = match input.voice_url {
            None | Some(Value::Null) => None,
            Some(Value::String(raw)) if raw.is_empty() => None,
            Some(Value::String(raw)) => Some(self.check_voice_url(&raw).await?),
            Some(_) => return Err(invalid_voice_url("not_a_string")),
        };
        let fresh = checked.as_ref().map(|_| ami_webhooks::generate_secret());
        let prefix = fresh.as_deref().map(ami_core::secret::display_prefix);
        let key = self.store.secrets()?;
        let fresh_sealed = fresh
            .as_deref()
            .map(|f| key.seal(VOICE_SIGNING_SECRET, id, f));
        let new_secret = fresh_sealed
            .as_deref()
            .zip(prefix.as_deref())
            .map(|(secret, prefix)| NewSecret { secret, prefix });
        let mut tx = self.store.begin().await?;
        let mid = self.owned_mid(&mut tx, caller, id).await?;
        if mid.status == "released" {
            return Err(not_active(&mid.status));
        }
        let stored = voice_configs::set_url(
            &mut tx,
            &caller.account_id,
            id,
            checked.as_ref().map(|c| c.url.as_str()),
            new_secret,
            self.now(),
        )
        .await?
        .ok_or_else(|| Error::not_found("mobile_identity"))?;
        // Ours was stored only if there was none before: then, and only then, it is shown.
        // Each sealing has its own nonce, so the sealed values are equal only if ours was.
        let taken = fresh_sealed.is_some() && stored.signing_secret == fresh_sealed;
        let issued = fresh.filter(|_| taken);
        let stored = self
            .opened_voice_config(Some(stored))?
            .ok_or_else(|| Error::not_found("mobile_identity"))?;
        self.audit(
            &mut tx,
            &caller.actor(),
            "voice_config_changed",
            mid_subject(caller.account_id.as_str(), id),
            json!({"voice_url_set": checked.is_some(),
                   "host": checked.as_ref().map(|c| c.host.as_str()),
                   "signing_secret_issued": issued.is_some()}),
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok(VoiceConfigView::new(id, Some(stored), issued))
    }

    /// A new signing secret, returned once; the previous one stops signing at once.
    pub async fn rotate_voice_signing_secret(
        &self,
        caller: &CustomerCaller,
        id: &str,
    ) -> Result<VoiceConfigView> {
        let secret = ami_webhooks::generate_secret();
        let prefix = ami_core::secret::display_prefix(&secret);
        let mut tx = self.store.begin().await?;
        let mid = self.owned_mid(&mut tx, caller, id).await?;
        if mid.status == "released" {
            return Err(not_active(&mid.status));
        }
        let had_previous = voice_configs::get(&mut tx, &caller.account_id, id)
            .await?
            .is_some_and(|c| c.signing_secret.is_some());
        let sealed = self
            .store
            .secrets()?
            .seal(VOICE_SIGNING_SECRET, id, &secret);
        let stored = voice_configs::replace_secret(
            &mut tx,
            &caller.account_id,
            id,
            NewSecret {
                secret: &sealed,
                prefix: &prefix,
            },
            self.now(),
        )
        .await?;
        let stored = self
            .opened_voice_config(stored)?
            .ok_or_else(|| Error::not_found("mobile_identity"))?;
        self.audit(
            &mut tx,
            &caller.actor(),
            "voice_signing_secret_rotated",
            mid_subject(caller.account_id.as_str(), id),
            json!({"replaced_previous": had_previous, "voice_url_set": stored.voice_url.is_some()}),
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok(VoiceConfigView::new(id, Some(stored), Some(secret)))
    }
}
