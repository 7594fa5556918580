//! The file is plain SQLCipher: the stock `sqlcipher` shell opens it given the raw key.
//!
//! Debian 12 ships SQLCipher 3.4.1, whose shell reads our pages because the store uses
//! HMAC-SHA1 page authentication with 4 KiB pages (see `CIPHER_SETTINGS`).

use std::io::Write;
use std::process::{Command, Stdio};

use salon_store::*;

use crate::common::*;

fn run_shell(db: &std::path::Path, script: &str) -> Option<std::process::Output> {
    let child = Command::new("sqlcipher")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("SALON_CI").as_deref() != Ok("1"),
                "SALON_CI=1 but the `sqlcipher` shell is missing (apt-get install -y sqlcipher)"
            );
            eprintln!("note: skipping: no `sqlcipher` shell (apt-get install -y sqlcipher)");
            return None;
        }
        Err(e) => panic!("{e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    Some(child.wait_with_output().unwrap())
}

#[test]
fn the_stock_sqlcipher_shell_reads_the_data_given_the_raw_key() {
    let dir = TempDir::new("shell");
    let mut s = create(&dir.db());
    let r = room(&mut s, b"r", "Shell-visible title");
    s.add_message(&NewMessage {
        room: r,
        sender_key: &PublicKey([1; 32]),
        sender_name: "ada",
        sent_at: Timestamp(1),
        text: "readable by standard tools",
    })
    .unwrap();
    let key = s.raw_key().clone();
    // Left open with data still in the WAL: the shell must read that too.
    let script = format!(
        "PRAGMA key = \"{}\";\n{}\nSELECT title FROM rooms;\nSELECT body FROM chat_messages;\nPRAGMA user_version;\n",
        &*key.to_sqlcipher_literal(),
        CIPHER_SETTINGS.trim()
    );
    // The shell opens the file beside a running store (only the lock file is exclusive).
    let Some(out) = run_shell(&dir.db(), &script) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Shell-visible title"), "{stdout}");
    assert!(stdout.contains("readable by standard tools"), "{stdout}");
    assert!(
        stdout.contains(&migrations::CURRENT_VERSION.to_string()),
        "{stdout}"
    );
    drop(s);

    // A wrong key gets nothing out of it.
    let wrong = format!(
        "PRAGMA key = \"{}\";\n{}\nSELECT title FROM rooms;\n",
        &*RawKey::from_bytes([0; 32]).to_sqlcipher_literal(),
        CIPHER_SETTINGS.trim()
    );
    let out = run_shell(&dir.db(), &wrong).unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("Shell-visible title"));
    assert!(
        all.contains("not a database") || all.contains("encrypted"),
        "{all}"
    );
}
