// The UI's model, folded from node events. Pure, so it is unit-tested without a window.
import type { LinkInfo, MemberInfo, NodeEvent, RoomInfo } from "./api";

export interface ChatLine { from: string; name: string; text: string }

export interface UiState {
  screen: "loading" | "create" | "unlock" | "home" | "room";
  profile?: { name: string; fingerprint: string };
  room?: RoomInfo;
  invite?: string;
  chat: ChatLine[];
  speaking: Record<string, boolean>;
  levels: Record<string, number>;
  inputDbfs: number;
  links: Record<string, LinkInfo>;
  toasts: string[];
  error?: string;
}

export const initial: UiState = { screen: "loading", chat: [], speaking: {}, levels: {}, inputDbfs: -100, links: {}, toasts: [] };

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
    case "joined":
      return { ...s, screen: "room", room: e.room, chat: [], error: undefined };
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
      return { ...s, screen: "room", room: e.room, toasts };
    }
    case "join_failed":
      return { ...s, screen: "home", room: undefined, error: e.message };
    case "chat":
      return { ...s, chat: [...s.chat, { from: e.from, name: e.name, text: e.text }] };
    case "levels": {
      const speaking: Record<string, boolean> = {};
      const levels: Record<string, number> = {};
      for (const p of e.peers) {
        speaking[p.key] = p.speaking;
        levels[p.key] = p.rms_dbfs;
      }
      const mine = me(s);
      if (mine) {
        speaking[mine.key] = e.transmitting && e.input_dbfs > -45;
        levels[mine.key] = e.input_dbfs;
      }
      return { ...s, speaking, levels, inputDbfs: e.input_dbfs };
    }
    case "links": {
      const links: Record<string, LinkInfo> = {};
      for (const l of e.links) links[l.key] = l;
      return { ...s, links };
    }
    case "muted_by_moderator":
      return { ...s, toasts: [...s.toasts, "A moderator muted you"] };
    case "host_changed":
      return e.invite ? { ...s, invite: e.invite, toasts: [...s.toasts, "You are the host now"] } : s;
    case "left": {
      const why = { left: "You left the room", removed: "You were removed from the room", ended: "The room has ended", timed_out: "Lost contact with the room" }[e.reason];
      return { ...s, screen: "home", room: undefined, invite: undefined, speaking: {}, levels: {}, links: {}, toasts: [...s.toasts, why] };
    }
    case "key_changed":
      return { ...s, toasts: [...s.toasts, `${e.name} now uses a different key — compare safety numbers`] };
    case "error":
      return { ...s, toasts: [...s.toasts, e.message] };
    case "audio":
      return { ...s, toasts: [...s.toasts, e.message] };
    default:
      return s;
  }
}
