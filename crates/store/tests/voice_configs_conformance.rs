//! The voice configuration part of the store's contract, identical on both engines: one row
//! per MID, a secret kept by later URL changes and replaced only by rotation, and another
//! account's MID a plain miss for every read and write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ami_store::commit;
use ami_store::voice_configs::{self, NewSecret};

use common::{NOW, acct, engines, fixture, new_account, seed_mid};

const FIRST: NewSecret<'static> = NewSecret {
    secret: "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    prefix: "whsec_AAEC",
};
const SECOND: NewSecret<'static> = NewSecret {
    secret: "whsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=",
    prefix: "whsec_ICEi",
};

#[tokio::test]
async fn the_secret_survives_url_changes_and_rotation_replaces_it() {
    for engine in engines() {
        let fx = fixture(engine).await;
        let store = &fx.store;
        new_account(store, "acct_owner").await;
        new_account(store, "acct_other").await;
        let mid = seed_mid(store, engine, "acct_owner", "+34600000001").await;
        let owner = acct("acct_owner");
        let other = acct("acct_other");

        let mut tx = store.begin().await.unwrap();
        assert!(
            voice_configs::get(&mut tx, &owner, &mid)
                .await
                .unwrap()
                .is_none()
        );
        let set = voice_configs::set_url(
            &mut tx,
            &owner,
            &mid,
            Some("wss://a.example/v"),
            Some(FIRST),
            NOW,
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            set.signing_secret.as_deref(),
            Some(FIRST.secret),
            "{engine:?}"
        );
        assert_eq!(set.signing_secret_prefix.as_deref(), Some(FIRST.prefix));

        // A later URL offers another secret: the stored one is kept.
        let kept = voice_configs::set_url(&mut tx, &owner, &mid, None, Some(SECOND), NOW + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.voice_url, None);
        assert_eq!(
            kept.signing_secret.as_deref(),
            Some(FIRST.secret),
            "{engine:?}"
        );
        assert_eq!(kept.signing_secret_prefix.as_deref(), Some(FIRST.prefix));
        assert_eq!((kept.created_at, kept.updated_at), (NOW, NOW + 1));

        let rotated = voice_configs::replace_secret(&mut tx, &owner, &mid, SECOND, NOW + 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            rotated.signing_secret.as_deref(),
            Some(SECOND.secret),
            "{engine:?}"
        );
        assert_eq!(
            rotated.signing_secret_prefix.as_deref(),
            Some(SECOND.prefix)
        );

        // Another account reads nothing and changes nothing.
        assert!(
            voice_configs::get(&mut tx, &other, &mid)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            voice_configs::set_url(
                &mut tx,
                &other,
                &mid,
                Some("wss://b.example/v"),
                Some(FIRST),
                NOW + 3
            )
            .await
            .unwrap()
            .is_none(),
            "{engine:?}"
        );
        assert!(
            voice_configs::replace_secret(&mut tx, &other, &mid, FIRST, NOW + 3)
                .await
                .unwrap()
                .is_none(),
            "{engine:?}"
        );
        commit(tx).await.unwrap();

        let mut conn = store.reader().await.unwrap();
        let stored = voice_configs::get(&mut conn, &owner, &mid)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.voice_url, None);
        assert_eq!(stored.signing_secret.as_deref(), Some(SECOND.secret));
        assert_eq!(stored.updated_at, NOW + 2);
        assert!(
            !format!("{stored:?}").contains(SECOND.secret),
            "Debug shows the secret"
        );
        drop(conn);
        fx.close().await;
    }
}
