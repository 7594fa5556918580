// The UI's model, folded from node events. Pure, so it is unit-tested without a window.
import type { Contact, Devices, HistoryMessage, HistoryRoom, LinkInfo, MemberInfo, NodeEvent, RoomInfo, SafetyNumber, Settings, TalkKeyReach } from "./api";

export interface ChatLine { from: string; name: string; text: string }

export type Screen = "loading" | "create" | "unlock" | "home" | "room" | "history" | "settings";

/** Something loaded from the node: not yet, loaded, or why it failed. */
export type Loaded<T> = { status: "loading" } | { status: "ok"; value: T } | { status: "failed"; message: string };

export interface HistoryList { rooms: HistoryRoom[]; more: boolean; loading: boolean; error?: string }
export interface HistoryDetail { room: HistoryRoom; messages: HistoryMessage[]; more: boolean; loading: boolean; error?: string }

/** `stage_invite`: a moderator (`key`, `name`) asks us on stage; nothing happens until we answer. */
export type Dialog = { kind: "invite" } | { kind: "safety"; number: SafetyNumber; error?: string } | { kind: "stage_invite"; key: string; name: string };

/** Feedback shown inside the settings screen, one slot per form. */
export interface SettingsNotes { settings?: string; mic?: string; passphrase?: { ok: boolean; text: string }; backup?: { ok: boolean; text: string } }

export const PAGE = 20;
export const CHAT_PAGE = 50;

export interface UiState {
  screen: Screen;
  profile?: { name: string; fingerprint: string };
  room?: RoomInfo;
  invite?: string;
  /** Our public address while the home router forwards our port (null: it does not). */
  portMapping?: string | null;
  chat: ChatLine[];
  speaking: Record<string, boolean>;
  inputDbfs: number;
  links: Record<string, LinkInfo>;
  toasts: string[];
  error?: string;
  settings?: Settings;
  devices?: Loaded<Devices>;
  contacts: Loaded<Contact[]>;
  recent: Loaded<HistoryRoom[]>;
  history: HistoryList;
  detail?: HistoryDetail;
  /** The key of the person whose menu is open. */
  menu?: string;
  dialog?: Dialog;
  /** Per-person playback volume, 0.0–2.0 (1.0 when absent). */
  volumes: Record<string, number>;
  /** Settings is waiting for the push-to-talk key to be pressed. */
  capturing: boolean;
  /** Where the push-to-talk key in force works (other apps too, or the window only). */
  pttReach?: TalkKeyReach;
  notes: SettingsNotes;
}

export const initial: UiState = {
  screen: "loading",
  chat: [],
  speaking: {},
  inputDbfs: -100,
  links: {},
  toasts: [],
  contacts: { status: "loading" },
  recent: { status: "loading" },
  history: { rooms: [], more: false, loading: false },
  volumes: {},
  capturing: false,
  notes: {},
};

export function me(s: UiState): MemberInfo | undefined {
  return s.room?.members.find((m) => m.me);
}

export function stage(s: UiState): MemberInfo[] {
  return (s.room?.members ?? []).filter((m) => m.role !== "listener");
}

export function audience(s: UiState): MemberInfo[] {
  return (s.room?.members ?? []).filter((m) => m.role === "listener");
}

export function canModerate(s: UiState): boolean {
  const r = me(s)?.role;
  return r === "host" || r === "moderator";
}

