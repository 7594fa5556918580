//! Schema migrations run on open, from every earlier version.

use salon_store::migrations::{CURRENT_VERSION, MIGRATIONS};
use salon_store::*;

use crate::common::*;

// The upgrade test below needs at least one migration after version 1.
const _: () = assert!(CURRENT_VERSION >= 2);

/// Writes version-1 rows with version-1 SQL, as the first released Salon would have.
fn fill_v1(key: &RawKey, db: &std::path::Path) {
    let c = raw_connection(db, key);
    c.execute_batch(
        "INSERT INTO contacts (public_key, name, verified, first_seen, last_seen)
             VALUES (zeroblob(32), 'vera', 1, 10, 20);
         INSERT INTO contacts (public_key, name, verified, first_seen, last_seen)
             VALUES (randomblob(32), 'ulf', 0, 10, 30);
         INSERT INTO rooms (protocol_id, hosted, title, invite, started_at)
             VALUES (x'01', 1, 'old room', 'salon1:x', 5);
         INSERT INTO chat_messages (room, sender_key, sender_name, sent_at, body)
             VALUES (1, zeroblob(32), 'vera', 6, 'hello from v1');
         INSERT INTO settings (key, value) VALUES ('salon.ui.theme', 'dark');",
    )
    .unwrap();
}

#[test]
fn a_version_1_database_upgrades_to_the_current_schema_with_its_data() {
    let dir = TempDir::new("migrate");
    let s = Store::create_at_version(&dir.db(), PASS, KdfParams::INSECURE_FAST, 1).unwrap();
    assert_eq!(s.schema_version().unwrap(), 1);
    let key = s.raw_key().clone();
    drop(s);
    fill_v1(&key, &dir.db());

    let mut s = Store::open(&dir.db(), PASS).unwrap();
    assert_eq!(s.schema_version().unwrap(), CURRENT_VERSION);
    let vera = s.contact_by_key(&PublicKey([0; 32])).unwrap().unwrap();
    assert!(vera.verified);
    // Migration 2 back-fills verified_at from last_seen.
    assert_eq!(vera.verified_at, Some(Timestamp(20)));
    let ulf = s
        .contacts()
        .unwrap()
        .into_iter()
        .find(|c| c.name == "ulf")
        .unwrap();
    assert_eq!(ulf.verified_at, None);
    let r = s.room_by_protocol_id(&[1]).unwrap().unwrap();
    assert_eq!(r.title, "old room");
    let m = s.messages(r.id, Page::Latest { limit: 5 }).unwrap();
    assert_eq!(m[0].text, "hello from v1");
    assert_eq!(s.settings().unwrap().theme, Theme::Dark);
    // Version-2 features work on the upgraded file.
    s.accept_key_change(vera.id, &PublicKey([4; 32]), Timestamp(40))
        .unwrap();
    assert_eq!(s.contact_key_history(vera.id).unwrap().len(), 1);
}

#[test]
fn every_earlier_version_upgrades_to_the_current_one() {
    for v in 0..CURRENT_VERSION {
        let dir = TempDir::new("migrate-all");
        drop(Store::create_at_version(&dir.db(), PASS, KdfParams::INSECURE_FAST, v).unwrap());
        let s = Store::open(&dir.db(), PASS).unwrap();
        assert_eq!(s.schema_version().unwrap(), CURRENT_VERSION, "from {v}");
        // The upgraded schema is the same as a fresh one.
        let fresh = TempDir::new("migrate-fresh");
        let f = create(&fresh.db());
        assert_eq!(schema_sql(&s), schema_sql(&f), "from {v}");
    }
    assert_eq!(MIGRATIONS.len() as u32, CURRENT_VERSION);
}

fn schema_sql(s: &Store) -> Vec<String> {
    let c = raw_connection(&s.files().db, s.raw_key());
    let mut stmt = c
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    stmt.query_map([], |r| {
        Ok(format!(
            "{} {} {}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?.unwrap_or_default()
        ))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}
