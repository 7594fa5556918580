//! The record API: identity, contacts, rooms, participants, chat, settings.

use salon_store::*;

use crate::common::*;

#[test]
fn identity_and_profile_survive_reopen_and_identity_is_never_replaced() {
    let dir = TempDir::new("identity");
    let mut s = create(&dir.db());
    assert!(s.identity().unwrap().is_none());
    let ada = Identity::from_secret_bytes([7; 32]);
    s.set_identity(&ada, Timestamp(5)).unwrap();
    assert!(matches!(
        s.set_identity(&Identity::from_secret_bytes([1; 32]), Timestamp(6)),
        Err(StoreError::IdentityExists)
    ));
    s.set_display_name("Ada").unwrap();
    s.set_display_name("Ada L.").unwrap();
    drop(s);
    let s = Store::open(&dir.db(), PASS).unwrap();
    let id = s.identity().unwrap().unwrap();
    assert_eq!(*id.secret_bytes(), [7; 32]);
    assert_eq!(id.public_key(), ada.public_key());
    assert_eq!(s.display_name().unwrap().as_deref(), Some("Ada L."));
}

#[test]
fn a_look_alike_name_with_a_new_key_is_reported_as_a_key_change() {
    let dir = TempDir::new("confusable");
    let mut s = create(&dir.db());
    let alice = match s
        .observe_peer(&PublicKey([1; 32]), "Alice", Timestamp(10))
        .unwrap()
    {
        Observation::New(c) => c,
        o => panic!("{o:?}"),
    };
    // Cyrillic А, full-width letters, a capital I for l, extra spaces, other case:
    // each looks like "Alice" and must not slip in as a new contact.
    for (i, look_alike) in ["\u{0410}lice", "Ａｌｉｃｅ", "AIice", " alice ", "ALICE"]
        .into_iter()
        .enumerate()
    {
        let key = PublicKey([10 + i as u8; 32]);
        match s.observe_peer(&key, look_alike, Timestamp(20)).unwrap() {
            Observation::KeyChanged {
                known,
                presented_key,
            } => {
                assert_eq!(presented_key, key, "{look_alike:?}");
                assert_eq!(known.len(), 1, "{look_alike:?}");
                assert_eq!(known[0].id, alice.id, "{look_alike:?}");
            }
            o => panic!("{look_alike:?}: {o:?}"),
        }
    }
    assert_eq!(s.contacts().unwrap().len(), 1);
    // A name that only resembles it is someone new.
    assert!(matches!(
        s.observe_peer(&PublicKey([3; 32]), "Alicia", Timestamp(30))
            .unwrap(),
        Observation::New(_)
    ));
}

#[test]
fn a_known_name_with_a_new_key_is_reported_and_not_stored() {
    let dir = TempDir::new("contacts");
    let mut s = create(&dir.db());
    let alice = match s
        .observe_peer(&PublicKey([1; 32]), "alice", Timestamp(10))
        .unwrap()
    {
        Observation::New(c) => c,
        o => panic!("{o:?}"),
    };
    s.set_contact_verified(alice.id, true, Timestamp(11))
        .unwrap();
    // Same key again: known, last_seen moves, name change reported.
    match s
        .observe_peer(&PublicKey([1; 32]), "alice2", Timestamp(20))
        .unwrap()
    {
        Observation::Known {
            contact,
            previous_name,
        } => {
            assert_eq!(previous_name.as_deref(), Some("alice"));
            assert_eq!(contact.last_seen, Timestamp(20));
            assert!(contact.verified);
        }
        o => panic!("{o:?}"),
    }
    // A different key under the known name: reported, nothing stored.
    match s
        .observe_peer(&PublicKey([2; 32]), "alice2", Timestamp(30))
        .unwrap()
    {
        Observation::KeyChanged {
            known,
            presented_key,
        } => {
            assert_eq!(presented_key, PublicKey([2; 32]));
            assert_eq!(known.len(), 1);
            assert_eq!(known[0].id, alice.id);
        }
        o => panic!("{o:?}"),
    }
    assert!(s.contact_by_key(&PublicKey([2; 32])).unwrap().is_none());
    assert_eq!(s.contacts().unwrap().len(), 1);
    assert_eq!(
        s.check_contact_key(alice.id, &PublicKey([2; 32])).unwrap(),
        KeyCheck::Changed {
            expected: PublicKey([1; 32]),
            was_verified: true
        }
    );
    assert_eq!(
        s.check_contact_key(alice.id, &PublicKey([1; 32])).unwrap(),
        KeyCheck::Matches
    );
    // The user accepts: old key kept in history, contact unverified.
    let c = s
        .accept_key_change(alice.id, &PublicKey([2; 32]), Timestamp(40))
        .unwrap();
    assert_eq!(c.public_key, PublicKey([2; 32]));
    assert!(!c.verified);
    assert_eq!(c.verified_at, None);
    let hist = s.contact_key_history(alice.id).unwrap();
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].public_key, PublicKey([1; 32]));
    assert!(hist[0].was_verified);
    // Or the user says it is someone else.
    let bob = s
        .add_contact(&PublicKey([3; 32]), "alice2", Timestamp(50))
        .unwrap();
    assert!(matches!(
        s.add_contact(&PublicKey([3; 32]), "x", Timestamp(51)),
        Err(StoreError::InvalidInput(_))
    ));
    s.remove_contact(bob.id).unwrap();
    assert!(matches!(
        s.contact(bob.id),
        Err(StoreError::NoSuchRecord(_))
    ));
}

