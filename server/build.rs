//! `sqlx::migrate!` embeds the migration files at compile time; tell cargo
//! to rebuild when they change, which it would not notice on its own.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
