//! Passphrase change (re-encryption), interrupted changes, backups and wipe.

use std::fs;

use salon_store::*;

use crate::common::*;

fn with_title(title: &str) -> (TempDir, RawKey) {
    let dir = TempDir::new("rekey");
    let mut s = create(&dir.db());
    room(&mut s, b"r", title);
    let key = s.raw_key().clone();
    drop(s);
    (dir, key)
}

fn title(s: &Store) -> String {
    s.room_by_protocol_id(b"r").unwrap().unwrap().title
}

#[test]
fn after_a_passphrase_change_only_the_new_passphrase_opens_the_data() {
    let (dir, old_key) = with_title("kept");
    let mut s = Store::open(&dir.db(), PASS).unwrap();
    s.change_passphrase("new passphrase", KdfParams::INSECURE_FAST)
        .unwrap();
    assert_ne!(s.raw_key(), &old_key);
    // Still usable in place.
    assert_eq!(title(&s), "kept");
    room(&mut s, b"r2", "after");
    drop(s);
    assert!(matches!(
        Store::open(&dir.db(), PASS),
        Err(StoreError::WrongPassphrase)
    ));
    assert!(matches!(
        Store::open_with_key(&dir.db(), &old_key),
        Err(StoreError::WrongKey)
    ));
    let s = Store::open(&dir.db(), "new passphrase").unwrap();
    assert_eq!(title(&s), "kept");
    assert!(s.room_by_protocol_id(b"r2").unwrap().is_some());
    // No leftovers of the change.
    assert!(!s.files().rekey_tmp.exists());
    assert!(!s.files().header_next.exists());
}

#[test]
fn check_passphrase_accepts_the_current_passphrase_only_and_follows_a_change() {
    let (dir, _) = with_title("kept");
    let mut s = Store::open(&dir.db(), PASS).unwrap();
    s.check_passphrase(PASS).unwrap();
    assert!(matches!(
        s.check_passphrase("not it"),
        Err(StoreError::WrongPassphrase)
    ));
    s.change_passphrase("new passphrase", KdfParams::INSECURE_FAST)
        .unwrap();
    s.check_passphrase("new passphrase").unwrap();
    assert!(matches!(
        s.check_passphrase(PASS),
        Err(StoreError::WrongPassphrase)
    ));
}

/// Builds the on-disk state of a change interrupted after the new copy and its header
/// were written but before they were moved into place.
fn interrupted_before_install() -> TempDir {
    let (dir, _) = with_title("old");
    let (other, _) = {
        let d = TempDir::new("rekey-new");
        let mut s = Store::create(&d.db(), "new passphrase", KdfParams::INSECURE_FAST).unwrap();
        room(&mut s, b"r", "new");
        s.checkpoint().unwrap();
        let k = s.raw_key().clone();
        drop(s);
        (d, k)
    };
    fs::copy(other.db(), dir.path().join("salon.db.rekey-tmp")).unwrap();
    fs::copy(
        other.path().join("salon.db.header"),
        dir.path().join("salon.db.header-next"),
    )
    .unwrap();
    dir
}

#[test]
fn a_change_interrupted_before_install_is_rolled_back_by_the_old_passphrase() {
    let dir = interrupted_before_install();
    let s = Store::open(&dir.db(), PASS).unwrap();
    assert_eq!(title(&s), "old");
    assert!(!s.files().rekey_tmp.exists());
    assert!(!s.files().header_next.exists());
    drop(s);
    assert!(matches!(
        Store::open(&dir.db(), "new passphrase"),
        Err(StoreError::WrongPassphrase)
    ));
}

#[test]
fn a_change_interrupted_before_install_is_finished_by_the_new_passphrase() {
    let dir = interrupted_before_install();
    let s = Store::open(&dir.db(), "new passphrase").unwrap();
    assert_eq!(title(&s), "new");
    drop(s);
    assert!(matches!(
        Store::open(&dir.db(), PASS),
        Err(StoreError::WrongPassphrase)
    ));
    Store::open(&dir.db(), "new passphrase").unwrap();
}

#[test]
fn a_change_interrupted_after_the_database_moved_asks_for_the_new_passphrase() {
    let dir = interrupted_before_install();
    fs::rename(dir.path().join("salon.db.rekey-tmp"), dir.db()).unwrap();
    let before = fs::read(dir.db()).unwrap();
    let err = Store::open(&dir.db(), PASS).unwrap_err();
    assert!(
        matches!(err, StoreError::PassphraseChangeInterrupted),
        "{err:?}"
    );
    assert_eq!(fs::read(dir.db()).unwrap(), before);
    let s = Store::open(&dir.db(), "new passphrase").unwrap();
    assert_eq!(title(&s), "new");
    assert!(!s.files().header_next.exists());
}

#[test]
fn a_backup_opens_with_the_same_passphrase_and_is_never_overwritten() {
    let (dir, _) = with_title("backed up");
    let s = Store::open(&dir.db(), PASS).unwrap();
    let dest = dir.path().join("backup.db");
    s.export_backup(&dest).unwrap();
    assert!(matches!(
        s.export_backup(&dest),
        Err(StoreError::AlreadyExists(_))
    ));
    drop(s);
    let b = Store::open(&dest, PASS).unwrap();
    assert_eq!(title(&b), "backed up");
    assert_eq!(b.schema_version().unwrap(), migrations::CURRENT_VERSION);
    drop(b);
    assert!(matches!(
        Store::open(&dest, "wrong"),
        Err(StoreError::WrongPassphrase)
    ));
}

#[test]
fn wipe_removes_every_file_of_the_history() {
    let (dir, _) = with_title("gone");
    let s = Store::open(&dir.db(), PASS).unwrap();
    s.wipe().unwrap();
    assert_eq!(files_in(dir.path()), Vec::<std::path::PathBuf>::new());
    assert!(matches!(
        Store::open(&dir.db(), PASS),
        Err(StoreError::NotFound(_))
    ));
}
