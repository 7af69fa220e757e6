//! Outbound webhooks for AMI: the SSRF guard, signing and verification of both
//! signature schemes, and the guarded HTTP sender. No storage, no server: the delivery
//! loop that uses these lives elsewhere.
//!
//! - [`address`]: which IP addresses may be connected to (pure).
//! - [`AllowSubnets`]: the operator's allowlist (`AMI_WEBHOOK_ALLOW_SUBNETS`).
//! - [`check_url`], [`WebhookUrl`], [`GuardError`]: URL rules without the network.
//! - [`Guard`], [`Lookup`], [`GuardedResolver`]: the same rules plus resolution, and the
//!   resolver that pins the HTTP client to checked addresses.
//! - [`generate_secret`], [`sign`], [`verify_compatible`], [`verify_standard`],
//!   [`TEST_VECTORS`]: the compatible `X-Ami-*` scheme and Standard Webhooks.
//! - [`Sender`], [`AttemptOutcome`], [`classify`], [`RetrySchedule`]: one attempt and
//!   what follows from it.

pub mod address;
mod allowlist;
mod error;
mod excerpt;
mod guard;
mod host_names;
mod lookup;
mod outcome;
mod resolver;
mod retry_after;
mod retry_schedule;
mod secret;
mod sender;
mod signing;
mod test_vectors;
mod verify;
mod webhook_url;

pub use address::{Embedding, Range, Refusal};
pub use allowlist::{ALLOW_SUBNETS_ENV, AllowSubnets, AllowSubnetsError};
pub use error::GuardError;
pub use excerpt::{EXCERPT_MAX, escape_excerpt};
pub use guard::{DEFAULT_LOOKUP_TIMEOUT, Guard};
pub use host_names::is_blocked_host_name;
pub use lookup::{Lookup, LookupFuture, StaticLookup, SystemLookup};
pub use outcome::{AttemptError, AttemptOutcome, Disposition, classify};
pub use resolver::GuardedResolver;
pub use retry_after::{MAX_RETRY_AFTER, parse_retry_after};
pub use retry_schedule::RetrySchedule;
pub use secret::{InvalidSecret, SECRET_BYTES, SECRET_PREFIX, generate_secret};
pub use sender::{MAX_BODY_READ, Sender, SenderBuildError, SenderConfig};
pub use signing::{
    SignError, SignatureHeaders, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, X_AMI_SIGNATURE,
    X_AMI_TIMESTAMP, X_AMI_WEBHOOK_ID, sign,
};
pub use test_vectors::{TEST_VECTORS, TestVector};
pub use verify::{
    TOLERANCE_SECS, VerifyError, verify_compatible, verify_compatible_parts, verify_standard,
    verify_standard_parts,
};
pub use webhook_url::{MAX_URL_LEN, Scheme, WebhookHost, WebhookUrl, check_url};