/** Folds one node event into the state. */
export function reduce(s: UiState, e: NodeEvent): UiState {
  switch (e.event) {
    case "hosting":
      return { ...s, invite: e.invite };
    case "invite_changed": {
      const why =
        e.reason === "removal"
          ? "New invite: the old one stopped working when someone was removed"
          : "Invite revoked: the old one no longer works";
      return { ...s, invite: e.invite, toasts: [...s.toasts, why] };
    }
    case "port_mapping":
      return { ...s, portMapping: e.external };
    case "joined":
      return { ...s, screen: "room", room: e.room, chat: [], error: undefined, menu: undefined };
    case "room": {
      const before = s.room ? me(s) : undefined;
      const after = e.room.members.find((m) => m.me);
      const toasts = [...s.toasts];
      if (s.room && canModerate(s)) {
        for (const m of e.room.members) {
          const old = s.room.members.find((o) => o.key === m.key);
          if (m.hand_raised && !old?.hand_raised) toasts.push(`${m.name} raised a hand`);
        }
      }
      if (before?.role === "listener" && after && after.role !== "listener") toasts.push("You were invited to speak");
      // The first room info takes us into the room; later ones leave the screen alone (the
      // user may be looking at Settings while the roster changes).
      const screen = s.room ? s.screen : "room";
      const menu = s.menu && e.room.members.some((m) => m.key === s.menu) ? s.menu : undefined;
      // Off the audience benches (or out of the roster), an invitation is moot.
      const dialog = s.dialog?.kind === "stage_invite" && after?.role !== "listener" ? undefined : s.dialog;
      return { ...s, screen, room: e.room, toasts, menu, dialog };
    }
    case "join_failed":
      return { ...s, screen: "home", room: undefined, error: e.message };
    case "chat":
      return { ...s, chat: [...s.chat, { from: e.from, name: e.name, text: e.text }] };
    case "levels": {
      const speaking: Record<string, boolean> = {};
      for (const p of e.peers) speaking[p.key] = p.speaking;
      const input = e.input_dbfs ?? -100; // null: no microphone
      const mine = me(s);
      if (mine) {
        speaking[mine.key] = e.transmitting && input > -45;
      }
      return { ...s, speaking, inputDbfs: input };
    }
    case "links": {
      const links: Record<string, LinkInfo> = {};
      for (const l of e.links) links[l.key] = l;
      return { ...s, links };
    }
    case "link_path": {
      // Shown at once; the next "links" report carries the same.
      const l = s.links[e.key];
      return l ? { ...s, links: { ...s.links, [e.key]: { ...l, path: e.path, via: e.via } } } : s;
    }
    case "unreachable":
      return { ...s, toasts: [...s.toasts, e.message] };
    case "muted_by_moderator":
      return { ...s, toasts: [...s.toasts, "A moderator muted you"] };
    case "stage_invited":
      // The prompt takes over any other dialog: it needs an answer within a minute.
      return { ...s, dialog: { kind: "stage_invite", key: e.key, name: e.name }, menu: undefined };
    case "stage_invite_declined":
      return { ...s, toasts: [...s.toasts, `${e.name} declined the invitation to speak`] };
    case "stage_invite_lapsed": {
      // The invitation is void: an answer now would be refused, so the prompt goes.
      const dialog = s.dialog?.kind === "stage_invite" ? undefined : s.dialog;
      return { ...s, dialog, toasts: [...s.toasts, `The invitation to speak from ${e.name} lapsed`] };
    }
    case "stage_invite_unanswered":
      return { ...s, toasts: [...s.toasts, `${e.name} did not answer the invitation to speak`] };
    case "host_changed": {
      // The invitation lived with the old host: it cannot be answered any more.
      const dialog = s.dialog?.kind === "stage_invite" ? undefined : s.dialog;
      return e.invite ? { ...s, dialog, invite: e.invite, toasts: [...s.toasts, "You are the host now"] } : { ...s, dialog };
    }
    case "left": {
      const why = { left: "You left the room", removed: "You were removed from the room", ended: "The room has ended", timed_out: "Lost contact with the room" }[e.reason];
      const screen = s.screen === "room" ? "home" : s.screen;
      const dialog = s.dialog?.kind === "invite" || s.dialog?.kind === "stage_invite" ? undefined : s.dialog;
      return { ...s, screen, room: undefined, invite: undefined, speaking: {}, links: {}, menu: undefined, dialog, toasts: [...s.toasts, why] };
    }
    case "key_changed": {
      const contacts: Loaded<Contact[]> =
        s.contacts.status === "ok" ? { status: "ok", value: s.contacts.value.map((c) => (c.key === e.key ? { ...c, key_changed: true, verified: false } : c)) } : s.contacts;
      return { ...s, contacts, toasts: [...s.toasts, `${e.name} now uses a different key — compare safety numbers`] };
    }
    case "error":
      return { ...s, toasts: [...s.toasts, e.message] };
    case "audio":
      return { ...s, toasts: [...s.toasts, e.message] };
    default:
      return s;
  }
}

// ——— Results of commands, folded in the same pure way ———

/** A page of past rooms (newest first); `append` for "Load more". */
export function historyPage(s: UiState, rooms: HistoryRoom[], append: boolean): UiState {
  const before = append ? s.history.rooms : [];
  const seen = new Set(before.map((r) => r.id));
  return { ...s, history: { rooms: [...before, ...rooms.filter((r) => !seen.has(r.id))], more: rooms.length >= PAGE, loading: false } };
}

/** The id to page back from: the oldest room shown. */
export function historyCursor(s: UiState): number | null {
  return s.history.rooms.at(-1)?.id ?? null;
}

/** Opens a past room's detail (its transcript comes next). */
export function openDetail(s: UiState, room: HistoryRoom): UiState {
  return { ...s, screen: "history", detail: { room, messages: [], more: false, loading: true } };
}

/** A page of a past room's chat, newest first from the node; shown oldest first. */
export function chatPage(s: UiState, room: number, page: HistoryMessage[]): UiState {
  if (!s.detail || s.detail.room.id !== room) return s;
  const seen = new Set(s.detail.messages.map((m) => m.id));
  const older = [...page].reverse().filter((m) => !seen.has(m.id));
  return { ...s, detail: { ...s.detail, messages: [...older, ...s.detail.messages], more: page.length >= CHAT_PAGE, loading: false } };
}

/** The message id to page back from: the oldest one shown. */
export function chatCursor(s: UiState): number | null {
  return s.detail?.messages[0]?.id ?? null;
}

/** Settings as the node saved them. */
export function settingsSaved(s: UiState, settings: Settings): UiState {
  return { ...s, settings, capturing: false, notes: { ...s.notes, settings: undefined } };
}

/** A contact's verified mark changed (in the contacts list and an open safety dialog). */
export function verified(s: UiState, key: string, on: boolean): UiState {
  const contacts: Loaded<Contact[]> =
    s.contacts.status === "ok" ? { status: "ok", value: s.contacts.value.map((c) => (c.key === key ? { ...c, verified: on, key_changed: on ? false : c.key_changed } : c)) } : s.contacts;
  const dialog = s.dialog?.kind === "safety" && s.dialog.number.key === key ? { ...s.dialog, number: { ...s.dialog.number, verified: on } } : s.dialog;
  return { ...s, contacts, dialog };
}

export function contact(s: UiState, key: string): Contact | undefined {
  return s.contacts.status === "ok" ? s.contacts.value.find((c) => c.key === key) : undefined;
}
