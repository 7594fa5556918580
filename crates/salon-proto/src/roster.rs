//! Who is in the room and in which role. The host is the authority: it alone changes the
//! roster and sends it to everyone; members only request changes.

use std::net::SocketAddr;

use crate::codec::{DecodeError, Reader, Writer};
use crate::identity::PublicKey;

/// Longest display name, in UTF-8 bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest room title, in UTF-8 bytes.
pub const MAX_TITLE_LEN: usize = 128;
/// Most address candidates one member advertises.
pub const MAX_CANDIDATES: usize = 4;
/// Most members the wire format carries in one roster.
pub const MAX_MEMBERS_ON_WIRE: usize = 64;

/// A member's role. Host, moderators and speakers are on stage and send audio. The one
/// definition: the store records it and front ends receive it by [`Role::as_str`]'s
/// spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Role {
    /// Runs the room: admits members, holds the roster, can do everything.
    Host,
    /// On stage; may invite to stage, move to audience, mute and remove others.
    Moderator,
    /// On stage.
    Speaker,
    /// In the audience: hears, chats, raises a hand.
    Listener,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Role {
    /// The spelling front ends and the store use.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Moderator => "moderator",
            Role::Speaker => "speaker",
            Role::Listener => "listener",
        }
    }

    /// Reads [`Role::as_str`]'s spelling back.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "host" => Role::Host,
            "moderator" => Role::Moderator,
            "speaker" => Role::Speaker,
            "listener" => Role::Listener,
            _ => return None,
        })
    }

    /// Whether this role is on stage (sends audio).
    pub fn on_stage(self) -> bool {
        !matches!(self, Role::Listener)
    }

    /// Whether this role may moderate others.
    pub fn can_moderate(self) -> bool {
        matches!(self, Role::Host | Role::Moderator)
    }

    fn to_byte(self) -> u8 {
        match self {
            Role::Host => 0,
            Role::Moderator => 1,
            Role::Speaker => 2,
            Role::Listener => 3,
        }
    }

    fn from_byte(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            0 => Role::Host,
            1 => Role::Moderator,
            2 => Role::Speaker,
            3 => Role::Listener,
            _ => return Err(DecodeError::Invalid("role")),
        })
    }
}

/// One member as the host describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Static public key: the member's identity.
    pub key: PublicKey,
    /// Display name the member chose (not verified by anyone).
    pub name: String,
    /// Current role.
    pub role: Role,
    /// Hand raised (audience members asking to speak).
    pub hand_raised: bool,
    /// Microphone muted (by themselves or by a moderator).
    pub muted: bool,
    /// Addresses other members try when linking to this one: first the address the host
    /// sees, then what the member reported (LAN addresses).
    pub candidates: Vec<SocketAddr>,
    /// Join order: earlier members are preferred as the next host.
    pub joined: u64,
}

