//! Secrets at rest: what the server must read back in clear (a webhook's signing secret, a
//! MID's voice signing secret) is kept sealed with ChaCha20-Poly1305 under a key that lives
//! outside the database, so a copy of the database alone gives none of them away.
//!
//! A sealed value is `sealed-v1:<nonce hex>:<ciphertext hex>`. The associated data is the
//! table, the column and the row's id: a sealed value copied into another row, column or
//! table does not open. [`SecretBox::open`] refuses anything not sealed under this key.
//! Plaintext rows written before sealing existed are sealed by [`seal_plaintext_rows`] at
//! start, and [`rotate`] moves every row to a new key in one transaction.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

use crate::{Conn, Result, StoreError, settings};

const PREFIX: &str = "sealed-v1:";
/// The settings row holding a value sealed under the key in force: a start with another key
/// fails on it with a clear error instead of producing garbage later.
const KEY_CHECK: &str = "secrets_key_check";
const KEY_CHECK_PLAINTEXT: &str = "ami secrets key check";

/// A column that holds a sealed secret, with the column that is its row's id.
pub struct SealedColumn {
    pub table: &'static str,
    pub id: &'static str,
    pub column: &'static str,
}

/// Every column of the schema that holds a secret the server reads back in clear.
pub const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "webhooks",
        id: "id",
        column: "secret",
    },
    SealedColumn {
        table: "voice_configs",
        id: "mid_id",
        column: "signing_secret",
    },
];

pub const WEBHOOK_SECRET: &SealedColumn = &SEALED_COLUMNS[0];
pub const VOICE_SIGNING_SECRET: &SealedColumn = &SEALED_COLUMNS[1];
const SETTINGS_VALUE: &SealedColumn = &SealedColumn {
    table: "settings",
    id: "key",
    column: "value",
};

/// A 32-byte key, as written in a key file or `AMI_SECRETS_KEY`: 64 hex digits or base64.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

/// Never prints the key.
impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "a secrets key is 32 bytes written as 64 hex digits or as base64 (e.g. `openssl rand -hex 32`)"
)]
pub struct InvalidKey;

impl SecretBox {
    pub fn from_bytes(key: &[u8; 32]) -> Self {
        SecretBox {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
        }
    }

    /// Reads a key in its written form; surrounding whitespace (a file's newline) is ignored.
    pub fn parse(text: &str) -> std::result::Result<Self, InvalidKey> {
        use base64::Engine as _;
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| InvalidKey)?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
                .map_err(|_| InvalidKey)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| InvalidKey)?;
        Ok(Self::from_bytes(&key))
    }

    /// A fresh random key, with its written form (hex).
    pub fn generate() -> (Self, String) {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        (Self::from_bytes(&key), hex::encode(key))
    }

    fn aad(column: &SealedColumn, row_id: &str) -> Vec<u8> {
        // The id comes last and the names hold no NUL, so no two triples share a string.
        format!(
            "ami secret\0{}\0{}\0{}",
            column.table, column.column, row_id
        )
        .into_bytes()
    }

    pub fn seal(&self, column: &SealedColumn, row_id: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = Self::aad(column, row_id);
        // Encryption with a fresh nonce cannot fail for inputs of this size.
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        format!("{PREFIX}{}:{}", hex::encode(nonce), hex::encode(ciphertext))
    }

    /// The plaintext of a value sealed under this key for this row; an error otherwise
    /// (another key, another row, altered, or not sealed at all).
    pub fn open(&self, column: &SealedColumn, row_id: &str, stored: &str) -> Result<String> {
        let corrupt = || {
            StoreError::Corrupt(format!(
                "{}.{} of row {row_id} does not open with the secrets key in force",
                column.table, column.column
            ))
        };
        let (nonce, ciphertext) = stored
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .ok_or_else(corrupt)?;
        let nonce = hex::decode(nonce)
            .ok()
            .filter(|n| n.len() == 12)
            .ok_or_else(corrupt)?;
        let ciphertext = hex::decode(ciphertext).map_err(|_| corrupt())?;
        let aad = Self::aad(column, row_id);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| corrupt())?;
        String::from_utf8(plain).map_err(|_| corrupt())
    }
}

pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// The database was sealed under another key.
#[derive(Debug, thiserror::Error)]
#[error(
    "the secrets key does not match the one this database's secrets were sealed with: configure the key it was created with (AMI_SECRETS_KEY_FILE or AMI_SECRETS_KEY), or restore it from where it is kept"
)]
pub struct WrongKey;

