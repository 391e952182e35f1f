//! The SQLite and PostgreSQL migrations stay in step: the same file names in both directories,
//! numbered 0001, 0002, ... with no gap and no number used twice. Needs no database.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The file names in `migrations/{backend}`.
fn migration_files(backend: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| {
            let name = entry.expect("a directory entry").file_name();
            name.into_string().expect("a UTF-8 file name")
        })
        .collect()
}

/// The number a migration file name starts with: exactly four digits, then `_`.
fn number_of(name: &str) -> Option<u32> {
    let (digits, rest) = name.split_at_checked(4)?;
    let numbered = digits.bytes().all(|b| b.is_ascii_digit()) && rest.starts_with('_');
    numbered.then(|| digits.parse().unwrap())
}

#[test]
fn sqlite_and_postgres_have_the_same_migration_files() {
    let sqlite = migration_files("sqlite");
    let postgres = migration_files("postgres");

    let not_in_postgres: Vec<&String> = sqlite.difference(&postgres).collect();
    let not_in_sqlite: Vec<&String> = postgres.difference(&sqlite).collect();

    assert!(
        not_in_postgres.is_empty() && not_in_sqlite.is_empty(),
        "the migration directories differ: missing from migrations/postgres: \
         {not_in_postgres:?}; missing from migrations/sqlite: {not_in_sqlite:?}"
    );
}

#[test]
fn migrations_are_numbered_from_0001_without_gaps_or_repeats() {
    for backend in ["sqlite", "postgres"] {
        let files = migration_files(backend);
        assert!(!files.is_empty(), "migrations/{backend} is empty");

        let unnumbered: Vec<&String> = files.iter().filter(|f| number_of(f).is_none()).collect();
        assert!(
            unnumbered.is_empty(),
            "in migrations/{backend}, these do not start with a 4-digit number and `_`: \
             {unnumbered:?}"
        );

        let mut by_number: BTreeMap<u32, Vec<&String>> = BTreeMap::new();
        for file in &files {
            by_number
                .entry(number_of(file).unwrap())
                .or_default()
                .push(file);
        }
        let repeated: Vec<&Vec<&String>> = by_number.values().filter(|f| f.len() > 1).collect();
        assert!(
            repeated.is_empty(),
            "in migrations/{backend}, these share a number: {repeated:?}"
        );

        let numbers: Vec<u32> = by_number.into_keys().collect();
        let expected: Vec<u32> = (1..=numbers.len() as u32).collect();
        let missing: Vec<String> = (1..=numbers.last().copied().unwrap_or(0))
            .filter(|n| !numbers.contains(n))
            .map(|n| format!("{n:04}_*"))
            .collect();
        assert_eq!(
            numbers, expected,
            "migrations/{backend} is not numbered 0001 upwards without gaps; missing: {missing:?}"
        );
    }
}
