//! Settings: typed ones the app knows, and a key/value space for everything else.

use rusqlite::OptionalExtension;

use crate::error::{Result, StoreError};
use crate::store::Store;

/// The colour theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Theme {
    /// Follow the operating system.
    #[default]
    System,
    /// Light.
    Light,
    /// Dark.
    Dark,
}

impl Theme {
    fn as_str(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    fn parse(s: &str) -> Theme {
        match s {
            "light" => Theme::Light,
            "dark" => Theme::Dark,
            // Unknown (e.g. written by a newer Salon) falls back to the default.
            _ => Theme::System,
        }
    }
}

/// The settings the app itself uses: what the store keeps and what front ends edit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Settings {
    /// Capture device name; `None` is the system default.
    pub input_device: Option<String>,
    /// Playback device name; `None` is the system default.
    pub output_device: Option<String>,
    /// Push-to-talk key (the UI's key name); `None` disables push-to-talk.
    pub push_to_talk_key: Option<String>,
    /// Noise suppression on the microphone.
    pub noise_suppression: bool,
    /// Echo cancellation on the microphone.
    pub echo_cancellation: bool,
    /// Colour theme.
    pub theme: Theme,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            input_device: None,
            output_device: None,
            push_to_talk_key: None,
            noise_suppression: true,
            echo_cancellation: true,
            theme: Theme::System,
        }
    }
}

/// Prefix of the keys the typed settings use; the generic key/value API refuses it.
const RESERVED_PREFIX: &str = "salon.";
const INPUT: &str = "salon.audio.input_device";
const OUTPUT: &str = "salon.audio.output_device";
const PTT: &str = "salon.audio.push_to_talk_key";
const NS: &str = "salon.audio.noise_suppression";
const EC: &str = "salon.audio.echo_cancellation";
const THEME: &str = "salon.ui.theme";

impl Store {
    /// The app's settings (defaults for anything never set).
    pub fn settings(&self) -> Result<Settings> {
        let d = Settings::default();
        let flag = |v: Option<String>, default: bool| v.map_or(default, |s| s == "1");
        Ok(Settings {
            input_device: self.raw_setting(INPUT)?,
            output_device: self.raw_setting(OUTPUT)?,
            push_to_talk_key: self.raw_setting(PTT)?,
            noise_suppression: flag(self.raw_setting(NS)?, d.noise_suppression),
            echo_cancellation: flag(self.raw_setting(EC)?, d.echo_cancellation),
            theme: self
                .raw_setting(THEME)?
                .map_or(d.theme, |s| Theme::parse(&s)),
        })
    }

    /// Saves the app's settings (all at once, atomically).
    pub fn set_settings(&mut self, s: &Settings) -> Result<()> {
        let tx = self.conn.transaction()?;
        let bool_str = |b: bool| if b { "1" } else { "0" };
        let entries: [(&str, Option<&str>); 6] = [
            (INPUT, s.input_device.as_deref()),
            (OUTPUT, s.output_device.as_deref()),
            (PTT, s.push_to_talk_key.as_deref()),
            (NS, Some(bool_str(s.noise_suppression))),
            (EC, Some(bool_str(s.echo_cancellation))),
            (THEME, Some(s.theme.as_str())),
        ];
        for (k, v) in entries {
            match v {
                Some(v) => tx.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [k, v],
                )?,
                None => tx.execute("DELETE FROM settings WHERE key = ?1", [k])?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    /// A value stored under `key` by [`Store::set_value`].
    pub fn value(&self, key: &str) -> Result<Option<String>> {
        check_free_key(key)?;
        self.raw_setting(key)
    }

    /// Stores `value` under `key` (keys starting with `salon.` are reserved).
    pub fn set_value(&mut self, key: &str, value: &str) -> Result<()> {
        check_free_key(key)?;
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    /// Removes the value under `key`, if any.
    pub fn remove_value(&mut self, key: &str) -> Result<()> {
        check_free_key(key)?;
        self.conn
            .execute("DELETE FROM settings WHERE key = ?1", [key])?;
        Ok(())
    }

    fn raw_setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }
}

fn check_free_key(key: &str) -> Result<()> {
    if key.starts_with(RESERVED_PREFIX) || key.is_empty() {
        return Err(StoreError::InvalidInput(format!(
            "setting key {key:?} is empty or reserved (\"{RESERVED_PREFIX}\" prefix)"
        )));
    }
    Ok(())
}