#[test]
fn rooms_roles_and_participants_are_recorded_over_time() {
    let dir = TempDir::new("rooms");
    let mut s = create(&dir.db());
    let identity = Identity::from_secret_bytes([1; 32]);
    let me = identity.public_key();
    s.set_identity(&identity, Timestamp(0)).unwrap();
    let r = room(&mut s, b"room-1", "Friday jam");
    assert!(matches!(
        s.add_room(&NewRoom {
            protocol_id: b"room-1",
            hosted: false,
            title: "dup",
            invite: None,
            started_at: Timestamp(1),
        }),
        Err(StoreError::InvalidInput(_))
    ));
    let joined = s
        .add_room(&NewRoom {
            protocol_id: b"room-2",
            hosted: false,
            title: "Their room",
            invite: None,
            started_at: Timestamp(2_000),
        })
        .unwrap();
    s.set_room_title(r, "Friday jam session").unwrap();
    s.set_room_invite(r, "salon1:new-invite").unwrap();
    let my = s
        .participant_joined(r, &me, "me", Role::Host, Timestamp(1_000))
        .unwrap();
    let bob = s
        .participant_joined(
            r,
            &PublicKey([5; 32]),
            "bob",
            Role::Listener,
            Timestamp(1_100),
        )
        .unwrap();
    s.participant_role_changed(bob, Role::Speaker, Timestamp(1_200))
        .unwrap();
    s.participant_left(bob, Timestamp(1_300)).unwrap();
    s.participant_role_changed(my, Role::Moderator, Timestamp(1_400))
        .unwrap();
    s.end_room(r, Timestamp(1_500)).unwrap();

    let room = s.room(r).unwrap();
    assert_eq!(room.title, "Friday jam session");
    assert_eq!(room.invite.as_deref(), Some("salon1:new-invite"));
    assert_eq!(room.ended_at, Some(Timestamp(1_500)));
    assert!(room.hosted);
    s.reopen_room(r).unwrap();
    assert_eq!(s.room(r).unwrap().ended_at, None);
    assert_eq!(
        s.room_by_protocol_id(b"room-2").unwrap().unwrap().id,
        joined
    );

    let roles: Vec<Role> = s.my_roles(r).unwrap().iter().map(|c| c.role).collect();
    assert_eq!(roles, [Role::Host, Role::Moderator]);
    let ps = s.participants(r).unwrap();
    assert_eq!(ps.len(), 2);
    assert_eq!(ps[1].name, "bob");
    assert_eq!(ps[1].role, Role::Speaker);
    assert_eq!(ps[1].left_at, Some(Timestamp(1_300)));
    let bob_roles = s.role_history(r, &PublicKey([5; 32])).unwrap();
    assert_eq!(bob_roles.len(), 2);
    assert_eq!(
        bob_roles[1],
        RoleChange {
            role: Role::Speaker,
            at: Timestamp(1_200)
        }
    );

    let listed: Vec<RoomId> = s.rooms(None, 10).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(listed, [joined, r]);
    assert_eq!(s.rooms(Some(joined), 10).unwrap()[0].id, r);
}