impl Member {
    /// Whether the member seems to sit behind a NAT that translates ports (as
    /// endpoint-dependent, "symmetric", NATs do): the host saw it at an address and port
    /// that none of its own socket addresses has. A NAT that keeps ports (most home
    /// routers with endpoint-independent mapping) reads as not translating.
    pub fn port_translated(&self) -> bool {
        match self.candidates.split_first() {
            Some((seen, own)) if !own.is_empty() => {
                !own.iter().any(|c| c.ip() == seen.ip())
                    && !own.iter().any(|c| c.port() == seen.port())
            }
            _ => false,
        }
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.bytes(self.key.as_bytes())
            .string(&self.name)
            .u8(self.role.to_byte())
            .bool(self.hand_raised)
            .bool(self.muted)
            .u64(self.joined);
        w.u8(self.candidates.len().min(MAX_CANDIDATES) as u8);
        for c in self.candidates.iter().take(MAX_CANDIDATES) {
            w.socket_addr(c);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key = r.key()?;
        let name = r.string(MAX_NAME_LEN)?;
        // The host refuses such names at join, so a roster carrying one is forged or broken.
        if !valid_name(&name) {
            return Err(DecodeError::Invalid("name"));
        }
        let role = Role::from_byte(r.u8()?)?;
        let hand_raised = r.bool()?;
        let muted = r.bool()?;
        let joined = r.u64()?;
        let n = usize::from(r.u8()?);
        if n > MAX_CANDIDATES {
            return Err(DecodeError::Invalid("candidates"));
        }
        let candidates = (0..n).map(|_| r.socket_addr()).collect::<Result<_, _>>()?;
        Ok(Self {
            key,
            name,
            role,
            hand_raised,
            muted,
            candidates,
            joined,
        })
    }
}

/// Who takes over when the host leaves or times out: the earliest-joined moderator, else
/// the earliest-joined speaker, else the earliest-joined member. Every member computes
/// this from the same roster, so they agree without talking.
pub fn successor(members: &[Member], leaving: &PublicKey) -> Option<PublicKey> {
    let rank = |r: Role| match r {
        Role::Host => 3,
        Role::Moderator => 0,
        Role::Speaker => 1,
        Role::Listener => 2,
    };
    members
        .iter()
        .filter(|m| m.key != *leaving)
        .min_by_key(|m| (rank(m.role), m.joined, m.key))
        .map(|m| m.key)
}

/// Whether `name` is acceptable as a display name: 1–64 bytes after trimming, no control
/// characters (they would garble every other member's UI) and no invisible characters
/// (they would let two names that look the same differ; see [`invisible`]).
pub fn valid_name(name: &str) -> bool {
    let t = name.trim();
    !t.is_empty() && t.len() <= MAX_NAME_LEN && visible_text(t)
}

/// Whether `title` is acceptable as a room title: the same rules as [`valid_name`], with
/// the longer title limit.
pub fn valid_title(title: &str) -> bool {
    let t = title.trim();
    !t.is_empty() && t.len() <= MAX_TITLE_LEN && visible_text(t)
}

/// Whether `c` is a control character or an invisible formatting character that has
/// no business in a name or title: C0 and C1 controls and DEL, line and paragraph
/// separators, zero-width spaces and joiners, bidirectional embeddings, overrides,
/// isolates and marks, invisible operators, the soft hyphen, the byte-order mark,
/// Hangul fillers, interlinear annotation and tag characters. Zero-width joiners and
/// non-joiners are judged in context by [`visible_text`].
pub fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}' // soft hyphen
            | '\u{034F}' // combining grapheme joiner
            | '\u{061C}' // Arabic letter mark
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
            | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels (invisible)
            | '\u{180B}'..='\u{180F}' // Mongolian variation selectors and vowel separator
            | '\u{200B}' // zero-width space
            | '\u{200E}' | '\u{200F}' // left-to-right and right-to-left marks
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, bidi isolates
            | '\u{FEFF}' // zero-width no-break space (byte-order mark)
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
            | '\u{1D173}'..='\u{1D17A}' // musical formatting
            | '\u{E0000}'..='\u{E007F}' // tags
        )
}

/// The zero-width non-joiner and joiner are part of correct spelling in Persian, Indic
/// scripts and emoji sequences, so they are allowed only between two visible non-ASCII
/// characters; anywhere else (at an edge, next to Latin text or a space, doubled) they
/// only serve to make two names differ invisibly.
fn visible_text(t: &str) -> bool {
    let chars: Vec<char> = t.chars().collect();
    let joinable = |c: Option<&char>| {
        c.is_some_and(|&c| !c.is_ascii() && !c.is_whitespace() && !invisible(c) && !is_zw_joiner(c))
    };
    chars.iter().enumerate().all(|(i, &c)| {
        if is_zw_joiner(c) {
            joinable(i.checked_sub(1).and_then(|p| chars.get(p))) && joinable(chars.get(i + 1))
        } else {
            !invisible(c)
        }
    })
}

fn is_zw_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// Common characters that look like a Latin letter or digit, mapped to it (a subset of
/// Unicode's confusables.txt, UTS #39, for the Cyrillic, Greek and Latin look-alikes that
/// matter in names; applied after NFKC, which already folds full-width, mathematical and
/// other compatibility forms). Digits and `|` that pass for letters map to the letter.
const CONFUSABLES: &[(char, char)] = &[
    // Cyrillic lowercase
    ('а', 'a'),
    ('в', 'b'),
    ('г', 'r'),
    ('е', 'e'),
    ('ё', 'e'),
    ('һ', 'h'),
    ('і', 'i'),
    ('ї', 'i'),
    ('ј', 'j'),
    ('к', 'k'),
    ('м', 'm'),
    ('н', 'h'),
    ('о', 'o'),
    ('п', 'n'),
    ('р', 'p'),
    ('с', 'c'),
    ('т', 't'),
    ('у', 'y'),
    ('х', 'x'),
    ('ѕ', 's'),
    ('ԁ', 'd'),
    ('ԛ', 'q'),
    ('ԝ', 'w'),
    ('ӏ', 'l'),
    ('ɡ', 'g'),
    ('ь', 'b'),
    // Cyrillic uppercase (checked before lowercasing, since some fold differently)
    ('А', 'a'),
    ('В', 'b'),
    ('Е', 'e'),
    ('Ё', 'e'),
    ('Н', 'h'),
    ('І', 'l'),
    ('Ї', 'i'),
    ('Ј', 'j'),
    ('К', 'k'),
    ('М', 'm'),
    ('О', 'o'),
    ('Р', 'p'),
    ('С', 'c'),
    ('Т', 't'),
    ('У', 'y'),
    ('Х', 'x'),
    ('Ѕ', 's'),
    ('Ԁ', 'd'),
    ('Ԛ', 'q'),
    ('Ԝ', 'w'),
    ('Ӏ', 'l'),
    // Greek
    ('α', 'a'),
    ('ο', 'o'),
    ('ρ', 'p'),
    ('ν', 'v'),
    ('ι', 'i'),
    ('κ', 'k'),
    ('χ', 'x'),
    ('υ', 'u'),
    ('τ', 't'),
    ('ε', 'e'),
    ('η', 'n'),
    ('ω', 'w'),
    ('γ', 'y'),
    ('Α', 'a'),
    ('Β', 'b'),
    ('Ε', 'e'),
    ('Ζ', 'z'),
    ('Η', 'h'),
    ('Ι', 'l'),
    ('Κ', 'k'),
    ('Μ', 'm'),
    ('Ν', 'n'),
    ('Ο', 'o'),
    ('Ρ', 'p'),
    ('Τ', 't'),
    ('Υ', 'y'),
    ('Χ', 'x'),
    // Latin look-alikes: capital I and digit one pass for l, zero for o
    ('I', 'l'),
    ('1', 'l'),
    ('|', 'l'),
    ('0', 'o'),
    ('ı', 'i'),
    ('ȷ', 'j'),
];

