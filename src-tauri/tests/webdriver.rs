//! The real app window driven through WebDriver (`tauri-driver` + `WebKitWebDriver`)
//! under Xvfb, with assertions on the DOM.
//!
//! Scenario 1 of the desktop issue: first run → create an identity → restart the app →
//! a wrong passphrase shows the error → the right one unlocks.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const APP: &str = env!("CARGO_BIN_EXE_salon-desktop");
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A tiny WebDriver client: JSON over HTTP/1.1 on loopback.
struct Driver {
    port: u16,
    session: String,
}

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (_, payload) = text.split_once("\r\n\r\n").unwrap_or(("", ""));
    // tauri-driver may answer with chunked encoding; take the JSON object inside.
    let start = payload.find('{').unwrap_or(0);
    let end = payload.rfind('}').map_or(payload.len(), |e| e + 1);
    serde_json::from_str(&payload[start..end]).unwrap_or(Value::Null)
}

impl Driver {
    fn start(port: u16) -> Driver {
        let caps =
            json!({"capabilities": {"alwaysMatch": {"tauri:options": {"application": APP}}}});
        let v = http(port, "POST", "/session", Some(&caps));
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_owned();
        Driver { port, session }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        http(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        )
    }

    fn find(&self, css: &str) -> Option<String> {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v["value"][ELEMENT].as_str().map(str::to_owned)
    }

    fn wait_for(&self, css: &str) -> String {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.find(css) {
                return e;
            }
            assert!(Instant::now() < end, "no {css} in {}", self.body_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_for(css);
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        );
    }

    fn click(&self, css: &str) {
        let e = self.wait_for(css);
        self.call("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    fn body_text(&self) -> String {
        let v = self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": "return document.body.innerText", "args": []})),
        );
        v["value"].as_str().unwrap_or_default().to_owned()
    }

    fn wait_text(&self, needle: &str) -> String {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let t = self.body_text();
            if t.contains(needle) {
                return t;
            }
            assert!(
                Instant::now() < end,
                "\"{needle}\" never appeared; page says: {t}"
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn quit(self) {
        self.call("DELETE", "", None);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct TauriDriver(Child);

impl Drop for TauriDriver {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: tauri-driver then stops its WebKitWebDriver child too.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn tauri_driver(data_dir: &std::path::Path) -> Option<(TauriDriver, u16)> {
    if std::env::var_os("DISPLAY").is_none() {
        assert!(
            std::env::var_os("SALON_CI").is_none(),
            "CI must provide a display (Xvfb)"
        );
        eprintln!("skipping: no DISPLAY");
        return None;
    }
    let (port, native) = (free_port(), free_port());
    let child = match Command::new("tauri-driver")
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("SALON_DATA_DIR", data_dir)
        .env("SALON_INPUT", "silence")
        .env("SALON_OUTPUT", "null")
        .spawn()
    {
        Ok(c) => TauriDriver(c),
        Err(e) => {
            assert!(
                std::env::var_os("SALON_CI").is_none(),
                "tauri-driver is needed in CI: {e}"
            );
            eprintln!("skipping: tauri-driver not installed ({e})");
            return None;
        }
    };
    let end = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "tauri-driver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((child, port))
}

#[test]
fn first_run_creates_identity_then_restart_unlocks_and_wrong_passphrase_is_explained() {
    let dir = std::env::temp_dir().join(format!("salon-webdriver-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let Some((_driver, port)) = tauri_driver(&dir) else {
        return;
    };

    let d = Driver::start(port);
    d.wait_text("Welcome to Salon");
    d.type_into("input[name=name]", "Ada Lovelace");
    d.type_into("input[name=passphrase]", "correct horse battery");
    d.type_into("input[name=confirm]", "correct horse battery");
    d.click("form[data-form=create] button[type=submit]");
    let home = d.wait_text("Signed in as");
    assert!(home.contains("Ada Lovelace"), "{home}");
    d.quit();
    assert!(
        dir.join("salon.db").exists(),
        "the encrypted history was created"
    );

    // Restart: the app now asks to unlock.
    let d = Driver::start(port);
    d.wait_text("Unlock Salon");
    d.type_into("input[name=passphrase]", "not my passphrase");
    d.click("form[data-form=unlock] button[type=submit]");
    let err = d.wait_text("wrong passphrase");
    assert!(
        d.find("[role=alert]").is_some(),
        "the error is announced: {err}"
    );
    let field = d.wait_for("input[name=passphrase]");
    d.call("POST", &format!("/element/{field}/clear"), Some(json!({})));
    d.type_into("input[name=passphrase]", "correct horse battery");
    d.click("form[data-form=unlock] button[type=submit]");
    d.wait_text("Signed in as");
    // Host a room: the room screen shows the title, the safety code and the invite.
    d.type_into("input[name=title]", "Night owls");
    d.click("form[data-form=host] button[type=submit]");
    let room = d.wait_text("Safety code");
    assert!(
        room.contains("Night owls") && room.contains("salon:"),
        "{room}"
    );
    d.quit();
    let _ = std::fs::remove_dir_all(&dir);
}