#[test]
fn chat_pages_walk_the_whole_history_in_order_both_ways() {
    let dir = TempDir::new("chat");
    let mut s = create(&dir.db());
    let r1 = room(&mut s, b"r1", "one");
    let r2 = room(&mut s, b"r2", "two");
    let texts: Vec<String> = (0..95).map(|i| format!("message {i}")).collect();
    for (i, t) in texts.iter().enumerate() {
        // Interleave another room's chat to prove pages stay within their room.
        s.add_message(&NewMessage {
            room: r2,
            sender_key: &PublicKey([2; 32]),
            sender_name: "other",
            sent_at: Timestamp(i as i64),
            text: "noise",
        })
        .unwrap();
        s.add_message(&NewMessage {
            room: r1,
            sender_key: &PublicKey([1; 32]),
            sender_name: "ada",
            // Senders' clocks may run backwards; order is arrival order.
            sent_at: Timestamp(1_000 - i as i64),
            text: t,
        })
        .unwrap();
    }
    assert_eq!(s.message_count(r1).unwrap(), 95);
    // Backwards from the newest.
    let mut seen = Vec::new();
    let mut page = s.messages(r1, Page::Latest { limit: 10 }).unwrap();
    while !page.is_empty() {
        assert!(page.windows(2).all(|w| w[0].id < w[1].id));
        let oldest = page[0].id;
        seen.splice(0..0, page.iter().map(|m| m.text.clone()));
        page = s
            .messages(
                r1,
                Page::Before {
                    before: oldest,
                    limit: 10,
                },
            )
            .unwrap();
    }
    assert_eq!(seen, texts);
    // Forwards from the start.
    let mut fwd = Vec::new();
    let mut after = MessageId(0);
    loop {
        let p = s.messages(r1, Page::After { after, limit: 7 }).unwrap();
        let Some(last) = p.last() else { break };
        after = last.id;
        fwd.extend(p.iter().map(|m| m.text.clone()));
    }
    assert_eq!(fwd, texts);
    // Batch insert and the size limit.
    let ids = s
        .add_messages(&[
            NewMessage {
                room: r1,
                sender_key: &PublicKey([1; 32]),
                sender_name: "a",
                sent_at: Timestamp(1),
                text: "x",
            },
            NewMessage {
                room: r1,
                sender_key: &PublicKey([1; 32]),
                sender_name: "a",
                sent_at: Timestamp(2),
                text: "y",
            },
        ])
        .unwrap();
    assert!(ids[0] < ids[1]);
    let big = "z".repeat(MAX_MESSAGE_BYTES + 1);
    assert!(matches!(
        s.add_message(&NewMessage {
            room: r1,
            sender_key: &PublicKey([1; 32]),
            sender_name: "a",
            sent_at: Timestamp(3),
            text: &big
        }),
        Err(StoreError::InvalidInput(_))
    ));
    assert_eq!(s.message_count(r1).unwrap(), 97);
}

#[test]
fn settings_have_defaults_round_trip_and_keep_generic_values_apart() {
    let dir = TempDir::new("settings");
    let mut s = create(&dir.db());
    assert_eq!(s.settings().unwrap(), Settings::default());
    let custom = Settings {
        input_device: Some("USB mic".into()),
        output_device: Some("Headphones".into()),
        push_to_talk_key: Some("Space".into()),
        noise_suppression: false,
        echo_cancellation: true,
        theme: Theme::Dark,
    };
    s.set_settings(&custom).unwrap();
    s.set_value("cli.last_room", "r1").unwrap();
    assert!(matches!(
        s.set_value("salon.ui.theme", "light"),
        Err(StoreError::InvalidInput(_))
    ));
    drop(s);
    let mut s = Store::open(&dir.db(), PASS).unwrap();
    assert_eq!(s.settings().unwrap(), custom);
    assert_eq!(s.value("cli.last_room").unwrap().as_deref(), Some("r1"));
    s.remove_value("cli.last_room").unwrap();
    assert_eq!(s.value("cli.last_room").unwrap(), None);
    let mut back = custom.clone();
    back.input_device = None;
    s.set_settings(&back).unwrap();
    assert_eq!(s.settings().unwrap(), back);
}

