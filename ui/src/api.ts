// Typed bridge to the Rust side. Hand-written; api.test.ts checks every wrapper against
// the generated bindings.ts (which src-tauri's bindings test keeps in step with Rust).
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

export interface ApiError { code: string; message: string }
export interface ProfileStatus { exists: boolean; unlocked: boolean }
export interface ProfileInfo { name: string; fingerprint: string }
export type Role = "host" | "moderator" | "speaker" | "listener";
export interface MemberInfo { key: string; name: string; role: Role; hand_raised: boolean; muted: boolean; me: boolean }
export interface RoomInfo { title: string; epoch: number; safety_code: string; host: string; members: MemberInfo[] }
export interface PeerLevel { key: string; name: string; rms_dbfs: number | null; speaking: boolean }
export interface LinkInfo { key: string; name: string; rtt_ms: number | null; audio_received: number; audio_lost: number; jitter_buffer_ms: number | null; up: boolean }

export interface HistoryParticipant { key: string; name: string; role: Role; joined_at: number; left_at: number | null } // unix ms
export interface HistoryRoom { id: number; title: string; hosted: boolean; started_at: number; ended_at: number | null; participants: HistoryParticipant[]; message_count: number }
export interface HistoryMessage { id: number; at: number; from: string; name: string; text: string; mine: boolean }
export interface Contact { key: string; name: string; verified: boolean; key_changed: boolean; safety_number: string; last_seen: number | null }
export interface SafetyNumber { key: string; name: string; safety_number: string; verified: boolean } // safety_number: 60 digits, no spaces
export interface Devices { inputs: string[]; outputs: string[] }
export type Theme = "system" | "light" | "dark";
export interface Settings { input_device: string | null; output_device: string | null; push_to_talk_key: string | null; noise_suppression: boolean; echo_cancellation: boolean; theme: Theme }

export type NodeEvent =
  | { event: "listening"; addr: string }
  | { event: "hosting"; invite: string }
  | { event: "joined"; room: RoomInfo }
  | { event: "join_failed"; message: string }
  | { event: "room"; room: RoomInfo }
  | { event: "role_changed"; role: Role }
  | { event: "muted_by_moderator" }
  | { event: "chat"; from: string; name: string; text: string }
  | { event: "levels"; input_dbfs: number | null; transmitting: boolean; peers: PeerLevel[] } // null: no microphone
  | { event: "links"; links: LinkInfo[] }
  | { event: "first_audio"; key: string }
  | { event: "link_up"; key: string }
  | { event: "link_down"; key: string }
  | { event: "host_changed"; host: string; invite: string | null }
  | { event: "left"; reason: "left" | "removed" | "ended" | "timed_out" }
  | { event: "audio"; message: string }
  | { event: "key_changed"; name: string; key: string }
  | { event: "error"; code: string; message: string };

export type Action = "invite_to_stage" | "move_to_audience" | "make_moderator" | "mute" | "remove";

/** Every command, one-to-one with the Tauri commands. */
export const api = {
  profileStatus: () => invoke<ProfileStatus>("profile_status"),
  createProfile: (name: string, passphrase: string) => invoke<ProfileInfo>("create_profile", { name, passphrase }),
  unlock: (passphrase: string) => invoke<ProfileInfo>("unlock", { passphrase }),
  hostRoom: (title: string) => invoke<string>("host_room", { title }),
  joinRoom: (invite: string) => invoke<void>("join_room", { invite }),
  leaveRoom: () => invoke<void>("leave_room"),
  endRoom: () => invoke<void>("end_room"),
  setMuted: (muted: boolean) => invoke<void>("set_muted", { muted }),
  setHand: (raised: boolean) => invoke<void>("set_hand", { raised }),
  moderate: (target: string, action: Action) => invoke<void>("moderate", { target, action }),
  sendChat: (text: string) => invoke<void>("send_chat", { text }),
  setPeerVolume: (target: string, volume: number) => invoke<void>("set_peer_volume", { target, volume }),
  verifyContact: (target: string, verified: boolean) => invoke<void>("verify_contact", { target, verified }),
  roomStatus: () => invoke<RoomInfo | null>("room_status"),
  historyRooms: (before: number | null, limit: number) => invoke<HistoryRoom[]>("history_rooms", { before, limit }), // newest first
  historyChat: (room: number, before: number | null, limit: number) => invoke<HistoryMessage[]>("history_chat", { room, before, limit }), // newest first; `before` = message id
  contacts: () => invoke<Contact[]>("contacts"),
  safetyNumber: (target: string) => invoke<SafetyNumber>("safety_number", { target }),
  devices: () => invoke<Devices>("devices"),
  getSettings: () => invoke<Settings>("get_settings"),
  setSettings: (settings: Settings) => invoke<Settings>("set_settings", { settings }),
  micTest: (on: boolean) => invoke<void>("mic_test", { on }),
  testSound: () => invoke<void>("test_sound"),
  // The Rust command's parameters are old_passphrase/new_passphrase (see bindings.ts).
  changePassphrase: (old: string, new_: string) => invoke<void>("change_passphrase", { oldPassphrase: old, newPassphrase: new_ }),
  exportBackup: (path: string | null) => invoke<string>("export_backup", { path }),
  /** The push-to-talk key went down or up: the engine transmits only while it is down. */
  pushToTalk: (pressed: boolean) => invoke<void>("push_to_talk", { pressed }),
};

export const EVENT = "salon://event";

export function onNodeEvent(handler: (e: NodeEvent) => void): Promise<UnlistenFn> {
  return listen<NodeEvent>(EVENT, (e) => handler(e.payload));
}

/** The message of anything a command rejected with. */
export function errorMessage(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) return String((e as ApiError).message);
  return String(e);
}

export function errorCode(e: unknown): string | undefined {
  if (e && typeof e === "object" && "code" in e) return String((e as ApiError).code);
  return undefined;
}