/// The form in which two display names are compared: Unicode NFKC, invisible
/// characters dropped, common Cyrillic/Greek/Latin look-alikes folded to one Latin
/// letter, lowercased, `rn` read as `m`, runs of white space collapsed and trimmed. Two
/// names with the same folded form look alike to a person, so a name that folds like a
/// known contact's is treated as that contact's (for key-change warnings).
///
/// This is a small hand-picked table, not all of UTS #39 (no crate lean enough for a
/// sans-IO protocol crate ships the full skeleton data): it covers the scripts people
/// most often mistake for Latin. Characters it does not know stay as they are.
pub fn fold_name(name: &str) -> String {
    fold(name, true)
}

/// [`fold_name`], reading a capital `I` as `l` (how it looks next to lowercase letters) or
/// as `i` (what it means in an all-capitals name).
fn fold(name: &str, capital_i_as_l: bool) -> String {
    let nfkc = icu_normalizer::ComposingNormalizerBorrowed::new_nfkc().normalize(name);
    let mut out = String::with_capacity(nfkc.len());
    for c in nfkc.chars() {
        if invisible(c) || is_zw_joiner(c) || matches!(c, '\u{FE00}'..='\u{FE0F}') {
            continue;
        }
        let c = if c == 'I' && !capital_i_as_l {
            'i'
        } else {
            CONFUSABLES
                .iter()
                .find(|(from, _)| *from == c)
                .map_or(c, |(_, to)| *to)
        };
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
            continue;
        }
        for l in c.to_lowercase() {
            // Lowercasing can produce a look-alike again (e.g. Cyrillic Р → р).
            let l = CONFUSABLES
                .iter()
                .find(|(from, _)| *from == l)
                .map_or(l, |(_, to)| *to);
            out.push(l);
        }
    }
    let trimmed = out.trim_end();
    trimmed.replace("rn", "m")
}

