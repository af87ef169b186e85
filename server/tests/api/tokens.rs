//! API tokens in the user store, on both databases: made, used, listed,
//! refused once their user is disabled, revoked, and stored only hashed.

use server::auth::tokens::ApiToken;
use server::auth::users::{Password, Role, UserError, UserName, UserStore};
use server::db::Database;

use crate::helpers::each_migrated_database;

fn name(text: &str) -> UserName {
    UserName::new(text).expect("valid name")
}

/// Every row of `api_tokens`, all columns as text, to search for secrets.
async fn rows(db: &Database) -> Vec<String> {
    const SQL: &str = "SELECT id || ' ' || token_hash || ' ' || user_name || ' ' || label \
                       FROM api_tokens ORDER BY id";
    match db {
        Database::Sqlite(pool) => sqlx::query_scalar(SQL).fetch_all(pool).await.unwrap(),
        Database::Postgres(pool) => sqlx::query_scalar(SQL).fetch_all(pool).await.unwrap(),
    }
}

async fn set_last_used(db: &Database, id: &str, at: i64) {
    const SQL: &str = "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1";
    match db {
        Database::Sqlite(pool) => {
            sqlx::query(SQL)
                .bind(id)
                .bind(at)
                .execute(pool)
                .await
                .unwrap();
        }
        Database::Postgres(pool) => {
            sqlx::query(SQL)
                .bind(id)
                .bind(at)
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

/// Runs every token check against one migrated database.
async fn exercise(db: Database) {
    let store = UserStore::new(db.clone());
    let ada = name("ada");
    let bob = name("bob");
    store
        .add(
            &ada,
            &Password::new("correct horse battery").unwrap(),
            Role::Operator,
        )
        .await
        .unwrap();
    store
        .add(
            &bob,
            &Password::new("bobs password!").unwrap(),
            Role::Viewer,
        )
        .await
        .unwrap();

    // add: the token has the documented form and acts as its user
    let (made, token) = store.add_token(&ada, "deploy bot").await.expect("add");
    assert_eq!(made.user, ada);
    assert_eq!(made.label, "deploy bot");
    assert_eq!(made.last_used_at, None);
    assert_eq!(made.id.len(), 8);
    assert!(
        made.id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{}",
        made.id
    );
    let secret = token
        .strip_prefix(&format!("sy_{}_", made.id))
        .unwrap_or_else(|| panic!("sy_<id>_<secret>: {token}"));
    assert_eq!(secret.len(), 43, "32 bytes, unpadded base64url");
    let user = store
        .token_user(&token)
        .await
        .unwrap()
        .expect("the token works");
    assert_eq!(user.name, ada);
    assert_eq!(user.role, Role::Operator);

    // its use is recorded, at most once a minute
    let listed = store.tokens().await.unwrap();
    let first_use = listed[0].last_used_at.expect("use recorded");
    assert!(first_use >= made.created_at);
    set_last_used(&db, &made.id, first_use - 30_000).await;
    store.token_user(&token).await.unwrap().expect("works");
    assert_eq!(
        store.tokens().await.unwrap()[0].last_used_at,
        Some(first_use - 30_000),
        "not rewritten within a minute"
    );
    set_last_used(&db, &made.id, first_use - 61_000).await;
    store.token_user(&token).await.unwrap().expect("works");
    assert!(
        store.tokens().await.unwrap()[0].last_used_at >= Some(first_use),
        "rewritten after a minute"
    );

    // wrong and malformed tokens are None alike
    let mut wrong = token.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [
        wrong.as_str(),
        "",
        "sy_",
        "Bearer x",
        &token[..token.len() - 1],
        &format!("{token}x"),
        &token.replacen("sy_", "xy_", 1),
        &format!("sy_zzzzzzzz_{secret}"),
        secret,
    ] {
        assert_eq!(store.token_user(bad).await.unwrap(), None, "{bad:?}");
    }

    // only the hash is stored
    let stored = rows(&db).await;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(secret), "{stored:?}");
    assert!(!stored[0].contains(&token), "{stored:?}");

    // list: every token by user, then age, without secrets
    let (bobs, bob_token) = store.add_token(&bob, "ci").await.unwrap();
    let (second, second_token) = store.add_token(&ada, "laptop").await.unwrap();
    assert_ne!(second_token, token);
    let listed: Vec<ApiToken> = store.tokens().await.unwrap();
    let summary: Vec<(&str, &str, &str)> = listed
        .iter()
        .map(|t| (t.id.as_str(), t.user.as_str(), t.label.as_str()))
        .collect();
    let (first_id, second_id) = if made.created_at < second.created_at {
        (made.id.as_str(), second.id.as_str())
    } else {
        // Same millisecond: then by id.
        let mut ids = [made.id.as_str(), second.id.as_str()];
        ids.sort();
        (ids[0], ids[1])
    };
    let label_of = |id: &str| {
        if id == made.id {
            "deploy bot"
        } else {
            "laptop"
        }
    };
    assert_eq!(
        summary,
        [
            (first_id, "ada", label_of(first_id)),
            (second_id, "ada", label_of(second_id)),
            (bobs.id.as_str(), "bob", "ci"),
        ]
    );
    assert!(!format!("{listed:?}").contains(secret));

    // disabling the user stops its tokens; enabling brings them back
    store.disable(&ada).await.unwrap();
    assert_eq!(store.token_user(&token).await.unwrap(), None);
    assert_eq!(store.token_user(&second_token).await.unwrap(), None);
    assert!(store.token_user(&bob_token).await.unwrap().is_some());
    store.enable(&ada).await.unwrap();
    assert!(store.token_user(&token).await.unwrap().is_some());

    // revoke: stops at once; a second revoke says there is no such token
    store.revoke_token(&made.id).await.expect("revoke");
    assert_eq!(store.token_user(&token).await.unwrap(), None);
    assert!(store.token_user(&second_token).await.unwrap().is_some());
    let err = store
        .revoke_token(&made.id)
        .await
        .expect_err("revoked already");
    assert!(matches!(&err, UserError::TokenNotFound(id) if *id == made.id));
    assert_eq!(err.status().as_u16(), 404);
    assert!(matches!(
        store.revoke_token("not an id").await,
        Err(UserError::TokenNotFound(_))
    ));

    // unknown users and bad labels are refused
    let err = store
        .add_token(&name("ghost"), "x")
        .await
        .expect_err("no such user");
    assert!(matches!(err, UserError::NotFound(_)), "{err}");
    assert_eq!(err.status().as_u16(), 404);
    for label in ["", "  ", "two\nlines", "tab\there", &"x".repeat(65)] {
        let err = store.add_token(&ada, label).await.expect_err(label);
        assert!(matches!(err, UserError::InvalidLabel(_)), "{err}");
        assert_eq!(err.status().as_u16(), 400);
        assert_eq!(err.to_string().lines().count(), 1, "{err}");
    }
    assert!(store.add_token(&ada, &"é".repeat(64)).await.is_ok());

    // removing a user deletes its tokens
    store.remove(&bob).await.unwrap();
    assert_eq!(store.token_user(&bob_token).await.unwrap(), None);
    assert!(
        rows(&db).await.iter().all(|row| !row.contains(" bob ")),
        "ON DELETE CASCADE"
    );
    assert!(store.tokens().await.unwrap().iter().all(|t| t.user == ada));
}

#[tokio::test]
async fn tokens_work_on_each_database() {
    each_migrated_database(async |db| exercise(db.clone()).await).await;
}