/// At start, in one transaction: checks the key against the database (a database seen for
/// the first time records it), then seals any secret still stored in clear. Returns how
/// many rows were sealed.
pub async fn prepare(conn: &mut Conn, key: &SecretBox) -> Result<u64> {
    match settings::get(conn, KEY_CHECK).await? {
        Some(check) => {
            if key.open(SETTINGS_VALUE, KEY_CHECK, &check).ok().as_deref()
                != Some(KEY_CHECK_PLAINTEXT)
            {
                return Err(StoreError::Owned(WrongKey.to_string()));
            }
        }
        None => {
            // A database sealed before its check row existed cannot be: both came together.
            let check = key.seal(SETTINGS_VALUE, KEY_CHECK, KEY_CHECK_PLAINTEXT);
            settings::set(conn, KEY_CHECK, &check).await?;
        }
    }
    seal_plaintext_rows(conn, key).await
}

/// Whether a key was recorded for this database (its secrets are sealed under one).
pub async fn key_recorded(conn: &mut Conn) -> Result<bool> {
    Ok(settings::get(conn, KEY_CHECK).await?.is_some())
}

/// Whether `key` opens this database's secrets: `None` when no key was recorded yet.
pub async fn key_matches(conn: &mut Conn, key: &SecretBox) -> Result<Option<bool>> {
    Ok(settings::get(conn, KEY_CHECK).await?.map(|check| {
        key.open(SETTINGS_VALUE, KEY_CHECK, &check).ok().as_deref() == Some(KEY_CHECK_PLAINTEXT)
    }))
}

async fn rows(conn: &mut Conn, column: &SealedColumn) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {id}, {col} FROM {table} WHERE {col} IS NOT NULL ORDER BY {id}",
        id = column.id,
        col = column.column,
        table = column.table
    ))
    .fetch_all(&mut *conn)
    .await?)
}

async fn update(conn: &mut Conn, column: &SealedColumn, id: &str, value: &str) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE {table} SET {col} = $1 WHERE {id} = $2",
        id = column.id,
        col = column.column,
        table = column.table
    ))
    .bind(value)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Seals every secret still stored in clear (rows written by a version that did not seal).
pub async fn seal_plaintext_rows(conn: &mut Conn, key: &SecretBox) -> Result<u64> {
    let mut sealed = 0;
    for column in SEALED_COLUMNS {
        for (id, value) in rows(conn, column).await? {
            if !is_sealed(&value) {
                update(conn, column, &id, &key.seal(column, &id, &value)).await?;
                sealed += 1;
            }
        }
    }
    Ok(sealed)
}

/// Re-seals every secret and the key check under `new`; the caller commits. Fails, changing
/// nothing once rolled back, when `old` is not the key in force or a row does not open.
pub async fn rotate(conn: &mut Conn, old: &SecretBox, new: &SecretBox) -> Result<u64> {
    let check = settings::get(conn, KEY_CHECK).await?;
    if let Some(check) = check
        && old.open(SETTINGS_VALUE, KEY_CHECK, &check).is_err()
    {
        return Err(StoreError::Owned(WrongKey.to_string()));
    }
    let mut moved = 0;
    for column in SEALED_COLUMNS {
        for (id, value) in rows(conn, column).await? {
            let plain = if is_sealed(&value) {
                old.open(column, &id, &value)?
            } else {
                value
            };
            update(conn, column, &id, &new.seal(column, &id, &plain)).await?;
            moved += 1;
        }
    }
    let check = new.seal(SETTINGS_VALUE, KEY_CHECK, KEY_CHECK_PLAINTEXT);
    settings::set(conn, KEY_CHECK, &check).await?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_for_its_row_and_key() {
        let (key, _) = SecretBox::generate();
        let (other, _) = SecretBox::generate();
        let sealed = key.seal(WEBHOOK_SECRET, "wh_1", "whsec_abc");
        assert!(is_sealed(&sealed) && !sealed.contains("whsec_abc"));
        assert_eq!(
            key.open(WEBHOOK_SECRET, "wh_1", &sealed).ok().as_deref(),
            Some("whsec_abc")
        );
        assert!(key.open(WEBHOOK_SECRET, "wh_2", &sealed).is_err());
        assert!(key.open(VOICE_SIGNING_SECRET, "wh_1", &sealed).is_err());
        assert!(other.open(WEBHOOK_SECRET, "wh_1", &sealed).is_err());
        assert!(key.open(WEBHOOK_SECRET, "wh_1", "whsec_abc").is_err());
    }

    #[test]
    fn keys_are_read_as_hex_or_base64_of_32_bytes() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let b64 = "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=";
        let a = SecretBox::parse(hex).unwrap_or_else(|_| panic!("hex"));
        let b = SecretBox::parse(&format!("{b64}\n")).unwrap_or_else(|_| panic!("base64"));
        let sealed = a.seal(WEBHOOK_SECRET, "wh_1", "s");
        assert_eq!(
            b.open(WEBHOOK_SECRET, "wh_1", &sealed).ok().as_deref(),
            Some("s")
        );
        for bad in ["", "00ff", "not a key", &hex[..62]] {
            assert!(SecretBox::parse(bad).is_err(), "{bad}");
        }
    }
}