#[test]
fn keychain_either_round_trips_or_reports_itself_unavailable() {
    let key = RawKey::from_bytes([1; 32]);
    let account = format!("salon-store-test-{}", std::process::id());
    match keychain::remember_key(&account, &key) {
        Ok(()) => {
            // Only a build with the `keyring` feature can get here.
            let built_with_keyring = cfg!(feature = "keyring");
            assert!(built_with_keyring, "no keychain support is built in");
            assert_eq!(keychain::recall_key(&account).unwrap(), Some(key));
            keychain::forget_key(&account).unwrap();
            assert_eq!(keychain::recall_key(&account).unwrap(), None);
        }
        Err(StoreError::KeychainUnavailable(why)) => {
            // Without the feature, or with it on a machine without a secret service
            // (headless CI): every call says so, nothing else breaks.
            eprintln!("note: keychain unavailable: {why}");
            assert!(matches!(
                keychain::recall_key(&account),
                Err(StoreError::KeychainUnavailable(_))
            ));
        }
        Err(e) => panic!("unexpected error: {e:?}"),
    }
}

#[test]
fn the_raw_key_unlocks_without_the_passphrase() {
    let dir = TempDir::new("rawkey");
    let s = create(&dir.db());
    let key = s.raw_key().clone();
    drop(s);
    let s = Store::open_with_key(&dir.db(), &key).unwrap();
    assert_eq!(s.schema_version().unwrap(), migrations::CURRENT_VERSION);
    drop(s);
    assert!(matches!(
        Store::open_with_key(&dir.db(), &RawKey::from_bytes([0; 32])),
        Err(StoreError::WrongKey)
    ));
}

#[test]
fn deleting_a_room_removes_its_chat_and_compact_shrinks_the_file() {
    let dir = TempDir::new("compact");
    let mut s = create(&dir.db());
    let keep = room(&mut s, b"keep", "keep");
    let gone = room(&mut s, b"gone", "gone");
    let text = "y".repeat(1000);
    let msgs: Vec<NewMessage<'_>> = (0..2_000)
        .map(|i| NewMessage {
            room: gone,
            sender_key: &PublicKey([1; 32]),
            sender_name: "a",
            sent_at: Timestamp(i),
            text: &text,
        })
        .collect();
    s.add_messages(&msgs).unwrap();
    s.participant_joined(gone, &PublicKey([1; 32]), "a", Role::Speaker, Timestamp(0))
        .unwrap();
    s.checkpoint().unwrap();
    let big = std::fs::metadata(&s.files().db).unwrap().len();
    s.delete_room(gone).unwrap();
    assert_eq!(s.message_count(gone).unwrap(), 0);
    assert!(s.participants(gone).unwrap().is_empty());
    assert!(matches!(s.room(gone), Err(StoreError::NoSuchRecord(_))));
    s.compact().unwrap();
    let small = std::fs::metadata(&s.files().db).unwrap().len();
    assert!(small * 4 < big, "{small} vs {big}");
    assert_eq!(s.room(keep).unwrap().title, "keep");
    drop(s);
    Store::open(&dir.db(), PASS).unwrap();
}

#[test]
fn records_that_refer_to_a_missing_room_are_invalid_input() {
    let dir = TempDir::new("fk");
    let mut s = create(&dir.db());
    let err = s
        .add_message(&NewMessage {
            room: RoomId(42),
            sender_key: &PublicKey([1; 32]),
            sender_name: "a",
            sent_at: Timestamp(0),
            text: "t",
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    let err = s
        .participant_joined(
            RoomId(42),
            &PublicKey([1; 32]),
            "a",
            Role::Listener,
            Timestamp(0),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    assert!(matches!(
        s.participant_left(ParticipantId(7), Timestamp(0)),
        Err(StoreError::NoSuchRecord(_))
    ));
}
