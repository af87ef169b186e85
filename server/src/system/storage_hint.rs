//! Why the embedded database could not be opened, in the operator's terms.
//!
//! SQLite reports a file it cannot create or write as `(code: 14) unable to
//! open database file` or `(code: 8) attempt to write a readonly database`,
//! without saying why. For those two errors the file's directory (and the
//! file itself) are checked with a test write, so that the startup error
//! can name the cause: a read-only mount, a directory this user may not
//! write to, a directory that does not exist.

use std::fs::OpenOptions;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use coord::CoordError;

/// `SQLITE_READONLY`: a write to a database opened (or only openable)
/// read-only.
const SQLITE_READONLY: i32 = 8;
/// `SQLITE_CANTOPEN`: the file (or its journal) could not be opened or
/// created.
const SQLITE_CANTOPEN: i32 = 14;

/// The reason behind a failure to open the embedded database at `url`
/// (a `sqlite:` URL or a plain path, as `SqlBackend::open` takes), when
/// the failure is SQLite's "cannot open" or "read-only" and a reason can be
/// found, e.g. `the directory /data is on a read-only file system`.
pub fn explain_open_error(url: &str, err: &CoordError) -> Option<String> {
    let code = sqlite_code(err)?;
    if code != SQLITE_CANTOPEN && code != SQLITE_READONLY {
        return None;
    }
    let file = database_file(url)?;
    explain(&file, &probe).or_else(|| {
        (code == SQLITE_READONLY && url.contains("mode=ro"))
            .then(|| "the URL opens it read-only (mode=ro)".to_owned())
    })
}

/// SQLite's primary result code behind `err` (extended codes keep it in
/// the low byte), also when a migration failed with it.
fn sqlite_code(err: &CoordError) -> Option<i32> {
    let sql = match err {
        CoordError::Database(sql) => sql,
        CoordError::Migrate(
            sqlx::migrate::MigrateError::Execute(sql)
            | sqlx::migrate::MigrateError::ExecuteMigration(sql, _),
        ) => sql,
        _ => return None,
    };
    coord::sql::sqlite_code(sql)
}

/// The file a `sqlite:` URL (or plain path) names; `None` for an
/// in-memory database or another database's URL.
fn database_file(url: &str) -> Option<PathBuf> {
    let path = match url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Some(rest) => rest.split('?').next().unwrap_or_default(),
        None if url.contains("://") => return None,
        None => url,
    };
    let in_memory = path.is_empty() || path == ":memory:" || url.contains("mode=memory");
    (!in_memory).then(|| PathBuf::from(path))
}

