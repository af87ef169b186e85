//! The user store on both databases: accounts, password checks, sessions;
//! and the first admin created from the settings at startup.

use std::time::Duration;

use coord::time::now_ms;
use server::auth::users::{FirstAdmin, Password, Role, UserError, UserName, UserStore};
use server::db::Database;
use server::startup::spawn_app;
use test_support::TempDir;

use crate::helpers::{each_migrated_database, embedded_settings};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn name(text: &str) -> UserName {
    UserName::new(text).expect("valid name")
}

fn password(text: &str) -> Password {
    Password::new(text).expect("valid password")
}

/// Runs every store check against one migrated database.
async fn exercise(db: Database) {
    let store = UserStore::new(db.clone());
    assert!(store.is_empty().await.unwrap());

    // add / verify
    let ada = name("ada");
    let added = store
        .add(&ada, &password("correct horse battery"), Role::Operator)
        .await
        .expect("add");
    assert_eq!(added.role, Role::Operator);
    assert!(!added.disabled);
    assert!(!store.is_empty().await.unwrap());
    let user = store
        .verify("ada", "correct horse battery")
        .await
        .unwrap()
        .expect("right password");
    assert_eq!(user, added);
    assert_eq!(
        store.verify("ada", "wrong horse battery").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .verify("nobody", "correct horse battery")
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.verify("no such!", "x").await.unwrap(), None);

    // the hash is an Argon2id PHC string, never the password
    let stored: String = match &db {
        Database::Sqlite(pool) => sqlx::query_scalar("SELECT password_hash FROM users")
            .fetch_one(pool)
            .await
            .unwrap(),
        Database::Postgres(pool) => sqlx::query_scalar("SELECT password_hash FROM users")
            .fetch_one(pool)
            .await
            .unwrap(),
    };
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains("horse"));

    // duplicates are refused, with a 409-style error
    let err = store
        .add(&ada, &password("another password"), Role::Admin)
        .await
        .expect_err("duplicate");
    assert!(matches!(err, UserError::Exists(_)), "{err}");
    assert_eq!(err.status().as_u16(), 409);
    assert_eq!(err.to_string(), "user ada already exists");

    // roles, list, passwords
    let bob = name("bob.b@example.com");
    store
        .add(&bob, &password("bobs password!"), Role::Viewer)
        .await
        .unwrap();
    store.set_role(&bob, Role::Admin).await.unwrap();
    let listed = store.list().await.unwrap();
    let summary: Vec<(&str, Role, bool)> = listed
        .iter()
        .map(|u| (u.name.as_str(), u.role, u.disabled))
        .collect();
    assert_eq!(
        summary,
        [
            ("ada", Role::Operator, false),
            ("bob.b@example.com", Role::Admin, false)
        ]
    );
    assert!(Role::Admin.allows(Role::Operator) && !Role::Viewer.allows(Role::Operator));
    let ghost = name("ghost");
    assert!(matches!(
        store.set_role(&ghost, Role::Admin).await,
        Err(UserError::NotFound(_))
    ));
    assert!(matches!(
        store
            .set_password(&ghost, &password("whatever whatever"))
            .await,
        Err(UserError::NotFound(_))
    ));
    assert!(matches!(
        store.disable(&ghost).await,
        Err(UserError::NotFound(_))
    ));

    // sessions: create, look up, delete
    let (id, csrf) = store.create_session(&ada, DAY).await.expect("session");
    assert_ne!(id, csrf);
    let (user, token) = store.session(&id).await.unwrap().expect("live session");
    assert_eq!(user.name, ada);
    assert_eq!(token, csrf);
    assert_eq!(store.session("not-a-session").await.unwrap(), None);
    let stored_ids: Vec<String> = match &db {
        Database::Sqlite(pool) => sqlx::query_scalar("SELECT id_hash FROM sessions")
            .fetch_all(pool)
            .await
            .unwrap(),
        Database::Postgres(pool) => sqlx::query_scalar("SELECT id_hash FROM sessions")
            .fetch_all(pool)
            .await
            .unwrap(),
    };
    assert_eq!(stored_ids.len(), 1);
    assert_ne!(stored_ids[0], id, "only the id's hash is stored");
    store.delete_session(&id).await.unwrap();
    assert_eq!(store.session(&id).await.unwrap(), None);
    store
        .delete_session(&id)
        .await
        .expect("signing out twice is harmless");
    assert!(matches!(
        store.create_session(&ghost, DAY).await,
        Err(UserError::NotFound(_))
    ));

    // expiry: an expired session is None and deleted on sight
    let (expired, _) = store.create_session(&ada, Duration::ZERO).await.unwrap();
    // The shortest a store keeps a session is 1 ms.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(store.session(&expired).await.unwrap(), None);
    assert_eq!(
        store.purge_expired(now_ms()).await.unwrap(),
        0,
        "gone already"
    );

    // purge
    let (short, _) = store
        .create_session(&ada, Duration::from_secs(60))
        .await
        .unwrap();
    let (long, _) = store.create_session(&ada, DAY).await.unwrap();
    assert_eq!(store.purge_expired(now_ms() + 120_000).await.unwrap(), 1);
    assert_eq!(store.session(&short).await.unwrap(), None);
    assert!(store.session(&long).await.unwrap().is_some());

    // a new password ends the sessions and replaces the old one
    store
        .set_password(&ada, &password("a brand new password"))
        .await
        .unwrap();
    assert_eq!(store.session(&long).await.unwrap(), None);
    assert_eq!(
        store.verify("ada", "correct horse battery").await.unwrap(),
        None
    );
    assert!(
        store
            .verify("ada", "a brand new password")
            .await
            .unwrap()
            .is_some()
    );

    // sign out everywhere
    store.create_session(&ada, DAY).await.unwrap();
    store.create_session(&ada, DAY).await.unwrap();
    assert_eq!(store.delete_sessions_of(&ada).await.unwrap(), 2);

    // disable: no sign-in, no sessions; enable restores sign-in
    let (live, _) = store.create_session(&ada, DAY).await.unwrap();
    store.disable(&ada).await.unwrap();
    assert_eq!(store.session(&live).await.unwrap(), None);
    assert_eq!(
        store.verify("ada", "a brand new password").await.unwrap(),
        None
    );
    assert!(store.get(&ada).await.unwrap().expect("kept").disabled);
    store.enable(&ada).await.unwrap();
    assert!(
        store
            .verify("ada", "a brand new password")
            .await
            .unwrap()
            .is_some()
    );

    // removal cascades to sessions
    let (doomed, _) = store.create_session(&bob, DAY).await.unwrap();
    store.remove(&bob).await.unwrap();
    assert_eq!(store.session(&doomed).await.unwrap(), None);
    let left: i64 = match &db {
        Database::Sqlite(pool) => sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE user_name = 'bob.b@example.com'",
        )
        .fetch_one(pool)
        .await
        .unwrap(),
        Database::Postgres(pool) => sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE user_name = 'bob.b@example.com'",
        )
        .fetch_one(pool)
        .await
        .unwrap(),
    };
    assert_eq!(left, 0, "ON DELETE CASCADE");
    assert!(matches!(
        store.remove(&bob).await,
        Err(UserError::NotFound(_))
    ));

    // the first admin is only created on an empty table
    assert!(
        !store
            .add_first_admin(&name("root"), &password("first admin pw"))
            .await
            .unwrap()
    );
    store.remove(&ada).await.unwrap();
    assert!(store.is_empty().await.unwrap());
    assert!(
        store
            .add_first_admin(&name("root"), &password("first admin pw"))
            .await
            .unwrap()
    );
    let root = store
        .verify("root", "first admin pw")
        .await
        .unwrap()
        .expect("created");
    assert_eq!(root.role, Role::Admin);
    assert!(
        !store
            .add_first_admin(&name("other"), &password("first admin pw"))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn the_user_store_works_on_each_database() {
    each_migrated_database(async |db| exercise(db.clone()).await).await;
}

#[tokio::test]
async fn the_first_admin_from_the_settings_is_created_once() {
    let dir = TempDir::new("first-admin");
    let admin = FirstAdmin {
        name: name("root"),
        password: password("first admin password"),
    };
    let settings = server::config::Settings {
        first_admin: Some(admin),
        ..embedded_settings(&dir)
    };
    let app = spawn_app(&settings).await.expect("starts");
    let store = app.state.users.clone();
    let root = store
        .verify("root", "first admin password")
        .await
        .unwrap()
        .expect("created");
    assert_eq!(root.role, Role::Admin);
    app.stop().await;

    // A second start with another password changes nothing.
    let settings = server::config::Settings {
        first_admin: Some(FirstAdmin {
            name: name("root"),
            password: password("another password!"),
        }),
        ..embedded_settings(&dir)
    };
    let app = spawn_app(&settings).await.expect("starts again");
    let store = app.state.users.clone();
    assert!(
        store
            .verify("root", "first admin password")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.list().await.unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn no_first_admin_is_created_without_settings() {
    let dir = TempDir::new("no-admin");
    let app = spawn_app(&embedded_settings(&dir)).await.expect("starts");
    assert!(app.state.users.is_empty().await.unwrap());
    app.stop().await;
}