/// Whether two display names look alike to a person: their [`fold_name`] forms agree, or
/// they agree when a capital `I` is read as `i` (so `ALICE` matches `alice` as well as
/// `AIice` matching `Alice`).
pub fn names_look_alike(a: &str, b: &str) -> bool {
    fold(a, true) == fold(b, true) || fold(a, false) == fold(b, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(k: u8, role: Role, joined: u64) -> Member {
        Member {
            key: PublicKey([k; 32]),
            name: format!("m{k}"),
            role,
            hand_raised: false,
            muted: false,
            candidates: vec![],
            joined,
        }
    }

    #[test]
    fn successor_prefers_moderator_then_earliest_speaker_then_earliest_member() {
        let host = PublicKey([1; 32]);
        let mut ms = vec![
            m(1, Role::Host, 0),
            m(2, Role::Listener, 1),
            m(3, Role::Speaker, 3),
            m(4, Role::Speaker, 2),
            m(5, Role::Moderator, 9),
        ];
        assert_eq!(successor(&ms, &host), Some(PublicKey([5; 32])));
        ms.pop();
        assert_eq!(successor(&ms, &host), Some(PublicKey([4; 32])));
        ms.truncate(2);
        assert_eq!(successor(&ms, &host), Some(PublicKey([2; 32])));
        ms.truncate(1);
        assert_eq!(successor(&ms, &host), None);
    }

    #[test]
    fn member_round_trips_and_rejects_bad_role() {
        let mut a = m(7, Role::Moderator, 4);
        a.candidates = vec!["127.0.0.1:5".parse().unwrap(), "[::1]:6".parse().unwrap()];
        a.muted = true;
        let mut w = Writer::new();
        a.encode(&mut w);
        let bytes = w.into_inner();
        let b = Member::decode(&mut Reader::new(&bytes)).unwrap();
        assert_eq!(a, b);
        let mut bad = bytes.clone();
        bad[32 + 2 + 2] = 9; // role byte after key and the 2-byte name
        assert!(Member::decode(&mut Reader::new(&bad)).is_err());
    }

    #[test]
    fn names_with_control_characters_or_empty_are_rejected() {
        assert!(valid_name("Ada"));
        assert!(!valid_name("  "));
        assert!(!valid_name("a\u{7}b"));
        assert!(!valid_name(&"x".repeat(65)));
        assert!(valid_title("Friday jazz"));
    }

    #[test]
    fn names_and_titles_with_invisible_or_control_characters_are_rejected() {
        for bad in [
            "Ali\u{200B}ce",         // zero-width space
            "Alice\u{200D}",         // zero-width joiner after Latin
            "\u{200C}Alice",         // zero-width non-joiner at the start
            "Ali\u{2060}ce",         // word joiner
            "Alice\u{FEFF}",         // byte-order mark
            "\u{202E}ecilA",         // right-to-left override
            "Ali\u{2066}ce\u{2069}", // bidi isolate
            "Alice\u{200F}",         // right-to-left mark
            "Al\u{00AD}ice",         // soft hyphen
            "A\u{1B}[31mlice",       // C0 escape
            "A\u{9B}lice",           // C1 control sequence introducer
            "A\u{7F}lice",           // DEL
            "Ali\nce",               // newline
            "Alice\u{2028}Bob",      // line separator
            "\u{3164}",              // Hangul filler alone
            "Alice\u{E0041}",        // tag character
            "\u{200B}",              // nothing visible
        ] {
            assert!(!valid_name(bad), "{bad:?}");
            assert!(!valid_title(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_roster_member_with_an_invisible_name_does_not_decode() {
        let mut a = m(7, Role::Speaker, 4);
        a.name = "Ali\u{200B}ce".into();
        let mut w = Writer::new();
        a.encode(&mut w);
        let bytes = w.into_inner();
        assert!(Member::decode(&mut Reader::new(&bytes)).is_err());
    }

    #[test]
    fn ordinary_names_in_many_scripts_are_accepted() {
        for good in [
            "Ada Lovelace",
            "José Müller",
            "Zoë O'Brien-Smith",
            "Łukasz Żółć",
            "Александра",
            "Σωκράτης",
            "李小龍",
            "山田 太郎",
            "김민준",
            "محمد",
            "דוד",
            "देवनागरी",
            "ศรีสมร",
            "Nguyễn Văn A",
            "می\u{200C}خواهم",  // Persian, non-joiner between two letters
            "क्\u{200D}ष",       // Devanagari, joiner after a virama
            "👩\u{200D}💻 dev", // emoji sequence
            "DJ ♫",
        ] {
            assert!(valid_name(good), "{good:?}");
            assert!(valid_title(good), "{good:?}");
        }
    }

    #[test]
    fn look_alike_names_fold_to_the_same_form() {
        assert!(names_look_alike("\u{0410}lice", "Alice")); // Cyrillic А
        assert!(names_look_alike("Аlісе", "alice")); // Cyrillic а, і, с, е
        assert!(names_look_alike("Ρаураl", "Paypal")); // Greek Ρ, Cyrillic а, у
        assert!(names_look_alike("ＡＤＡ", "ada")); // full width (NFKC)
        assert!(names_look_alike("Ａda", "Ada"));
        assert!(names_look_alike("𝐀𝐝𝐚", "Ada")); // mathematical bold (NFKC)
        assert!(names_look_alike("Jose\u{0301}", "José")); // combining accent (NFC)
        assert!(names_look_alike("  Ada   Lovelace ", "Ada Lovelace"));
        assert!(names_look_alike("AIice", "Alice")); // capital I for l
        assert!(names_look_alike("A1ice", "Alice"));
        assert!(names_look_alike("B0b", "Bob"));
        assert!(names_look_alike("Kim", "Kirn")); // rn for m
        assert!(names_look_alike("ALICE", "alice"));
        assert!(names_look_alike("Ali\u{200B}ce", "Alice")); // even if one got past checks
        assert!(!names_look_alike("Alice", "Alicia"));
        assert!(!names_look_alike("Ada", "Eda"));
        assert!(!names_look_alike("Александра", "Alexandra"));
    }
}
