//! Where the key that seals secrets at rest comes from (`ami_store::sealed`): the
//! `secrets_key` setting (`AMI_SECRETS_KEY`), or the file named by `secrets_key_file`
//! (`AMI_SECRETS_KEY_FILE`). With neither, a SQLite database gets a key file of its own next
//! to it, made on the first start (mode 0600), so the two-command start still works and the
//! database file alone still reveals nothing. PostgreSQL has no file of its own to sit
//! beside, and its replicas must share one key: there the key must be configured.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use ami_store::Store;
use ami_store::sealed::{self, SecretBox};

use crate::config::Config;

/// The key file made next to a SQLite database `ami.db`: `ami.secrets-key`. Its name does
/// not start with the database's, so copying `ami.db*` does not take the key along.
pub fn default_key_file(database: &Path) -> PathBuf {
    let stem = database
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ami".into());
    database.with_file_name(format!("{stem}.secrets-key"))
}

/// The store with its secrets key: checked against the database (a wrong key stops here,
/// before anything is served) and used to seal what was still stored in clear.
pub async fn install(store: Store, config: &Config) -> anyhow::Result<Store> {
    let (key, source) = load(config, &store).await?;
    let mut tx = store.begin().await?;
    let sealed = sealed::prepare(&mut tx, &key)
        .await
        .with_context(|| format!("secrets key from {source}"))?;
    ami_store::commit(tx).await?;
    if sealed > 0 {
        tracing::info!(
            rows = sealed,
            "sealed the secrets that were stored in clear"
        );
    }
    Ok(store.with_secrets(key))
}

/// The key in force, and where it came from (for errors; never the key itself). A SQLite
/// database without a key file yet gets one here.
async fn load(config: &Config, store: &Store) -> anyhow::Result<(SecretBox, String)> {
    if let Some(found) = find(config)? {
        return Ok(found);
    }
    let Some(database) = ami_store::ownership::sqlite_path(config.database_url.as_str()) else {
        bail!("no secrets key configured");
    };
    let path = default_key_file(&database);
    // A database whose secrets are sealed already lost its key (copied or restored
    // without it): making a new one would only hide that.
    let mut conn = store.reader().await?;
    if sealed::key_recorded(&mut conn).await? {
        bail!("{}", lost_key(&path));
    }
    drop(conn);
    let key = create_key_file(&path).with_context(|| format!("creating {}", path.display()))?;
    tracing::info!(file = %path.display(), "created a secrets key next to the database; keep a copy elsewhere");
    Ok((key, format!("key file {}", path.display())))
}

/// The configured key, or the key file beside a SQLite database when there is one; `None`
/// when a SQLite database has no key yet. Reads only: `ami doctor` checks with it too.
pub fn find(config: &Config) -> anyhow::Result<Option<(SecretBox, String)>> {
    if let Some(text) = config.secrets_key.expose() {
        if config.secrets_key_file.is_some() {
            bail!("secrets_key and secrets_key_file are both set: configure one key source");
        }
        let key = SecretBox::parse(text).context("secrets_key (AMI_SECRETS_KEY)")?;
        return Ok(Some((key, "secrets_key".into())));
    }
    if let Some(path) = &config.secrets_key_file {
        let key = read_key_file(path, config.allow_insecure_db_permissions)
            .with_context(|| format!("secrets_key_file {}", path.display()))?;
        return Ok(Some((key, format!("secrets_key_file {}", path.display()))));
    }
    let Some(database) = ami_store::ownership::sqlite_path(config.database_url.as_str()) else {
        bail!(
            "PostgreSQL needs a secrets key: set AMI_SECRETS_KEY_FILE (or AMI_SECRETS_KEY) to the same 32-byte key on every replica (make one with `openssl rand -hex 32`)"
        );
    };
    let path = default_key_file(&database);
    if !path.exists() {
        return Ok(None);
    }
    let key = read_key_file(&path, config.allow_insecure_db_permissions)
        .with_context(|| format!("secrets key file {}", path.display()))?;
    Ok(Some((key, format!("key file {}", path.display()))))
}

/// What to say when a database's secrets are sealed and its key is not where it should be.
pub fn lost_key(path: &Path) -> String {
    format!(
        "this database's secrets are sealed with a key that is not at {}: put that key file back, or configure secrets_key_file",
        path.display()
    )
}

/// Reads a key file, refusing one that group or others can read (unless the operator
/// allowed shared database files, and so shared keys, with `allow_insecure_db_permissions`).
pub fn read_key_file(path: &Path, allow_shared: bool) -> anyhow::Result<SecretBox> {
    #[cfg(unix)]
    if !allow_shared {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!("readable by group or others (mode {mode:o}): chmod 600 it");
        }
    }
    let text = std::fs::read_to_string(path)?;
    Ok(SecretBox::parse(&text)?)
}

/// Writes a fresh key to a new file, mode 0600 from its creation; never overwrites.
pub fn create_key_file(path: &Path) -> anyhow::Result<SecretBox> {
    let (key, text) = SecretBox::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(format!("{text}\n").as_bytes())?;
    file.sync_all()?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_key_file_sits_beside_the_database_under_its_own_name() {
        assert_eq!(
            default_key_file(Path::new("/var/lib/ami/ami.db")),
            PathBuf::from("/var/lib/ami/ami.secrets-key")
        );
    }

    #[test]
    fn a_created_key_file_is_private_and_reads_back() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("k");
        let made = create_key_file(&path)?;
        let read = read_key_file(&path, false)?;
        let column = ami_store::sealed::WEBHOOK_SECRET;
        let sealed = made.seal(column, "wh_1", "s");
        assert_eq!(read.open(column, "wh_1", &sealed)?, "s");
        assert!(
            create_key_file(&path).is_err(),
            "an existing key is never replaced"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
            assert!(read_key_file(&path, false).is_err());
            assert!(read_key_file(&path, true).is_ok());
        }
        Ok(())
    }
}