/// What a write test is run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target<'a> {
    /// A directory: can a file be created in it?
    Dir(&'a Path),
    /// An existing file: can it be opened for writing?
    File(&'a Path),
}

/// The write test itself: a new file created and removed in a directory,
/// or an existing file opened for writing (never truncated).
fn probe(target: Target<'_>) -> io::Result<()> {
    match target {
        Target::Dir(dir) => {
            let test = dir.join(format!(
                ".switchyard-write-test-{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            ));
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&test)?;
            std::fs::remove_file(&test)
        }
        Target::File(file) => OpenOptions::new().write(true).open(file).map(drop),
    }
}

/// Finds why `file` cannot be opened for writing, running write tests
/// through `probe`.
fn explain(file: &Path, probe: &dyn Fn(Target<'_>) -> io::Result<()>) -> Option<String> {
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let file = dir.join(file.file_name()?);
    if file.is_dir() {
        return Some(format!("{} is a directory", file.display()));
    }
    match std::fs::metadata(&dir) {
        Err(err) if err.kind() == ErrorKind::NotFound => {
            return Some(format!("the directory {} does not exist", dir.display()));
        }
        Ok(meta) if !meta.is_dir() => {
            return Some(format!("{} is not a directory", dir.display()));
        }
        _ => {}
    }
    // SQLite writes its journal (`-wal`, `-shm`) next to the file, so the
    // directory must be writable even when the file itself is.
    if let Err(err) = probe(Target::Dir(&dir)) {
        return Some(not_writable("the directory", &dir, &err));
    }
    let mut journal = file.clone().into_os_string();
    journal.push("-wal");
    let mut shared = file.clone().into_os_string();
    shared.push("-shm");
    for existing in [file, PathBuf::from(journal), PathBuf::from(shared)] {
        if existing.exists()
            && let Err(err) = probe(Target::File(&existing))
        {
            return Some(not_writable("the file", &existing, &err));
        }
    }
    None
}

/// `the directory /x is on a read-only file system`, `… is not writable
/// by this user`, or the test write's own error.
fn not_writable(what: &str, path: &Path, err: &io::Error) -> String {
    let path = path.display();
    match err.kind() {
        ErrorKind::ReadOnlyFilesystem => {
            format!("{what} {path} is read-only: it is on a read-only file system")
        }
        ErrorKind::PermissionDenied => {
            format!("{what} {path} is read-only: this user may not write to it")
        }
        _ => format!("{what} {path} cannot be written: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::cell::RefCell;

    use coord::queue::sql::SqlBackend;

    use super::*;

    /// A temporary directory, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!(
                "switchyard-storage-hint-{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            ));
            std::fs::create_dir_all(&dir).expect("temp dir");
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A database error with an SQLite-like code, but not SQLite's type.
    #[derive(Debug)]
    struct OtherDriverError(&'static str);

    impl std::fmt::Display for OtherDriverError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("other driver")
        }
    }

    impl std::error::Error for OtherDriverError {}

    impl sqlx::error::DatabaseError for OtherDriverError {
        fn message(&self) -> &str {
            "other driver"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    #[tokio::test]
    async fn a_missing_directory_is_named() {
        let tmp = TempDir::new();
        let dir = tmp.0.join("not-there");
        let url = format!("sqlite://{}?mode=rwc", dir.join("queue.db").display());
        let err = match SqlBackend::open(&url).await {
            Ok(_) => panic!("opened a file in a missing directory"),
            Err(err) => err,
        };
        assert!(err.to_string().contains("code: 14"), "{err}");
        assert_eq!(
            explain_open_error(&url, &err),
            Some(format!("the directory {} does not exist", dir.display()))
        );
    }

    #[tokio::test]
    async fn a_directory_in_place_of_the_file_is_named() {
        let tmp = TempDir::new();
        let url = format!("sqlite://{}?mode=rwc", tmp.0.display());
        let err = match SqlBackend::open(&url).await {
            Ok(_) => panic!("opened a directory as a database"),
            Err(err) => err,
        };
        assert_eq!(
            explain_open_error(&url, &err),
            Some(format!("{} is a directory", tmp.0.display()))
        );
    }

    #[test]
    fn a_read_only_directory_is_named() {
        let tmp = TempDir::new();
        let file = tmp.0.join("queue.db");
        for (kind, reason) in [
            (
                ErrorKind::ReadOnlyFilesystem,
                "is read-only: it is on a read-only file system",
            ),
            (
                ErrorKind::PermissionDenied,
                "is read-only: this user may not write to it",
            ),
        ] {
            let hint = explain(&file, &|target| match target {
                Target::Dir(_) => Err(io::Error::from(kind)),
                Target::File(_) => Ok(()),
            });
            assert_eq!(
                hint,
                Some(format!("the directory {} {reason}", tmp.0.display()))
            );
        }
    }

    #[test]
    fn a_read_only_file_or_journal_is_named() {
        let tmp = TempDir::new();
        let file = tmp.0.join("queue.db");
        std::fs::write(&file, b"").expect("file");
        let wal = tmp.0.join("queue.db-wal");
        std::fs::write(&wal, b"").expect("journal");
        let tried = RefCell::new(Vec::new());
        let only_wal_refused = |target: Target<'_>| {
            if let Target::File(path) = target {
                tried.borrow_mut().push(path.to_path_buf());
                if path == wal {
                    return Err(io::Error::from(ErrorKind::PermissionDenied));
                }
            }
            Ok(())
        };
        assert_eq!(
            explain(&file, &only_wal_refused),
            Some(format!(
                "the file {} is read-only: this user may not write to it",
                wal.display()
            ))
        );
        assert_eq!(tried.take(), vec![file.clone(), wal.clone()]);
    }

    #[test]
    fn a_writable_place_has_nothing_to_say() {
        let tmp = TempDir::new();
        let file = tmp.0.join("queue.db");
        std::fs::write(&file, b"").expect("file");
        assert_eq!(explain(&file, &probe), None);
        let left: Vec<_> = std::fs::read_dir(&tmp.0)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("queue.db")],
            "test file removed"
        );
    }

    #[test]
    fn a_relative_path_is_shown_absolute() {
        let hint = explain(Path::new("queue.db"), &|target| match target {
            Target::Dir(_) => Err(io::Error::from(ErrorKind::ReadOnlyFilesystem)),
            Target::File(_) => Ok(()),
        })
        .expect("a hint");
        let cwd = std::env::current_dir().expect("cwd");
        assert!(
            hint.starts_with(&format!("the directory {} is read-only", cwd.display())),
            "{hint}"
        );
    }

    #[test]
    fn other_errors_and_databases_are_left_alone() {
        let tmp = TempDir::new();
        let url = format!("sqlite://{}?mode=rwc", tmp.0.join("gone/q.db").display());
        let database = |code: &'static str| {
            CoordError::Database(sqlx::Error::Database(Box::new(OtherDriverError(code))))
        };
        assert_eq!(
            explain_open_error(&url, &database("14")),
            None,
            "not SQLite"
        );
        assert_eq!(
            explain_open_error(&url, &CoordError::Database(sqlx::Error::PoolTimedOut)),
            None
        );
        assert_eq!(
            explain_open_error(&url, &CoordError::Corrupt("x".into())),
            None
        );
        assert_eq!(database_file("sqlite::memory:"), None);
        assert_eq!(
            database_file("sqlite://x.db?mode=memory&cache=shared"),
            None
        );
        assert_eq!(
            database_file("sqlite:///var/lib/sy/q.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/sy/q.db"))
        );
        assert_eq!(
            database_file("sqlite://switchyard.db?mode=rwc"),
            Some(PathBuf::from("switchyard.db"))
        );
        assert_eq!(database_file("data/q.db"), Some(PathBuf::from("data/q.db")));
        assert_eq!(database_file("postgres://app@db/prod"), None);
    }
}
